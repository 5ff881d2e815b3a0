"""The DSL's lark parser: grammar, post-lexer, and the state of one parse.

One LALR parser is built per process and shared, across threads too. What belongs to a
single parse (its budgets, the brackets open so far, the comments the lexer skipped) lives
in a ParseState that ``parse_tree`` installs in a context variable for the length of the
call, so parses running at the same time never see each other's state.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

# `x(` (a repeat count written as an expression) opens a bracket too.
OPENERS = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE", "REPEAT_OPEN": "RPAR"}
CLOSERS = frozenset(OPENERS.values())

# A source comment: (line, column, text without trailing blanks).
Comment = tuple[int, int, str]


class BudgetExceeded(Exception):
    """The post-lexer refused the text: more tokens, or deeper brackets, than the budgets allow."""

    def __init__(self, token: Any, what: str, budget: str):
        self.token = token
        self.what = what
        self.budget = budget


@dataclass
class ParseState:
    """One parse: its budgets in, what the lexer saw out."""

    max_tokens: int
    max_depth: int
    # Brackets opened and not yet closed (tokens); syntax errors read it to say what is unclosed.
    open_stack: list[Any] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)


_STATE: ContextVar[ParseState] = ContextVar("specdsl_dsl_parse_state")


def _state() -> ParseState:
    try:
        return _STATE.get()
    except LookupError:
        raise RuntimeError("the DSL parser runs through specdsl.frontend.dsl.parse_dsl") from None


class _PostLex:
    """Newlines are statement separators, except next to '->' and inside ( ) or [ ].

    Also where the max_tokens and max_depth budgets are checked, before the parser builds anything big.
    """

    always_accept = ("_NL",)

    def process(self, stream: Iterator[Any]) -> Iterator[Any]:
        # Tokens pass straight through (no lookahead): lark's contextual lexer
        # lexes each token in the parser state the previous one produced.
        state = _state()
        open_stack = state.open_stack
        max_tokens, max_depth = state.max_tokens, state.max_depth
        count = 0
        for tok in stream:
            count += 1
            if count > max_tokens:
                raise BudgetExceeded(tok, f"more than {max_tokens:,} tokens (the max_tokens budget)", "max_tokens")
            t = tok.type
            if t == "_NL":
                # Inside ( ) or [ ] (and mappings within them) newlines are only layout.
                if any(o.type in ("LPAR", "LSQB", "REPEAT_OPEN") for o in open_stack):
                    continue
            elif t in OPENERS:
                open_stack.append(tok)
                if len(open_stack) > max_depth:
                    raise BudgetExceeded(tok, f"brackets nested deeper than {max_depth} levels (the max_depth budget)",
                                         "max_depth")
            elif t in CLOSERS and open_stack and OPENERS[open_stack[-1].type] == t:
                open_stack.pop()
            yield tok


def _keep_comment(tok: Any) -> Any:
    _state().comments.append((tok.line, tok.column, tok.value.rstrip()))
    return tok


@functools.lru_cache(maxsize=2)
def parser(strict: bool = False) -> Any:
    """The LALR parser, built once per process (in memory only: nothing is read from disk but the grammar).

    ``strict`` makes lark prove that no two terminals collide; that is a property of the grammar, not
    of the input, so a test builds it strictly (it needs the interegular package, a dev dependency:
    where it is importable lark runs the check, without failing, on every build).
    """
    from lark import Lark

    grammar = (resources.files("specdsl.grammars") / "specdsl.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", strict=strict, propagate_positions=True, postlex=_PostLex(),
                maybe_placeholders=False, lexer_callbacks={"COMMENT": _keep_comment})


def parse_tree(text: str, state: ParseState) -> Any:
    """The lark tree of ``text``; ``state`` gives the budgets and collects open brackets and comments.

    Raises BudgetExceeded or lark's UnexpectedInput; ``state`` then tells where the parse stopped.
    """
    p = parser()
    token = _STATE.set(state)
    try:
        return p.parse(text)
    finally:
        _STATE.reset(token)

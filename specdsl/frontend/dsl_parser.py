"""The DSL's lark parser: grammar, post-lexer, and the state of one parse.

One LALR parser is built per process and shared, across threads too. What belongs to a
single parse (its budgets, the brackets open so far, the comments the lexer skipped) lives
in a ParseState that ``parse_tree`` installs in a context variable for the length of the
call, so parses running at the same time never see each other's state.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
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


# lark options that shape the parse tables (the callbacks are ours, passed again on every load).
_TABLE_OPTIONS: dict[str, Any] = {"parser": "lalr", "propagate_positions": True, "maybe_placeholders": False}
_CALLBACK_OPTIONS = ("postlex", "lexer_callbacks")
TABLES_FILE = "specdsl.tables.json"


def _package_text(name: str) -> str:
    """A file of the specdsl.grammars package: read beside its __init__.py where that is a folder (an
    install, a checkout), through importlib.resources (tempfile, zipfile, ...: a tenth of `check`'s
    imports) only where it is not (a zip)."""
    from importlib import import_module

    path = os.path.join(os.path.dirname(import_module("specdsl.grammars").__file__ or ""), name)
    if os.path.isdir(os.path.dirname(path)):
        with open(path, encoding="utf-8") as f:
            return f.read()
    from importlib import resources

    return (resources.files("specdsl.grammars") / name).read_text(encoding="utf-8")


def _grammar_text() -> str:
    return _package_text("specdsl.lark")


def build_parser(strict: bool = False) -> Any:
    """The LALR parser built from the grammar (about 0.1 s; 0.3 s where interegular is importable).

    ``strict`` makes lark prove that no two terminals collide; that is a property of the grammar, not
    of the input, so a test builds it strictly (it needs the interegular package, a dev dependency:
    where it is importable lark runs the check, without failing, on every build).
    """
    from lark import Lark

    return Lark(_grammar_text(), strict=strict, postlex=_PostLex(), lexer_callbacks={"COMMENT": _keep_comment},
                **_TABLE_OPTIONS)


def serialize_tables(built: Any) -> str:
    """The parse tables of a built parser as JSON, stamped with the grammar's hash and lark's version.

    JSON, not lark's own cache (a pickle in the temporary folder, which anyone on the machine could plant).
    """
    from lark.grammar import Rule
    from lark.lexer import TerminalDef

    data, memo = built.memo_serialize([TerminalDef, Rule])
    data["options"] = {k: v for k, v in data["options"].items() if k not in _CALLBACK_OPTIONS}
    return json.dumps({"stamp": _stamp(), "data": data, "memo": memo}, sort_keys=True,
                      separators=(",", ":")) + "\n"


def _stamp() -> dict[str, str]:
    """What the tables were made from: this grammar, by this lark."""
    import hashlib

    import lark

    return {"grammar_sha256": hashlib.sha256(_grammar_text().encode("utf-8")).hexdigest(), "lark": lark.__version__}


def _int_keys(pairs: list[tuple[str, Any]]) -> dict[Any, Any]:
    # JSON spells the tables' integer keys (states, token ids, memo ids) as strings; no grammar name is all digits.
    return {int(k) if k.isdigit() else k: v for k, v in pairs}


def _load_tables() -> Any:
    """The parser from the packaged tables, or None where they are missing or were made for another grammar
    or another lark (the format is lark's; a different version may read it differently)."""
    import lark

    try:
        text = _package_text(TABLES_FILE)
    except OSError:
        return None
    tables = json.loads(text, object_pairs_hook=_int_keys)
    if tables.get("stamp") != _stamp():
        return None
    # lark's own cache loads through this method too (with a pickle where we give a dict).
    return lark.Lark.__new__(lark.Lark)._load(tables, postlex=_PostLex(), lexer_callbacks={"COMMENT": _keep_comment})


@functools.lru_cache(maxsize=1)
def parser() -> Any:
    """The LALR parser, once per process: from the packaged parse tables (about 10 ms) where they match
    the grammar and the installed lark, else built from the grammar. Nothing is read but package files."""
    return _load_tables() or build_parser()


def parse_tree(text: str, state: ParseState, using: Any = None) -> Any:
    """The lark tree of ``text``; ``state`` gives the budgets and collects open brackets and comments.

    Raises BudgetExceeded or lark's UnexpectedInput; ``state`` then tells where the parse stopped.
    ``using`` is another parser of this grammar (tests compare the packaged tables with a fresh build).
    """
    p = using or parser()
    token = _STATE.set(state)
    try:
        return p.parse(text)
    finally:
        _STATE.reset(token)

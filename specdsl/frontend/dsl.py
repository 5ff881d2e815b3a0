"""The text DSL front end: LALR parse with lark, then plain data + SourceMap.

The result is exactly what the YAML front end produces for the same model, so one
schema validates both syntaxes. Parsing keeps no state between calls: comments and
budgets belong to each call, and parses in different threads do not interfere.

The stages, one module each: dsl_parser (lark parser, post-lexer, token and bracket
budgets), dsl_build (parse tree -> Located values), dsl_data (-> plain data + SourceMap),
dsl_syntax_errors (lark's exceptions -> diagnostics a newcomer can act on).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from specdsl.budgets import DEFAULT, MAX_DEPTH, MAX_TOKENS, Budgets, raise_hint
from specdsl.errors import Diagnostic, SpecError
from specdsl.frontend.dsl_build import Builder, token_loc
from specdsl.frontend.dsl_data import plain_data
from specdsl.frontend.dsl_parser import BudgetExceeded, Comment, ParseState, parse_tree, parser
from specdsl.frontend.dsl_syntax_errors import syntax_diagnostic
from specdsl.source import SourceMap

# MAX_DEPTH and MAX_TOKENS are the default budgets, for reference; a call takes its own.
__all__ = ["MAX_DEPTH", "MAX_TOKENS", "Comment", "ParsedDSL", "load_dsl", "parse_dsl", "parser"]


@dataclass(frozen=True)
class ParsedDSL:
    """One parse: plain data, where each value came from, and the comments (for `fmt`)."""

    data: dict[str, Any]
    smap: SourceMap
    comments: tuple[Comment, ...]


def parse_dsl(text: str, file: str = "<string>", *, budgets: Budgets = DEFAULT) -> ParsedDSL:
    """Parse DSL text; raise SpecError on any problem.

    The post-lexer refuses the text as soon as it passes ``budgets.max_tokens`` or
    ``budgets.max_depth`` (brackets), before the parser builds anything big;
    ``max_depth`` also bounds expressions.
    """
    from lark.exceptions import UnexpectedInput

    if text.startswith("\ufeff"):
        # A byte order mark is accepted as YAML accepts it; a blank keeps every column where it was.
        text = " " + text[1:]
    state = ParseState(max_tokens=budgets.max_tokens, max_depth=budgets.max_depth)
    try:
        tree = parse_tree(text, state)
    except BudgetExceeded as exc:
        raise SpecError([Diagnostic(
            "error", "E409", f"the file is too large or too deeply nested: {exc.what}",
            token_loc(file, exc.token), hint="split the model into blocks; " + raise_hint(exc.budget))],
            {file: text}) from None
    except UnexpectedInput as exc:
        raise SpecError([syntax_diagnostic(exc, text, file, state.open_stack)], {file: text}) from None
    built = Builder(file, budgets.max_depth)
    built.build(tree)
    if built.diags:
        raise SpecError(built.diags, {file: text})
    data, smap = plain_data(built, text)
    return ParsedDSL(data, smap, tuple(state.comments))


def load_dsl(text: str, file: str = "<string>", *, budgets: Budgets = DEFAULT) -> tuple[dict[str, Any], SourceMap]:
    """``parse_dsl`` without the comments: the (data, SourceMap) pair that ``load_yaml`` gives too."""
    parsed = parse_dsl(text, file, budgets=budgets)
    return parsed.data, parsed.smap

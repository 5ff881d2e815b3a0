"""Syntax errors in the DSL, in words a newcomer can act on."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, cast

from specdsl.errors import Diagnostic, SourceLoc

# What each terminal means to a reader.
WORDS = {
    "NAME": "a name",
    "INT": "an integer",
    "FLOAT": "a number",
    "STRING": "a quoted string",
    "ARROW": "'->'",
    "REPEAT": "a repeat count like x3",
    "REPEAT_OPEN": "a repeat count like x(n - 1)",
    "COMPARE": "a comparison",
    "SLASH": "'/'",
    "PERCENT": "'%'",
    "_NL": "a new line",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "COMMA": "','",
    "EQUAL": "'='",
    "COLON": "':'",
    "AT": "'@'",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "STAR": "'*'",
    "$END": "the end of the file",
}


def _describe(token_type: str) -> str:
    if token_type in WORDS:
        return WORDS[token_type]
    if token_type.isupper() and token_type.isalpha():
        return f"'{token_type.lower()}'"
    return token_type


def _shown(token: Any) -> str:
    if token is None or token.type == "$END":
        return "the end of the file"
    if token.type == "_NL":
        return "a new line"
    return f"'{token.value}'"


def syntax_diagnostic(exc: Any, text: str, file: str, open_stack: Sequence[Any]) -> Diagnostic:
    """E401 for lark's UnexpectedInput; ``open_stack`` holds the brackets still open where it stopped."""
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    lines = text.splitlines() or [""]
    if isinstance(exc, UnexpectedCharacters):
        # lark declares pos_in_stream None on the base class; its lexer's error always sets the offset.
        pos = cast(int, exc.pos_in_stream)
        ch = text[pos] if pos < len(text) else ""
        loc = SourceLoc(file, exc.line, exc.column, exc.line, exc.column + 1)
        hint = None
        if ch == ":":
            hint = "keyword arguments use '=': write k=3, not k: 3"
        elif ch in "'":
            hint = 'strings use double quotes: "text"'
        elif ch == "/":
            hint = "integer division is '//'"
        elif ch == ">" and pos and text[pos - 1] in "-=":
            if text[pos - 1] == "=":
                hint = "layers are joined with '->'"
            elif open_stack:
                o = open_stack[-1]
                hint = (f"'->' cannot appear inside brackets: '{o.value}' opened at line {o.line}, "
                        f"column {o.column} is not closed")
        return Diagnostic("error", "E401", f"unexpected character {ch!r}", loc, hint=hint)

    token = getattr(exc, "token", None)
    expected = sorted(getattr(exc, "expected", None) or getattr(exc, "accepts", None) or [])
    if isinstance(exc, UnexpectedEOF) or (token is not None and token.type == "$END"):
        line = len(lines)
        loc = SourceLoc(file, line, len(lines[-1]) + 1, line, len(lines[-1]) + 2)
        hint = None
        if open_stack:
            o = open_stack[-1]
            hint = f"'{o.value}' opened at line {o.line}, column {o.column} is never closed"
        return Diagnostic("error", "E401", "unexpected end of the file" + _expect_text(expected), loc,
                          hint=hint)
    assert isinstance(exc, UnexpectedToken)
    tok = exc.token
    if tok.type == "_NL":
        # Point at the end of the line that stopped early, not at the next one.
        line = tok.line
        col = len(lines[line - 1]) + 1 if line - 1 < len(lines) else tok.column
        loc = SourceLoc(file, line, col, line, col + 1)
    else:
        loc = SourceLoc(file, tok.line, tok.column, tok.end_line, tok.end_column)
    prev = _previous_token(exc)
    before = text[:tok.start_pos].rstrip() if getattr(tok, "start_pos", None) is not None else ""
    after = text[tok.end_pos:tok.end_pos + 1] if getattr(tok, "end_pos", None) is not None else ""
    section = _SECTION.search(before) if tok.type == "COLON" else None
    if section is not None:  # `layers:` in a .cnn file: YAML's way of opening a section
        word = section.group(1)
        return Diagnostic("error", "E401", f"unexpected ':' after '{word}'", loc,
                          hint=f"a .cnn file writes `{_SECTIONS[word]}`, without ':' (`{word}:` is YAML, "
                          "for a .yaml file)")
    if before.endswith("->") and tok.type != "ARROW":
        return Diagnostic("error", "E401", f"expected a layer or block after '->'; received {_shown(tok)}", loc,
                          hint="write the next layer, e.g. `-> relu`, or remove the '->'")
    if tok.type == "EQUAL" and after == ">":
        return Diagnostic("error", "E401", "unexpected '=>'", loc, hint="layers are joined with '->'")
    if _IF_LINE.search(before.rsplit("\n", 1)[-1]) and not any(o.type != "LBRACE" for o in open_stack):
        return Diagnostic("error", "E401", f"unexpected {_shown(tok)} after the condition of `if`; expected '{{'",
                          loc, hint="`if COND { ... }` conditions the layers in its body; for one layer write "
                          "the `if` after it: `relu if c`")
    message, hint = _explain(tok, prev, expected, open_stack)
    return Diagnostic("error", "E401", message, loc, hint=hint)


# A line that opens `if COND` (or `} else if COND`) and has not reached its `{`.
_IF_LINE = re.compile(r"(?:^|[{}])[ \t]*(?:else[ \t]+)?if\b[^{}]*\Z")

# The DSL's top-level sections, as a .cnn file writes them.
_SECTIONS = {"layers": "layers { conv(64, k=3) -> relu }", "input": "input [3, 224, 224]",
             "model": "model resnet18", "params": "model name(width=1.0)",
             "description": 'description "text"', "dtype": "dtype float32"}
_SECTION = re.compile(r"(?:^|\n)[ \t]*(" + "|".join(_SECTIONS) + r")\Z")


def _previous_token(exc: Any) -> Any:
    state = getattr(exc, "state", None)
    stack = getattr(state, "value_stack", None) if state is not None else None
    for last in reversed(stack or []):
        while hasattr(last, "children") and last.children:
            last = last.children[-1]
        if getattr(last, "type", None) != "_NL":
            return last if hasattr(last, "type") else None
    return None


def _expect_text(expected: list[str]) -> str:
    words = [_describe(e) for e in expected if not e.startswith("__")]
    if not words:
        return ""
    if len(words) > 6:
        words = [*words[:6], "..."]
    return "; expected " + ", ".join(words)


def _explain(tok: Any, prev: Any, expected: list[str], open_stack: Sequence[Any]) -> tuple[str, str | None]:
    got = _shown(tok)
    prev_type = getattr(prev, "type", None)
    exp = set(expected)
    if prev_type == "ARROW":
        return f"expected a layer or block after '->'; received {got}", "write the next layer, e.g. `-> relu`"
    brackets = [o for o in open_stack if o.type != "LBRACE"]  # a layer body's `{` holds chains
    if tok.type == "ARROW" and brackets:
        o = brackets[-1]
        return ("unexpected '->' inside brackets", f"'->' cannot appear inside brackets: '{o.value}' opened at "
                f"line {o.line}, column {o.column} is not closed")
    if tok.type == "ARROW":
        return (f"unexpected '->'{_expect_text(expected)}",
                "'->' joins two layers; start the chain with a layer (or @name to continue from a named one)")
    if tok.type in ("INT", "FLOAT") and prev_type == "COLON":
        return f"unexpected {got} after ':'", "parameter types use ':' (c: int); defaults use '=' (stride=1)"
    if tok.type == "COLON":
        return f"unexpected ':'{_expect_text(expected)}", "keyword arguments use '=': write k=3, not k: 3"
    if tok.type == "EQUAL" and "COLON" in exp:
        return f"unexpected '='{_expect_text(expected)}", "parameter types use ':', defaults use '='"
    if "COMMA" in exp and ("RPAR" in exp or "RSQB" in exp) and tok.type not in ("RPAR", "RSQB"):
        inner = open_stack[-1] if open_stack and open_stack[-1].type in ("LPAR", "LSQB") else None
        closer = "']'" if (inner is not None and inner.type == "LSQB") or "RPAR" not in exp else "')'"
        what = "a list" if closer == "']'" else "an argument list"
        same_line = inner is not None and inner.line == tok.line
        hint = "missing ',' between values?" if same_line else (
            f"missing {closer}? '{inner.value}' opened at line {inner.line}, column {inner.column} is not closed"
            if inner is not None else f"missing {closer}?")
        return f"unexpected {got} in {what}; expected ',' or {closer}", hint
    if tok.type == "RBRACE" and open_stack:
        o = open_stack[-1]
        if o.type in ("LPAR", "LSQB"):
            return (f"unexpected '}}': '{o.value}' opened at line {o.line}, column {o.column} is not closed",
                    f"add the missing '{')' if o.type == 'LPAR' else ']'}'")
    if tok.type == "NAME" and "_NL" in exp and prev_type in ("NAME", "RPAR", "REPEAT"):
        return (f"unexpected {got}{_expect_text(expected)}",
                "join layers with '->' or put each chain on its own line")
    if tok.type == "LPAR" and prev_type == "REPEAT":
        return f"unexpected '('{_expect_text(expected)}", "the repeat count comes after the arguments: basic(64) x2"
    return f"unexpected {got}{_expect_text(expected)}", None

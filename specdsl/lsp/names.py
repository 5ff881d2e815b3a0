"""What the text around the cursor is, read from tokens: comment or string, and the `@ref` names in scope.

Completion runs on every keystroke, on text that usually does not parse, so these scan the text
with the DSL's own token patterns (specdsl's grammar: NAME, STRING, COMMENT) instead of parsing it.
Comments and strings are skipped as tokens, so a word in either is never taken for a name.
"""

from __future__ import annotations

import re

__all__ = ["dsl_names", "in_comment_or_string"]

# The grammar's STRING (a string still open at the end of the text counts too), COMMENT and NAME.
_DSL_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*|[A-Za-z_][A-Za-z0-9_]*|[{}()]')


def in_comment_or_string(before: str, dsl: bool) -> bool:
    """Whether the end of `before` (a line up to the cursor) is inside a comment or a string."""
    if dsl:
        for m in _DSL_TOKEN.finditer(before):
            if m.group()[0] in '"#' and (m.end() == len(before) and (m.group()[0] == "#" or not _closed(m.group()))):
                return True
        return False
    return _in_yaml_comment_or_string(before)


def _closed(string: str) -> bool:
    return len(string) > 1 and string.endswith('"') and not string.endswith('\\"')


def _in_yaml_comment_or_string(before: str) -> bool:
    """YAML: `#` starts a comment at the line's start or after a blank; a quote opens a string only
    where a scalar may start (a plain scalar like `it's` holds quotes of its own)."""
    quote = None
    for i, ch in enumerate(before):
        if quote is not None:
            if ch == quote and not (quote == '"' and before[i - 1] == "\\"):
                quote = None
        elif ch == "#" and (i == 0 or before[i - 1] in " \t"):
            return True
        elif ch in "'\"" and (i == 0 or before[i - 1] in " \t[{,:-"):
            quote = ch
    return quote is not None


def dsl_names(text: str, offset: int) -> list[str]:
    """The names an `@ref` at the offset may use: `input`, then in a block's body the block's
    declared inputs and its `as NAME` layers, in the model's layers the model's `as NAME` layers."""
    scopes: dict[str | None, list[str]] = {None: ["input"]}
    scope: str | None = None
    here: str | None = None
    depth, opened_at, block, in_inputs, prev = 0, 0, None, False, ""
    found_here = False
    for m in _DSL_TOKEN.finditer(text):
        if not found_here and m.start() >= offset:
            here, found_here = scope, True
        tok = m.group()
        if tok[0] in '"#':
            continue
        if tok == "{":
            depth += 1
            if block is not None and scope is None:
                scope, opened_at, block = block, depth, None
        elif tok == "}":
            if scope is not None and depth == opened_at:
                scope = None
            depth = max(depth - 1, 0)
        elif prev == "block" and depth == 0:
            block = tok
            scopes[tok] = ["input"]
        elif prev == "inputs" and tok == "(" and block is not None:
            in_inputs = True
        elif in_inputs:
            if tok == ")":
                in_inputs = False
            else:
                _add(scopes[block], tok)
        elif prev == "as" and tok not in "(){}":
            _add(scopes.setdefault(scope, ["input"]), tok)
        prev = tok
    if not found_here:
        here = scope
    return scopes.get(here, ["input"])


def _add(names: list[str], name: str) -> None:
    if name not in names:
        names.append(name)

"""Statements in a list of layers that are not layers: `let` bindings and conditional groups.

`let: {mid: c * expand}` (DSL `let mid = c * expand`) binds names for the items after it in the same
list, and inside the layers those items hold; a called block sees only its own parameters and the
model's. `{if: COND, then: [...], else: [...]}` (DSL `if COND { ... } else { ... }`) expands the chosen
list in place: its layers continue the container's numbering and its names are the surrounding
scope's, exactly as if they were written there; the other list is not expanded (its arguments may not
even make sense), and its names count as switched off, so a merge drops them (references.py).
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any, Protocol

from specdsl.blocks.base import Frame
from specdsl.blocks.expr import FUNCTIONS, KEYWORDS
from specdsl.blocks.expr_values import LIST_FUNCTIONS
from specdsl.blocks.references import names_in
from specdsl.errors import Diagnostic, SourceLoc
from specdsl.schema.names import NAME_PATTERN
from specdsl.schema.validation import show_value
from specdsl.source import PathKey

GROUP_KEYS = ("if", "then", "else")


class Controlling(Protocol):
    """What the statements need of the expander (specdsl.blocks.engine.Expander)."""

    diags: list[Diagnostic]
    switched_off: dict[str, SourceLoc | None]

    def loc(self, src: PathKey) -> SourceLoc | None: ...

    def error(self, code: str, message: str, src: PathKey | SourceLoc | None, frame: Frame,
              hint: str | None = None, path: str | None = None) -> None: ...

    def substitute(self, raw: Any, src: PathKey, frame: Frame) -> Any: ...

    def seq(self, layers: list[Any], src: PathKey, out: str, x: int | None,
            scope: dict[str, int], frame: Frame) -> int | None: ...


def is_control(raw: Any) -> bool:
    """Whether a list item is a `let` or a conditional group rather than a layer."""
    return isinstance(raw, dict) and ("let" in raw or "then" in raw or "else" in raw)


def statement(ex: Controlling, raw: dict[str, Any], src: PathKey, out: str, x: int | None,
              scope: dict[str, int], frame: Frame) -> tuple[int | None, Frame]:
    """The list's output after the statement, and the frame the items after it see."""
    if "let" in raw:
        return x, let(ex, raw, src, out, frame)
    return group(ex, raw, src, out, x, scope, frame), frame


def let(ex: Controlling, raw: dict[str, Any], src: PathKey, out: str, frame: Frame) -> Frame:
    others = [k for k in raw if k != "let"]
    bindings = raw["let"]
    if others:
        ex.error("E206", f"a `let` item holds `let` alone; received {', '.join(repr(k) for k in others)} beside it",
                 src, frame, path=out or None, hint="write the layer as an item of its own, after the `let`")
        return frame
    if not isinstance(bindings, dict) or not bindings:
        ex.error("E206", f"`let` is a mapping of names to values; received {show_value(bindings)}", (*src, "let"),
                 frame, path=out or None, hint="YAML: `- let: {mid: c * expand}`; DSL: `let mid = c * expand`")
        return frame
    env = dict(frame.env)
    for name, value in bindings.items():
        if not isinstance(name, str) or not re.match(NAME_PATTERN, name) or name in KEYWORDS \
                or name in FUNCTIONS or name in LIST_FUNCTIONS:
            ex.error("E206", f"`let` binds a name like a parameter's, not a keyword or a function's; received "
                     f"{show_value(name)}", (*src, "let", name), frame, path=out or None, hint="pick another name")
            continue
        n_errors = len(ex.diags)
        bound = ex.substitute(value, (*src, "let", name), frame._replace(env=MappingProxyType(env)))
        if len(ex.diags) == n_errors:
            env[name] = bound  # a later binding may read it, or bind the name again
    return frame._replace(env=MappingProxyType(env))


def group(ex: Controlling, raw: dict[str, Any], src: PathKey, out: str, x: int | None,
          scope: dict[str, int], frame: Frame) -> int | None:
    others = [k for k in raw if k not in GROUP_KEYS]
    if others or "if" not in raw:
        ex.error("E206", "a conditional group holds `if`, `then` and `else` only" + (
            f"; received {', '.join(repr(k) for k in others)}" if others else "; received no `if`"), src, frame,
            path=out or None, hint="name or repeat the layers inside it; DSL: `if COND { ... } else { ... }`"
            if others else "in the DSL `else` stays on the line of the `}` that closes the `if` body (`} else {`); "
            "in YAML write `if:` beside `then:` and `else:`")
        return None
    for key in ("then", "else"):
        if key in raw and not isinstance(raw[key], list):
            ex.error("E206", f"`{key}` is a list of layers; received {show_value(raw[key])}", (*src, key), frame,
                     path=out or None, hint=f"`{key}: [relu]`, or `{key}: []` for none")
            return None
    n_errors = len(ex.diags)
    condition = ex.substitute(raw["if"], (*src, "if"), frame)
    if len(ex.diags) > n_errors:
        return None
    if not isinstance(condition, bool):
        ex.error("E365", f"`if` needs true or false; received {show_value(condition)}", (*src, "if"), frame,
                 path=out or None, hint="compare it (`if depth > 1`) or use a bool parameter")
        return None
    chosen, skipped = ("then", "else") if condition else ("else", "then")
    where = ex.loc((*src, "if"))
    for name in names_in(raw.get(skipped) or []) - names_in(raw.get(chosen) or []):
        ex.switched_off[name] = where
    layers = raw.get(chosen) or []
    return ex.seq(layers, (*src, chosen), out, x, scope, frame) if layers else x

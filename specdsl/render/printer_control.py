"""The DSL spelling of the statements in a list of layers that are not layers (specdsl.blocks.control):
`let a = 1, b = c * 2` and `if COND { ... } else if COND { ... } else { ... }`.

A mixin of specdsl.render.printer.DslPrinter, which provides ``emit``, ``close`` and ``sequence``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from specdsl.render.printer_scalars import KEYWORDS, NAME, CannotPrint, dsl_scalar
from specdsl.source import PathKey


class StatementPrinter:
    emit: Callable[..., None]
    close: Callable[..., None]
    sequence: Callable[[Any, PathKey, int], None]

    def statement_lines(self, item: dict[str, Any], path: PathKey, indent: int) -> None:
        """`let a = 1, b = c * 2`, or a conditional group with its bodies."""
        if "let" in item:
            bindings = item["let"]
            if len(item) != 1 or not isinstance(bindings, dict) or not bindings or \
                    not all(isinstance(k, str) and NAME.match(k) and k not in KEYWORDS for k in bindings):
                raise CannotPrint("the DSL writes `let` as names bound to values, alone in its item", path)
            self.emit("let " + ", ".join(f"{k} = {dsl_scalar(v)}" for k, v in bindings.items()), indent, path)
            return
        _check_group(item, path)
        self.emit(f"if {condition_text(item['if'])} {{", indent, path)
        self._group_rest(item, path, indent)

    def _group_rest(self, item: dict[str, Any], path: PathKey, indent: int) -> None:
        """A group's bodies after its `if COND {` line; `else if` for an else list of one group."""
        while True:
            self.sequence(item.get("then") or [], (*path, "then"), indent + 1)
            other = item.get("else")
            if other is None:
                self.close((*path, "then"), indent)
                return
            if len(other) == 1 and is_statement(other[0]) and "let" not in other[0]:
                item, path = other[0], (*path, "else", 0)
                _check_group(item, path)
                self.close((*path[:-2], "then"), indent, f"}} else if {condition_text(item['if'])} {{")
                continue
            self.close((*path, "then"), indent, "} else {")
            self.sequence(other, (*path, "else"), indent + 1)
            self.close((*path, "else"), indent)
            return


def is_statement(item: Any) -> bool:
    """A `let` or a conditional group (`if`/`then`/`else`) in a list of layers (specdsl.blocks.control)."""
    return isinstance(item, dict) and ("let" in item or "then" in item or "else" in item)


def _check_group(item: dict[str, Any], path: PathKey) -> None:
    if "if" not in item or any(k not in ("if", "then", "else") for k in item) or \
            any(not isinstance(item.get(k, []), list) for k in ("then", "else")):
        raise CannotPrint("the DSL writes a conditional group as `if COND { ... } else { ... }`: `if`, and "
                          "`then` and `else` lists of layers, nothing else", path)


def condition_text(value: Any) -> str:
    """A condition after `if`: a conditional expression (`a if c else b`) goes in brackets there."""
    text = dsl_scalar(value)
    return f"({text})" if isinstance(value, str) and " if " in f" {text} " else text

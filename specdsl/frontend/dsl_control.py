"""The DSL's control statements: `let NAME = value` and `if COND { ... } else { ... }`, and the rule
that keeps a postfix `if` from reading as a condition on a whole chain.

A mixin of specdsl.frontend.dsl_build.Builder, which provides ``diags``, ``loc``, ``value``,
``keyed`` and ``body``. Both statements become layer-list items the YAML front end reads alike:
`let a = 1, b = c * 2` is ``{let: {a: 1, b: c * 2}}``; `if c { A } else { B }` is
``{if: c, then: [A], else: [B]}``, and `else if` nests another such item as the else list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from specdsl.budgets import raise_hint
from specdsl.errors import Diagnostic, SourceLoc
from specdsl.frontend.dsl_located import Located


class ControlStatements:
    diags: list[Diagnostic]
    max_depth: int
    loc: Callable[[Any], SourceLoc]
    value: Callable[[Any], Located]
    body: Callable[..., Located]
    keyed: Callable[..., tuple[dict[str, Located], dict[str, SourceLoc]]]

    def let_stmt(self, node: Any) -> Located:
        pairs: Iterable[tuple[Any, Any]] = (tuple(b.children) for b in node.children)
        values, keys = self.keyed(pairs, self.value, "'{key}' is bound twice in this `let`",
                                  hint="bind each name once (a later `let` may bind it again)")
        loc = self.loc(node)
        return Located({"let": Located(values, loc, keys)}, loc, {"let": loc})

    def if_stmt(self, node: Any, depth: int = 1) -> Located:
        condition, then, *rest = node.children
        if depth > self.max_depth:  # `else if` nests in the data: bounded as brackets are
            self.diags.append(Diagnostic(
                "error", "E409", f"`else if` chained more than {self.max_depth} times (the max_depth budget)",
                self.loc(node), hint="choose with a parameter's value in fewer steps; " + raise_hint("max_depth")))
            return Located({"if": Located(True, self.loc(node)), "then": Located([], self.loc(node))}, self.loc(node))
        entry: dict[str, Located] = {"if": self.value(condition), "then": self.body(then)}
        keys = {"if": entry["if"].loc, "then": entry["then"].loc}
        if rest:
            other = rest[0]
            if other.data == "if_stmt":  # `else if`: the else list holds one conditional group
                nested = self.if_stmt(other, depth + 1)
                entry["else"] = Located([nested], nested.loc)
            else:
                entry["else"] = self.body(other)
            keys["else"] = entry["else"].loc
        return Located(entry, self.loc(node), keys)

    def check_trailing_if(self, layers: list[Located]) -> None:
        """A chain that ends in `LAYER if COND` reads as if COND held for the whole chain, yet `if`
        (like `x3` and `as`) belongs to the one layer it follows. Where the two readings differ (a layer
        before it lacks that condition) the chain is refused: E405 says how to write either meaning."""
        if len(layers) < 2:
            return
        last = layers[-1].value
        if not isinstance(last, dict) or "if" not in last:
            return
        condition = last["if"].value
        if all(isinstance(layer.value, dict) and "if" in layer.value and layer.value["if"].value == condition
               for layer in layers[:-1]):
            return  # every layer carries it: both readings agree
        op = next(iter(last))
        shown = condition if isinstance(condition, str) else str(condition).lower()
        self.diags.append(Diagnostic(
            "error", "E405", f"`if` after the last layer of a chain conditions that layer only, not the chain; "
            f"received a chain of {len(layers)} layers ending in `{op} ... if {shown}`", last["if"].loc,
            hint=f"for the whole chain write `if {shown} {{ ... }}` around it; for '{op}' alone put it on a line "
            "of its own"))

"""The DSL's top-level declarations of a model family: `model NAME(params)`, `variant NAME(...)`,
`outputs [...]` / `outputs(key=@ref)`, and parameter lists (shared with `block NAME(params)`).

A mixin of specdsl.frontend.dsl_build.Builder, which provides ``header``, ``key_locs``, ``diags``,
``loc``, ``value``, ``duplicate`` and ``file``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from specdsl.errors import Diagnostic, SourceLoc
from specdsl.frontend.dsl_located import Located, span


class FamilyDeclarations:
    header: dict[str, Any]
    key_locs: dict[str, SourceLoc]
    diags: list[Diagnostic]
    file: str
    loc: Callable[[Any], SourceLoc]
    value: Callable[[Any], Located]
    duplicate: Callable[[str, Any], bool]

    def model_decl(self, node: Any) -> None:
        if self.duplicate("model", node):
            return
        tok = node.children[0].children[0]
        text = tok.value[1:-1] if tok.type == "STRING" else tok.value
        self.header["model"] = Located(text, self.loc(tok))
        if len(node.children) > 1:
            params = self.params(node.children[1])
            if params is not None:
                self.header["params"] = params
                self.key_locs["params"] = params.loc

    def _ref(self, ref: Any) -> Located:
        return Located("".join(t.value for t in ref.children), span(self.file, ref.children))

    def outputs_list(self, node: Any) -> None:
        if not self.duplicate("outputs", node):
            self.header["outputs"] = Located([self._ref(r) for r in node.children], self.loc(node))

    def block_outputs(self, node: Any, entry: dict[str, Any] | None) -> None:
        """`outputs [@a, @b]` in a block's body (``entry``: the block's data), nowhere else (E403)."""
        problem = "`outputs [...]` inside braces belongs to a block's own body" if entry is None else \
            "a block's outputs are a list, `outputs [@a, @b]`, read by the caller as `@NAME.0`, `@NAME.1`" \
            if node.data == "outputs_named" else "a block declares its outputs once" if "outputs" in entry else None
        if problem is not None or entry is None:
            self.diags.append(Diagnostic("error", "E403", problem or "", self.loc(node),
                                         hint="write `outputs [@a, @b]` as the last line of a block's `{ ... }`, or "
                                         "the model's `outputs` after its layers"))
            return
        entry["outputs"] = Located([self._ref(r) for r in node.children], self.loc(node))

    def keyed(self, pairs: Iterable[tuple[Any, Any]], value: Callable[[Any], Located], twice: str,
              hint: str = "remove one of them") -> tuple[dict[str, Located], dict[str, SourceLoc]]:
        """``KEY = value`` entries as a mapping and the keys' places; a key given twice is E102
        (``twice`` says so, with ``{key}`` in it) and its second value is left out."""
        values: dict[str, Located] = {}
        keys: dict[str, SourceLoc] = {}
        for key_tok, node in pairs:
            if key_tok.value in values:
                self.diags.append(Diagnostic("error", "E102", twice.format(key=key_tok.value), self.loc(key_tok),
                                             hint=hint))
                continue
            values[key_tok.value] = value(node)
            keys[key_tok.value] = self.loc(key_tok)
        return values, keys

    def outputs_named(self, node: Any) -> None:
        if self.duplicate("outputs", node):
            return
        named, keys = self.keyed((entry.children for entry in node.children), self._ref,
                                 "output '{key}' is named twice", hint="give each output its own name")
        self.header["outputs"] = Located(named, self.loc(node), keys)

    def variant_decl(self, node: Any) -> None:
        name_tok, args = node.children
        if "variants" not in self.header:
            self.header["variants"] = Located({}, self.loc(node), {})
            self.key_locs["variants"] = self.loc(node)
        variants = self.header["variants"]
        if name_tok.value in variants.value:
            self.diags.append(Diagnostic(
                "error", "E102", f"variant '{name_tok.value}' is declared twice (first at line "
                f"{variants.key_locs[name_tok.value].line})", self.loc(name_tok), hint="rename one of them"))
            return
        def settings() -> Iterable[tuple[Any, Any]]:
            for a in args.children:
                if a.data == "kwarg":
                    yield a.children
                else:
                    self.diags.append(Diagnostic(
                        "error", "E402", "a variant names each parameter it sets", self.loc(a),
                        hint=f"write `variant {name_tok.value}(width=1.2)`"))

        values, keys = self.keyed(settings(), self.value, "parameter '{key}' given twice")
        variants.value[name_tok.value] = Located(values, self.loc(node), keys)
        variants.key_locs[name_tok.value] = self.loc(name_tok)

    def params(self, part: Any) -> Located | None:
        """`(c: int, stride=1)`: parameter -> its type name (required) or default value."""
        params: dict[str, Any] = {}
        pkeys: dict[str, SourceLoc] = {}
        for p in part.children:
            pname = p.children[0]
            if pname.value in params:
                self.diags.append(Diagnostic("error", "E102", f"parameter '{pname.value}' is declared twice",
                                             self.loc(pname), hint="remove one of them"))
                continue
            if p.data == "typed_param":
                params[pname.value] = Located(p.children[1].value, self.loc(p.children[1]))
            else:
                params[pname.value] = self.value(p.children[1])
            pkeys[pname.value] = self.loc(pname)
        return Located(params, self.loc(part), pkeys) if params else None

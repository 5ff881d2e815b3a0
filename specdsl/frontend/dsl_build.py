"""DSL parse tree -> Located values: the data of the spec, each value with its span.

One method per grammar rule and no validation here, beyond what only the text can tell
(duplicate keys, positional after keyword arguments, integers past int64, expression depth).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from specdsl.blocks.registry import BLOCK_SECTIONS
from specdsl.budgets import raise_hint
from specdsl.errors import Diagnostic, SourceLoc
from specdsl.frontend.dsl_control import ControlStatements
from specdsl.frontend.dsl_expr import expr_shape, expr_value
from specdsl.frontend.dsl_family import FamilyDeclarations
from specdsl.frontend.dsl_located import Located, Positional, span, token_loc
from specdsl.ops import lookup

# Integers are int64, as in PyTorch; a longer literal is a mistake (and str -> int is quadratic).
INT_MAX = 2**63 - 1

# Which nested section a structured layer's unnamed body fills.
META_KWARGS = ("name", "frozen", "init", "inputs", "repeat", "index")


@dataclass
class _Branch:
    name: str
    body: Located


def _meta_loc(file: str, meta: Any) -> SourceLoc:
    return SourceLoc(file, meta.line, meta.column, meta.end_line, meta.end_column)


class Builder(FamilyDeclarations, ControlStatements):
    """Tree -> Located data. One method per grammar rule; no validation here."""

    def __init__(self, file: str, max_depth: int):
        self.file = file
        self.max_depth = max_depth
        self.header: dict[str, Located] = {}
        self.key_locs: dict[str, SourceLoc] = {}
        self.blocks: dict[str, Located] = {}
        self.block_keys: dict[str, SourceLoc] = {}
        self.layers: Located | None = None
        self.diags: list[Diagnostic] = []

    def loc(self, node: Any) -> SourceLoc:
        if hasattr(node, "meta"):
            return _meta_loc(self.file, node.meta)
        return token_loc(self.file, node)

    def build(self, tree: Any) -> None:
        for item in tree.children:
            getattr(self, item.data)(item)

    def duplicate(self, key: str, node: Any) -> bool:
        if key in self.key_locs:
            self.diags.append(Diagnostic(
                "error", "E102", f"duplicate '{key}' declaration (first at line {self.key_locs[key].line})",
                self.loc(node), hint="declare it once"))
            return True
        self.key_locs[key] = self.loc(node.children[0]) if node.children else self.loc(node)
        return False

    def input_decl(self, node: Any) -> None:
        if not self.duplicate("input", node):
            self.header["input"] = self.value(node.children[0])

    def dtype_decl(self, node: Any) -> None:
        if not self.duplicate("dtype", node):
            tok = node.children[0]
            self.header["dtype"] = Located(tok.value, self.loc(tok))

    def description_decl(self, node: Any) -> None:
        if not self.duplicate("description", node):
            tok = node.children[0]
            self.header["description"] = Located(_unquote(tok.value), self.loc(tok))

    def layers_def(self, node: Any) -> None:
        if self.duplicate("layers", node):
            return
        self.layers = self.body(node.children[0])

    def block_def(self, node: Any) -> None:
        name_tok, *rest = node.children
        name = name_tok.value
        if name in self.blocks:
            self.diags.append(Diagnostic(
                "error", "E102", f"block '{name}' is defined twice (first at line {self.block_keys[name].line})",
                self.loc(name_tok), hint="rename one of them"))
            return
        entry: dict[str, Any] = {}
        keys: dict[str, SourceLoc] = {}
        for part in rest:
            if part.data == "params":
                params = self.params(part)
                if params is not None:
                    entry["params"] = params
                    keys["params"] = self.loc(part)
            elif part.data == "block_inputs":
                entry["inputs"] = Located([Located(t.value, self.loc(t)) for t in part.children], self.loc(part))
                keys["inputs"] = self.loc(part)
            elif part.data == "block_body":
                inner = part.children[0]
                if inner.data == "body":
                    entry["layers"] = self.body(inner, outputs=entry)
                    keys["layers"] = self.loc(inner)
                    if "outputs" in entry:  # `outputs [@a, @b]` in the body: the block's several outputs
                        keys["outputs"] = entry["outputs"].loc
                else:
                    layer = self.layer(inner)
                    data = layer.value
                    if not isinstance(data, dict):
                        entry["layers"] = Located([layer], layer.loc)
                        keys["layers"] = layer.loc
                    else:
                        for k, v in data.items():
                            entry[k] = v
                            keys[k] = layer.key_locs.get(k, layer.loc)
        self.blocks[name] = Located(entry, self.loc(node), keys)
        self.block_keys[name] = self.loc(name_tok)

    # -- statements ---------------------------------------------------------

    def body(self, node: Any, branches: bool = False, outputs: dict[str, Any] | None = None) -> Located:
        """A body's layers; ``outputs``: a block's entry, which its `outputs [...]` statement fills."""
        items: list[Located] = []
        for stmt in node.children:
            if stmt.data in ("outputs_list", "outputs_named"):
                self.block_outputs(stmt, outputs)
            elif stmt.data == "branch":
                if not branches:  # only an inception's `branches` section holds them
                    self.diags.append(Diagnostic(
                        "error", "E403", "`branch NAME { ... }` sections belong directly inside an inception",
                        self.loc(stmt), hint="write `inception { branch a { ... } branch b { ... } }`"))
                    continue
                items.append(Located(_Branch(stmt.children[0].value, self.body(stmt.children[1])), self.loc(stmt)))
            elif stmt.data in ("let_stmt", "if_stmt"):
                items.append(getattr(self, stmt.data)(stmt))
            else:
                items.extend(self.chain(stmt))
        return Located(items, self.loc(node))

    def chain(self, node: Any) -> list[Located]:
        out: list[Located] = []
        refs: Located | None = None
        for child in node.children:
            if getattr(child, "type", None) == "ARROW":
                continue
            if child.data == "refs":
                refs = Located([Located("".join(t.value for t in r.children), span(self.file, r.children))
                                for r in child.children if getattr(r, "data", None) == "ref"], self.loc(child))
                continue
            layer = self.layer(child)
            if refs is not None:
                layer = _with_key(layer, "inputs", refs)
                refs = None
            out.append(layer)
        self.check_trailing_if(out)
        return out

    def layer(self, node: Any) -> Located:
        name_tok, *rest = node.children
        op = name_tok.value
        args: dict[str, Located] = {}
        arg_keys: dict[str, SourceLoc] = {}
        positional: list[Located] = []
        meta: dict[str, Located] = {}
        meta_keys: dict[str, SourceLoc] = {}
        has_args = False
        for part in rest:
            kind = part.data
            if kind == "args":
                has_args = True
                self._arguments(op, part, args, arg_keys, meta, meta_keys, positional)
            elif kind == "sections":
                self._sections(op, part, args, arg_keys)
            else:
                self._meta(part, meta, meta_keys)
        loc = self.loc(node)
        if positional:
            args["__positional__"] = Located(Positional(positional), positional[0].loc)
        if not has_args and not args and not meta:
            return Located(op, self.loc(name_tok))
        layer: dict[str, Any] = {op: Located(args, loc, arg_keys) if (args or has_args) else Located(None, loc)}
        keys = {op: self.loc(name_tok)}
        layer.update(meta)
        keys.update(meta_keys)
        return Located(layer, loc, keys)

    def _arguments(self, op: str, part: Any, args: dict[str, Located], arg_keys: dict[str, SourceLoc],
                   meta: dict[str, Located], meta_keys: dict[str, SourceLoc], positional: list[Located]) -> None:
        """`(4, k=3, init=...)`: positional values, the op's keyword arguments and the layer's own keys."""
        for a in part.children:
            if a.data == "kwarg":
                key_tok, val = a.children
                key = key_tok.value
                # An op with an `init` argument of its own (prelu, layer_scale) takes `init=` as
                # that argument; elsewhere `init=` is the layer's initialisation scheme.
                rule = lookup(op)
                own = rule is not None and key in rule.args.model_fields
                target, target_keys = (meta, meta_keys) if key in META_KWARGS and not own \
                    else (args, arg_keys)
                if key in target:
                    self.diags.append(Diagnostic(
                        "error", "E102", f"argument '{key}' given twice", self.loc(key_tok),
                        hint="remove one of them"))
                    continue
                target[key] = self.value(val)
                target_keys[key] = self.loc(key_tok)
            else:
                if args:
                    self.diags.append(Diagnostic(
                        "error", "E402", "positional argument after a keyword argument",
                        self.loc(a), hint="put positional arguments first"))
                positional.append(self.value(a.children[0]))

    def _sections(self, op: str, part: Any, args: dict[str, Located], arg_keys: dict[str, SourceLoc]) -> None:
        """`{ ... } shortcut { ... }`: a block's layer lists, the first one its unnamed section."""
        children = part.children
        section = BLOCK_SECTIONS[op][0] if op in BLOCK_SECTIONS else "body"
        i = 0
        while i < len(children):
            if hasattr(children[i], "type"):  # a named section: NAME body
                section = children[i].value
                key_loc = self.loc(children[i])
                i += 1
            else:
                key_loc = self.loc(children[i])
            body = self.body(children[i], branches=section == "branches")
            if section == "branches":
                body = self.branches(body, op)
            if section in args:
                self.diags.append(Diagnostic(
                    "error", "E102", f"section '{section}' given twice", key_loc))
            args[section] = body
            arg_keys[section] = key_loc
            section = "__next__"
            i += 1

    def _meta(self, part: Any, meta: dict[str, Located], meta_keys: dict[str, SourceLoc]) -> None:
        """What follows the call: `x3` or `x(n, j)`, `if cond`, `as name`."""
        kind = part.data
        if kind == "repeat":
            tok = part.children[0]
            meta["repeat"] = Located(self.int_literal(tok, tok.value[1:]), self.loc(tok))
            meta_keys["repeat"] = self.loc(tok)
        elif kind == "repeat_expr":
            meta["repeat"] = self.value(part.children[1])
            meta_keys["repeat"] = self.loc(part.children[0])
            if len(part.children) > 2:  # `x(n, j)`: the copies' index
                tok = part.children[2]
                meta["index"] = Located(tok.value, self.loc(tok))
                meta_keys["index"] = self.loc(tok)
        elif kind == "condition":
            meta["if"] = self.value(part.children[0])
            meta_keys["if"] = meta["if"].loc
        elif kind == "alias":
            tok = part.children[0]
            # `as "block1-0"`: a quoted module name (checked by the expander, E380); `as convs.1`: member 1
            # of the list convs (specdsl.blocks.members).
            text = tok.value[1:-1] if tok.type == "STRING" else "".join(t.value for t in part.children)
            meta["name"] = Located(text, span(self.file, part.children))
            meta_keys["name"] = meta["name"].loc

    def branches(self, body: Located, op: str) -> Located:
        named: dict[str, Located] = {}
        keys: dict[str, SourceLoc] = {}
        for item in body.value:
            if isinstance(item.value, _Branch):
                if item.value.name in named:
                    self.diags.append(Diagnostic(
                        "error", "E102", f"branch '{item.value.name}' is declared twice in this '{op}' (first at "
                        f"line {keys[item.value.name].line})", item.loc, hint="rename or remove one of them"))
                    continue
                named[item.value.name] = item.value.body
                keys[item.value.name] = item.loc
            else:
                self.diags.append(Diagnostic(
                    "error", "E403", f"'{op}' holds `branch NAME {{ ... }}` sections only", item.loc,
                    hint="wrap the layers in `branch b1 { ... }`"))
        return Located(named, body.loc, keys)

    # -- values ---------------------------------------------------------------

    def value(self, node: Any) -> Located:
        loc = self.loc(node)
        kind = node.data if hasattr(node, "data") else None
        if kind == "list":
            return Located([self.value(c) for c in node.children], loc)
        if kind == "dict":
            items, keys = self.keyed((pair.children for pair in node.children), self.value, "duplicate key '{key}'")
            return Located(items, loc, keys)
        if kind == "string":
            return Located(_unquote(node.children[0].value), loc)
        if kind in ("true", "false", "null"):
            return Located({"true": True, "false": False, "null": None}[kind], loc)
        # Operators nest without brackets (`1+1+...`, `- - 1`): bound the depth before recursing.
        depth, ints = expr_shape(node)
        if depth > self.max_depth:
            self.diags.append(Diagnostic(
                "error", "E409", f"expression nested deeper than {self.max_depth} levels (the max_depth budget)",
                loc, hint="write the value out; " + raise_hint("max_depth")))
            return Located(0, loc)
        if not all(self.int_literal(tok, tok.value) is not None for tok in ints):
            return Located(0, loc)
        return Located(expr_value(node), loc)

    def int_literal(self, tok: Any, digits: str) -> int | None:
        """An integer literal, refused (with a diagnostic) beyond int64."""
        stripped = digits.lstrip("0")
        if len(stripped) > 19 or int(stripped or "0") > INT_MAX:
            shown = digits if len(digits) <= 24 else f"{digits[:10]}...{digits[-4:]} ({len(digits)} digits)"
            self.diags.append(Diagnostic(
                "error", "E112", f"integer out of range: {shown}; integers in a spec are at most 2^63-1",
                self.loc(tok), hint="sizes and counts this large cannot be built"))
            return None
        return int(stripped or "0")


def _with_key(layer: Located, key: str, value: Located) -> Located:
    data = layer.value
    if isinstance(data, str):
        data = {data: Located(None, layer.loc)}
        keys = {next(iter(data)): layer.loc}
    else:
        data = dict(data)
        keys = dict(layer.key_locs)
    data[key] = value
    keys[key] = value.loc
    return Located(data, layer.loc, keys)


def _unquote(text: str) -> str:
    body = text[1:-1]
    return body.replace('\\"', '"').replace("\\n", "\n").replace("\\t", "\t").replace("\\\\", "\\")


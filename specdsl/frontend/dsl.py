"""The text DSL front end: LALR parse with lark, then plain data + SourceMap.

The transformer only builds data: exactly what the YAML front end produces
for the same model, so one schema validates both syntaxes.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from specdsl.budgets import MAX_DEPTH, MAX_TOKENS, raise_hint
from specdsl.errors import Diagnostic, SourceLoc, SpecError
from specdsl.source import PathKey, SourceMap

__all__ = ["MAX_DEPTH", "MAX_TOKENS", "comments_of_last_parse", "load_dsl", "parser"]

# Integers are int64, as in PyTorch; a longer literal is a mistake (and str -> int is quadratic).
INT_MAX = 2**63 - 1

_OPENERS = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}
_CLOSERS = {v: k for k, v in _OPENERS.items()}
_TEXT = {"LPAR": "(", "RPAR": ")", "LSQB": "[", "RSQB": "]", "LBRACE": "{", "RBRACE": "}"}

# Which nested section a structured layer's unnamed body fills.
DEFAULT_SECTION = {"residual": "body", "fractal": "base", "stage": "layers", "inception": "branches"}
META_KWARGS = ("name", "frozen", "init", "inputs", "repeat")


@dataclass
class Located:
    """A value with the span that produced it (and, for mappings, each key's span)."""

    value: Any
    loc: SourceLoc
    key_locs: dict[str, SourceLoc] = field(default_factory=dict)


class _Positional:
    """Arguments written without names; mapped to parameter names after parsing."""

    def __init__(self, values: list[Located]):
        self.values = values


class DepthLimit(Exception):
    def __init__(self, token: Any, what: str, budget: str):
        self.token = token
        self.what = what
        self.budget = budget


class _PostLex:
    """Newlines are statement separators, except next to '->' and inside ( ) or [ ]."""

    always_accept = ("_NL",)

    def __init__(self) -> None:
        self.open_stack: list[Any] = []
        # Set by load_dsl before each parse (the parser, and so this object, is shared).
        self.max_tokens = MAX_TOKENS
        self.max_depth = MAX_DEPTH

    def process(self, stream: Iterator[Any]) -> Iterator[Any]:
        # Tokens pass straight through (no lookahead): lark's contextual lexer
        # lexes each token in the parser state the previous one produced.
        self.open_stack = []
        count = 0
        max_tokens, max_depth = self.max_tokens, self.max_depth
        for tok in stream:
            count += 1
            if count > max_tokens:
                raise DepthLimit(tok, f"more than {max_tokens:,} tokens (the max_tokens budget)", "max_tokens")
            t = tok.type
            if t == "_NL":
                # Inside ( ) or [ ] (and mappings within them) newlines are only layout.
                if any(o.type in ("LPAR", "LSQB") for o in self.open_stack):
                    continue
            elif t in _OPENERS:
                self.open_stack.append(tok)
                if len(self.open_stack) > max_depth:
                    raise DepthLimit(tok, f"brackets nested deeper than {max_depth} levels (the max_depth budget)",
                                     "max_depth")
            elif t in _CLOSERS and self.open_stack and self.open_stack[-1].type == _CLOSERS[t]:
                self.open_stack.pop()
            yield tok


# Comments seen by the lexer during the current parse (for `fmt`).
_comments: list[tuple[int, int, str]] = []


def _keep_comment(tok: Any) -> None:
    _comments.append((tok.line, tok.column, tok.value.rstrip()))


@functools.lru_cache(maxsize=1)
def parser() -> Any:
    """The LALR parser, built once per process."""
    from lark import Lark

    grammar = (resources.files("specdsl.grammars") / "specdsl.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", strict=True, propagate_positions=True, postlex=_PostLex(),
                maybe_placeholders=False, lexer_callbacks={"COMMENT": _keep_comment}, cache=True)


def _tok_loc(file: str, tok: Any) -> SourceLoc:
    return SourceLoc(file, tok.line, tok.column, tok.end_line, tok.end_column)


def _meta_loc(file: str, meta: Any) -> SourceLoc:
    return SourceLoc(file, meta.line, meta.column, meta.end_line, meta.end_column)


class _Builder:
    """Tree -> Located data. One method per grammar rule; no validation here."""

    def __init__(self, file: str, max_depth: int = MAX_DEPTH):
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
        return _tok_loc(self.file, node)

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

    def model_decl(self, node: Any) -> None:
        if self.duplicate("model", node):
            return
        tok = node.children[0].children[0]
        text = tok.value[1:-1] if tok.type == "STRING" else tok.value
        self.header["model"] = Located(text, self.loc(tok))

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
                params: dict[str, Any] = {}
                pkeys: dict[str, SourceLoc] = {}
                for p in part.children:
                    pname = p.children[0]
                    if p.data == "typed_param":
                        params[pname.value] = Located(p.children[1].value, self.loc(p.children[1]))
                    else:
                        params[pname.value] = self.value(p.children[1])
                    pkeys[pname.value] = self.loc(pname)
                if params:
                    entry["params"] = Located(params, self.loc(part), pkeys)
                    keys["params"] = self.loc(part)
            elif part.data == "block_inputs":
                entry["inputs"] = Located([Located(t.value, self.loc(t)) for t in part.children], self.loc(part))
                keys["inputs"] = self.loc(part)
            elif part.data == "block_body":
                inner = part.children[0]
                if inner.data == "body":
                    entry["layers"] = self.body(inner)
                    keys["layers"] = self.loc(inner)
                else:
                    layer = self.layer(inner)
                    data = layer.value
                    if isinstance(data, str) or not isinstance(data, dict):
                        entry["layers"] = Located([layer], layer.loc)
                        keys["layers"] = layer.loc
                    else:
                        for k, v in data.items():
                            entry[k] = v
                            keys[k] = layer.key_locs.get(k, layer.loc)
        self.blocks[name] = Located(entry, self.loc(node), keys)
        self.block_keys[name] = self.loc(name_tok)

    # -- statements ---------------------------------------------------------

    def body(self, node: Any, branches: bool = False) -> Located:
        items: list[Located] = []
        for stmt in node.children:
            if stmt.data == "branch":
                if not branches:  # only an inception's `branches` section holds them
                    self.diags.append(Diagnostic(
                        "error", "E403", "`branch NAME { ... }` sections belong directly inside an inception",
                        self.loc(stmt), hint="write `inception { branch a { ... } branch b { ... } }`"))
                    continue
                items.append(Located(_Branch(stmt.children[0].value, self.body(stmt.children[1])), self.loc(stmt)))
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
                refs = Located([Located(r.children[0].value, self.loc(r.children[0]))
                                for r in child.children if getattr(r, "data", None) == "ref"], self.loc(child))
                continue
            layer = self.layer(child)
            if refs is not None:
                layer = _with_key(layer, "inputs", refs)
                refs = None
            out.append(layer)
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
                for a in part.children:
                    if a.data == "kwarg":
                        key_tok, val = a.children
                        key = key_tok.value
                        target, target_keys = (meta, meta_keys) if key in META_KWARGS else (args, arg_keys)
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
            elif kind == "sections":
                children = part.children
                section = DEFAULT_SECTION.get(op, "body")
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
            elif kind == "repeat":
                tok = part.children[0]
                meta["repeat"] = Located(self.int_literal(tok, tok.value[1:]), self.loc(tok))
                meta_keys["repeat"] = self.loc(tok)
            elif kind == "alias":
                tok = part.children[0]
                meta["name"] = Located(tok.value, self.loc(tok))
                meta_keys["name"] = self.loc(tok)
        loc = self.loc(node)
        if positional:
            args["__positional__"] = Located(_Positional(positional), positional[0].loc)
        if not has_args and not args and not meta:
            return Located(op, self.loc(name_tok))
        layer: dict[str, Any] = {op: Located(args, loc, arg_keys) if (args or has_args) else Located(None, loc)}
        keys = {op: self.loc(name_tok)}
        layer.update(meta)
        keys.update(meta_keys)
        return Located(layer, loc, keys)

    def branches(self, body: Located, op: str) -> Located:
        named: dict[str, Located] = {}
        keys: dict[str, SourceLoc] = {}
        for item in body.value:
            if isinstance(item.value, _Branch):
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
            items: dict[str, Located] = {}
            keys: dict[str, SourceLoc] = {}
            for pair in node.children:
                key_tok, val = pair.children
                if key_tok.value in items:
                    self.diags.append(Diagnostic("error", "E102", f"duplicate key '{key_tok.value}'",
                                                 self.loc(key_tok), hint="remove one of them"))
                    continue
                items[key_tok.value] = self.value(val)
                keys[key_tok.value] = self.loc(key_tok)
            return Located(items, loc, keys)
        if kind == "string":
            return Located(_unquote(node.children[0].value), loc)
        if kind in ("true", "false", "null"):
            return Located({"true": True, "false": False, "null": None}[kind], loc)
        # Operators nest without brackets (`1+1+...`, `- - 1`): bound the depth before recursing.
        depth, ints = _expr_shape(node)
        if depth > self.max_depth:
            self.diags.append(Diagnostic(
                "error", "E409", f"expression nested deeper than {self.max_depth} levels (the max_depth budget)",
                loc, hint="write the value out; " + raise_hint("max_depth")))
            return Located(0, loc)
        if not all(self.int_literal(tok, tok.value) is not None for tok in ints):
            return Located(0, loc)
        return Located(_expr_value(node), loc)

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


def _expr_shape(node: Any) -> tuple[int, list[Any]]:
    """Depth of an expression tree and its INT tokens, without recursion."""
    depth = 0
    ints: list[Any] = []
    stack = [(node, 1)]
    while stack:
        item, d = stack.pop()
        depth = max(depth, d)
        if not hasattr(item, "data"):
            continue
        if item.data == "int":
            ints.append(item.children[0])
            continue
        stack.extend((c, d + 1) for c in item.children if hasattr(c, "data"))
    return depth, ints


@dataclass
class _Branch:
    name: str
    body: Located


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


_PREC = {"add": 1, "sub": 1, "mul": 2, "floordiv": 2}
_SYM = {"add": "+", "sub": "-", "mul": "*", "floordiv": "//"}


def _expr_value(node: Any) -> Any:
    """Numbers and names become values; anything else its canonical text."""
    kind = node.data
    if kind == "int":
        return int(node.children[0].value)
    if kind == "float":
        return float(node.children[0].value)
    if kind == "name":
        return node.children[0].value
    if kind == "neg":
        inner = _expr_value(node.children[0])
        if isinstance(inner, (int, float)) and not isinstance(inner, bool):
            return -inner
        return "-" + _expr_text(node.children[0], 3)
    return _expr_text(node, 0)


def _expr_text(node: Any, parent_prec: int) -> str:
    kind = node.data
    if kind in ("int", "float", "name"):
        return node.children[0].value
    if kind == "neg":
        return "-" + _expr_text(node.children[0], 3)
    prec = _PREC[kind]
    left = _expr_text(node.children[0], prec)
    right = _expr_text(node.children[1], prec + 1)
    text = f"{left} {_SYM[kind]} {right}"
    return f"({text})" if prec < parent_prec else text


# -- from Located data to plain data + SourceMap ------------------------------


def _unwrap(value: Any, path: PathKey, smap: SourceMap) -> Any:
    if isinstance(value, Located):
        smap.values[path] = value.loc
        inner = value.value
        if isinstance(inner, dict):
            out = {}
            for k, v in inner.items():
                out[k] = _unwrap(v, (*path, k), smap)
                if k in value.key_locs:
                    smap.keys[(*path, k)] = value.key_locs[k]
            return out
        if isinstance(inner, list):
            return [_unwrap(v, (*path, i), smap) for i, v in enumerate(inner)]
        if isinstance(inner, _Positional):
            return inner
        return inner
    return value


def load_dsl(text: str, file: str = "<string>", *, max_tokens: int = MAX_TOKENS,
             max_depth: int = MAX_DEPTH) -> tuple[Any, SourceMap]:
    """Parse DSL text into the same plain data + SourceMap the YAML front end gives.

    ``max_tokens`` and ``max_depth`` are budgets (see specdsl.budgets): the post-lexer
    refuses the text as soon as it passes either, before the parser builds anything big.
    """
    from lark.exceptions import UnexpectedInput

    from specdsl.frontend.messages import syntax_diagnostic

    sources = {file: text}
    p = parser()
    p.options.postlex.max_tokens = max_tokens
    p.options.postlex.max_depth = max_depth
    _comments.clear()
    try:
        tree = p.parse(text)
    except DepthLimit as exc:
        raise SpecError([Diagnostic(
            "error", "E409", f"the file is too large or too deeply nested: {exc.what}",
            _tok_loc(file, exc.token), hint="split the model into blocks; " + raise_hint(exc.budget))],
            sources) from None
    except UnexpectedInput as exc:
        raise SpecError([syntax_diagnostic(exc, text, file, p.options.postlex)], sources) from None
    builder = _Builder(file, max_depth)
    builder.build(tree)
    if builder.diags:
        raise SpecError(builder.diags, sources)
    data: dict[str, Any] = {}
    smap = SourceMap(file=file, text=text)
    for key, value in builder.header.items():
        data[key] = _unwrap(value, (key,), smap)
        smap.keys[(key,)] = builder.key_locs[key]
    if builder.blocks:
        data["blocks"] = {}
        for name, block in builder.blocks.items():
            data["blocks"][name] = _unwrap(block, ("blocks", name), smap)
            smap.keys[("blocks", name)] = builder.block_keys[name]
    if builder.layers is not None:
        data["layers"] = _unwrap(builder.layers, ("layers",), smap)
        smap.keys[("layers",)] = builder.key_locs["layers"]
    smap.values[()] = SourceLoc(file, 1, 1)
    _resolve_positional(data, smap)
    return data, smap


def _known_op(name: str) -> bool:
    from specdsl.ops import lookup
    from specdsl.schema.document import BUILTIN_BLOCKS

    return lookup(name) is not None or name in BUILTIN_BLOCKS


def comments_of_last_parse() -> list[tuple[int, int, str]]:
    return list(_comments)


def _resolve_positional(data: dict[str, Any], smap: SourceMap) -> None:
    """Give positional arguments their names: op tables for layers, parameter order for blocks."""
    from specdsl.ops import POSITIONAL

    block_params = {
        name: list((b.get("params") or {}).keys()) if isinstance(b, dict) else []
        for name, b in (data.get("blocks") or {}).items()
    }
    diags: list[Diagnostic] = []

    def visit(node: Any, path: PathKey) -> None:
        if isinstance(node, list):
            for i, v in enumerate(node):
                visit(v, (*path, i))
        elif isinstance(node, dict):
            for k, v in list(node.items()):
                if isinstance(v, dict) and "__positional__" in v:
                    pos: _Positional = v.pop("__positional__")
                    ploc = smap.values.pop((*path, k, "__positional__"), None)
                    names = block_params.get(k) or list(POSITIONAL.get(k, ()))
                    if not names and not _known_op(k):
                        # An unknown layer: let the schema say so, with a suggestion.
                        visit(v, (*path, k))
                        continue
                    if len(pos.values) > len(names):
                        where = pos.values[len(names)].loc
                        diags.append(Diagnostic(
                            "error", "E404",
                            f"'{k}' takes at most {len(names)} positional argument(s)"
                            + (f" ({', '.join(names)})" if names else "") + f"; received {len(pos.values)}",
                            where or ploc, hint="name the arguments: key=value"))
                        continue
                    for name, val in zip(names, pos.values, strict=False):
                        if name in v:
                            diags.append(Diagnostic(
                                "error", "E102", f"argument '{name}' given both by position and by name",
                                val.loc))
                            continue
                        v[name] = _unwrap(val, (*path, k, name), smap)
                        smap.keys[(*path, k, name)] = val.loc
                    # Keep the user's order: positional first.
                    ordered = {n: v[n] for n in names if n in v}
                    ordered.update({n: x for n, x in v.items() if n not in ordered})
                    v.clear()
                    v.update(ordered)
                visit(v, (*path, k))

    visit(data, ())
    if diags:
        raise SpecError(diags, {smap.file: smap.text})

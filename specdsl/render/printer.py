"""Spec data -> canonical text, in either syntax.

Used by `specdsl convert` and `specdsl fmt`. Works on the plain data both
front ends produce, so DSL -> YAML -> DSL is a fixed point. Output is
deterministic: it depends on the data alone (plus comments, for fmt).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from specdsl.blocks.registry import BLOCK_SECTIONS
from specdsl.source import PathKey, SourceMap

WIDTH = 88
INDENT = "    "
META_ORDER = ("inputs", "name", "repeat", "frozen", "init")
LAYER_LIST_KEYS = {"layers", "body", "base", "shortcut", "pre", "post"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_KEYWORDS = {"true", "false", "null", "model", "input", "dtype", "description", "block", "layers",
             "branch", "inputs", "as"}


# -- shared ------------------------------------------------------------------


def op_of(layer: Any) -> str | None:
    if isinstance(layer, str):
        return layer
    if isinstance(layer, dict):
        ops = [k for k in layer if k not in META_ORDER]
        return ops[0] if len(ops) == 1 else None
    return None


def _is_expression(text: str) -> bool:
    from specdsl.blocks.expr import ExprError, tokenize

    if not text or len(text) > 200:
        return False
    try:
        toks = tokenize(text)
    except ExprError:
        return False
    return any(k == "name" for k, _ in toks) and any(k == "op" for k, _ in toks) and not text[0].isspace()


# -- DSL -----------------------------------------------------------------------


def _constant(value: Any) -> str | None:
    """`true`, `false` and `null` are spelled alike in both syntaxes."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "null" if value is None else None


def dsl_scalar(value: Any) -> str:
    constant = _constant(value)
    if constant is not None:
        return constant
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(dsl_scalar(v) for v in value) + "]"
    if isinstance(value, str):
        if _NAME.match(value) and value not in _KEYWORDS:
            return value
        if _is_expression(value) and _round_trips_as_expression(value):
            return value
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {dsl_scalar(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value).__name__)


def _round_trips_as_expression(text: str) -> bool:
    """An expression prints bare only if the DSL reads it back as the same string."""
    from specdsl.frontend.dsl import load_dsl

    try:
        data, _ = load_dsl(f"layers {{\n    x(k={text})\n}}\n")
    except Exception:
        return False
    return data["layers"][0]["x"]["k"] == text


@dataclass
class _Comments:
    """Source comments, handed out as the printer passes their lines."""

    items: list[tuple[int, int, str]] = field(default_factory=list)  # (line, col, text)
    code_lines: set[int] = field(default_factory=set)
    pos: int = 0

    def before(self, line: int) -> list[str]:
        out = []
        while self.pos < len(self.items) and self.items[self.pos][0] < line:
            ln, _, text = self.items[self.pos]
            if ln not in self.code_lines:
                out.append(text)
            self.pos += 1
        return out

    def trailing(self, line: int) -> list[str]:
        out = []
        for ln, _, text in self.items:
            if ln == line and ln in self.code_lines:
                out.append(text)
        return out

    def rest(self) -> list[str]:
        out = [t for ln, _, t in self.items[self.pos:] if ln not in self.code_lines]
        self.pos = len(self.items)
        return out


class DslPrinter:
    def __init__(self, data: dict[str, Any], smap: SourceMap | None = None,
                 comments: Sequence[tuple[int, int, str]] = ()) -> None:
        self.data = data
        self.smap = smap
        self.lines: list[str] = []
        self.comments = _Comments(sorted(comments))
        if smap is not None:
            self.comments.code_lines = {loc.line for path, loc in smap.values.items() if path} | \
                {loc.line for loc in smap.keys.values()}
        self.trailing_done: set[int] = set()
        self.block_params = {
            name: list((b.get("params") or {}).keys()) if isinstance(b, dict) else []
            for name, b in (data.get("blocks") or {}).items()
        }

    def line_of(self, path: PathKey) -> int | None:
        if self.smap is None:
            return None
        loc = self.smap.values.get(path) or self.smap.keys.get(path)
        return loc.line if loc else None

    def emit(self, text: str, indent: int, path: PathKey | None = None, last_path: PathKey | None = None) -> None:
        first = self.line_of(path) if path is not None else None
        if first is not None:
            for c in self.comments.before(first):
                self.lines.append(INDENT * indent + c)
        self.lines.append(INDENT * indent + text if text else "")
        last = self.line_of(last_path) if last_path is not None else first
        self._trail(first, last)

    def _trail(self, first: int | None, last: int | None) -> None:
        if first is None:
            return
        notes = []
        for ln in range(first, (last or first) + 1):
            if ln not in self.trailing_done:
                notes += self.comments.trailing(ln)
                self.trailing_done.add(ln)
        if notes:
            self.lines[-1] += "  " + "  ".join(notes)

    def print(self) -> str:
        d = self.data
        if "model" in d:
            name = d["model"]
            self.emit(f"model {name if _NAME.match(str(name)) else json.dumps(str(name))}", 0, ("model",))
        if "input" in d:
            self.emit(f"input {dsl_scalar(d['input'])}", 0, ("input",))
        if "dtype" in d:
            self.emit(f"dtype {d['dtype']}", 0, ("dtype",))
        if "description" in d:
            self.emit(f"description {json.dumps(d['description'], ensure_ascii=False)}", 0, ("description",))
        for name, block in (d.get("blocks") or {}).items():
            self.lines.append("")
            self.block(name, block)
        if "layers" in d:
            self.lines.append("")
            self.emit("layers {", 0, ("layers",))
            self.sequence(d["layers"], ("layers",), 1)
            self.lines.append("}")
        tail = self.comments.rest()
        if tail:
            self.lines.append("")
            self.lines.extend(tail)
        return "\n".join(self.lines).strip("\n") + "\n"

    def block(self, name: str, block: dict[str, Any]) -> None:
        path: PathKey = ("blocks", name)
        params = block.get("params") or {}
        parts = []
        for p, v in params.items():
            if isinstance(v, str) and v in ("int", "float", "bool", "str"):
                parts.append(f"{p}: {v}")
            else:
                parts.append(f"{p}={dsl_scalar(v)}")
        head = f"block {name}({', '.join(parts)})"
        if "inputs" in block:
            head += f" inputs({', '.join(block['inputs'])})"
        if "layers" in block:
            self.emit(head + " {", 0, path)
            self.sequence(block["layers"], (*path, "layers"), 1)
            self.lines.append("}")
            return
        kind = next(k for k in block if k not in ("params", "inputs"))
        self.layer_lines({kind: block[kind]}, path, 0, prefix=head + " = ")

    def sequence(self, layers: list[Any], path: PathKey, indent: int) -> None:
        line: list[str] = []
        line_paths: list[PathKey] = []

        def flush() -> None:
            if line:
                self.emit(" -> ".join(line), indent, line_paths[0], line_paths[-1])
                line.clear()
                line_paths.clear()

        for i, layer in enumerate(layers):
            lpath = (*path, i)
            op = op_of(layer)
            if self.is_multiline(layer):
                flush()
                self.layer_lines(layer, lpath, indent)
                continue
            text = self.layer_text(layer)
            is_call = op in self.block_params
            starts_chain = (isinstance(layer, dict) and "inputs" in layer) or is_call
            if line and (starts_chain or len(INDENT * indent + " -> ".join([*line, text])) > WIDTH):
                flush()
            line.append(text)
            line_paths.append(lpath)
            ends_chain = (isinstance(layer, dict) and ("name" in layer or "repeat" in layer)) or is_call
            src_line = self.line_of(lpath)
            next_line = self.line_of((*path, i + 1)) if i + 1 < len(layers) else None
            commented = src_line is not None and next_line != src_line and self.comments.trailing(src_line)
            if ends_chain or commented:
                flush()
        flush()

    def is_multiline(self, layer: Any) -> bool:
        op = op_of(layer)
        if op not in BLOCK_SECTIONS or not isinstance(layer, dict):
            return False
        args = layer[op]
        return isinstance(args, dict) and any(isinstance(v, (list, dict)) and k != "init" for k, v in args.items()
                                              if k != "dim")

    def args_text(self, op: str, args: Any, meta: dict[str, Any], skip: Sequence[str] = ()) -> str:
        parts = []
        if args is not None and not isinstance(args, dict):
            parts.append(dsl_scalar(args))
            args = {}
        args = dict(args or {})
        from specdsl.ops import POSITIONAL

        names = self.block_params.get(op) or list(POSITIONAL.get(op, ()))
        if names and names[0] in args:
            parts.append(dsl_scalar(args.pop(names[0])))
        for k, v in args.items():
            if k in skip:
                continue
            parts.append(f"{k}={dsl_scalar(v)}")
        for k in ("frozen", "init"):
            if k in meta:
                parts.append(f"{k}={dsl_scalar(meta[k])}")
        return f"({', '.join(parts)})" if parts else ""

    def suffix(self, meta: dict[str, Any]) -> str:
        out = ""
        if "repeat" in meta:
            out += f" x{meta['repeat']}"
        if "name" in meta:
            out += f" as {meta['name']}"
        return out

    def refs(self, meta: dict[str, Any]) -> str:
        if "inputs" not in meta:
            return ""
        refs = [f"@{r}" for r in meta["inputs"]]
        return (refs[0] if len(refs) == 1 else "[" + ", ".join(refs) + "]") + " -> "

    def layer_text(self, layer: Any) -> str:
        if isinstance(layer, str):
            return layer
        op = op_of(layer)
        assert op is not None
        meta = {k: v for k, v in layer.items() if k != op}
        return self.refs(meta) + op + self.args_text(op, layer[op], meta) + self.suffix(meta)

    def layer_lines(self, layer: dict[str, Any], path: PathKey, indent: int, prefix: str = "") -> None:
        op = op_of(layer)
        assert op is not None
        meta = {k: v for k, v in layer.items() if k != op}
        args = dict(layer[op] or {})
        default, named = BLOCK_SECTIONS[op]
        sections = [k for k in (default, *named) if isinstance(args.get(k), (list, dict))]
        head = prefix + self.refs(meta) + op + self.args_text(op, args, meta, skip=sections)
        opath = (*path, op)
        first = True
        for key in sections:
            label = "" if key == default else f"{key} "
            opener = (head + " " if first else "} ") + label + "{"
            self.emit(opener, indent, opath if first else (*opath, key))
            first = False
            value = args[key]
            if key == "branches":
                for bname, blayers in value.items():
                    self.emit(f"branch {bname} {{", indent + 1, (*opath, key, bname))
                    self.sequence(blayers, (*opath, key, bname), indent + 2)
                    self.lines.append(INDENT * (indent + 1) + "}")
            else:
                self.sequence(value, (*opath, key), indent + 1)
        self.lines.append(INDENT * indent + "}" + self.suffix(meta))


def to_dsl(data: dict[str, Any], smap: SourceMap | None = None,
           comments: Sequence[tuple[int, int, str]] = ()) -> str:
    return DslPrinter(data, smap, comments).print()


# -- YAML ----------------------------------------------------------------------

_YAML_SPECIAL_START = set("-?:,[]{}#&*!|>'\"%@`")


def yaml_scalar(value: Any) -> str:
    from specdsl.errors import SourceLoc
    from specdsl.frontend.yaml import resolve_plain

    constant = _constant(value)
    if constant is not None:
        return constant
    if isinstance(value, (int, float)):
        text = repr(value)
        return text if "e" not in text or "." in text else text.replace("e", ".0e", 1)
    if isinstance(value, str):
        plain_ok = (value and value[0] not in _YAML_SPECIAL_START and value == value.strip()
                    and ": " not in value and " #" not in value and "\n" not in value
                    and resolve_plain(value, SourceLoc("", 1, 1)) == (value, None))
        return value if plain_ok else json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(yaml_scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {yaml_scalar(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value).__name__)


def _holds_layers(key: str, value: Any) -> bool:
    return (key in LAYER_LIST_KEYS and isinstance(value, list)) or key == "branches"


def _nested(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_holds_layers(k, v) or _nested(v) for k, v in value.items())
    return False


def _yaml_layers(layers: list[Any], indent: int, out: list[str]) -> None:
    pad = "  " * indent
    for layer in layers:
        if isinstance(layer, str):
            out.append(f"{pad}- {yaml_scalar(layer)}")
            continue
        first = True
        for key, value in layer.items():
            lead = f"{pad}- " if first else f"{pad}  "
            first = False
            _yaml_entry(key, value, indent + 1, out, lead)


def _yaml_entry(key: str, value: Any, indent: int, out: list[str], lead: str) -> None:
    pad = "  " * indent
    if _holds_layers(key, value):
        out.append(f"{lead}{key}:")
        if key == "branches" and isinstance(value, dict):
            for bname, blayers in value.items():
                out.append(f"{pad}  {bname}:")
                _yaml_layers(blayers, indent + 2, out)
        elif isinstance(value, list):
            _yaml_layers(value, indent + 1, out)
        return
    if isinstance(value, dict) and _nested(value):
        out.append(f"{lead}{key}:")
        for k, v in value.items():
            _yaml_entry(k, v, indent + 1, out, f"{pad}  ")
        return
    out.append(f"{lead}{key}:" if value is None else f"{lead}{key}: {yaml_scalar(value)}")


def to_yaml(data: dict[str, Any]) -> str:
    out: list[str] = []
    for key in ("model", "input", "dtype", "description"):
        if key in data:
            out.append(f"{key}: {yaml_scalar(data[key])}")
    if data.get("blocks"):
        out.append("blocks:")
        for name, block in data["blocks"].items():
            out.append(f"  {name}:")
            for k, v in block.items():
                _yaml_entry(k, v, 2, out, "    ")
    if "layers" in data:
        out.append("layers:")
        _yaml_layers(data["layers"], 1, out)
    return "\n".join(out) + "\n"

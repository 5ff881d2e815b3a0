"""Spec data -> canonical text, in either syntax.

Used by `specdsl convert` and `specdsl fmt`. Works on the plain data both
front ends produce, so DSL -> YAML -> DSL is a fixed point. Output is
deterministic: it depends on the data alone (plus comments, for fmt).

This module lays out DSL text and is the entry point for both syntaxes; YAML's layout is
``printer_yaml.py``'s, and how each syntax spells a value is ``printer_scalars.py``'s.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from specdsl.blocks.registry import BLOCK_SECTIONS
from specdsl.render.printer_control import StatementPrinter, condition_text, is_statement
from specdsl.render.printer_scalars import NAME, CannotPrint, dsl_scalar, dsl_string, yaml_scalar
from specdsl.render.printer_yaml import to_yaml
from specdsl.source import PathKey, SourceMap

WIDTH = 88
INDENT = "    "
META_ORDER = ("inputs", "name", "repeat", "index", "if", "frozen", "init")
# A list member's name (specdsl.blocks.members), the grammar's `NAME PART+`.
MEMBER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[0-9]+)+")


def op_of(layer: Any) -> str | None:
    if isinstance(layer, str):
        return layer
    if isinstance(layer, dict):
        ops = [k for k in layer if k not in META_ORDER]
        return ops[0] if len(ops) == 1 else None
    return None


# -- DSL -----------------------------------------------------------------------


@dataclass
class _Comments:
    """Source comments, handed out as the printer passes their lines."""

    items: list[tuple[int, int, str]] = field(default_factory=list)  # (line, col, text)
    code_lines: set[int] = field(default_factory=set)
    pos: int = 0
    trailed: set[int] = field(default_factory=set)  # code lines whose comments were written after them

    def before(self, line: int) -> list[str]:
        """Comments above ``line``: whole-line ones, and those after code no output line has taken
        (a comment after a block's parameters, say), which then get a line of their own."""
        out = []
        while self.pos < len(self.items) and self.items[self.pos][0] < line:
            ln, _, text = self.items[self.pos]
            if ln not in self.code_lines or ln not in self.trailed:
                out.append(text)
            self.pos += 1
        return out

    def between(self, after: int, before: int) -> bool:
        """Whether a whole-line comment lies strictly between two lines (it keeps the layers apart)."""
        i = bisect.bisect_right(self.items, (after, 1 << 62))
        while i < len(self.items) and self.items[i][0] < before:
            if self.items[i][0] not in self.code_lines:
                return True
            i += 1
        return False

    def trailing(self, line: int) -> list[str]:
        out = []
        for ln, _, text in self.items:
            if ln == line and ln in self.code_lines:
                out.append(text)
        return out

    def rest(self) -> list[str]:
        out = [t for ln, _, t in self.items[self.pos:] if ln not in self.code_lines or ln not in self.trailed]
        self.pos = len(self.items)
        return out


class DslPrinter(StatementPrinter):
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

    def end_of(self, path: PathKey) -> int | None:
        """The last line of the value at ``path``: a layer's continuation lines, a body's closing brace."""
        if self.smap is None:
            return None
        loc = self.smap.values.get(path)
        return (loc.end_line or loc.line) if loc else self.line_of(path)

    def emit(self, text: str, indent: int, path: PathKey | None = None, last_path: PathKey | None = None) -> None:
        """One output line; ``last_path``: the layers it joins, whose continuation lines' comments trail it."""
        first = self.line_of(path) if path is not None else None
        if first is not None:
            for c in self.comments.before(first):
                self.lines.append(INDENT * indent + c)
        self.lines.append(INDENT * indent + text if text else "")
        last = self.end_of(last_path) if last_path is not None else first
        self._trail(first, last)

    def close(self, path: PathKey, indent: int, text: str = "}") -> None:
        """The closing line of the body at ``path``, after the comments written inside it."""
        end = self.end_of(path)
        if end is not None:
            for c in self.comments.before(end):
                self.lines.append(INDENT * (indent + 1) + c)
        self.lines.append(INDENT * indent + text)

    def _trail(self, first: int | None, last: int | None) -> None:
        if first is None:
            return
        notes = []
        for ln in range(first, (last or first) + 1):
            if ln not in self.trailing_done:
                notes += self.comments.trailing(ln)
                self.trailing_done.add(ln)
                self.comments.trailed.add(ln)
        if notes:
            # One comment per line: a second `#` on the line would read back as part of the first.
            pad = self.lines[-1][:len(self.lines[-1]) - len(self.lines[-1].lstrip())]
            self.lines[-1] += "  " + notes[0]
            self.lines.extend(pad + note for note in notes[1:])

    def print(self) -> str:
        d = self.data
        if "model" in d:
            name = d["model"]
            params = f"({params_text(d['params'])})" if d.get("params") else ""
            self.emit(f"model {name if NAME.match(str(name)) else dsl_string(str(name))}{params}", 0, ("model",))
        for vname, values in (d.get("variants") or {}).items():
            settings = ", ".join(f"{k}={dsl_scalar(v)}" for k, v in values.items())
            self.emit(f"variant {vname}({settings})", 0, ("variants", vname))
        if "input" in d:
            self.emit(f"input {dsl_scalar(d['input'])}", 0, ("input",))
        if "dtype" in d:
            self.emit(f"dtype {d['dtype']}", 0, ("dtype",))
        if "description" in d:
            try:
                self.emit(f"description {dsl_string(str(d['description']))}", 0, ("description",))
            except CannotPrint as exc:
                exc.path = ("description",)
                raise
        for name, block in (d.get("blocks") or {}).items():
            self.lines.append("")
            self.block(name, block)
        if "layers" in d:
            self.lines.append("")
            self.emit("layers {", 0, ("layers",))
            self.sequence(d["layers"], ("layers",), 1)
            self.close(("layers",), 0)
        outputs = d.get("outputs")
        if isinstance(outputs, list):
            self.emit("outputs [" + ", ".join(f"@{r}" for r in outputs) + "]", 0, ("outputs",))
        elif isinstance(outputs, dict):
            self.emit("outputs(" + ", ".join(f"{k}=@{r}" for k, r in outputs.items()) + ")", 0, ("outputs",))
        tail = self.comments.rest()
        if tail:
            self.lines.append("")
            self.lines.extend(tail)
        return "\n".join(self.lines).strip("\n") + "\n"

    def block(self, name: str, block: Any) -> None:
        path: PathKey = ("blocks", name)
        if isinstance(block, list):  # YAML's shorthand `b: [layers]`
            block = {"layers": block}
        if not isinstance(block, dict):
            raise CannotPrint(f"block '{name}' is not a mapping or a list of layers", path)
        head = f"block {name}({params_text(block.get('params') or {})})"
        if "inputs" in block:
            inputs = block["inputs"]
            if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
                raise CannotPrint(f"the inputs of block '{name}' are not a list of names", (*path, "inputs"))
            head += f" inputs({', '.join(inputs)})"
        outputs = block.get("outputs")
        if outputs is not None and ("layers" not in block or not isinstance(outputs, list)
                                    or not all(isinstance(r, str) for r in outputs)):
            raise CannotPrint(f"the DSL declares a block's outputs (a list of names) in a `{{ ... }}` body; "
                              f"received {outputs!r}", (*path, "outputs"))
        if "layers" in block:
            self.emit(head + " {", 0, path)
            self.sequence(block["layers"], (*path, "layers"), 1)
            if outputs is not None:  # several outputs: the body's last line
                self.emit("outputs [" + ", ".join(f"@{r}" for r in outputs) + "]", 1, (*path, "outputs"))
            self.close((*path, "layers"), 0)
            return
        kind = next((k for k in block if k not in ("params", "inputs")), None)
        if kind is None or kind not in BLOCK_SECTIONS or len(block) > 1 + ("params" in block) + ("inputs" in block):
            raise CannotPrint(f"block '{name}' needs exactly one body", path)
        self.layer_lines({kind: block[kind]}, path, 0, prefix=head + " = ")

    def sequence(self, layers: Any, path: PathKey, indent: int) -> None:
        if not isinstance(layers, list):
            raise CannotPrint("expected a list of layers", path)
        line: list[str] = []
        line_paths: list[PathKey] = []
        conditions: list[Any] = []

        def flush() -> None:
            # A chain ending in `LAYER if COND` reads as conditioned whole (E405): a conditional layer
            # starts a line of its own after layers of another condition (`a -> b if c -> d if e`: three).
            start = 0
            for k in range(1, len(line)):
                if conditions[k] is not None and any(c != conditions[k] for c in conditions[start:k]):
                    self.emit(" -> ".join(line[start:k]), indent, line_paths[start], line_paths[k - 1])
                    start = k
            del line[:start], line_paths[:start]
            if line:
                self.emit(" -> ".join(line), indent, line_paths[0], line_paths[-1])
                line.clear()
                line_paths.clear()
            conditions.clear()

        for i, layer in enumerate(layers):
            lpath = (*path, i)
            op = op_of(layer)
            if is_statement(layer):  # `let` and `if c { } else { }`: statements of their own
                flush()
                self.statement_lines(layer, lpath, indent)
                continue
            if self.is_multiline(layer):
                flush()
                self.layer_lines(layer, lpath, indent)
                continue
            try:
                text = self.layer_text(layer)
            except CannotPrint as exc:
                exc.path = exc.path or lpath
                raise
            is_call = op in self.block_params
            starts_chain = (isinstance(layer, dict) and "inputs" in layer) or is_call
            if line and (starts_chain or len(INDENT * indent + " -> ".join([*line, text])) > WIDTH):
                flush()
            line.append(text)
            line_paths.append(lpath)
            conditions.append(layer.get("if") if isinstance(layer, dict) else None)
            ends_chain = (isinstance(layer, dict) and ("name" in layer or "repeat" in layer)) or is_call
            src_line, src_end = self.line_of(lpath), self.end_of(lpath)
            next_line = self.line_of((*path, i + 1)) if i + 1 < len(layers) else None
            commented = src_line is not None and next_line != src_end and (any(
                self.comments.trailing(ln) for ln in range(src_line, (src_end or src_line) + 1)
                if ln not in self.trailing_done)
                or (next_line is not None and self.comments.between(src_end or src_line, next_line)))
            if ends_chain or commented:
                flush()
        flush()

    def is_multiline(self, layer: Any) -> bool:
        op = op_of(layer)
        if op not in BLOCK_SECTIONS or not isinstance(layer, dict):
            return False
        args = layer[op]
        if isinstance(args, list) and BLOCK_SECTIONS[op][0] == "layers":  # `stage: [...]`
            return True
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
        # An index without a repeat (an error the checker reports) stays where the parser takes it.
        for k in ("frozen", "init", *(() if "repeat" in meta else ("index",))):
            if k in meta:
                parts.append(f"{k}={dsl_scalar(meta[k])}")
        return f"({', '.join(parts)})" if parts else ""

    def suffix(self, meta: dict[str, Any]) -> str:
        out = ""
        if "repeat" in meta:
            repeat = meta["repeat"]
            if "index" in meta:
                index = meta["index"]
                if not isinstance(index, str) or not index.isidentifier():
                    raise CannotPrint(f"the DSL writes a repeat index as a name (`x(n, j)`); received "
                                      f"{json.dumps(index)}")
                out += f" x({dsl_scalar(repeat)}, {index})"
            else:
                out += f" x{repeat}" if isinstance(repeat, int) and not isinstance(repeat, bool) else \
                    f" x({dsl_scalar(repeat)})"
        if "if" in meta:
            out += f" if {condition_text(meta['if'])}"
        if "name" in meta:  # a module name such as RegNet's block1-0 is quoted
            name = str(meta["name"])
            # A list member (`convs.1`) is written bare, as the grammar reads it.
            out += f" as {name if NAME.match(name) or MEMBER_NAME.fullmatch(name) else dsl_string(name)}"
        return out

    def refs(self, meta: dict[str, Any]) -> str:
        if "inputs" not in meta:
            return ""
        inputs = meta["inputs"]
        if not isinstance(inputs, list) or not inputs or not all(isinstance(r, str) for r in inputs):
            raise CannotPrint(f"the DSL writes `inputs` as a list of node names; received {json.dumps(inputs)}")
        refs = [f"@{r}" for r in inputs]
        return (refs[0] if len(refs) == 1 else "[" + ", ".join(refs) + "]") + " -> "

    def layer_text(self, layer: Any) -> str:
        if isinstance(layer, str):
            return layer
        op = op_of(layer)
        if op is None or not NAME.match(op):
            raise CannotPrint(f"the DSL has no way to write the layer {json.dumps(layer)[:60]}")
        meta = {k: v for k, v in layer.items() if k != op}
        # `act() as x` is `act: {}` beside its name: the brackets keep it so (`act as x` reads as `act: null`).
        args = self.args_text(op, layer[op], meta) or ("()" if layer[op] == {} else "")
        return self.refs(meta) + op + args + self.suffix(meta)

    def layer_lines(self, layer: dict[str, Any], path: PathKey, indent: int, prefix: str = "") -> None:
        op = op_of(layer)
        assert op is not None
        meta = {k: v for k, v in layer.items() if k != op}
        default, named = BLOCK_SECTIONS[op]
        raw = layer[op]
        args = {default: raw} if isinstance(raw, list) else dict(raw or {})
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
                if not isinstance(value, dict):
                    raise CannotPrint("the DSL names every inception branch (`branch b1 { ... }`); write the "
                                      "branches as a mapping, `branches: {b1: [...], b2: [...]}`", (*opath, key))
                for bname, blayers in value.items():
                    self.emit(f"branch {bname} {{", indent + 1, (*opath, key, bname))
                    self.sequence(blayers, (*opath, key, bname), indent + 2)
                    self.close((*opath, key, bname), indent + 1)
            else:
                self.sequence(value, (*opath, key) if isinstance(raw, dict) else opath, indent + 1)
        self.close(opath, indent, "}" + self.suffix(meta))


def params_text(params: dict[str, Any]) -> str:
    """`c: int, stride=1`: required parameters by type, the others with their defaults."""
    parts = []
    for p, v in params.items():
        if isinstance(v, str) and v in ("int", "float", "bool", "str"):
            parts.append(f"{p}: {v}")
        else:
            parts.append(f"{p}={dsl_scalar(v)}")
    return ", ".join(parts)


def to_dsl(data: dict[str, Any], smap: SourceMap | None = None,
           comments: Sequence[tuple[int, int, str]] = ()) -> str:
    return DslPrinter(data, smap, comments).print()


__all__ = ["CannotPrint", "dsl_scalar", "dsl_string", "op_of", "to_dsl", "to_yaml", "yaml_scalar"]

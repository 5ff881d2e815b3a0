"""Completion: op and block names, argument names (with their types and defaults), `@refs`.

What to offer is read from the text before the cursor, not from the analysis: while the user
types, the document usually does not parse. Names the document defines (user blocks, named
nodes) come from its text with simple patterns for the same reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from specdsl.blocks.registry import BLOCKS
from specdsl.ops import ALIASES, OPS, lookup
from specdsl.ops.rule import Args
from specdsl.render.printer import dsl_scalar
from specdsl.schema.layer import META_KEYS

__all__ = ["Item", "complete"]


@dataclass(frozen=True)
class Item:
    label: str
    kind: str  # "op" | "block" | "user_block" | "arg" | "ref" | "keyword"
    detail: str
    doc: str = ""
    insert: str | None = None


_DSL_KEYWORDS = ("model", "input", "dtype", "description", "block", "layers", "branch", "inputs", "as")
_WORD = r"[A-Za-z_][A-Za-z0-9_]*"


def _type_text(prop: dict[str, Any]) -> str:
    """A JSON Schema property in a few words: `int > 0 | list[int > 0] (1..3)`, `'zeros' | 'reflect'`."""
    if "anyOf" in prop:
        return " | ".join(_type_text(p) for p in prop["anyOf"] if p.get("type") != "null")
    if "enum" in prop:
        return " | ".join(repr(v) for v in prop["enum"])
    if "const" in prop:
        return repr(prop["const"])
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    kind = {"integer": "int", "number": "float", "boolean": "bool", "string": "str", "object": "mapping"}.get(
        prop.get("type", ""), prop.get("type", "any"))
    if kind == "array":
        inner = _type_text(prop.get("items", {}))
        size = (prop.get("minItems"), prop.get("maxItems"))
        return f"list[{inner}]" + (f" ({size[0] or 0}..{size[1]})" if size[1] else "")
    bounds = [f"> {prop['exclusiveMinimum']}" if "exclusiveMinimum" in prop else "",
              f">= {prop['minimum']}" if "minimum" in prop else "",
              f"< {prop['exclusiveMaximum']}" if "exclusiveMaximum" in prop else "",
              f"<= {prop['maximum']}" if "maximum" in prop else ""]
    return " ".join([kind, *[b for b in bounds if b]])


@cache
def _arg_items(model: type[Args], dsl: bool) -> tuple[Item, ...]:
    props = model.model_json_schema().get("properties", {})
    items = []
    for name, f in model.model_fields.items():
        key = f.alias or name
        kind = _type_text(props.get(key, {}))
        default = "required" if f.is_required() else f"default {dsl_scalar(f.default)}"
        items.append(Item(key, "arg", f"{kind} ({default})", f.description or "",
                          f"{key}=" if dsl else f"{key}: "))
    return tuple(items)


def _layer_items(user_blocks: list[str]) -> list[Item]:
    items = [Item(name, "op", f"{rule.family} op", rule.doc) for name, rule in sorted(OPS.items())]
    items += [Item(alias, "op", f"alias of {target}", OPS[target].doc) for alias, target in sorted(ALIASES.items())]
    items += [Item(name, "block", "built-in block", rule.doc) for name, rule in BLOCKS.items()]
    items += [Item(name, "user_block", "user block", "") for name in user_blocks]
    return items


def _user_blocks(text: str, dsl: bool) -> dict[str, list[str]]:
    """User block name -> its parameter names, found in the text."""
    found: dict[str, list[str]] = {}
    if dsl:
        for m in re.finditer(rf"^block\s+({_WORD})\s*\(([^)]*)\)", text, re.M):
            found[m.group(1)] = re.findall(rf"({_WORD})\s*[:=]", m.group(2))
        return found
    block = re.search(r"^blocks:\s*\n((?:[ \t]+.*\n?|\s*\n)*)", text, re.M)
    if block:
        body = block.group(1)
        indent = re.match(r"[ \t]*", body).group() if body.strip() else ""
        for m in re.finditer(rf"^{indent}({_WORD}):", body, re.M):
            params = re.search(rf"^{indent}{m.group(1)}:.*\n[ \t]+params:\s*\{{([^}}]*)\}}", body[m.start():], re.M)
            found[m.group(1)] = re.findall(rf"({_WORD})\s*:", params.group(1)) if params else []
    return found


def _names(text: str, dsl: bool) -> list[str]:
    pattern = rf"\bas\s+({_WORD})" if dsl else rf"\bname:\s*({_WORD})"
    names = ["input"]
    for m in re.finditer(pattern, text):
        if m.group(1) not in names:
            names.append(m.group(1))
    if dsl:
        for m in re.finditer(r"\binputs\s*\(([^)]*)\)", text):
            names += [n for n in re.findall(_WORD, m.group(1)) if n not in names]
    return names


def _arguments_of(op: str, blocks: dict[str, list[str]], dsl: bool) -> list[Item]:
    rule = lookup(op)
    if rule is not None:
        return list(_arg_items(rule.args, dsl))
    if op in BLOCKS:
        return list(_arg_items(BLOCKS[op].args, dsl))
    if op in blocks:
        return [Item(p, "arg", f"parameter of block '{op}'", "", f"{p}=" if dsl else f"{p}: ") for p in blocks[op]]
    return []


def _open_call(before: str) -> str | None:
    """The op whose `(`, still open, the cursor is in: `conv(64, k=3, |` -> conv."""
    depth = 0
    for i in range(len(before) - 1, -1, -1):
        ch = before[i]
        if ch in ")]}":
            depth += 1
        elif ch in "[{":
            depth = max(depth - 1, 0)
        elif ch == "(":
            if depth == 0:
                m = re.search(rf"({_WORD})\s*$", before[:i])
                return m.group(1) if m else None
            depth -= 1
    return None


def complete(text: str, line: int, col: int, dsl: bool) -> list[Item]:
    """Completion items at 1-based (line, col) of the text."""
    lines = text.split("\n")
    current = lines[line - 1] if 0 < line <= len(lines) else ""
    before_line = current[:col - 1]
    blocks = _user_blocks(text, dsl)
    if dsl:
        if re.search(rf"@(?:{_WORD})?$|@$", before_line):
            return [Item(n, "ref", "node", "") for n in _names(text, dsl)]
        # A call's arguments may span lines; a line that does not end in `(` or `,` ends any call.
        start = line - 1
        while start > 0 and lines[start - 1].rstrip().endswith(("(", ",")) and line - start < 50:
            start -= 1
        op = _open_call("\n".join([*lines[start:line - 1], before_line]))
        if op is not None:
            if re.search(rf"=\s*(?:{_WORD})?$", before_line):
                return []  # a value, not a name
            if op in ("block",) or re.match(rf"\s*block\s+{_WORD}\s*\([^)]*$", before_line):
                return []
            return _arguments_of(op, blocks, dsl)
        if re.match(r"\s*(model|input|dtype|description)\b", before_line):
            return []
        items = _layer_items(list(blocks))
        if re.fullmatch(rf"\s*(?:{_WORD})?", before_line):
            items += [Item(k, "keyword", "keyword", "") for k in _DSL_KEYWORDS]
        return items
    # YAML
    if re.search(r"\binputs:\s*\[[^\]]*$", before_line) or re.match(r"\s*-\s*inputs:", before_line):
        return [Item(n, "ref", "node", "") for n in _names(text, dsl)]
    m = re.search(rf"({_WORD}):\s*\{{[^}}]*$", before_line)
    if m and not re.search(r":\s*[^,{]*$", before_line[m.end():]):
        return _arguments_of(m.group(1), blocks, dsl)
    if re.fullmatch(rf"\s*-\s*(?:{_WORD})?", before_line) or re.fullmatch(r"\s*layers:\s*\[.*", before_line):
        return _layer_items(list(blocks))
    if re.fullmatch(rf"\s+(?:{_WORD})?", before_line):
        # A key on its own line: the arguments of the op of the entry above it, or a layer's meta keys.
        indent = len(before_line) - len(before_line.lstrip())
        for above in reversed(lines[:line - 1]):
            if not above.strip() or above.lstrip().startswith("#"):
                continue
            lead = len(above) - len(above.lstrip())
            parent = re.match(rf"\s*(-\s*)?({_WORD}):\s*$", above)
            if lead < indent and parent:
                return _arguments_of(parent.group(2), blocks, dsl)
            dash = re.match(rf"\s*-\s*({_WORD})", above)
            if dash and lead + 2 == indent:
                return [Item(k, "arg", "layer option", "", f"{k}: ") for k in META_KEYS]
            if lead < indent:
                break
    return []

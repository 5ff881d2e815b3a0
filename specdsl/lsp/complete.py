"""Completion: op and block names, argument names (with their types and defaults), the values
of an argument that has a fixed set of them, and `@refs`.

What to offer is read from the text before the cursor, not from the analysis: while the user
types, the document usually does not parse. Nothing is offered in a comment or a string. The
names an `@ref` may use come from the document's code, never its comments: in the DSL from its
tokens (specdsl.lsp.names: `as NAME` and `inputs(...)`, in the scope of the cursor), in YAML from
the last version of the document that parsed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from specdsl.blocks.registry import BLOCKS
from specdsl.lsp.names import dsl_names, in_comment_or_string
from specdsl.ops import ALIASES, OPS, lookup
from specdsl.ops.rule import Args
from specdsl.render.printer import dsl_scalar
from specdsl.schema.layer import META_KEYS

__all__ = ["Item", "complete"]


@dataclass(frozen=True)
class Item:
    label: str
    kind: str  # "op" | "block" | "user_block" | "arg" | "value" | "ref" | "keyword"
    detail: str
    doc: str = ""
    insert: str | None = None


_DSL_KEYWORDS = ("model", "input", "dtype", "description", "block", "layers", "branch", "inputs", "as", "if", "else",
                 "let")
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
        indent = body[:len(body) - len(body.lstrip(" \t"))] if body.strip() else ""
        for m in re.finditer(rf"^{indent}({_WORD}):", body, re.M):
            params = re.search(rf"^{indent}{m.group(1)}:.*\n[ \t]+params:\s*\{{([^}}]*)\}}", body[m.start():], re.M)
            found[m.group(1)] = re.findall(rf"({_WORD})\s*:", params.group(1)) if params else []
    return found


def _arguments_of(op: str, blocks: dict[str, list[str]], dsl: bool) -> list[Item]:
    model = _arg_model(op)
    if model is not None:
        return list(_arg_items(model, dsl))
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


def _arg_model(op: str) -> type[Args] | None:
    rule = lookup(op)
    return rule.args if rule is not None else BLOCKS[op].args if op in BLOCKS else None


@cache
def _value_items(model: type[Args], arg: str, dsl: bool) -> tuple[Item, ...]:
    """The values of an argument that takes one of a fixed set (an enum, a bool), as written in the syntax."""
    prop = model.model_json_schema().get("properties", {}).get(arg, {})
    values: list[object] = []
    for p in prop.get("anyOf", [prop]):
        values += p.get("enum", [p["const"]] if "const" in p else [True, False] if p.get("type") == "boolean" else [])
    out = []
    for v in dict.fromkeys(values):
        text = dsl_scalar(v)
        out.append(Item(text.strip('"'), "value", f"{arg} value", "", text if dsl else text.strip('"')))
    return tuple(out)


def _values_of(op: str, arg: str, dsl: bool) -> list[Item]:
    model = _arg_model(op)
    if model is None:
        return []
    key = next((f.alias or n for n, f in model.model_fields.items() if arg in (f.alias, n)), None)
    return list(_value_items(model, key, dsl)) if key else []


# What a trigger character is for; a request it triggers elsewhere (a `,` in a list of numbers,
# `{` opening a DSL body) gets nothing.
_TRIGGERED = {"@": {"ref"}, "(": {"arg"}, ",": {"arg", "ref"}, "=": {"value"}, ">": {"op", "block", "user_block"},
              "{": {"arg"}, "[": {"ref"}, ":": {"value"}}
# Completion answers at once, from the text: beyond these sizes it answers nothing rather than stall
# the server (the patterns that find the open call scan back from every position of the line).
MAX_LINE = 1_000
MAX_TEXT = 1 << 20
DSL_TRIGGERS = ("@", "(", ",", "=", ">")
YAML_TRIGGERS = ("{", ",", "[", ":")


def complete(text: str, line: int, col: int, dsl: bool, yaml_names: Callable[[int], list[str]] | None = None,
             trigger: str | None = None) -> list[Item]:
    """Completion items at 1-based (line, col) of the text; `trigger` is the character that asked, if one did.

    yaml_names(line) gives the names an `inputs:` entry at that line may use (the server reads them
    off the last parsed version of the document).
    """
    lines = text.split("\n")
    current = lines[line - 1] if 0 < line <= len(lines) else ""
    before_line = current[:col - 1]
    if len(before_line) > MAX_LINE or len(text) > MAX_TEXT:
        return []  # no hand-written layer is this long; the patterns below would cost O(n^2) on it
    if in_comment_or_string(before_line, dsl):
        return []
    if dsl:
        items = _complete_dsl(text, lines, line, before_line)
    else:
        items = _complete_yaml(text, lines, line, before_line, yaml_names or (lambda _: ["input"]))
    if trigger is not None and trigger in _TRIGGERED:
        if trigger == ">" and not before_line.rstrip().endswith("->"):
            return []
        items = [i for i in items if i.kind in _TRIGGERED[trigger]]
    return items


def _complete_dsl(text: str, lines: list[str], line: int, before_line: str) -> list[Item]:
    blocks = _user_blocks(text, True)
    if re.search(rf"@(?:{_WORD})?$", before_line):
        offset = sum(len(x) + 1 for x in lines[:line - 1]) + len(before_line)
        return [Item(n, "ref", "node", "") for n in dsl_names(text, offset)]
    # A call's arguments may span lines; a line that does not end in `(` or `,` ends any call.
    start = line - 1
    while start > 0 and lines[start - 1].rstrip().endswith(("(", ",")) and line - start < 50:
        start -= 1
    op = _open_call("\n".join([*lines[start:line - 1], before_line]))
    if op is not None:
        value = re.search(rf"({_WORD})\s*=\s*(?:{_WORD})?$", before_line)
        if value:
            return _values_of(op, value.group(1), True)
        if op == "block" or re.match(rf"\s*block\s+{_WORD}\s*\([^)]*$", before_line):
            return []
        return _arguments_of(op, blocks, True)
    if re.match(r"\s*(model|input|dtype|description)\b", before_line):
        return []
    items = _layer_items(list(blocks))
    if re.fullmatch(rf"\s*(?:{_WORD})?", before_line):
        items += [Item(k, "keyword", "keyword", "") for k in _DSL_KEYWORDS]
    return items


def _complete_yaml(text: str, lines: list[str], line: int, before_line: str,
                   names: Callable[[int], list[str]]) -> list[Item]:
    blocks = _user_blocks(text, False)
    if re.search(r"\binputs:\s*\[[^\]]*$", before_line) or re.match(r"\s*-\s*inputs:", before_line):
        return [Item(n, "ref", "node", "") for n in names(line)]
    m = re.search(rf"({_WORD}):\s*\{{(?=[^}}]*$)", before_line)  # an op's flow mapping, still open
    if m:
        inside = before_line[m.end():]
        value = re.search(rf"(?:^|[,{{]\s*)({_WORD}):\s*(?:{_WORD})?$", inside)
        if value:
            return _values_of(m.group(1), value.group(1), False)
        return [] if re.search(r":\s*[^,{]*$", inside) else _arguments_of(m.group(1), blocks, False)
    if re.fullmatch(rf"\s*-\s*(?:{_WORD})?", before_line) or re.fullmatch(r"\s*layers:\s*\[.*", before_line):
        return _layer_items(list(blocks))
    key = re.fullmatch(rf"(\s+)(?:({_WORD}):\s*)?(?:{_WORD})?", before_line)
    if key is None:
        return []
    # A key (or its value) on its own line: the arguments of the op of the entry above it, or a layer's meta keys.
    indent = len(key.group(1))
    for above in reversed(lines[:line - 1]):
        if not above.strip() or above.lstrip().startswith("#"):
            continue
        lead = len(above) - len(above.lstrip())
        parent = re.match(rf"\s*(-\s*)?({_WORD}):\s*$", above)
        if lead < indent and parent:
            if key.group(2):
                return _values_of(parent.group(2), key.group(2), False)
            return _arguments_of(parent.group(2), blocks, False)
        dash = re.match(rf"\s*-\s*({_WORD})", above)
        if dash and lead + 2 == indent and not key.group(2):
            return [Item(k, "arg", "layer option", "", f"{k}: ") for k in META_KEYS]
        if lead < indent:
            break
    return []

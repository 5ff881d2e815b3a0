"""A block body that is a residual block, written as one: `block unit(c) = residual(shortcut=auto) { ... }`.

Read off the written body (specdsl.lift.write), after its layers are known: a chain from the block
input (the body), an `add` of the body's last layer and the input, or of the body and a shortcut
container read from the input, then layers after the sum (`post`). A shortcut present in only some
instances (`downsample if with_downsample`, the two adds switched by it) is the built-in's `auto`
projection, and the switch goes; an unconditional one is written as the block's `shortcut { }`.
The whole recovered spec is checked afterwards, so a body whose shortcut `auto` would build
otherwise (a norm with other arguments) falls back to the plain form.
"""

from __future__ import annotations

import json
from typing import Any

from specdsl.blocks.residual import JOIN

META = ("inputs", "name", "repeat", "index", "if")


def _op(layer: Any) -> str | None:
    if isinstance(layer, str):
        return layer
    ops = [k for k in layer if k not in META]
    return ops[0] if len(ops) == 1 else None


def _get(layer: Any, key: str) -> Any:
    return layer.get(key) if isinstance(layer, dict) else None


def as_residual(layers: list[Any]) -> tuple[dict[str, Any], set[str]] | None:
    """The `residual` section for the body and the parameters it makes needless, or None."""
    k = 0
    while k < len(layers) and _get(layers[k], "inputs") is None and _op(layers[k]) != JOIN:
        k += 1
    body, rest = layers[:k], layers[k:]
    if not body or not isinstance(body[-1], dict) or "name" not in body[-1] or "repeat" in body[-1]:
        return None
    last = body[-1]["name"]
    shortcut, adds = None, []
    while rest and (_op(rest[0]) == JOIN or (shortcut is None and _get(rest[0], "inputs") == ["input"])):
        if _op(rest[0]) == JOIN:
            adds.append(rest.pop(0))
        else:
            shortcut = rest.pop(0)
    if any(_get(layer, "inputs") is not None for layer in rest) or not adds \
            or any(set(a) - {JOIN, "inputs", "if"} or a[JOIN] is not None for a in adds):
        return None
    section: dict[str, Any] = {}
    dropped: set[str] = set()
    name = _get(shortcut, "name")
    if shortcut is None and len(adds) == 1 and adds[0] == {"add": None, "inputs": [last, "input"]}:
        section["shortcut"] = "identity"
    elif shortcut is not None and isinstance(name, str) and "if" in shortcut and len(adds) == 2:
        switch = shortcut["if"]
        other = switch[4:] if switch.startswith("not ") else f"not {switch}"
        expected = [{"add": None, "inputs": [last, name], "if": switch},
                    {"add": None, "inputs": [last, "input"], "if": other}]
        if adds != expected and adds != expected[::-1]:
            return None
        dropped.add(switch.removeprefix("not "))
        section["shortcut"] = "auto"
    elif shortcut is not None and isinstance(name, str) and "if" not in shortcut and \
            adds == [{"add": None, "inputs": [last, name]}]:
        inner = {k: v for k, v in shortcut.items() if k not in ("inputs", "name")}
        section["shortcut"] = inner["stage"]["layers"] if _op(inner) == "stage" else [inner]
    else:
        return None
    if name is not None and name != "downsample":
        section["shortcut_name"] = name
    if rest:
        section["post"] = rest[0] if len(rest) == 1 and isinstance(rest[0], str) else rest
    section["body"] = body
    text = json.dumps([section["body"], section.get("post")])
    if any(f'"{d}"' in text or f" {d}" in text or f"{d} " in text for d in dropped):
        return None  # the switch conditions more than the shortcut: keep it a parameter
    return section, dropped

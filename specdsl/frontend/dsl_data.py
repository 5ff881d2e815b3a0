"""Located values -> the plain data + SourceMap that the YAML front end gives for the same model.

Positional arguments get their names here: op tables for layers, parameter order for blocks.
"""

from __future__ import annotations

from typing import Any

from specdsl.errors import Diagnostic, SourceLoc, SpecError
from specdsl.frontend.dsl_build import Builder, Located, Positional
from specdsl.source import PathKey, SourceMap


class _Locs:
    """The SourceMap under construction: plain dicts, frozen once the data is complete."""

    def __init__(self) -> None:
        self.values: dict[PathKey, SourceLoc] = {}
        self.keys: dict[PathKey, SourceLoc] = {}

    def unwrap(self, value: Any, path: PathKey) -> Any:
        if not isinstance(value, Located):
            return value
        self.values[path] = value.loc
        inner = value.value
        if isinstance(inner, dict):
            out = {}
            for k, v in inner.items():
                out[k] = self.unwrap(v, (*path, k))
                if k in value.key_locs:
                    self.keys[(*path, k)] = value.key_locs[k]
            return out
        if isinstance(inner, list):
            return [self.unwrap(v, (*path, i)) for i, v in enumerate(inner)]
        return inner


def plain_data(built: Builder, text: str) -> tuple[dict[str, Any], SourceMap]:
    """The spec's plain data and its SourceMap; SpecError if positional arguments do not fit."""
    file = built.file
    locs = _Locs()
    data: dict[str, Any] = {}
    for key, value in built.header.items():
        data[key] = locs.unwrap(value, (key,))
        locs.keys[(key,)] = built.key_locs[key]
    if built.blocks:
        data["blocks"] = {}
        for name, block in built.blocks.items():
            data["blocks"][name] = locs.unwrap(block, ("blocks", name))
            locs.keys[("blocks", name)] = built.block_keys[name]
    if built.layers is not None:
        data["layers"] = locs.unwrap(built.layers, ("layers",))
        locs.keys[("layers",)] = built.key_locs["layers"]
    locs.values[()] = SourceLoc(file, 1, 1)
    diags = _resolve_positional(data, locs)
    if diags:
        raise SpecError(diags, {file: text})
    return data, SourceMap(file, text, locs.values, locs.keys)


def _known_op(name: str) -> bool:
    from specdsl.blocks.registry import BLOCKS
    from specdsl.ops import lookup

    return lookup(name) is not None or name in BLOCKS


def _resolve_positional(data: dict[str, Any], locs: _Locs) -> list[Diagnostic]:
    """Give positional arguments their names, in place; the diagnostics of those that do not fit."""
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
                    pos: Positional = v.pop("__positional__")
                    locs.values.pop((*path, k, "__positional__"), None)
                    names = block_params.get(k) or list(POSITIONAL.get(k, ()))
                    if not names and not _known_op(k):
                        # An unknown layer: let the schema say so, with a suggestion.
                        visit(v, (*path, k))
                        continue
                    if len(pos.values) > len(names):
                        diags.append(Diagnostic(
                            "error", "E404",
                            f"'{k}' takes at most {len(names)} positional argument(s)"
                            + (f" ({', '.join(names)})" if names else "") + f"; received {len(pos.values)}",
                            pos.values[len(names)].loc, hint="name the arguments: key=value"))
                        continue
                    for name, val in zip(names, pos.values, strict=False):
                        if name in v:
                            diags.append(Diagnostic(
                                "error", "E102", f"argument '{name}' given both by position and by name",
                                val.loc))
                            continue
                        v[name] = locs.unwrap(val, (*path, k, name))
                        locs.keys[(*path, k, name)] = val.loc
                    # Keep the user's order: positional first.
                    ordered = {n: v[n] for n in names if n in v}
                    ordered.update({n: x for n, x in v.items() if n not in ordered})
                    v.clear()
                    v.update(ordered)
                visit(v, (*path, k))

    visit(data, ())
    return diags

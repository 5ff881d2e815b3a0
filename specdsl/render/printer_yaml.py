"""Spec data -> YAML text (`specdsl convert --to yaml`), with the source's comments where it has any.

The YAML half of specdsl.render.printer, which re-exports it; values are spelled by
``printer_scalars.py``. Which arguments hold nested layers the block rules say (``LAYER_KEYS``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from specdsl.blocks.registry import LAYER_KEYS
from specdsl.render.printer_scalars import yaml_scalar
from specdsl.source import PathKey, SourceMap


def _holds_layers(key: str, value: Any) -> bool:
    """Whether ``value`` is layers to write one per line: a user block's or a block argument's list of
    layers, or inception's ``branches`` (a mapping or list of such lists)."""
    # `then` and `else`: a conditional group's lists (specdsl.blocks.control).
    return ((key in ("layers", "then", "else") or key in LAYER_KEYS) and isinstance(value, list)) or key == "branches"


def _nested(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_holds_layers(k, v) or _nested(v) for k, v in value.items())
    return False


class _Lines(list[str]):
    """Output lines; the source's comments are written before the first line at or after theirs."""

    def __init__(self, smap: SourceMap | None, comments: Sequence[tuple[int, int, str]]) -> None:
        super().__init__()
        self.smap = smap
        self.pending = sorted(comments)

    def at(self, path: PathKey, pad: str) -> None:
        loc = self.smap.values.get(path) or self.smap.keys.get(path) if self.smap else None
        while loc is not None and self.pending and self.pending[0][0] <= loc.line:
            self.append(pad + self.pending.pop(0)[2])

    def rest(self) -> None:
        self.extend(text for _, _, text in self.pending)
        self.pending = []


def _yaml_layers(layers: list[Any], indent: int, out: _Lines, path: PathKey) -> None:
    pad = "  " * indent
    for i, layer in enumerate(layers):
        out.at((*path, i), pad)
        if not isinstance(layer, dict) or not layer:
            out.append(f"{pad}- {yaml_scalar(layer)}")
            continue
        first = True
        for key, value in layer.items():
            lead = f"{pad}- " if first else f"{pad}  "
            first = False
            _yaml_entry(key, value, indent + 1, out, lead, (*path, i, key))


def _yaml_entry(key: str, value: Any, indent: int, out: _Lines, lead: str, path: PathKey) -> None:
    pad = "  " * indent
    if _holds_layers(key, value) and isinstance(value, (dict, list)):
        out.append(f"{lead}{key}:")
        if key == "branches" and isinstance(value, dict):
            for bname, blayers in value.items():
                out.at((*path, bname), pad + "  ")
                out.append(f"{pad}  {bname}:")
                _yaml_layers(blayers, indent + 2, out, (*path, bname)) if isinstance(blayers, list) else \
                    out.append(f"{pad}    {yaml_scalar(blayers)}")
        elif key == "branches":  # `branches: [[...], [...]]`: each branch a list of layers
            for b, blayers in enumerate(value):
                out.at((*path, b), pad)
                out.append(f"{pad}- {yaml_scalar(blayers)}")
        else:
            assert isinstance(value, list)  # _holds_layers: only branches may be a mapping
            _yaml_layers(value, indent + 1, out, path)
        return
    if isinstance(value, dict) and _nested(value):
        out.append(f"{lead}{key}:")
        for k, v in value.items():
            out.at((*path, k), pad + "  ")
            _yaml_entry(k, v, indent + 1, out, f"{pad}  ", (*path, k))
        return
    out.append(f"{lead}{key}:" if value is None else f"{lead}{key}: {yaml_scalar(value)}")


def to_yaml(data: dict[str, Any], smap: SourceMap | None = None,
            comments: Sequence[tuple[int, int, str]] = ()) -> str:
    """YAML text of spec data; with the source's SourceMap, its ``comments`` go where they were."""
    out = _Lines(smap, comments)
    for key in ("model", "params", "input", "dtype", "description"):
        if key in data:
            out.at((key,), "")
            out.append(f"{key}: {yaml_scalar(data[key])}")
    if data.get("variants"):
        out.append("variants:")
        for name, values in data["variants"].items():
            out.at(("variants", name), "  ")
            out.append(f"  {name}: {yaml_scalar(values)}")
    if data.get("blocks"):
        out.append("blocks:")
        for name, block in data["blocks"].items():
            out.at(("blocks", name), "  ")
            if isinstance(block, list):  # the shorthand `b: [layers]`
                out.append(f"  {name}:")
                _yaml_layers(block, 2, out, ("blocks", name))
                continue
            if not isinstance(block, dict):
                out.append(f"  {name}: {yaml_scalar(block)}")
                continue
            out.append(f"  {name}:")
            for k, v in block.items():
                out.at(("blocks", name, k), "    ")
                _yaml_entry(k, v, 2, out, "    ", ("blocks", name, k))
    if "layers" in data:
        out.at(("layers",), "")
        out.append("layers:")
        if isinstance(data["layers"], list):
            _yaml_layers(data["layers"], 1, out, ("layers",))
        else:
            out[-1] += f" {yaml_scalar(data['layers'])}"
    if "outputs" in data:
        out.at(("outputs",), "")
        out.append(f"outputs: {yaml_scalar(data['outputs'])}")
    out.rest()
    return "\n".join(out) + "\n"

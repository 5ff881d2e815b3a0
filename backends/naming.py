"""What every backend shares: a node's module path and initialisation plans.

A node's spec path is its module name (the engine gives it: specdsl/blocks/names.py), named
segments joined by dots and positions in brackets: ``layer1[0].conv1`` is the submodule
``layer1.0.conv1`` with the state_dict key ``layer1.0.conv1.weight``; an unnamed top-level
layer ``[3]`` is ``3``. The NumPy backend finds its weights under the very same keys.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from specdsl.ir import module_name
from specdsl.ops.rule import NODE_ITSELF, TensorSpec

if TYPE_CHECKING:
    from specdsl.ir import Node


def module_path(spec_path: str) -> str:
    """``layer1[0].conv1`` -> ``layer1.0.conv1``, ``[3]`` -> ``3`` (specdsl.ir.module_name)."""
    return module_name(spec_path)


def param_key(spec_path: str, name: str) -> str:
    """A tensor's state_dict key: ``layer1.0.conv1.weight``, or the node's own path for a parameter
    of its container named by the node (TensorSpec.of_container: ``features.1.0.layer_scale``)."""
    return f"{module_path(spec_path)}.{name}" if name != NODE_ITSELF else module_path(spec_path)


def state_dict_order(tensors: Sequence[tuple[str, str]]) -> list[int]:
    """Positions of ``tensors`` ((node module path, TensorSpec name), in node order) in PyTorch's
    state_dict order: a module's own tensors, then its children's, each child where it first comes. So a
    node's own parameter (TensorSpec.of_container) leads its siblings, as its container's parameter."""
    tree: dict[str, Any] = {"": []}  # "" holds a module's own tensors (no module name is empty)
    for k, (path, name) in enumerate(tensors):
        owner = path.rpartition(".")[0] if name == NODE_ITSELF else path
        cursor = tree
        for part in owner.split(".") if owner else ():
            cursor = cursor.setdefault(part, {"": []})
        cursor[""].append(k)

    def walk(t: dict[str, Any]) -> list[int]:
        return [*t[""], *(k for key, child in t.items() if key for k in walk(child))]

    return walk(tree)


# -- initialisation, shared by to_torch and the emitted file -------------------------

_INIT_ALIASES = {"kaiming": "kaiming_normal", "xavier": "xavier_uniform"}
# torch.nn.init calls for each default in TensorSpec.init ("torch": leave PyTorch's own).
_DEFAULT_INIT: dict[str, tuple[str, dict[str, Any]]] = {
    "kaiming_fan_out": ("kaiming_normal_", {"mode": "fan_out", "nonlinearity": "relu"}),
    "ones": ("ones_", {}),
    "zeros": ("zeros_", {}),
}

InitCall = tuple[str, str, dict[str, Any]]  # (torch.nn.init function, "weight" | "bias", keyword arguments)


def init_calls(node: Node, weights: Sequence[TensorSpec]) -> list[InitCall]:
    """How a node's parameters are initialised: the spec's `init`, or the defaults its op rule
    gives (torchvision's conventions: Kaiming-normal fan-out convs, unit-weight zero-bias norms)."""
    params = [w for w in weights if w.role == "parameter"]
    if not params:
        return []
    spec = node.init
    if spec is None:
        return [(function, w.name, kwargs) for w in params if w.init in _DEFAULT_INIT
                for function, kwargs in [_DEFAULT_INIT[w.init]]]
    if spec == "default":
        return []
    if isinstance(spec, str):
        scheme, mode, nonlinearity, gain, std, mean, bias_rule = spec, "fan_in", "relu", 1.0, None, 0.0, "zeros"
    else:
        scheme, mode, nonlinearity = spec.scheme, spec.mode, spec.nonlinearity
        gain, std, mean, bias_rule = spec.gain, spec.std, spec.mean, spec.bias
    scheme = _INIT_ALIASES.get(scheme, scheme)
    by_scheme: dict[str, dict[str, Any]] = {
        "kaiming_normal": {"mode": mode, "nonlinearity": nonlinearity},
        "kaiming_uniform": {"mode": mode, "nonlinearity": nonlinearity},
        "xavier_uniform": {"gain": gain},
        "xavier_normal": {"gain": gain},
        "normal": {"mean": mean, "std": std or 0.01},
        "trunc_normal": {"mean": mean, "std": std or 0.02},
        "uniform": {"a": -(std or 0.05), "b": std or 0.05},
        "orthogonal": {"gain": gain},
        "zeros": {},
        "ones": {},
    }
    kwargs = by_scheme[scheme]
    names = {w.name for w in params}
    bias: list[InitCall] = [("zeros_", "bias", {})] if "bias" in names and bias_rule == "zeros" else []
    return [(f"{scheme}_", "weight", kwargs), *bias]


def class_name(model_name: str) -> str:
    """A Python class name for a model or block name: `resnet18` -> `Resnet18`, `none` -> `NoneModel`."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", model_name) if p]
    text = "".join(p[:1].upper() + p[1:] for p in parts) or "Model"
    text = text if text[0].isalpha() else f"Model{text}"
    return f"{text}Model" if keyword.iskeyword(text) else text

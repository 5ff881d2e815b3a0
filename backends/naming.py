"""What every backend shares: a node's module path, in-place activations, initialisation plans.

A node at spec path ``layers[4].body[0]`` becomes the submodule
``layers.4.body.0``, so state_dict keys read like the spec
(``layers.4.body.0.weight``), and the NumPy backend finds its weights under the
very same keys.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from specdsl.ops import OPS
from specdsl.ops.rule import TensorSpec, Trait

if TYPE_CHECKING:
    from specdsl.api import Model
    from specdsl.ir import Node

_INDEX = re.compile(r"\[(\d+)\]")

def module_path(spec_path: str) -> str:
    """``layers[4][1].body[0]`` -> ``layers.4.1.body.0``."""
    return _INDEX.sub(r".\1", spec_path)


def param_key(spec_path: str, name: str) -> str:
    return f"{module_path(spec_path)}.{name}"


def inplace_activations(model: Model) -> set[int]:
    """Nodes that can run in place (torchvision's `ReLU(inplace=True)`): the op may overwrite its
    input, the producer's backward does not need that output, and nothing else reads it."""
    consumers = model.graph.consumers()
    found = set()
    for node in model.graph.nodes:
        if not node.is_input and OPS[node.op].has(Trait.INPLACE):
            producer = model.graph.nodes[node.inputs[0]]
            if not producer.is_input and OPS[producer.op].has(Trait.OVERWRITABLE_OUTPUT) \
                    and len(consumers[producer.index]) == 1 and producer.index not in model.graph.output_nodes:
                found.add(node.index)
    return found


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
    kwargs: dict[str, Any] = {
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
    }[scheme]
    names = {w.name for w in params}
    bias = [("zeros_", "bias", {})] if "bias" in names and bias_rule == "zeros" else []
    return [(f"{scheme}_", "weight", kwargs), *bias]


def class_name(model_name: str) -> str:
    """A Python class name for a model or block name: `resnet18` -> `Resnet18`, `none` -> `NoneModel`."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", model_name) if p]
    text = "".join(p[:1].upper() + p[1:] for p in parts) or "Model"
    text = text if text[0].isalpha() else f"Model{text}"
    return f"{text}Model" if keyword.iskeyword(text) else text

"""Names shared by every backend: a node's module path and its parameter names.

A node at spec path ``layers[4].body[0]`` becomes the submodule
``layers.4.body.0``, so state_dict keys read like the spec
(``layers.4.body.0.weight``), and the NumPy backend finds its weights under the
very same keys.
"""

from __future__ import annotations

import keyword
import re
from typing import TYPE_CHECKING, Any

from specdsl.schema.document import RESERVED_SEGMENTS, reserved_segment  # noqa: F401 - re-exported

if TYPE_CHECKING:
    from specdsl.api import Model
    from specdsl.ir import Node

_INDEX = re.compile(r"\[(\d+)\]")

# Parameters and buffers each op owns, in PyTorch's order and naming.
PARAMETERS: dict[str, tuple[str, ...]] = {
    "conv": ("weight", "bias"),
    "deconv": ("weight", "bias"),
    "linear": ("weight", "bias"),
    "bn": ("weight", "bias"),
    "instancenorm": ("weight", "bias"),
    "layernorm": ("weight", "bias"),
    "groupnorm": ("weight", "bias"),
}
BUFFERS: dict[str, tuple[str, ...]] = {
    "bn": ("running_mean", "running_var", "num_batches_tracked"),
    "instancenorm": ("running_mean", "running_var", "num_batches_tracked"),
}


def module_path(spec_path: str) -> str:
    """``layers[4][1].body[0]`` -> ``layers.4.1.body.0``."""
    return _INDEX.sub(r".\1", spec_path)


def param_key(spec_path: str, name: str) -> str:
    return f"{module_path(spec_path)}.{name}"


_INPLACE_OPS = {"relu", "relu6", "leaky_relu"}
# Producers whose backward does not need their own output, so an activation may overwrite it
# (torchvision's `ReLU(inplace=True)` after conv / bn / add). Views (flatten) are excluded.
_INPLACE_PRODUCERS = {"conv", "deconv", "bn", "groupnorm", "layernorm", "instancenorm", "linear", "add",
                      "concat", "mean", "join", "maxpool", "avgpool", "upsample"}


def inplace_activations(model: Model) -> set[int]:
    """Nodes whose activation can run in place: its input feeds nothing else."""
    consumers = model.graph.consumers()
    found = set()
    for node in model.graph.nodes:
        if node.op in _INPLACE_OPS:
            producer = model.graph.nodes[node.inputs[0]]
            if producer.op in _INPLACE_PRODUCERS and len(consumers[producer.index]) == 1 \
                    and producer.index != model.graph.output:
                found.add(node.index)
    return found


# -- initialisation, shared by to_torch and the emitted file -------------------------

_WEIGHTED = ("conv", "deconv", "linear")
_NORMS = ("bn", "instancenorm", "layernorm", "groupnorm")
_INIT_ALIASES = {"kaiming": "kaiming_normal", "xavier": "xavier_uniform"}

InitCall = tuple[str, str, dict[str, Any]]  # (torch.nn.init function, "weight" | "bias", keyword arguments)


def _affine(node: Node) -> bool:
    args: Any = node.args
    return bool(args.elementwise_affine if node.op == "layernorm" else args.affine)


def init_calls(node: Node) -> list[InitCall]:
    """How a node's parameters are initialised: the spec's `init`, or torchvision's conventions
    (Kaiming-normal fan-out convs, unit-weight zero-bias norms, PyTorch's defaults elsewhere)."""
    args: Any = node.args
    norm = node.op in _NORMS and _affine(node)
    if not (node.op in _WEIGHTED or norm):
        return []
    has_bias = bool(getattr(args, "bias", True))
    bias = [("zeros_", "bias", {})] if has_bias else []
    spec = node.init
    if spec is None:
        if norm:
            return [("ones_", "weight", {}), *bias]
        if node.op == "conv":
            return [("kaiming_normal_", "weight", {"mode": "fan_out", "nonlinearity": "relu"}), *bias]
        return []
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
    return [(f"{scheme}_", "weight", kwargs), *(bias if bias_rule == "zeros" else [])]


def class_name(model_name: str) -> str:
    """A Python class name for a model or block name: `resnet18` -> `Resnet18`, `none` -> `NoneModel`."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", model_name) if p]
    text = "".join(p[:1].upper() + p[1:] for p in parts) or "Model"
    text = text if text[0].isalpha() else f"Model{text}"
    return f"{text}Model" if keyword.iskeyword(text) else text

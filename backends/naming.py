"""Names shared by every backend: a node's module path and its parameter names.

A node at spec path ``layers[4].body[0]`` becomes the submodule
``layers.4.body.0``, so state_dict keys read like the spec
(``layers.4.body.0.weight``), and the NumPy backend finds its weights under the
very same keys.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from specdsl.schema import RESERVED_SEGMENTS, reserved_segment  # noqa: F401 - re-exported

if TYPE_CHECKING:
    from specdsl.api import Model

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

"""The machine report of a checked model: every node's figures, the totals and the diagnostics, as JSON data."""

from __future__ import annotations

from typing import Any, Protocol

from specdsl.ops.rule import RF
from specdsl.passes.receptive import GatedRF
from specdsl.render.figures import FULL_CONVENTION, MACS_CONVENTION, Checked, node_figures


class CheckedFile(Checked, Protocol):
    """A checked model and the file it was read from (``specdsl.api.Model`` is one)."""

    @property
    def file(self) -> str: ...


def rf_json(rf: RF, input_shape: tuple[int, ...] = ()) -> list[dict[str, Any]] | None:
    if rf is None:
        return None

    def num(x: Any) -> Any:
        return x if isinstance(x, int) else float(x)

    def axis(k: int, a: Any) -> dict[str, Any]:
        if a.stride == 0 and len(input_shape) == len(rf) + 1:
            # Seen whole (after a global pool): every unit sees all of the input's extent.
            return {"size": input_shape[1 + k], "stride": 0, "padding": 0, "whole_input": True}
        # The local field; "global": the output also sees the whole input through a gate (SE).
        local = {"size": num(a.size), "stride": num(a.stride), "padding": num(a.pad)}
        return {**local, "global": True} if isinstance(rf, GatedRF) else local

    return [axis(k, a) for k, a in enumerate(rf)]


def model_json(model: CheckedFile) -> dict[str, Any]:
    t = model.analysis.totals
    nodes = []
    for node, fig in node_figures(model):
        nodes.append({
            "index": node.index,
            "path": node.path,
            "name": node.name,
            "op": node.op,
            "inputs": list(node.inputs),
            "shape": list(fig.shape) if fig.shape else None,
            "params": {"trainable": fig.trainable, "frozen": fig.frozen, "buffers": fig.buffers},
            "macs": fig.macs,
            "extra_ops": fig.extra_ops,
            "receptive_field": rf_json(fig.rf, model.graph.input_shape),
            "location": node.loc.to_json() if node.loc else None,
        })
    return {
        "model": model.graph.model,
        "file": model.file,
        "input": list(model.graph.input_shape),
        "dtype": t.dtype,
        "batch": t.batch,
        "nodes": nodes,
        # What the model returns: one entry, or its declared outputs (key null in a tuple).
        "outputs": [{"key": key, "node": i, "shape": list(model.analysis.figures[i].shape or ())}
                    for key, i in (model.graph.outputs or ((None, model.graph.output),))],
        "returns": "dict" if model.graph.returns_dict else "tuple" if model.graph.returns_tuple else "tensor",
        "totals": {
            "params": t.params,
            "trainable": t.trainable,
            "frozen": t.frozen,
            "buffers": t.buffers,
            "macs": t.macs,
            "flops": t.flops,
            "all_ops": t.macs + t.extra_ops,
            "activation_elements": t.activation_elements,
            "activation_bytes": t.activation_bytes,
            "peak_activation_bytes": t.peak_bytes,
            # Inference: parameters, buffers and the peak of live activations.
            "infer_peak_bytes": t.param_bytes + t.buffer_bytes + t.peak_bytes,
            "param_bytes": t.param_bytes,
            "input_bytes": t.input_bytes,
        },
        "conventions": {"macs": MACS_CONVENTION, "flops": "2 × MACs", "all_ops": FULL_CONVENTION},
        "diagnostics": [d.to_json() for d in model.analysis.diagnostics],
    }

"""The saved-for-backward pass: which tensors autograd keeps at the end of a training forward,
over unique storages, from the per-op facts in a table (the PyTorch backend's ``SAVED``).

Pure: it reads the graph, the figures and the table it is given, and imports no framework.
Storages, not tensors, are counted: a tensor kept by two nodes counts once, a view (a split's
part, a crop, a flatten that needs no copy, an in-place activation) is its base's storage, and
parameters and buffers are not activations. ``specdsl.passes.train_memory`` builds the training
step's peak on top of it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from specdsl.ir import Graph
from specdsl.passes.figures import NodeFigures

# Bytes per element of every dtype a tensor may have.
WIDTH = {"float64": 8, "float32": 4, "bfloat16": 2, "float16": 2, "int64": 8, "bool": 1, "uint8": 1}

Key = tuple[Any, ...]


class SavedTensor(NamedTuple):
    """One storage a node's autograd keeps: its identity, its size and what it is."""

    key: Key
    nbytes: int
    what: str  # activation | indices | mask | stats | cast | weight_copy


class Layout(NamedTuple):
    """Where a node's output lives: the storage it is in, and its shape and strides there
    (None: contiguous, the common case, worked out only when a view needs them)."""

    owner: Key
    shape: tuple[int, ...]
    strides: tuple[int, ...] | None = None

    def all_strides(self) -> tuple[int, ...]:
        return contiguous_strides(self.shape) if self.strides is None else self.strides


@dataclass
class SavedReport:
    """Per node, the storages its autograd keeps; and what the training walk needs besides."""

    per_node: list[tuple[SavedTensor, ...]]
    # Bytes of the storages each node is the first to keep (they add up to ``total``).
    first: list[int]
    total: int
    by_kind: dict[str, int]
    storage: dict[Key, int]  # bytes of every node-owned storage
    layouts: list[Layout | None]
    dtypes: list[str]
    needs_grad: list[bool]
    grads_pass: list[bool] = field(default_factory=list)
    # Bytes of each node's output tensor (its own extent, in its dtype).
    out_bytes: list[int] = field(default_factory=list)


def contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for d in reversed(shape):
        strides.append(step)
        step *= max(d, 1)
    return tuple(reversed(strides))


def _is_contiguous(layout: Layout) -> bool:
    """PyTorch's is_contiguous: strides of size-1 axes do not matter."""
    if layout.strides is None:
        return True
    want = contiguous_strides(layout.shape)
    return all(d == 1 or s == w for d, s, w in zip(layout.shape, layout.strides, want, strict=True))


def _reshape_view(layout: Layout, shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """Strides of ``reshape`` to ``shape`` as a view, or None where PyTorch must copy (ATen's
    computeStride: each run of old axes that follow each other in memory, size-1 axes aside, must
    split into whole new axes). Flatten, reshape, unsqueeze and squeeze all go through it."""
    old, strides = layout.shape, layout.all_strides()
    if math.prod(old) == 0:
        return contiguous_strides(shape)
    new = [0] * len(shape)
    view_d = len(shape) - 1
    base = strides[-1] if strides else 1
    tensor_numel = view_numel = 1
    for d in range(len(old) - 1, -1, -1):
        tensor_numel *= old[d]
        if d == 0 or (old[d - 1] != 1 and strides[d - 1] != tensor_numel * base):
            while view_d >= 0 and (view_numel < tensor_numel or shape[view_d] == 1):
                new[view_d] = view_numel * base
                view_numel *= shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if d > 0:
                base, tensor_numel, view_numel = strides[d - 1], 1, 1
    return tuple(new) if view_d == -1 else None


def _view_layout(view: Any, layouts: list[Layout | None], inputs: tuple[int, ...],
                 attrs: Any, out: tuple[int, ...]) -> Layout | None:
    """The output layout of a view entry (Same, Narrow, Reshape), or None when it is a copy."""
    kind = type(view).__name__
    base = layouts[inputs[view.index]]
    assert base is not None
    if kind == "Same":
        return base
    if kind == "Narrow":
        return Layout(base.owner, tuple(view.sizes), base.all_strides())
    if kind == "Permute":
        strides = base.all_strides()
        return Layout(base.owner, tuple(base.shape[d] for d in view.dims), tuple(strides[d] for d in view.dims))
    strides = _reshape_view(base, out)
    return None if strides is None else Layout(base.owner, out, strides)


def saved_tensors(graph: Graph, figures: list[NodeFigures], batch: int, table: Mapping[str, Any], *,
                  inplace: set[int] | frozenset[int] = frozenset(), device: Literal["cpu", "cuda"] = "cpu",
                  amp: str | None = None) -> SavedReport:
    """What autograd keeps for backward at the end of one training forward.

    ``table``: op name -> entry (``specdsl.ops.saved.SAVED``); ``inplace``: the nodes
    that run in place (``specdsl.passes.inplace.inplace_activations``); ``device``: "cpu" or "cuda";
    ``amp``: the autocast dtype ("bfloat16", "float16") or None. The model input needs no grad.
    """
    from specdsl.ops.saved import Call  # no torch: the table module is pure data

    n = len(graph.nodes)
    layouts: list[Layout | None] = [None] * n
    dtypes = [graph.dtype] * n
    needs = [False] * n
    contig = [True] * n
    grads_pass = [False] * n
    out_bytes = [0] * n
    storage: dict[Key, int] = {}
    per_node: list[tuple[SavedTensor, ...]] = [()] * n
    first = [0] * n
    seen: set[Key] = set()
    by_kind: dict[str, int] = {}
    total = 0
    for node in graph.nodes:
        fig = figures[node.index]
        if fig.shape is None:
            continue
        shape = (batch, *fig.shape)
        if node.is_input:
            key: Key = ("node", 0)
            layouts[0] = Layout(key, shape)
            storage[key] = math.prod(shape) * WIDTH[graph.dtype]
            out_bytes[0] = storage[key]
            continue
        entry = table[node.op]
        # List comprehensions, not generators: this loop is most of `check --train`'s time.
        inputs = node.inputs
        # Inputs come first and have shapes, so layouts (a cast per item would cost time here).
        ins = tuple([layouts[i].shape for i in inputs])  # type: ignore[union-attr]
        in_dtypes = tuple([dtypes[i] for i in inputs])
        params = tuple([math.prod(w.shape) for w in fig.weights if w.role == "parameter"]) if fig.weights else ()
        trains = bool(params) and not node.frozen
        contiguous = tuple([contig[i] for i in inputs])
        call = Call(fig.attrs, ins, shape, in_dtypes, tuple([needs[i] for i in inputs]), trains,
                    node.index in inplace, device, amp, params, contiguous)
        needs[node.index] = any(call.needs_grad) or trains
        grads_pass[node.index] = entry.grads in ("pass", "slices")
        view = entry.view(call)
        dtypes[node.index] = _out_dtype(entry, view, in_dtypes, amp, graph.dtype)
        width = WIDTH[dtypes[node.index]]
        out_bytes[node.index] = math.prod(shape) * width
        layout = None if view is None else _view_layout(view, layouts, node.inputs, fig.attrs, shape)
        if layout is None:
            key = ("node", node.index)
            layout = Layout(key, shape)
            storage[key] = out_bytes[node.index] if entry.storage is None else entry.storage(call) * width
        layouts[node.index] = layout
        contig[node.index] = _is_contiguous(layout)
        if not needs[node.index]:
            continue  # nothing needs a gradient here: no autograd node, nothing kept
        kept = _kept(entry.saves(call), node.index, node.inputs, layouts, layout, storage, in_dtypes)
        per_node[node.index] = kept
        for t in kept:
            if t.key not in seen:
                seen.add(t.key)
                first[node.index] += t.nbytes
                total += t.nbytes
                by_kind[t.what] = by_kind.get(t.what, 0) + t.nbytes
    return SavedReport(per_node, first, total, by_kind, storage, layouts, dtypes, needs, grads_pass, out_bytes)


def _out_dtype(entry: Any, view: Any, in_dtypes: tuple[str, ...], amp: str | None, model_dtype: str) -> str:
    """A node's output dtype: a view's is its base's; under autocast the op's policy says."""
    if view is not None:
        return in_dtypes[view.index]
    if amp is None:
        return model_dtype  # every tensor has the model's dtype
    if entry.autocast == "low":
        return amp
    if entry.autocast == "fp32":
        return "float32"
    order = ("float16", "bfloat16", "float32", "float64")
    return max(in_dtypes, key=order.index)


def _kept(saves: Any, index: int, inputs: tuple[int, ...], layouts: list[Layout | None], layout: Layout,
          storage: dict[Key, int], in_dtypes: tuple[str, ...]) -> tuple[SavedTensor, ...]:
    """The storages node ``index`` keeps: its inputs' or output's (shared, by owner) and new ones."""
    kept: list[SavedTensor] = []
    for j, s in enumerate(saves):
        if s.kind == "input":
            owner = layouts[inputs[s.index]].owner
            kept.append(SavedTensor(owner, storage[owner], "activation"))
        elif s.kind == "output":
            kept.append(SavedTensor(layout.owner, storage[layout.owner], "activation"))
        else:
            dtype = s.dtype or in_dtypes[0]
            if dtype == "acc":
                dtype = "float64" if in_dtypes[0] == "float64" else "float32"
            kept.append(SavedTensor(("new", index, j), s.numel * WIDTH[dtype], s.what))
    return tuple(kept)

"""A NumPy reference interpreter of the graph IR.

Each node runs the function its op's entry in ``lowerings.LOWERINGS`` built
for it, so that the PyTorch lowering can be tested against an independent
implementation, node by node. An exception from a node names the node, its
spec path and its source line. At inference a batch norm that directly follows
an op with a ``fold_bn`` entry (conv, transposed conv, linear) and is its only
consumer is folded into it, unless every activation is captured. Large batches
run in chunks so that the peak memory stays near ``max_memory`` bytes.

    >>> import numpy as np, specdsl
    >>> net = specdsl.to_numpy("lenet5")                 # random weights, float64
    >>> net(np.zeros((2, 1, 32, 32))).shape
    (2, 10)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from specdsl.backends.naming import param_key
from specdsl.backends.numpy.lowerings import LOWERINGS, Lowering, OpFn, RunContext, passthrough
from specdsl.backends.numpy.weights import Params, as_model, check_weights, load_weights, random_weights, save_weights
from specdsl.ops import OPS
from specdsl.ops.registry import MissingEntry
from specdsl.ops.rule import Trait

Array = np.ndarray

DEFAULT_MAX_MEMORY = 1 << 30  # bytes of activations + im2col buffers per forward chunk


class NumpyModel:
    """A checked model, its weights and a NumPy forward.

    ``net(x)`` runs the batch ``x`` (shape ``(N, *input)``) at inference and
    returns the output; ``capture=True`` returns every node's activation by node
    index instead (0 is the input); ``train_bn=True`` normalises batch and
    instance norms with the statistics of the batch, as PyTorch does in
    training mode (dropout stays off and the running statistics are not
    updated).
    """

    def __init__(self, model: Any, weights: Mapping[str, Any] | str | os.PathLike[str] | None = None,
                 dtype: str | np.dtype = "float64", *, seed: int = 0, fold_bn: bool = True,
                 max_memory: int = DEFAULT_MAX_MEMORY, index_dtype: str | np.dtype | None = None) -> None:
        self.model = as_model(model)
        self.graph = self.model.graph
        self.figures = self.model.analysis.figures
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype("float32"), np.dtype("float64")):
            raise ValueError(f"dtype must be float32 or float64; received {self.dtype}")
        if weights is None:
            weights = random_weights(self.model, seed, self.dtype)
        elif isinstance(weights, (str, os.PathLike)):
            weights = load_weights(weights, self.model, seed=seed)
        checked = check_weights(self.model, weights)
        self.weights: Params = {k: v if v.dtype.kind in "iu" else v.astype(self.dtype, copy=False)
                                for k, v in checked.items()}
        self.fold_bn = fold_bn
        self.max_memory = max_memory
        self.index_dtype = None if index_dtype is None else np.dtype(index_dtype)
        nodes = self.graph.nodes
        self._lowerings: list[Lowering | None] = [None if n.is_input else _lowering(n) for n in nodes]
        # Whether a node's op may overwrite its first input (it does only when nothing else reads it).
        self._may_overwrite = [not n.is_input and OPS[n.op].has(Trait.INPLACE) for n in nodes]
        self._fns: list[OpFn | None] = [self._build(n) for n in nodes]
        self._folded: dict[int, OpFn] | None = None  # built on the first call that can use it
        self._per_sample = self._bytes_per_sample()

    # -- public -----------------------------------------------------------------

    def __call__(self, x: Any, *, train_bn: bool = False, capture: bool = False) -> Any:
        x = np.asarray(x, dtype=self.dtype)
        expected = tuple(self.graph.input_shape)
        if x.ndim != len(expected) + 1 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"expected a batch of shape (N, {', '.join(map(str, expected))}); "
                             f"received {tuple(x.shape)}")
        n = x.shape[0]
        chunk = n if train_bn else max(1, min(n, self.max_memory // max(1, self._per_sample)))
        ctx = RunContext(train_bn, self.index_dtype)
        # inf and nan propagate silently, as in PyTorch (a dilated max pool can see only padding: -inf).
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if chunk >= n:
                return self._forward(x, ctx, capture)
            parts = [self._forward(x[i:i + chunk], ctx, capture) for i in range(0, n, chunk)]
        if capture:
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return np.concatenate(parts)

    def run_node(self, index: int, inputs: Sequence[Any], *, train_bn: bool = False) -> Array:
        """One node's op on the given input arrays (batched), unfolded: for checking a node in isolation."""
        fn = self._fns[index]
        if fn is None:
            return np.asarray(inputs[0], dtype=self.dtype)
        ins = [np.asarray(v, dtype=self.dtype) for v in inputs]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            try:
                return fn(ins, RunContext(train_bn, self.index_dtype))
            except Exception as exc:
                raise _located(exc, self.graph.nodes[index]) from exc

    def node_weights(self, index: int) -> dict[str, Array]:
        """Node ``index``'s parameters and buffers by their names in its op rule (``weight``, ``running_var``, ...)."""
        node = self.graph.nodes[index]
        return {w.name: self.weights[param_key(node.path, w.name)] for w in self.figures[index].weights
                if w.persistent}

    def save(self, path: str | os.PathLike[str]) -> None:
        save_weights(path, self.weights)

    def __repr__(self) -> str:
        return f"<NumpyModel {self.model.name}: {len(self.graph.nodes) - 1} nodes, {self.dtype}>"

    # -- running ------------------------------------------------------------------

    def _forward(self, x: Array, ctx: RunContext, capture: bool) -> Any:
        nodes = self.graph.nodes
        values: list[Array | None] = [None] * len(nodes)
        values[0] = x
        fold: dict[int, OpFn] = {}
        if self.fold_bn and not capture and not ctx.train:
            if self._folded is None:
                self._folded = self._fold_plan()
            fold = self._folded
        remaining = [0] * len(nodes)
        for node in nodes:
            for i in node.inputs:
                remaining[i] += 1
        for out in self.graph.output_nodes:
            remaining[out] += 1
        # Pending reads per underlying buffer: identity, dropout and flatten return views of their
        # input, so a node may overwrite its input only when nothing else will read that buffer.
        pending: dict[int, int] = {}
        if not capture:
            pending[id(_root(x))] = 1 << 62  # the caller's array is never overwritten
        may_overwrite = self._may_overwrite
        for node in nodes[1:]:
            ins: list[Array] = [values[i] for i in node.inputs]
            ctx.inplace = (may_overwrite[node.index] and not capture
                           and pending.get(id(_root(ins[0])), 0) == 1)
            fn = fold.get(node.index) or self._fns[node.index]
            assert fn is not None
            try:
                y = fn(ins, ctx)
            except Exception as exc:
                raise _located(exc, node) from exc
            values[node.index] = y
            if capture:
                continue
            key = id(_root(y))
            pending[key] = pending.get(key, 0) + remaining[node.index]
            for i in node.inputs:
                remaining[i] -= 1
                key = id(_root(values[i]))
                pending[key] -= 1
                if remaining[i] == 0:
                    values[i] = None
        if capture:
            return {i: v for i, v in enumerate(values)}
        return returned(self.graph, values)

    def _bytes_per_sample(self) -> int:
        """Peak live activations of one sample (the static figure) plus the largest scratch buffer (im2col, col2im)."""
        totals = self.model.totals
        elements = totals.peak_bytes // max(1, _dtype_width(self.graph.dtype)) // max(1, totals.batch)
        cols = 0
        for node, lowering in zip(self.graph.nodes, self._lowerings, strict=True):
            if lowering is not None and lowering.scratch is not None:
                fig = self.figures[node.index]
                ins = [self.figures[i].shape for i in node.inputs]
                cols = max(cols, lowering.scratch(fig.attrs, ins, fig.shape))
        return int((elements + cols) * self.dtype.itemsize)

    # -- building -------------------------------------------------------------------

    def _build(self, node: Any) -> OpFn | None:
        lowering = self._lowerings[node.index]
        if lowering is None:  # the input
            return None
        fig = self.figures[node.index]
        return lowering.build(node, fig.attrs, self.node_weights(node.index), fig.shape)

    def _fold_plan(self) -> dict[int, OpFn]:
        """Producers (with a ``fold_bn`` entry) whose only consumer is an inference batch norm, fused with it.

        The fused producer computes W' = W·s, b' = b·s + t (s = γ/√(σ²+ε), t = β − μ·s) and
        the batch norm passes its input through. Exact in real arithmetic; the
        BN reads its running statistics, so a training-mode call never uses it.
        """
        users = self.graph.consumers()
        plan: dict[int, OpFn] = {}
        for node in self.graph.nodes:
            own = self._lowerings[node.index]
            if own is None or not own.folds_into_producer or len(node.inputs) != 1:
                continue
            a = self.figures[node.index].attrs
            prod = self.graph.nodes[node.inputs[0]]
            lowering = self._lowerings[prod.index]
            if not a.track_running_stats or lowering is None or lowering.fold_bn is None:
                continue
            if users[prod.index] != [node.index] or prod.index == self.graph.output:
                continue
            bn = self.node_weights(node.index)
            s = 1.0 / np.sqrt(bn["running_var"].astype(np.float64) + a.eps)
            if "weight" in bn:
                s = s * bn["weight"]
            t = -bn["running_mean"] * s
            if "bias" in bn:
                t = t + bn["bias"]
            fig = self.figures[prod.index]
            folded = lowering.fold_bn(fig.attrs, self.node_weights(prod.index), fig.shape, s, t)
            if folded is None:
                continue
            folded = {k: v.astype(self.dtype) for k, v in folded.items()}
            plan[prod.index] = lowering.build(prod, fig.attrs, folded, fig.shape)
            plan[node.index] = passthrough
        return plan


def _lowering(node: Any) -> Lowering:
    lowering = LOWERINGS.get(node.op)
    if lowering is None:
        raise MissingEntry(node.op, LOWERINGS, f"node {node.path}" + (f" at {node.loc}" if node.loc else ""))
    return lowering


def _located(exc: Exception, node: Any) -> Exception:
    """``exc`` again, its message naming the node it came from (like torch.fx's "While executing").

    The same type when it takes a message (else the nearest base that does, else
    RuntimeError); raise it ``from exc`` to keep the original and its traceback.
    """
    where = f"node {node.index} {node.path} ({node.op})" + (f" at {node.loc}" if node.loc else "")
    message = f"{exc}\n  while executing {where}"
    for cls in type(exc).__mro__:
        if not issubclass(cls, Exception):
            break
        try:
            again = cls(message)
        except Exception:  # a constructor that wants other arguments: try its base
            continue
        if str(again) == message:
            return again
    return RuntimeError(message)


def returned(graph: Any, values: Sequence[Any]) -> Any:
    """What the model returns: its output, or its declared outputs as a tuple or a dict."""
    if graph.returns_dict:
        return {key: values[i] for key, i in graph.outputs}
    if graph.returns_tuple:
        return tuple(values[i] for _, i in graph.outputs)
    return values[graph.output]


def _root(a: Array) -> Array:
    """The array that owns the memory ``a`` views."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def _dtype_width(name: str) -> int:
    return {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}.get(name, 4)


def to_numpy(model_or_source: Any, weights: Mapping[str, Any] | str | os.PathLike[str] | None = None,
             dtype: str = "float64", **kw: Any) -> NumpyModel:
    """A NumPy forward for a spec (path, zoo name, spec text or a loaded ``Model``).

    ``weights``: a name -> array mapping (PyTorch ``state_dict`` keys), a path to an
    ``.npz`` file, or None for :func:`random_weights` (``seed=`` picks them). A spec
    the checker rejects raises :class:`specdsl.SpecError` before anything runs.
    """
    return NumpyModel(model_or_source, weights, dtype, **kw)

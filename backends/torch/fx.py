"""Lower a checked model to PyTorch.

The graph becomes a ``torch.fx.GraphModule``: real ``nn.Module`` layers at
readable paths (``layers.4.body.0``) and a forward that fx generates as plain
Python once, so nothing re-interprets the graph per call. It works with CUDA,
channels_last, autocast, torch.compile, torch.export and DDP.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import torch
from specdsl.backends.naming import class_name, init_calls, inplace_activations, module_path
from specdsl.backends.torch.emit import module_source
from torch import fx, nn

from specdsl.api import Model
from specdsl.ir import Node
from specdsl.ops.rule import TensorSpec


class GlobalPool(nn.Module):
    """Global average or max pooling to [N, C] (or [N, C, 1, ...] with keepdims)."""

    def __init__(self, rank: int, kind: str, keepdims: bool) -> None:
        super().__init__()
        self.dims = tuple(range(2, 2 + rank))
        self.kind = kind
        self.keepdims = keepdims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "avg":
            return x.mean(dim=self.dims, keepdim=self.keepdims)
        return x.amax(dim=self.dims, keepdim=self.keepdims)

    def extra_repr(self) -> str:
        return f"kind={self.kind}, keepdims={self.keepdims}"


class FractalPath:
    """Which fractal column a training batch uses under global drop-path (shared by all joins)."""

    def __init__(self) -> None:
        self.column: int | None = None


class Join(nn.Module):
    """FractalNet's join: the mean of its inputs; drop-path while training.

    Local drop-path drops each input with probability ``drop_local`` (keeping at
    least one); under global drop-path (chosen per batch by the model with
    probability ``drop_global``) only the input from the sampled column passes.
    """

    def __init__(self, drop_local: float, drop_global: float, columns: Sequence[int], path: FractalPath) -> None:
        super().__init__()
        self.drop_local = drop_local
        self.drop_global = drop_global
        self.columns = tuple(columns)
        self.path = path

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if not self.training or (self.drop_local == 0 and self.path.column is None):
            return torch.stack(inputs).mean(dim=0)
        if self.path.column is not None:
            if self.path.column in self.columns:
                return inputs[self.columns.index(self.path.column)]
            return torch.stack(inputs).mean(dim=0)
        keep = torch.rand(len(inputs)) >= self.drop_local
        if not bool(keep.any()):
            keep[int(torch.randint(len(inputs), ()))] = True
        kept = [x for x, k in zip(inputs, keep.tolist(), strict=True) if k]
        return torch.stack(kept).mean(dim=0)

    def extra_repr(self) -> str:
        return f"drop_local={self.drop_local}, drop_global={self.drop_global}, columns={self.columns}"


def make_module(node: Node, attrs: dict[str, Any], in_shape: Sequence[int], fractal: FractalPath,
                inplace: bool = False) -> nn.Module | None:
    """The nn.Module for one node, or None for ops lowered as functions (add, concat, mean).

    Built from the same constructor description the emitted source prints, so the
    in-memory module and `specdsl build`'s file cannot drift apart.
    """
    ctor = module_source(node, attrs, tuple(in_shape), inplace)
    if ctor is None:
        return None
    if ctor.name == "Join":
        return Join(*ctor.args, fractal)
    cls = GlobalPool if ctor.name == "GlobalPool" else getattr(nn, ctor.name.removeprefix("nn."))
    return cls(*ctor.args, **dict(ctor.kwargs))


# -- initialisation -------------------------------------------------------------------


def initialise(module: nn.Module, node: Node, weights: Sequence[TensorSpec]) -> None:
    """Apply the node's initialisation plan (shared with the emitted source)."""
    for function, tensor, kwargs in init_calls(node, weights):
        getattr(nn.init, function)(getattr(module, tensor), **kwargs)


# -- the fx graph -----------------------------------------------------------------


def _attach(root: nn.Module, target: str, module: nn.Module) -> None:
    """Place ``module`` at dotted ``target``, creating plain containers on the way."""
    parent = root
    *prefix, last = target.split(".")
    for part in prefix:
        child = getattr(parent, part, None) if part in parent._modules else None
        if child is None:
            child = nn.Module()
            parent.add_module(part, child)
        parent = child
    if last in parent._modules:
        raise ValueError(f"two nodes lower to the same module path '{target}'")  # pragma: no cover
    parent.add_module(last, module)


def build_graph_module(model: Model, seed: int | None = None) -> fx.GraphModule:
    if seed is not None:
        torch.manual_seed(seed)
    root = nn.Module()
    graph = fx.Graph()
    fractal = FractalPath()
    values: list[fx.Node | None] = []
    figures = model.analysis.figures
    inplace = inplace_activations(model)
    for node in model.graph.nodes:
        if node.op == "input":
            value = graph.placeholder("x")
            value.meta["specdsl_index"] = node.index
            values.append(value)
            continue
        ins = [values[i] for i in node.inputs]
        in_shape = figures[node.inputs[0]].shape
        fig = figures[node.index]
        assert in_shape is not None and fig.shape is not None
        module = make_module(node, fig.attrs, in_shape, fractal, node.index in inplace)
        if module is not None:
            initialise(module, node, fig.weights)
            if node.frozen:
                for p in module.parameters():
                    p.requires_grad_(False)
            target = module_path(node.path)
            _attach(root, target, module)
            value = graph.call_module(target, tuple(ins))
        elif node.op == "add":
            value = ins[0]
            for other in ins[1:]:
                value = graph.call_function(operator.add, (value, other))
        elif node.op == "mean":
            total = ins[0]
            for other in ins[1:]:
                total = graph.call_function(operator.add, (total, other))
            value = graph.call_function(operator.truediv, (total, len(ins)))
        else:  # concat
            value = graph.call_function(torch.cat, (list(ins),), {"dim": fig.attrs.dim})
        value.meta["specdsl_index"] = node.index
        value.meta["specdsl_path"] = node.path
        values.append(value)
    graph.output(values[model.graph.output])
    gm = fx.GraphModule(root, graph, class_name=class_name(model.name))
    gm.meta["specdsl_fractal"] = fractal
    if any(n.op == "join" for n in model.graph.nodes):
        gm.register_forward_pre_hook(_sample_fractal_path(model, fractal))
    return gm


def _sample_fractal_path(model: Model, fractal: FractalPath) -> Any:
    joins = [n for n in model.graph.nodes if n.op == "join"]
    columns = max(max(j.args.columns or [1]) for j in joins)  # type: ignore[union-attr]
    drop_global = max(j.args.drop_global for j in joins)  # type: ignore[union-attr]

    def hook(module: nn.Module, inputs: Any) -> None:
        fractal.column = None
        if module.training and drop_global > 0 and float(torch.rand(())) < drop_global:
            fractal.column = int(torch.randint(1, columns + 1, ()))

    return hook


def load_model(source: Any) -> Model:
    from specdsl.api import load

    return source if isinstance(source, Model) else load(source)


def to_torch(source: Any, *, seed: int | None = None) -> fx.GraphModule:
    """A runnable ``nn.Module`` for a spec (path, zoo name, text or a loaded Model)."""
    return build_graph_module(load_model(source), seed=seed)


def capture(module: fx.GraphModule, model: Model, x: torch.Tensor) -> dict[int, torch.Tensor]:
    """Every node's output, by node index (for verification and differential tests)."""
    out: dict[int, torch.Tensor] = {}

    class _Recorder(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            value = super().run_node(n)
            index = n.meta.get("specdsl_index")
            if index is not None:
                # A copy: an in-place activation later would overwrite the producer's output.
                out[index] = value.detach().clone() if isinstance(value, torch.Tensor) else value
            return value

    _Recorder(module).run(x)
    return out


def param_counts(module: nn.Module, model: Model) -> dict[int, tuple[int, int]]:
    """(parameters, buffers) owned by each node's submodule, by node index."""
    subs = dict(module.named_modules())
    counts = {}
    for node in model.graph.nodes:
        sub = subs.get(module_path(node.path))
        if sub is None:
            counts[node.index] = (0, 0)
            continue
        params = sum(p.numel() for p in sub.parameters())
        buffers = sum(b.numel() for b in sub.buffers())
        counts[node.index] = (params, buffers)
    return counts


def example_input(model: Model, batch: int = 2, *, device: Any = "cpu", dtype: Any = torch.float32,
                  seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn((batch, *model.graph.input_shape), generator=gen, dtype=dtype).to(device)


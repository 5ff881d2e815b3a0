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
from torch import fx, nn

from specdsl.api import Model
from specdsl.ir import Node

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_DECONV = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_MAXPOOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_AVGPOOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}
_ADAPTIVE_AVG = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}
_ADAPTIVE_MAX = {1: nn.AdaptiveMaxPool1d, 2: nn.AdaptiveMaxPool2d, 3: nn.AdaptiveMaxPool3d}
_BATCHNORM = {0: nn.BatchNorm1d, 1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_INSTANCENORM = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}
_DROPOUT = {"dropout": nn.Dropout, "dropout1d": nn.Dropout1d, "dropout2d": nn.Dropout2d, "dropout3d": nn.Dropout3d}
_SIMPLE = {
    "relu": nn.ReLU, "relu6": nn.ReLU6, "silu": nn.SiLU, "hardswish": nn.Hardswish,
    "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "identity": nn.Identity,
}


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


def _rank(shape: Sequence[int]) -> int:
    return len(shape) - 1


def make_module(node: Node, attrs: dict[str, Any], in_shape: Sequence[int], fractal: FractalPath,
                inplace: bool = False) -> nn.Module | None:
    """The nn.Module for one node, or None for ops lowered as functions (add, concat, mean)."""
    op = node.op
    a = attrs
    args = node.args
    r = _rank(in_shape)
    if op == "conv":
        padding: Any = "same" if args.pad == "same" else a["padding"]  # type: ignore[union-attr]
        return _CONV[r](a["in_channels"], a["out_channels"], a["kernel"], stride=a["stride"], padding=padding,
                        dilation=a["dilation"], groups=a["groups"], bias=a["bias"], padding_mode=a["padding_mode"])
    if op == "deconv":
        return _DECONV[r](a["in_channels"], a["out_channels"], a["kernel"], stride=a["stride"], padding=a["padding"],
                          output_padding=a["output_padding"], groups=a["groups"], bias=a["bias"],
                          dilation=a["dilation"])
    if op == "maxpool":
        return _MAXPOOL[r](a["kernel"], stride=a["stride"], padding=a["padding"], dilation=a["dilation"],
                           ceil_mode=a["ceil_mode"])
    if op == "avgpool":
        return _AVGPOOL[r](a["kernel"], stride=a["stride"], padding=a["padding"], ceil_mode=a["ceil_mode"],
                           count_include_pad=a["count_include_pad"])
    if op in ("gap", "gmp"):
        return GlobalPool(r, "avg" if op == "gap" else "max", a["keepdims"])
    if op == "adaptive_avgpool":
        return _ADAPTIVE_AVG[r](a["out_size"])
    if op == "adaptive_maxpool":
        return _ADAPTIVE_MAX[r](a["out_size"])
    if op == "upsample":
        if a["scale"] is not None:
            return nn.Upsample(scale_factor=a["scale"], mode=a["mode"], align_corners=a["align_corners"])
        return nn.Upsample(size=a["size"], mode=a["mode"], align_corners=a["align_corners"])
    if op == "bn":
        return _BATCHNORM[r](a["num_features"], eps=a["eps"], momentum=a["momentum"], affine=a["affine"],
                             track_running_stats=a["track_running_stats"])
    if op == "instancenorm":
        return _INSTANCENORM[r](a["num_features"], eps=a["eps"], momentum=a["momentum"], affine=a["affine"],
                                track_running_stats=a["track_running_stats"])
    if op == "layernorm":
        return nn.LayerNorm(list(a["normalized_shape"]), eps=a["eps"], elementwise_affine=a["elementwise_affine"],
                            bias=a["bias"])
    if op == "groupnorm":
        return nn.GroupNorm(a["num_groups"], a["num_channels"], eps=a["eps"], affine=a["affine"])
    if op == "lrn":
        return nn.LocalResponseNorm(a["size"], alpha=a["alpha"], beta=a["beta"], k=a["k"])
    if op in ("relu", "relu6"):
        return nn.ReLU(inplace=inplace) if op == "relu" else nn.ReLU6(inplace=inplace)
    if op in _SIMPLE:
        return _SIMPLE[op]()
    if op == "leaky_relu":
        return nn.LeakyReLU(args.slope, inplace=inplace)  # type: ignore[union-attr]
    if op == "elu":
        return nn.ELU(args.alpha)  # type: ignore[union-attr]
    if op == "gelu":
        return nn.GELU(approximate=args.approximate)  # type: ignore[union-attr]
    if op == "softplus":
        return nn.Softplus(beta=args.beta, threshold=args.threshold)  # type: ignore[union-attr]
    if op == "softmax":
        return nn.Softmax(dim=a["dim"])
    if op == "log_softmax":
        return nn.LogSoftmax(dim=a["dim"])
    if op in _DROPOUT:
        return _DROPOUT[op](a["p"])
    if op == "flatten":
        return nn.Flatten(a["start_dim"], a["end_dim"])
    if op == "linear":
        return nn.Linear(a["in_features"], a["out_features"], bias=a["bias"])
    if op == "join":
        return Join(a["drop_local"], a["drop_global"], a["columns"], fractal)
    if op in ("add", "concat", "mean"):
        return None
    raise NotImplementedError(f"no PyTorch lowering for op '{op}'")  # pragma: no cover - every op is covered


# -- initialisation -------------------------------------------------------------------


def initialise(module: nn.Module, node: Node) -> None:
    """Apply the node's initialisation plan (shared with the emitted source)."""
    for function, tensor, kwargs in init_calls(node):
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
            initialise(module, node)
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
            value = graph.call_function(torch.cat, (list(ins),), {"dim": fig.attrs["dim"]})
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


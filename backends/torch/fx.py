"""Lower a checked model to PyTorch.

The graph becomes a ``torch.fx.GraphModule``: real ``nn.Module`` layers at
readable paths (``layers.4.body.0``) and a forward that fx generates as plain
Python once, so nothing re-interprets the graph per call. It works with CUDA,
channels_last, autocast, torch.compile, torch.export and DDP. Each node lowers
through ``lowerings.LOWERINGS``, the table the emitted source is written from too;
an error at run time names the spec node that raised it (``located.py``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import fx, nn

from specdsl.api import Model
from specdsl.backends.naming import class_name, init_calls, module_path
from specdsl.backends.torch import modules
from specdsl.backends.torch.located import FROZEN_NORMS, SpecGraphModule, locate
from specdsl.backends.torch.lowerings import Ctor, ModuleLowering, ParameterLowering, fractal_sampling, lowering_for
from specdsl.backends.torch.modules import FractalPath
from specdsl.backends.weights_match import MatchMode
from specdsl.ir import Node
from specdsl.ops.rule import NODE_ITSELF, TensorSpec
from specdsl.passes.inplace import inplace_activations


def make_module(ctor: Ctor, fractal: FractalPath) -> nn.Module:
    """The module a constructor description stands for: the same call the emitted file prints."""
    cls = getattr(nn, ctor.name.removeprefix("nn.")) if ctor.name.startswith("nn.") else getattr(modules, ctor.name)
    args = (*ctor.args, fractal) if ctor.fractal_path else ctor.args
    return cls(*args, **dict(ctor.kwargs))


# -- initialisation -------------------------------------------------------------------


def initialise(module: nn.Module, node: Node, weights: Sequence[TensorSpec]) -> None:
    """Apply the node's initialisation plan (shared with the emitted source)."""
    for function, tensor, kwargs in init_calls(node, weights):
        # A node's own parameter (TensorSpec.of_container) is the tensor itself.
        getattr(nn.init, function)(module if tensor == NODE_ITSELF else getattr(module, tensor), **kwargs)


# -- the fx graph -----------------------------------------------------------------


def _attach(root: nn.Module, target: str, module: nn.Module | nn.Parameter) -> None:
    """Place ``module`` (or a node's own parameter) at dotted ``target``, creating plain containers on the way."""
    parent = root
    *prefix, last = target.split(".")
    for part in prefix:
        child = getattr(parent, part, None) if part in parent._modules else None
        if child is None:
            child = nn.Module()
            parent.add_module(part, child)
        parent = child
    if last in parent._modules or last in parent._parameters:
        raise ValueError(f"two nodes lower to the same module path '{target}'")  # pragma: no cover
    if isinstance(module, nn.Parameter):
        parent.register_parameter(last, module)
    else:
        parent.add_module(last, module)


def build_graph_module(model: Model, seed: int | None = None) -> SpecGraphModule:
    if seed is not None:
        torch.manual_seed(seed)
    root = nn.Module()
    graph = fx.Graph()
    tracer = fx.proxy.GraphAppendingTracer(graph)
    fractal = FractalPath()
    ctors: list[Ctor] = []
    values: list[fx.Node] = []
    figures = model.analysis.figures
    inplace = inplace_activations(model.graph)
    for node in model.graph.nodes:
        if node.is_input:
            value = graph.placeholder("x")
            value.meta["specdsl_index"] = node.index
            values.append(value)
            continue
        ins = [values[i] for i in node.inputs]
        in_shape = figures[node.inputs[0]].shape
        fig = figures[node.index]
        assert in_shape is not None and fig.shape is not None
        lowering = lowering_for(node.op)
        if isinstance(lowering, ModuleLowering):
            ctor = lowering.ctor(fig.attrs, len(in_shape) - 1, node.index in inplace)
            ctors.append(ctor)
            module = make_module(ctor, fractal)
            initialise(module, node, fig.weights)
            if node.frozen:
                for p in module.parameters():
                    p.requires_grad_(False)
            target = module_path(node.path)
            _attach(root, target, module)
            value = graph.call_module(target, tuple(ins))
            locate(value, node)
        elif isinstance(lowering, ParameterLowering):
            # A parameter of the node's container, named by the node (torchvision's CNBlock.layer_scale).
            param = lowering.tensor(fig.attrs, len(in_shape) - 1, False).make(torch)
            initialise(param, node, fig.weights)
            param.requires_grad_(not node.frozen)
            target = module_path(node.path)
            _attach(root, target, param)
            mark = next(reversed(graph.nodes))
            value = lowering.apply(fx.Proxy(ins[0], tracer), fx.Proxy(graph.get_attr(target), tracer), fig.attrs,
                                   torch).node
            for added in _nodes_after(graph, mark):
                locate(added, node)
        else:
            # The lowering's Python operators on fx proxies record its graph nodes.
            mark = next(reversed(graph.nodes))
            value = lowering.apply([fx.Proxy(v, tracer) for v in ins], fig.attrs, torch).node
            for added in _nodes_after(graph, mark):
                locate(added, node)
        value.meta["specdsl_index"] = node.index
        values.append(value)
    g = model.graph
    if g.returns_dict:
        graph.output({key: values[i] for key, i in g.outputs if key is not None})  # returns_dict: all keyed
    elif g.returns_tuple:
        graph.output(tuple(values[i] for _, i in g.outputs))
    else:
        graph.output(values[g.output])
    gm = SpecGraphModule(root, graph, class_name=class_name(model.name))
    # Kept in meta, not in a forward hook: GraphModule's deepcopy keeps meta (sharing the copied
    # FractalPath with the copied joins) but drops forward hooks.
    gm.meta["specdsl_fractal"] = fractal
    keep_norms_fixed(gm, [n for n in model.graph.nodes if n.frozen])
    gm.meta["specdsl_fractal_sampling"] = fractal_sampling(ctors)
    return gm


def _nodes_after(graph: fx.Graph, mark: fx.Node) -> list[fx.Node]:
    out = []
    for n in reversed(graph.nodes):
        if n is mark:
            break
        out.append(n)
    return out


def load_model(source: Any, params: Mapping[str, Any] | None = None) -> Model:
    from specdsl.api import load

    if isinstance(source, Model):
        if params:
            raise TypeError("params= applies to a spec being loaded, not to a loaded Model: "
                            "pass it to specdsl.load instead")
        return source
    return load(source, params=params) if params else load(source)


def to_torch(source: Any, *, params: Mapping[str, Any] | None = None, seed: int | None = None,
             weights: str | os.PathLike[str] | None = None, transfer: bool = False,
             match: MatchMode = "name", freeze_until: str | None = None,
             allow_nonfinite: bool = False) -> SpecGraphModule:
    """A runnable ``nn.Module`` for a spec (path, zoo name, text or a loaded Model).

    ``params``: the model's parameters (``{"classes": 10}``), as ``specdsl.load`` takes them.
    ``weights``: a checkpoint (.safetensors, or a PyTorch file read with weights_only) whose keys
    are the spec's module names (the zoo's are torchvision's), matched by name, strictly;
    ``transfer``: keep the tensors whose name and shape fit and report the rest (``module.load_report``);
    ``match="position"``: match by order and shape instead, for a checkpoint whose names differ;
    ``freeze_until``: parameters of every layer up to and including this named node stop training,
    and its norms keep their statistics fixed in ``train()`` mode (as layers marked ``frozen``).
    """
    model = load_model(source, params)
    module = build_graph_module(model, seed=seed)
    if weights is not None:
        from specdsl.backends.torch.checkpoint import load_weights

        module.load_report = load_weights(module, model, weights, transfer=transfer, match=match,
                                          allow_nonfinite=allow_nonfinite)
    if freeze_until is not None:
        freeze(module, model, freeze_until)
    return module


def freeze(module: nn.Module, model: Model, until: str) -> list[str]:
    """Stop training every layer up to and including node ``until``; the frozen parameters' names."""
    from specdsl.errors import Diagnostic, SpecError, did_you_mean

    names = {n.name: n.index for n in model.graph.nodes if n.name}
    if until not in names:
        guess = did_you_mean(until, names)
        raise SpecError([Diagnostic("error", "E502", f"cannot freeze until '{until}': no node has that name", None,
                                    hint=f"did you mean '{guess}'?" if guess else "name a layer with `as NAME`")], {})
    # The node and everything it depends on: the "early layers" of a fine-tuning recipe.
    upstream = {names[until]}
    for node in reversed(model.graph.nodes[:names[until] + 1]):
        if node.index in upstream:
            upstream.update(node.inputs)
    frozen: list[str] = []
    params = dict(module.named_parameters())
    for node in model.graph.nodes:
        if node.index not in upstream or node.is_input:
            continue
        path = module_path(node.path)
        for key, p in params.items():
            # `path` itself: the node's own parameter (TensorSpec.of_container).
            if (key == path or key.startswith(path + ".")) and p.requires_grad:
                p.requires_grad_(False)
                frozen.append(key)
    keep_norms_fixed(module, [n for n in model.graph.nodes if n.index in upstream and not n.is_input])
    return frozen


def keep_norms_fixed(module: nn.Module, nodes: Sequence[Node]) -> None:
    """The frozen nodes' norms stay in eval mode (running statistics fixed) when the module trains."""
    subs = dict(module.named_modules())
    fixed = set(module.meta.get(FROZEN_NORMS, ())) if isinstance(module, fx.GraphModule) else set()
    for node in nodes:
        sub = subs.get(module_path(node.path))
        if isinstance(sub, nn.modules.batchnorm._NormBase):
            fixed.add(module_path(node.path))
            sub.eval()
    if isinstance(module, fx.GraphModule):
        module.meta[FROZEN_NORMS] = tuple(sorted(fixed))


def capture(module: fx.GraphModule, model: Model, x: torch.Tensor) -> dict[int, torch.Tensor]:
    """Every node's output, by node index (for verification and differential tests)."""
    out: dict[int, torch.Tensor] = {}
    figures = model.analysis.figures

    class _Recorder(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            value = super().run_node(n)
            index = n.meta.get("specdsl_index")
            if index is not None and isinstance(value, tuple):
                # A split's parts, recorded as the whole they partition: its static shape.
                out[index] = torch.cat([v.detach() for v in value], dim=figures[index].attrs.dim)
            elif index is not None:
                # A copy: an in-place activation later would overwrite the producer's output.
                out[index] = value.detach().clone() if isinstance(value, torch.Tensor) else value
            return value

    _Recorder(module).run(x)
    return out


def param_counts(module: nn.Module, model: Model) -> dict[int, tuple[int, int]]:
    """(parameters, buffers) owned by each node's submodule, by node index."""
    subs = dict(module.named_modules())
    own = dict(module.named_parameters())
    counts = {}
    for node in model.graph.nodes:
        sub = subs.get(module_path(node.path))
        if sub is None and module_path(node.path) in own:  # the node's own parameter (TensorSpec.of_container)
            counts[node.index] = (own[module_path(node.path)].numel(), 0)
            continue
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


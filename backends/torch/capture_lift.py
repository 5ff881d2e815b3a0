"""A traced torch model becomes a LiftedGraph: each call through the import table (imports.py).

``lift_module(module, input_shape)`` traces the module at a random input (capture.py) and walks its
graph once. A call whose value is a tensor (or a split's tuple of tensors) must be an op: the table's
entries for its module class, function or method read the op's arguments; a call whose value is a size
(``x.shape[-2:]``, ``x.size(0)``) is a constant its users read, remembering which node's shape it was.
A call no entry takes, or one its entry refuses, is an ``Unmapped`` with its module path, what it was and
its source line, and the walk goes on, so one report lists them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import fx, nn

from specdsl.backends.torch.capture import SCOPE, SOURCE, VALUE, DataDependent, trace
from specdsl.backends.torch.imports import IMPORTS, SAME, Index, Lift, Refuse, Site, index, ops_of_class
from specdsl.lift.graph import LiftedGraph, LiftedNode, Unmapped
from specdsl.ops import OPS

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


class CaptureFailed(Exception):
    """The model could not be traced at all (data-dependent control flow, a TraceError, a forward
    that raised): the unmapped list holds the one reason, located where Python says."""

    def __init__(self, unmapped: list[Unmapped]) -> None:
        super().__init__("; ".join(f"{u.path or '<root>'}: {u.reason}" for u in unmapped))
        self.unmapped = unmapped


def origin_of(node: fx.Node, root: nn.Module) -> str:
    """What the call was in the source model: ``nn.Conv2d``, ``torch.cat``, ``Tensor.view``."""
    if node.op == "call_module":
        cls = type(root.get_submodule(str(node.target)))
        where = cls.__module__
        return f"nn.{cls.__name__}" if where.startswith("torch.nn.modules") else f"{where}.{cls.__qualname__}"
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    target = node.target
    module = getattr(target, "__module__", None) or "torch"
    module = {"torch.nn.functional": "F", "_operator": "operator", "torch._C._nn": "F"}.get(module, module)
    return f"{module}.{getattr(target, '__name__', str(target))}"


def is_leaf(idx: Index) -> Callable[[nn.Module], bool]:
    """Modules the table knows stay one call; so does any other torch.nn layer (reported unmapped, since
    tracing into PyTorch's own code would only hide what it was)."""

    def leaf(m: nn.Module) -> bool:
        cls = type(m)
        return ops_of_class(idx, cls) is not None or (cls.__module__.startswith("torch.nn")
                                                      and not isinstance(m, _CONTAINERS))

    return leaf


def _flat(x: Any) -> Iterable[Any]:
    if isinstance(x, (list, tuple)):
        for item in x:
            yield from _flat(item)
    elif isinstance(x, dict):
        for item in x.values():
            yield from _flat(item)
    else:
        yield x


def _is_tensors(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    return isinstance(value, (tuple, list)) and bool(value) and all(isinstance(v, torch.Tensor) for v in value)


def _plain(value: Any) -> Any:
    """Argument values as a spec writes them: lists, not tuples; Python numbers."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return value


def _without_defaults(op: str, args: dict[str, Any]) -> dict[str, Any]:
    fields = OPS[op].args.model_fields
    out = {}
    for key, value in args.items():
        value = _plain(value)
        default = fields[key].default if key in fields else object()
        if value != default or (type(value) is not type(default) and not isinstance(value, bool | int | float)):
            out[key] = value
    return out


class _Walk:
    """One pass over the traced graph in order, building the lifted nodes."""

    def __init__(self, root: nn.Module, idx: Index) -> None:
        self.root = root
        self.idx = idx
        self.nodes: list[LiftedNode] = []
        self.unmapped: list[Unmapped] = []
        self.index_of: dict[fx.Node, int] = {}   # fx node -> lifted node
        self.shape_of: dict[fx.Node, int] = {}   # a size value -> the lifted node whose shape it is
        self.params: dict[fx.Node, str] = {}     # get_attr of a parameter or buffer -> its state_dict name
        # A selection from a split's tuple (``parts[1]``) waits until it is read, so the parts come in the
        # order the model uses them, as a spec writes them (``@halves.1 -> conv``, later ``@halves.0``).
        self.waiting: dict[fx.Node, LiftedNode] = {}

    def known(self, a: fx.Node) -> bool:
        return a in self.index_of or a in self.waiting

    def index(self, a: fx.Node) -> int:
        if a in self.waiting:
            self.index_of[a] = len(self.nodes)
            self.nodes.append(self.waiting.pop(a))
        return self.index_of[a]

    def run(self, graph: fx.Graph) -> tuple[int, ...]:
        outputs: tuple[int, ...] = ()
        for node in graph.nodes:
            if node.op == "placeholder":
                if not self.nodes:
                    self.nodes.append(LiftedNode("input", {}, (), "", False, "input"))
                    self.index_of[node] = 0
            elif node.op == "get_attr":
                self.params[node] = str(node.target)
            elif node.op == "output":
                outputs = tuple(self.index(a) for a in _flat(node.args[0])
                                if isinstance(a, fx.Node) and self.known(a))
            else:
                self.call(node)
        return outputs

    def call(self, node: fx.Node) -> None:
        value = node.meta[VALUE]
        operands = [a for a in _flat((node.args, node.kwargs)) if isinstance(a, fx.Node)]
        if not _is_tensors(value):  # a size, a dtype, a flag: a constant its users read
            sources = {self.shape_of.get(a, self.index_of.get(a)) for a in operands} - {None}
            if (len(sources) == 1 and node.target in (getattr, "size", _getitem())) or node.target == "dim":
                self.shape_of[node] = sources.pop()  # type: ignore[assignment]
            return
        inputs = [a for a in operands if self.known(a)]
        params = [(self.params[a], _real(self.root, self.params[a])) for a in operands if a in self.params]
        strays = [a for a in operands if not self.known(a) and a not in self.params and _is_tensors(a.meta[VALUE])]
        if strays:
            self.unmap(node, "reads a tensor made inside forward that no op makes (a constant or a copy)")
            return
        if params and not inputs:  # arithmetic on the model's own tensors (timm's gamma.reshape(1, -1, 1, 1)):
            self.params[node] = params[0][0]  # its users see that tensor, by its name
            return
        module = self.root.get_submodule(str(node.target)) if node.op == "call_module" else None
        shape_sources = [self.shape_of[a] for a in operands if a in self.shape_of]
        holders = {name.rpartition(".")[0] for name, _ in params}
        owner_path = holders.pop() if len(holders) == 1 else None
        site = Site(module, _values(node.args), _values(node.kwargs), [a.meta[VALUE] for a in inputs], value,
                    params, shape_sources[0] if shape_sources else None,
                    str(node.target) if node.op == "call_method" else "",
                    self.root.get_submodule(owner_path) if owner_path is not None else None, owner_path)
        for op in self.candidates(node, module):
            try:
                got = IMPORTS[op].read(site)  # type: ignore[misc]
            except Refuse as exc:
                self.unmap(node, str(exc), inputs)
                return
            except (IndexError, KeyError, AttributeError, TypeError, ValueError) as exc:  # a form it never saw
                self.unmap(node, f"{op}'s import entry cannot read this call ({type(exc).__name__}: {exc})", inputs)
                return
            if got is None:
                continue
            if got is SAME:
                self.index_of[node] = self.index(inputs[0])
                return
            self.add(node, op, got, inputs)
            return
        what = "module" if module is not None else "function" if node.op == "call_function" else "method"
        self.unmap(node, f"no op's import entry takes this {what}" if self.candidates(node, module) == []
                   else "no op's import entry takes this call as written", inputs)

    def candidates(self, node: fx.Node, module: nn.Module | None) -> list[str]:
        if module is not None:
            return ops_of_class(self.idx, type(module)) or []
        if node.op == "call_method":
            return self.idx.by_method.get(str(node.target), [])
        try:
            return self.idx.by_function.get(node.target, [])
        except TypeError:  # an unhashable target
            return []

    def add(self, node: fx.Node, op: str, got: Any, reads: list[fx.Node]) -> None:
        lift = got if isinstance(got, Lift) else Lift(got)
        selects = len(reads) == 1 and isinstance(reads[0].meta[VALUE], tuple | list)
        inputs = [self.index(a) for a in reads]
        ins = tuple(inputs[0] if i == -1 else i for i in lift.inputs) if lift.inputs is not None else tuple(inputs)
        if node.op == "call_module":
            path, is_module = str(node.target), True
        else:
            path, is_module = node.meta.get(SCOPE, ""), False
        if lift.path is not None:
            path, is_module = lift.path, True
        for before_op, before_args in lift.before:  # the ops the call is before this one, each reading the last
            self.nodes.append(LiftedNode(before_op, _without_defaults(before_op, before_args), ins[:1], path, False,
                                         origin_of(node, self.root), node.meta.get(SOURCE)))
            ins = (len(self.nodes) - 1, *ins[1:])
        lifted = LiftedNode(op, _without_defaults(op, lift.args), ins, path, is_module, origin_of(node, self.root),
                            node.meta.get(SOURCE))
        if selects:
            self.waiting[node] = lifted
            return
        self.index_of[node] = len(self.nodes)
        self.nodes.append(lifted)

    def unmap(self, node: fx.Node, reason: str, inputs: list[fx.Node] | None = None) -> None:
        path = str(node.target) if node.op == "call_module" else node.meta.get(SCOPE, "")
        self.unmapped.append(Unmapped(path, origin_of(node, self.root), reason, node.meta.get(SOURCE)))
        if inputs:  # the graph stays connected through it, so every later unmapped node is found too
            self.index_of[node] = self.index(inputs[0])


def _real(root: nn.Module, target: str) -> Any:
    """A parameter or buffer of the model itself (the trace's values are meta tensors)."""
    value: Any = root
    for part in target.split("."):
        value = getattr(value, part)
    return value


def _getitem() -> Any:
    import operator

    return operator.getitem


def _values(x: Any) -> Any:
    return fx.node.map_aggregate(x, lambda a: a.meta[VALUE] if isinstance(a, fx.Node) else a)


def _trace(module: nn.Module, example: torch.Tensor, idx: Index, record_lines: bool) -> fx.Graph:
    try:
        return trace(module, example, is_leaf(idx), idx.autowrap, record_lines)
    except DataDependent as exc:
        raise CaptureFailed([Unmapped(exc.scope, "control flow",
                                      f"{exc.what} (data-dependent control flow: no trace stands for it)",
                                      exc.source)]) from None
    except Exception as exc:  # whatever the user's forward raised under tracing, located
        import traceback

        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if "/torch/" not in f.filename and "/backends/torch/" not in f.filename]
        source = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else None
        raise CaptureFailed([Unmapped("", type(exc).__name__, str(exc).splitlines()[0] if str(exc) else
                                      type(exc).__name__, source)]) from None


def lift_module(module: nn.Module, input_shape: tuple[int, ...], *, name: str | None = None, batch: int = 2,
                weights: bool = True, seed: int = 0) -> LiftedGraph:
    """The model as specdsl ops. ``input_shape`` excludes the batch; the trace runs at ``batch`` (2, so
    that the batch axis differs from any axis of size 1). The module is put in eval mode."""
    idx = index()
    module.eval()
    generator = torch.Generator().manual_seed(seed)
    example = torch.randn((batch, *input_shape), generator=generator)
    walk = _Walk(module, idx)
    outputs = walk.run(_trace(module, example, idx, record_lines=False))
    if walk.unmapped:  # again, recording the source lines the report shows (only now: it costs)
        walk = _Walk(module, idx)
        outputs = walk.run(_trace(module, example, idx, record_lines=True))
    classes = {path: type(m).__name__ for path, m in module.named_modules()}
    state = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()} if weights else {}
    return LiftedGraph(name or type(module).__name__, tuple(input_shape), walk.nodes, outputs, classes,
                       walk.unmapped, state)

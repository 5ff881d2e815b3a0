"""Trace an ``nn.Module`` at a concrete input: torch.fx, with every node's value computed as it is made.

A plain ``symbolic_trace`` knows no shapes, so ``x.view(x.size(0), -1)``, ``len(x.shape)`` or
``if x.shape[-1] > 7`` stop it. This tracer runs each node on real tensors while it records it
(the value lands in ``node.meta["value"]``), so a size, an ``int()`` of a size or a branch on a
shape takes its value at the given input, as ``torch.export`` specialises shapes. A branch or an
``int()`` on a tensor's *values* is data-dependent control flow: it is refused (``DataDependent``),
never guessed. Which modules stay whole (leaves) and which functions are recorded as one call is
the import table's knowledge (``imports.py``); everything else is traced through, so a user's own
module becomes the ops its forward calls.
"""

from __future__ import annotations

import operator
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import fx, nn

VALUE = "value"          # node.meta key: the node's value at the traced input
SCOPE = "scope"          # node.meta key: the module path whose forward made the node
SOURCE = "source_line"   # node.meta key: "file.py:123" of the user's line, when recorded


class DataDependent(Exception):
    """Control flow (``if``, ``int()``, ``len``) on a tensor's values: no trace can stand for it."""

    def __init__(self, what: str, scope: str, source: str | None) -> None:
        super().__init__(what)
        self.what = what
        self.scope = scope
        self.source = source


def _value(x: Any) -> Any:
    return fx.node.map_aggregate(x, lambda a: a.meta[VALUE] if isinstance(a, fx.Node) else a)


def _user_line() -> str | None:
    """The innermost line outside torch and this package: where the user's forward made the call."""
    for frame in reversed(traceback.extract_stack()):
        name = frame.filename.replace("\\", "/")
        if "/torch/" in name or "/specdsl/" in name or "/backends/torch/" in name or name.startswith("<"):
            continue
        return f"{frame.filename}:{frame.lineno}"
    return None


class _Proxy(fx.Proxy):
    """A proxy whose node has a value: ``len``, iteration, ``bool`` and ``int`` read it."""

    def __getattr__(self, k: str) -> fx.proxy.Attribute:
        return _Attribute(self, k)

    def _concrete(self, what: str) -> Any:
        value = self.node.meta[VALUE]
        if isinstance(value, torch.Tensor):
            tracer = self.tracer
            assert isinstance(tracer, ConcreteTracer)
            raise DataDependent(f"{what} a tensor's values", tracer.scope.module_path, _user_line())
        return value

    def __len__(self) -> int:
        value = self.node.meta[VALUE]
        return len(value)  # a tensor's len is its batch: a shape, not data

    def __iter__(self) -> Iterator[fx.Proxy]:
        return (self[i] for i in range(len(self)))  # type: ignore[index]

    def __bool__(self) -> bool:
        return bool(self._concrete("a branch (if, while, and, or) on"))

    def __int__(self) -> int:
        return int(self._concrete("int() of"))

    def __index__(self) -> int:
        return operator.index(self._concrete("an index made of"))

    def __float__(self) -> float:
        return float(self._concrete("float() of"))


class _Attribute(fx.proxy.Attribute, _Proxy):
    pass


class ConcreteTracer(fx.Tracer):
    """fx's tracer with values: ``is_leaf`` says which modules stay one call (the import table's)."""

    def __init__(self, is_leaf: Callable[[nn.Module], bool], autowrap: tuple[Callable[..., Any], ...] = (),
                 record_lines: bool = False) -> None:
        super().__init__(autowrap_functions=autowrap)
        # fx patches a wrapped function only where the root's forward sees it; a submodule's forward
        # (torchvision's InvertedResidual calling channel_shuffle) finds it in its own module's globals.
        import sys

        homes = [sys.modules[f.__module__] for f in autowrap if f.__module__ in sys.modules]
        self._autowrap_search = list(self._autowrap_search) + homes
        self._is_leaf = is_leaf
        self._record_lines = record_lines
        self._running = False

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return self._is_leaf(m)

    def call_module(self, m: nn.Module, forward: Callable[..., Any], args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> Any:
        # Computing a leaf's value calls it on tensors while fx's patch of Module.__call__ is in place:
        # those calls (and any submodule calls inside) just run.
        if self._running:
            return forward(*args, **kwargs)
        return super().call_module(m, forward, args, kwargs)

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]) -> Any:
        if self._running:  # a leaf's own weights while computing its value: the tensors themselves
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return _Proxy(node, self)

    def to_bool(self, obj: fx.Proxy) -> bool:
        return bool(obj)

    def iter(self, obj: fx.Proxy) -> Iterator[fx.Proxy]:
        return iter(obj)

    def create_node(self, kind: str, target: Any, args: Any, kwargs: Any, name: str | None = None,
                    type_expr: Any | None = None) -> fx.Node:
        node = super().create_node(kind, target, args, kwargs, name, type_expr)
        node.meta[SCOPE] = self.scope.module_path
        if self._record_lines and kind in ("call_module", "call_function", "call_method"):
            node.meta[SOURCE] = _user_line()
        if kind == "placeholder":  # the model input first; a later argument keeps its default
            first = not any(n.op == "placeholder" for n in self.graph.nodes if n is not node)
            node.meta[VALUE] = self._example if first else (args[0] if args else None)
        elif kind != "output":
            node.meta[VALUE] = self._run(kind, target, _value(args), _value(kwargs))
        return node

    def _run(self, kind: str, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self._running = True
        try:
            return self._call(kind, target, args, kwargs)
        finally:
            self._running = False

    def _call(self, kind: str, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if kind == "get_attr":
            return _attribute(self._meta, str(target))
        if kind == "call_module":
            return self._meta.get_submodule(target)(*args, **kwargs)
        if kind == "call_method":
            return getattr(args[0], target)(*args[1:], **kwargs)
        return target(*args, **kwargs)

    def trace_at(self, root: nn.Module, example: torch.Tensor) -> fx.Graph:
        # Values are computed on the meta device: shapes without arithmetic, so a large model traces in
        # the time its Python takes. The copy shares nothing with the model (its tensors are meta).
        self._meta = _meta_copy(root)
        self._example = example.to("meta")
        cls = type(root)
        if _takes_star_args(cls.forward):  # forward(*args, **kwargs) (an fx GraphModule's): one tensor here
            root.__class__ = type(cls.__name__, (cls,), {"forward": lambda self, x: cls.forward(self, x)})
        try:
            with torch.no_grad():
                return self.trace(root)
        finally:
            root.__class__ = cls


def _takes_star_args(fn: Callable[..., Any]) -> bool:
    import inspect

    kinds = {p.kind for p in inspect.signature(fn).parameters.values()}
    return inspect.Parameter.VAR_POSITIONAL in kinds or inspect.Parameter.VAR_KEYWORD in kinds


def _meta_copy(root: nn.Module) -> nn.Module:
    """The module with every parameter and buffer on the meta device, the originals untouched (and
    not copied: the deep copy is told each tensor's stand-in before it starts)."""
    import copy

    memo: dict[int, Any] = {}
    for t in [*root.parameters(), *root.buffers()]:
        meta = torch.empty_like(t, device="meta")
        memo[id(t)] = nn.Parameter(meta, requires_grad=t.requires_grad) if isinstance(t, nn.Parameter) else meta
    return copy.deepcopy(root, memo)


def _attribute(root: nn.Module, target: str) -> Any:
    value: Any = root
    for part in target.split("."):
        value = getattr(value, part)
    return value


def trace(module: nn.Module, example: torch.Tensor, is_leaf: Callable[[nn.Module], bool],
          autowrap: tuple[Callable[..., Any], ...] = (), record_lines: bool = False) -> fx.Graph:
    """The module's graph at ``example`` (which includes the batch axis), each node with its value
    and scope. Raises ``DataDependent`` for control flow on values, fx's ``TraceError`` and whatever the
    module's forward raises otherwise."""
    tracer = ConcreteTracer(is_leaf, autowrap, record_lines)
    return tracer.trace_at(module, example)

"""Errors at run time that name the spec node at fault, as torch.fx's Interpreter does.

``to_torch`` returns a :class:`SpecGraphModule`: a ``GraphModule`` whose fx-generated
forward runs unchanged, inside one ``try``. When it raises, the traceback's line in the
generated code names the fx node that failed; its meta (set by :func:`locate`) names the
spec node, and the exception's message gains

    While executing layers[4][0].body[0] (conv) at <zoo>/resnet18.cnn:6:5
      while expanding block 'basic' (c=64, stride=1) called at <zoo>/resnet18.cnn:13:5 (layers[4][0])

The exception keeps its type and traceback (a ``KeyError``, whose message is its repr,
becomes a ``RuntimeError`` raised from it). Success costs one Python call, not one per node.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import TracebackType
from typing import Any

import torch
from torch import fx

from specdsl.backends.weights_match import LoadReport
from specdsl.ir import Node

_ASSIGNED = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=")
_MARK = "While executing "


def locate(value: fx.Node, node: Node) -> None:
    """Record in an fx node's meta which spec node it computes (part of)."""
    value.meta["specdsl_path"] = node.path
    value.meta["specdsl_op"] = node.op
    value.meta["specdsl_loc"] = node.loc
    value.meta["specdsl_notes"] = node.notes


# GraphModule.meta key: module paths of the frozen layers' norms (kept in eval mode by train()).
FROZEN_NORMS = "specdsl_frozen_norms"


class SpecGraphModule(fx.GraphModule):
    """A GraphModule whose errors say which spec node failed (see the module docstring)."""

    # Set by to_torch(weights=...): which checkpoint tensors were loaded and which left out.
    load_report: LoadReport

    def recompile(self) -> Any:
        code = super().recompile()
        cls = type(self)
        generated = cls.forward  # what fx just compiled from the graph
        cls.forward = _located_forward(generated)
        return code

    def train(self, mode: bool = True) -> SpecGraphModule:
        """As nn.Module.train, but the norms of frozen layers stay in eval mode: a frozen backbone's
        batch-norm statistics do not drift while the head trains."""
        super().train(mode)
        for path in self.meta.get(FROZEN_NORMS, ()):
            self.get_submodule(path).eval()
        return self

    def sample_fractal_column(self) -> None:
        """Global drop-path: per training batch, maybe pick the one fractal column every join passes."""
        sampling = self.meta.get("specdsl_fractal_sampling")
        if sampling is None:
            return
        columns, drop_global = sampling
        fractal = self.meta["specdsl_fractal"]
        fractal.column = None
        if self.training and drop_global > 0 and float(torch.rand(())) < drop_global:
            fractal.column = int(torch.randint(1, columns + 1, ()))

    def spec_node_at(self, tb: TracebackType | None, code: Any) -> fx.Node | None:
        """The fx node whose line of the generated forward (compiled to ``code``) raised, if any."""
        while tb is not None and tb.tb_frame.f_code is not code:
            tb = tb.tb_next
        if tb is None:
            return None
        lines = self.code.splitlines()
        match = _ASSIGNED.match(lines[tb.tb_lineno - 1]) if 0 < tb.tb_lineno <= len(lines) else None
        if match is None:
            return None
        return next((n for n in self.graph.nodes if n.name == match.group(1)), None)


def _located_forward(generated: Callable[..., Any]) -> Callable[..., Any]:
    def forward(self: SpecGraphModule, *args: Any, **kwargs: Any) -> Any:
        self.sample_fractal_column()
        try:
            return generated(self, *args, **kwargs)
        except Exception as exc:
            node = self.spec_node_at(exc.__traceback__, generated.__code__)
            if node is None or "specdsl_path" not in node.meta:
                raise
            message = _message(exc, node.meta)
            if message is None:
                raise
            if isinstance(exc, KeyError) or not _settable(exc, message):
                raise RuntimeError(message) from exc
            raise

    forward.__doc__ = generated.__doc__
    return forward


def _message(exc: BaseException, meta: dict[str, Any]) -> str | None:
    """The exception's message with the spec node added, or None if it already names one."""
    text = str(exc.args[0]) if exc.args else type(exc).__name__
    if _MARK in text:
        return None
    where = f"{_MARK}{meta['specdsl_path']} ({meta['specdsl_op']})"
    if meta.get("specdsl_loc") is not None:
        where += f" at {meta['specdsl_loc']}"
    notes = "".join(f"\n  {note}" for note in meta.get("specdsl_notes", ()))
    return f"{text}\n\n{where}{notes}"


def _settable(exc: BaseException, message: str) -> bool:
    """Put ``message`` in place of the exception's own, if its str() then shows it."""
    if not exc.args or not isinstance(exc.args[0], str):
        return False
    old = exc.args
    exc.args = (message, *old[1:])
    if message in str(exc):
        return True
    exc.args = old
    return False

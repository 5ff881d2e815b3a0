"""Module paths of imported ONNX nodes, so the recovered spec's state_dict keys are the original's.

Where the names come from, best first:

* the weights: torch.onnx names initializers by state_dict key (``layer1.0.conv1.weight``) and so
  does specdsl's export, so a node with weights is the module its tensors' keys name;
* specdsl's own export names each node after its spec path (``layer1.0.conv1``, helpers
  ``layer1.0.conv1/pad``);
* torch.onnx's module scopes: the dynamo exporter's ``pkg.torch.onnx.name_scopes`` metadata
  (with each module's class), the TorchScript exporter's node names
  (``/layer1/layer1.0/relu_1/Relu``: a module called a second time gets ``_1``); a node the
  dynamo exporter's optimizer made without metadata (the Slices of a chunk fused into one Split)
  sits in the innermost module holding every node that reads it, short of a torch.nn layer;
* otherwise positions, as in an nn.Sequential (``0``, ``1``, ...).

A node is a module of its own (``LiftedNode.is_module``) where PyTorch runs its op as a module
(the torch lowering table says which) and its scope holds nothing else; otherwise its path is the
module whose forward called it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import onnx
from onnx import NodeProto

from specdsl.backends.onnx.imports_reader import Match, Reader
from specdsl.backends.torch.lowering_types import FunctionLowering
from specdsl.backends.torch.lowerings import LOWERINGS as TORCH_LOWERINGS

_MODULE_PATH = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")
_FRAME = re.compile(r'File "([^"]+)", line (\d+)')
_DOC = re.compile(r"(.+?:\d+): ")
_REUSED = re.compile(r"(.+)_(\d+)")
_PARAMETER = re.compile(r"%p_([A-Za-z0-9_]+)")  # a parameter's placeholder in torch.export's FX graph


def module_op(op: str) -> bool:
    """Whether PyTorch runs the op as a module (nn.Conv2d, nn.ReLU), not as a function call."""
    return not isinstance(TORCH_LOWERINGS[op], FunctionLowering)


class Namer:
    """The module path of each match, from what the ONNX file carries (see the module's docstring)."""

    def __init__(self, model: onnx.ModelProto, reader: Reader) -> None:
        self.specdsl = model.producer_name == "specdsl"
        g = model.graph
        # Names specdsl's builder reserved before any node: a node named like one got a suffix.
        self._reserved = {*(i.name for i in g.input), *(o.name for o in g.output), *(t.name for t in g.initializer)}
        self.reader = reader
        self.classes: dict[str, str] = {}
        self._scopes: dict[int, str | None] = {}
        self._members: dict[str, set[str]] = {}  # scope -> ops of the matches in it or under it
        self._exact: dict[str, set[str]] = {}  # scope -> ops of the matches exactly in it
        self._layers: set[str] = set()  # scopes of torch.nn's own modules (no container): one op's module
        self._position = 0

    def prepare(self, matches: Iterable[tuple[str, Match]]) -> None:
        """Read every match's scope first: whether a scope is one node's own module depends on all."""
        pairs = list(matches)
        raw = {id(m.nodes[0]): self._scope(m.nodes[0]) for _, m in pairs}
        if any(s is not None for s in raw.values()):  # a file with scopes: the few without, by their readers
            for _, m in pairs:
                if raw[id(m.nodes[0])] is None:
                    raw[id(m.nodes[0])] = self._readers_scope(m)
        seen = {s for s in raw.values() if s}
        for key, scope in raw.items():
            reused = _REUSED.fullmatch(scope or "")
            self._scopes[key] = reused.group(1) if reused and reused.group(1) in seen else scope
        for op, m in pairs:
            scope = self._scopes[id(m.nodes[0])]
            if scope is None:
                continue
            self._exact.setdefault(scope, set()).add(op)
            parts = scope.split(".")
            for k in range(len(parts) + 1):
                self._members.setdefault(".".join(parts[:k]), set()).add(op if k == len(parts) else "")

    def path(self, op: str, m: Match) -> tuple[str, bool]:
        """(module path, is_module) of one match."""
        anchor = m.nodes[0]
        named = self._from_weights(m)
        if named is not None:
            return named, True
        if self.specdsl and anchor.name:
            name = anchor.name.split("/")[0]
            reserved = _REUSED.fullmatch(name)
            if reserved and reserved.group(1) in self._reserved:
                name = reserved.group(1)
            if module_op(op):
                return name, True
            return name.rpartition(".")[0], False
        scope = self._scopes.get(id(anchor))
        if scope is None:
            if not module_op(op):
                return "", False
            self._position += 1
            return str(self._position - 1), True
        own = bool(scope) and module_op(op) and self._members.get(scope) == {op} and self._exact.get(scope) == {op}
        return scope, own

    def _from_weights(self, m: Match) -> str | None:
        for name, tensor in m.weights.items():
            source = tensor.source
            readers = {id(u) for u in self.reader.users.get(source, []) if id(u) not in self.reader.static}
            if len(readers) > 1:  # shared (torch.onnx's optimizer merges equal constants): another module's name
                named = self._from_fx(m, name, source)
                if named is None:
                    continue
                return named
            candidate = source if not name else source[:-len(name) - 1] if source.endswith("." + name) else None
            if candidate and _MODULE_PATH.fullmatch(candidate) and not candidate.isdigit():
                return candidate
        return None

    def _from_fx(self, m: Match, name: str, source: str) -> str | None:
        """The module path of a shared weight from the dynamo exporter's FX node of its reader, whose
        arguments name each parameter (``%p_features_1_0_layer_scale``: dots as underscores), read
        against the reader's module scope; None where it does not say."""
        for node in m.nodes:
            if source not in node.input:
                continue
            meta = {p.key: p.value for p in node.metadata_props}
            scopes = _QUOTED.findall(meta.get("pkg.torch.onnx.name_scopes", ""))
            if len(scopes) < 2:
                return None
            scope = scopes[-2]
            stem = f"{scope.replace('.', '_')}_" if scope else ""
            for mangled in _PARAMETER.findall(meta.get("pkg.torch.onnx.fx_node", "")):
                rest = mangled[len(stem):] if mangled.startswith(stem) else None
                if rest and name and rest == name:
                    return scope
                if rest and not name and _MODULE_PATH.fullmatch(rest):
                    return f"{scope}.{rest}" if scope else rest
        return None

    def _readers_scope(self, m: Match) -> str | None:
        """The innermost module holding every node that reads the match's outputs (whose scopes are
        known), stepping out of a torch.nn layer (a layer's scope is its own op's); None if none is."""
        readers = [u for out in (m.output, *m.parts) for u in self.reader.users.get(out, [])]
        found = [s.split(".") if s else [] for s in (self._scope(u) for u in readers) if s is not None]
        if not found:
            return None
        common = found[0]
        for segments in found[1:]:
            same = [a == b for a, b in zip(common, segments, strict=False)]
            common = common[:same.index(False) if False in same else len(same)]
        scope = ".".join(common)
        while scope in self._layers:
            scope = scope.rpartition(".")[0]
        return scope

    def _scope(self, node: NodeProto) -> str | None:
        """The module that made the node, from torch.onnx's metadata or node name; None if unknown."""
        meta = {p.key: p.value for p in node.metadata_props}
        scopes = _QUOTED.findall(meta.get("pkg.torch.onnx.name_scopes", ""))
        if len(scopes) >= 2:
            classes = _QUOTED.findall(meta.get("pkg.torch.onnx.class_hierarchy", ""))
            for scope, cls in zip(scopes[:-1], classes, strict=False):
                self.classes.setdefault(scope, cls.rpartition(".")[2])
                if cls.startswith("torch.nn.modules.") and not cls.startswith("torch.nn.modules.container."):
                    self._layers.add(scope)
            return scopes[-2]
        if node.name.startswith("/"):
            # Each segment names a module from the nearest ancestor that is no nn.Sequential's
            # child: '/features/features.1/block/block.0/block.0.0/Conv' is features.1.block.0.0.
            base, last = "", ""
            for segment in node.name.split("/")[1:-1]:
                if not (last and segment.startswith(last + ".")):
                    base = f"{base}{last}." if last else base
                last = segment
            return base + last
        return None

    def site(self, node: NodeProto) -> str:
        """Where an unmapped node sits, for its report."""
        if self.specdsl:
            return node.name.split("/")[0]
        scope = self._scope(node)
        return scope if scope is not None else node.name or node.output[0]

    def source(self, node: NodeProto) -> str | None:
        """``file:line`` of the code that made the node, where the file says: specdsl's doc strings,
        torch.onnx's stack traces (the last frame outside torch itself)."""
        if self.specdsl:
            found = _DOC.match(node.doc_string)
            return found.group(1) if found else None
        trace = {p.key: p.value for p in node.metadata_props}.get("pkg.torch.onnx.stack_trace", "")
        frames = [f for f in _FRAME.findall(trace) if "/torch/" not in f[0]]
        return f"{frames[-1][0]}:{frames[-1][1]}" if frames else None

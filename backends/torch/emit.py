"""Emit a standalone, readable PyTorch file for a checked model.

The file imports only torch. Submodules sit at the same dotted paths as in
``to_torch`` (so state_dicts are interchangeable), and forward reads like
torchvision's, with the static shape after every line. No spec string is ever
pasted into code: names are checked identifiers, every literal goes through
``repr``, and the result is parsed with ``ast`` before it is returned.
"""

from __future__ import annotations

import ast
import functools
import keyword
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from specdsl.backends.naming import class_name, init_calls, inplace_activations, module_path
from specdsl.backends.torch.safety import check as check_source

from specdsl.api import Model
from specdsl.ir import BlockCall, Node
from specdsl.ops.rule import TensorSpec

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_RESERVED = {"self", "torch", "nn", "x", "super", "print", "input"}

_HELPERS = {
    "GlobalPool": '''
class GlobalPool(nn.Module):
    """Global average or max pooling over every spatial axis."""

    def __init__(self, rank: int, kind: str, keepdims: bool) -> None:
        super().__init__()
        self.dims = tuple(range(2, 2 + rank))
        self.kind = kind
        self.keepdims = keepdims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "avg":
            return x.mean(dim=self.dims, keepdim=self.keepdims)
        return x.amax(dim=self.dims, keepdim=self.keepdims)
''',
    "Join": '''
class FractalPath:
    """The fractal column a training batch uses under global drop-path."""

    def __init__(self) -> None:
        self.column = None


class Join(nn.Module):
    """FractalNet join: the mean of its inputs, with drop-path while training."""

    def __init__(self, drop_local: float, drop_global: float, columns: tuple, path: FractalPath) -> None:
        super().__init__()
        self.drop_local = drop_local
        self.drop_global = drop_global
        self.columns = columns
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
        kept = [x for x, k in zip(inputs, keep.tolist()) if k]
        return torch.stack(kept).mean(dim=0)
''',
}

_DIMS = {1: "1d", 2: "2d", 3: "3d"}


@dataclass(frozen=True)
class Ctor:
    """A module constructor call, kept as data so integers can become expressions."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    # Positions (int index or kwarg name) holding channel counts: in / out.
    channels_in: tuple[Any, ...] = ()
    channels_out: tuple[Any, ...] = ()
    raw: str | None = None  # source text when it is not name(args) (the fractal Join's self.fractal_path)

    def render(self, exprs: dict[Any, str] | None = None) -> str:
        if self.raw is not None:
            return self.raw
        exprs = exprs or {}
        parts = [exprs.get(i, _literal(a)) for i, a in enumerate(self.args)]
        parts += [f"{k}={exprs.get(k, _literal(v))}" for k, v in self.kwargs]
        return f"{self.name}({', '.join(parts)})"

    def slots(self) -> list[tuple[Any, Any]]:
        """(position, value) of every argument."""
        return [*enumerate(self.args), *self.kwargs]


def _literal(value: Any) -> str:
    return repr(value)


def _call(name: str, *args: Any, channels_in: tuple[Any, ...] = (), channels_out: tuple[Any, ...] = (),
          **kwargs: Any) -> Ctor:
    return Ctor(name, tuple(args), tuple(kwargs.items()), channels_in, channels_out)


def _axes(values: tuple[int, ...]) -> Any:
    return values[0] if len(set(values)) == 1 else values


def module_source(node: Node, a: Any, in_shape: tuple[int, ...], inplace: bool = False) -> Ctor | None:
    """Constructor expression for a node's module (None for add / concat / mean)."""
    op = node.op
    args: Any = node.args
    r = len(in_shape) - 1
    d = _DIMS.get(r, "1d")
    if op == "conv":
        kw: dict[str, Any] = {"kernel_size": _axes(a.kernel)}
        if any(s != 1 for s in a.stride):
            kw["stride"] = _axes(a.stride)
        if a.same:
            kw["padding"] = "same"
        elif any(a.padding):
            kw["padding"] = _axes(a.padding)
        if any(v != 1 for v in a.dilation):
            kw["dilation"] = _axes(a.dilation)
        if a.groups != 1:
            kw["groups"] = a.groups
        if not a.bias:
            kw["bias"] = False
        if a.padding_mode != "zeros":
            kw["padding_mode"] = a.padding_mode
        return _call(f"nn.Conv{d}", a.in_channels, a.out_channels, channels_in=(0,), channels_out=(1,), **kw)
    if op == "deconv":
        kw = {"kernel_size": _axes(a.kernel), "stride": _axes(a.stride), "padding": _axes(a.padding)}
        if any(a.output_padding):
            kw["output_padding"] = _axes(a.output_padding)
        if a.groups != 1:
            kw["groups"] = a.groups
        if not a.bias:
            kw["bias"] = False
        if any(v != 1 for v in a.dilation):
            kw["dilation"] = _axes(a.dilation)
        return _call(f"nn.ConvTranspose{d}", a.in_channels, a.out_channels, channels_in=(0,),
                     channels_out=(1,), **kw)
    if op == "maxpool":
        kw = {"kernel_size": _axes(a.kernel), "stride": _axes(a.stride)}
        if any(a.padding):
            kw["padding"] = _axes(a.padding)
        if any(v != 1 for v in a.dilation):
            kw["dilation"] = _axes(a.dilation)
        if a.ceil_mode:
            kw["ceil_mode"] = True
        return _call(f"nn.MaxPool{d}", **kw)
    if op == "avgpool":
        kw = {"kernel_size": _axes(a.kernel), "stride": _axes(a.stride)}
        if any(a.padding):
            kw["padding"] = _axes(a.padding)
        if a.ceil_mode:
            kw["ceil_mode"] = True
        if not a.count_include_pad:
            kw["count_include_pad"] = False
        return _call(f"nn.AvgPool{d}", **kw)
    if op in ("gap", "gmp"):
        return _call("GlobalPool", r, "avg" if op == "gap" else "max", a.keepdims)
    if op in ("adaptive_avgpool", "adaptive_maxpool"):
        kind = "Avg" if op == "adaptive_avgpool" else "Max"
        return _call(f"nn.Adaptive{kind}Pool{d}", _axes(a.out_size))
    if op == "upsample":
        kw = {"scale_factor": a.scale} if a.scale is not None else {"size": a.size}
        kw["mode"] = a.mode
        if a.align_corners is not None:
            kw["align_corners"] = a.align_corners
        return _call("nn.Upsample", **kw)
    if op in ("bn", "instancenorm"):
        kind = "BatchNorm" if op == "bn" else "InstanceNorm"
        dims = {0: "1d", 1: "1d", 2: "2d", 3: "3d"}[r]
        defaults = (True, True) if op == "bn" else (False, False)
        kw = {}
        if a.eps != 1e-5:
            kw["eps"] = a.eps
        if a.momentum != 0.1:
            kw["momentum"] = a.momentum
        if a.affine != defaults[0]:
            kw["affine"] = a.affine
        if a.track_running_stats != defaults[1]:
            kw["track_running_stats"] = a.track_running_stats
        return _call(f"nn.{kind}{dims}", a.num_features, channels_in=(0,), **kw)
    if op == "layernorm":
        kw = {}
        if a.eps != 1e-5:
            kw["eps"] = a.eps
        if not a.elementwise_affine:
            kw["elementwise_affine"] = False
        if not a.bias:
            kw["bias"] = False
        return _call("nn.LayerNorm", list(a.normalized_shape), **kw)
    if op == "groupnorm":
        kw = {"eps": a.eps} if a.eps != 1e-5 else {}
        if not a.affine:
            kw["affine"] = False
        return _call("nn.GroupNorm", a.num_groups, a.num_channels, channels_in=(1,), **kw)
    if op == "lrn":
        return _call("nn.LocalResponseNorm", a.size, alpha=a.alpha, beta=a.beta, k=a.k)
    in_place = {"inplace": True} if inplace and op in ("relu", "relu6", "leaky_relu") else {}
    simple = {"relu": "nn.ReLU", "relu6": "nn.ReLU6", "silu": "nn.SiLU", "hardswish": "nn.Hardswish",
              "sigmoid": "nn.Sigmoid", "tanh": "nn.Tanh", "identity": "nn.Identity"}
    if op in simple:
        return _call(simple[op], **in_place)
    if op == "leaky_relu":
        return _call("nn.LeakyReLU", args.slope, **in_place)
    if op == "elu":
        return _call("nn.ELU", args.alpha)
    if op == "gelu":
        return _call("nn.GELU", approximate=args.approximate)
    if op == "softplus":
        return _call("nn.Softplus", beta=args.beta, threshold=args.threshold)
    if op == "softmax":
        return _call("nn.Softmax", dim=a.dim)
    if op == "log_softmax":
        return _call("nn.LogSoftmax", dim=a.dim)
    if op.startswith("dropout"):
        name = {"dropout": "Dropout", "dropout1d": "Dropout1d", "dropout2d": "Dropout2d", "dropout3d": "Dropout3d"}
        return _call(f"nn.{name[op]}", a.p)
    if op == "flatten":
        return _call("nn.Flatten", a.start_dim, a.end_dim)
    if op == "linear":
        kw = {} if a.bias else {"bias": False}
        return _call("nn.Linear", a.in_features, a.out_features, channels_in=(0,), channels_out=(1,), **kw)
    if op == "join":
        # The source passes the model's shared FractalPath; to_torch passes its own object.
        values = (a.drop_local, a.drop_global, tuple(a.columns))
        return Ctor("Join", values, raw=f"Join({', '.join(map(repr, values))}, self.fractal_path)")
    return None


def _class_name(name: str) -> str:
    text = class_name(name)
    # The helper classes of the emitted file keep their names.
    return f"{text}Model" if text in _HELPERS or text == "FractalPath" else text


def _var(node: Node, used: set[str]) -> str:
    name = node.name
    if (name and _IDENT.match(name) and not keyword.iskeyword(name) and name not in _RESERVED
            and not name.startswith("_") and not re.fullmatch(r"x\d+", name) and name not in used
            and name.isascii()):
        used.add(name)
        return name
    var = f"x{node.index}"
    used.add(var)
    return var


def _access(path: str) -> str:
    """``layers.4.body.0`` -> ``self.layers["4"]["body"]["0"]``."""
    first, *rest = path.split(".")
    return f"self.{first}" + "".join(f"[{part!r}]" for part in rest)


def _shape_comment(shape: tuple[int, ...] | None) -> str:
    return "# N x " + " x ".join(str(d) for d in shape) if shape else ""


def _tree_source(tree: dict[str, Any], indent: int) -> list[str]:
    pad = "    " * indent
    lines = []
    for key, value in tree.items():
        if isinstance(value, dict):
            lines.append(f"{pad}{key!r}: nn.ModuleDict({{")
            lines += _tree_source(value, indent + 1)
            lines.append(f"{pad}}}),")
        else:
            lines.append(f"{pad}{key!r}: {value},")
    return lines


def _attribute_lines(tree: dict[str, Any]) -> list[str]:
    """`self.<name> = ...` lines of an __init__: a module, or nested ModuleDicts."""
    lines = []
    for key, value in tree.items():
        if isinstance(value, dict):
            lines.append(f"        self.{key} = nn.ModuleDict({{")
            lines += _tree_source(value, 3)
            lines.append("        })")
        else:
            lines.append(f"        self.{key} = {value}")
    return lines


def _init_lines(node: Node, weights: Sequence[TensorSpec], access: str) -> list[str]:
    """The same initialisation as to_torch, written out as `nn.init` calls."""
    lines = []
    for function, tensor, kwargs in init_calls(node, weights):
        extra = "".join(f", {key}={value!r}" for key, value in kwargs.items())
        lines.append(f"nn.init.{function}({access}.{tensor}{extra})")
    return lines


def _safe_ident(name: str) -> bool:
    return bool(_IDENT.match(name)) and name.isascii() and not keyword.iskeyword(name) \
        and name not in _RESERVED and not name.startswith("_") and name not in ("in_channels", "fractal_path")


def _inside(path: str, prefix: str) -> bool:
    return path.startswith(prefix) and len(path) > len(prefix) and path[len(prefix)] in ".["


@dataclass(eq=False)
class _Instance:
    """One call of a user block, seen from the code generator."""

    path: str
    call: BlockCall
    nodes: list[Node]  # its own nodes, nested calls' nodes excluded
    nested: list[_Instance]
    items: list[Any]  # nodes and nested instances in execution order

    @functools.cached_property
    def pos(self) -> dict[int, int]:
        """Node index -> position among this call's own nodes (how a variant refers to its nodes)."""
        return {n.index: k for k, n in enumerate(self.nodes)}


class _Emitter:
    def __init__(self, model: Model) -> None:
        self.model = model
        self.graph = model.graph
        self.figs = model.analysis.figures
        self.inplace = inplace_activations(model)
        self.helpers: set[str] = set()
        self.ctors: dict[int, Ctor] = {}
        for node in self.graph.nodes[1:]:
            in_shape = self.figs[node.inputs[0]].shape
            assert in_shape is not None
            ctor = module_source(node, self.figs[node.index].attrs, in_shape, node.index in self.inplace)
            if ctor is not None:
                self.ctors[node.index] = ctor
                if ctor.name in ("GlobalPool", "Join"):
                    self.helpers.add(ctor.name)
        self.top_instances = self._instances("", self.graph.nodes[1:])
        self.classes: list[list[str]] = []
        self.class_of: dict[str, tuple[str, dict[str, Any]]] = {}  # instance path -> (class, call values)
        self.flat: set[str] = set()  # instances emitted inline
        self.names_used: set[str] = set()

    # -- structure --------------------------------------------------------------

    def _instances(self, parent: str, nodes: list[Node]) -> list[_Instance]:
        calls = sorted((p for p in self.graph.calls if (not parent or _inside(p, parent))
                        and not any(_inside(p, q) for q in self.graph.calls if q != p and (not parent or
                                                                                         _inside(q, parent)))),
                       key=lambda p: min((n.index for n in nodes if _inside(n.path, p)), default=0))
        out = []
        for path in calls:
            mine = [n for n in nodes if _inside(n.path, path)]
            nested = self._instances(path, mine)
            own = [n for n in mine if not any(_inside(n.path, q.path) for q in nested)]
            items: list[Any] = []
            seen: set[str] = set()
            for n in mine:
                owner = next((q for q in nested if _inside(n.path, q.path)), None)
                if owner is None:
                    items.append(n)
                elif owner.path not in seen:
                    seen.add(owner.path)
                    items.append(owner)
            out.append(_Instance(path, self.graph.calls[path], own, nested, items))
        return out

    def _items_signature(self, inst: _Instance) -> tuple[Any, ...]:
        base = module_path(inst.path)
        sig: list[Any] = []
        for item in inst.items:
            if isinstance(item, _Instance):
                sig.append(("call", module_path(item.path)[len(base) + 1:], item.call.block,
                            self._refs(item.call.inputs, inst), self._items_signature(item)))
            else:
                ctor = self.ctors.get(item.index)
                literal = None if ctor is None else (ctor.name, ctor.raw, tuple(k for k, _ in ctor.slots()), tuple(
                    (k, v) for k, v in ctor.slots() if not isinstance(v, int) or isinstance(v, bool)))
                sig.append(("node", module_path(item.path)[len(base) + 1:], item.op, literal,
                            self._refs(item.inputs, inst),
                            self.figs[item.index].attrs.dim if item.op == "concat" else None))
        return (tuple(sig), self._ref(inst.call.output, inst))

    def _refs(self, inputs: tuple[int, ...], inst: _Instance) -> tuple[Any, ...]:
        return tuple(self._ref(i, inst) for i in inputs)

    def _ref(self, index: int, inst: _Instance) -> Any:
        if index in inst.pos:
            return ("node", inst.pos[index])
        for q in inst.nested:
            if q.call.output == index:
                return ("call", module_path(q.path)[len(module_path(inst.path)) + 1:])
        if index in inst.call.inputs:
            return ("in", inst.call.inputs.index(index))
        return ("outside", index)  # pragma: no cover - names are scoped to their block

    # -- expressions --------------------------------------------------------------

    def _env(self, inst: _Instance) -> dict[str, Any]:
        env = {k: v for k, v in inst.call.params.items() if _safe_ident(k)}
        for k, idx in enumerate(inst.call.inputs):
            shape = self.figs[idx].shape
            env[self._channel_name(inst.call, k)] = shape[0] if shape else 0
        return env

    @staticmethod
    def _channel_name(call: BlockCall, k: int) -> str:
        name = call.input_names[k] if k < len(call.input_names) else f"input{k}"
        return "in_channels" if k == 0 else f"{name}_channels" if _safe_ident(name) else f"in{k}_channels"

    def _choose(self, values: list[int], envs: list[dict[str, Any]], candidates: list[str],
                prefer_literal: bool) -> str | None:
        """An expression equal to every instance's value, or None."""
        from specdsl.blocks.expr import ExprError, evaluate

        literal_ok = len(set(values)) == 1
        if prefer_literal and literal_ok:
            return repr(values[0])
        for expr in candidates:
            try:
                if all(evaluate(expr, env) == v for env, v in zip(envs, values, strict=True)):
                    return expr
            except ExprError:
                continue
        return repr(values[0]) if literal_ok else None

    # -- classes ----------------------------------------------------------------------

    def plan(self) -> None:
        """Group every block's calls by structure; each group becomes one class."""
        by_block: dict[str, list[_Instance]] = {}

        def collect(insts: list[_Instance]) -> None:
            for inst in insts:
                collect(inst.nested)
                by_block.setdefault(inst.call.block, []).append(inst)

        collect(self.top_instances)
        taken = {_class_name(self.graph.model), "GlobalPool", "Join", "FractalPath"}
        for block, insts in by_block.items():
            groups: dict[Any, list[_Instance]] = {}
            for inst in insts:
                groups.setdefault(self._items_signature(inst), []).append(inst)
            for k, members in enumerate(groups.values()):
                base = _class_name(block)
                name = base if k == 0 else f"{base}{k + 1}"
                while name in taken:
                    name += "_"
                lines = self._class(name, block, members, k + 1, len(groups))
                if lines is None:
                    self.flat.update(m.path for m in members)
                    continue
                taken.add(name)
                self.classes.append(lines)

    def _class(self, name: str, block: str, members: list[_Instance], variant: int = 1,
               variants: int = 1) -> list[str] | None:
        first = members[0]
        if any(m.path in self.flat for m in members) or any(q.path in self.flat for m in members
                                                             for q in m.nested):
            return None
        envs = [self._env(m) for m in members]
        params = [p for p in first.call.params if _safe_ident(p)]
        candidates = [*params, *self.graph.block_exprs.get(block, ())]
        channel = [self._channel_name(first.call, k) for k in range(len(first.call.inputs))]
        chan_expr: dict[Any, str] = {("in", k): channel[k] for k in range(len(channel))}
        base = module_path(first.path)
        tree: dict[str, Any] = {}
        forward: list[str] = []
        var: dict[Any, str] = {}
        input_vars = []
        for k, iname in enumerate(first.call.input_names):
            v = "x" if k == 0 else iname if _safe_ident(iname) else f"x_in{k}"
            var[("in", k)] = v
            input_vars.append(v)
        used_names: set[str] = {"x", *input_vars, *params, *channel}
        for pos_k, item in enumerate(first.items):
            member_items = [m.items[pos_k] for m in members]
            if isinstance(item, _Instance):
                cls_info = [self.class_of.get(it.path) for it in member_items]
                if any(c is None for c in cls_info) or len({c[0] for c in cls_info}) != 1:  # type: ignore[index]
                    return None
                cls, _ = cls_info[0]  # type: ignore[misc]
                kwargs = []
                for key in cls_info[0][1]:  # type: ignore[index]
                    values = [c[1][key] for c in cls_info]  # type: ignore[index]
                    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
                        if len({repr(v) for v in values}) != 1:
                            return None
                        kwargs.append(f"{key}={values[0]!r}")
                        continue
                    chan_candidates = []
                    if key.endswith("channels"):
                        k_in = self._nested_input_index(item, key)
                        ref = self._ref(item.call.inputs[k_in], first)
                        if ref in chan_expr:
                            chan_candidates.append(chan_expr[ref])
                    expr = self._choose(values, envs, [*chan_candidates, *candidates], prefer_literal=False)
                    if expr is None:
                        return None
                    kwargs.append(f"{key}={expr}")
                if "Join" in self.helpers and cls_info[0][1].get("fractal_path") is not None:
                    pass
                rel = module_path(item.path)[len(base) + 1:]
                self._place(tree, rel, f"{cls}({', '.join(kwargs)})")
                ref_key = ("call", rel)
                args = [self._var_of(i, first, var) for i in item.call.inputs]
                v = self._fresh(used_names)
                var[ref_key] = v
                forward.append(f"{v} = {_access_rel(rel)}({', '.join(args)})")
                out_values = [self.figs[it.call.output].shape for it in member_items]
                out_expr = self._choose([s[0] for s in out_values if s], envs, candidates, prefer_literal=False) \
                    if all(out_values) else None
                if out_expr is not None:
                    chan_expr[ref_key] = out_expr
                continue
            node: Node = item
            member_nodes: list[Node] = member_items
            my_ref = ("node", first.pos[node.index])
            in_refs = [self._ref(i, first) for i in node.inputs]
            ctor = self.ctors.get(node.index)
            rel = module_path(node.path)[len(base) + 1:]
            if ctor is not None:
                exprs: dict[Any, str] = {}
                for slot, value in ctor.slots():
                    if not isinstance(value, int) or isinstance(value, bool):
                        continue
                    values = [dict(self.ctors[n.index].slots())[slot] for n in member_nodes]
                    if slot in ctor.channels_in:
                        cands = [chan_expr[in_refs[0]]] if in_refs[0] in chan_expr else []
                        expr = self._choose(values, envs, [*cands, *candidates], prefer_literal=False)
                    elif slot in ctor.channels_out:
                        expr = self._choose(values, envs, candidates, prefer_literal=False)
                    else:
                        expr = self._choose(values, envs, candidates, prefer_literal=True)
                    if expr is None:
                        return None
                    exprs[slot] = expr
                if any(isinstance(v, tuple) for _, v in ctor.slots()):
                    # Per-axis tuples must agree literally across the calls grouped here.
                    for slot, value in ctor.slots():
                        if isinstance(value, tuple) and len({repr(dict(self.ctors[n.index].slots())[slot])
                                                             for n in member_nodes}) != 1:
                            return None
                self._place(tree, rel, ctor.render(exprs))
                out_slot = ctor.channels_out[0] if ctor.channels_out else None
                if out_slot is not None:
                    chan_expr[my_ref] = exprs.get(out_slot, repr(dict(ctor.slots())[out_slot]))
                elif in_refs and in_refs[0] in chan_expr and node.op not in ("flatten", "gap", "gmp"):
                    chan_expr[my_ref] = chan_expr[in_refs[0]]
                call = f"{_access_rel(rel)}({', '.join(self._var_of_ref(r, var) for r in in_refs)})"
            else:
                ins = [self._var_of_ref(r, var) for r in in_refs]
                if node.op == "add":
                    call = " + ".join(ins)
                elif node.op == "mean":
                    call = f"({' + '.join(ins)}) / {len(ins)}"
                else:
                    call = f"torch.cat([{', '.join(ins)}], dim={self.figs[node.index].attrs.dim!r})"
                if node.op in ("add", "mean") and in_refs[0] in chan_expr:
                    chan_expr[my_ref] = chan_expr[in_refs[0]]
                elif node.op == "concat" and all(r in chan_expr for r in in_refs) \
                        and self.figs[node.index].attrs.dim == 1:
                    chan_expr[my_ref] = " + ".join(chan_expr[r] for r in in_refs)
            v = self._fresh(used_names, node.name)
            var[my_ref] = v
            forward.append(f"{v} = {call}")
        out_ref = self._ref(first.call.output, first)
        used_text = "\n".join(forward) + "\n" + "\n".join(_tree_source(tree, 0))
        # A name counts as used when it is read, not when it names a keyword argument.
        init_params = [c for c in channel if re.search(rf"\b{c}\b(?!\s*=[^=])", used_text)]
        init_params += [p for p in params if re.search(rf"\b{p}\b(?!\s*=[^=])", used_text)]
        needs_path = "self.fractal_path" in used_text
        sig_parts = [f"{p}: int" if p in channel else f"{p}: {first.call.param_types.get(p, 'int')}"
                     for p in init_params]
        if needs_path:
            sig_parts.append("fractal_path: FractalPath")
        for m in members:
            values = {p: (m.call.params[p] if p in m.call.params else
                          self._env(m)[p]) for p in init_params}
            if needs_path:
                values["fractal_path"] = None
            self.class_of[m.path] = (name, values)
        doc = f"The spec's block `{block}`" + (
            f", variant {variant} of {variants} (its calls differ in structure, e.g. a projection shortcut)"
            if variants > 1 else "") + "."
        lines = [f"class {name}(nn.Module):", f'    """{doc}"""', "",
                 f"    def __init__(self{''.join(', ' + p for p in sig_parts)}) -> None:",
                 "        super().__init__()"]
        if needs_path:
            lines.append("        self.fractal_path = fractal_path")
        lines += _attribute_lines(tree)
        args = ", ".join(f"{v}: torch.Tensor" for v in input_vars)
        lines += ["", f"    def forward(self, {args}) -> torch.Tensor:"]
        lines += [f"        {line}" for line in forward]
        lines.append(f"        return {self._var_of_ref(out_ref, var)}")
        return lines

    def _nested_input_index(self, inst: _Instance, key: str) -> int:
        for k in range(len(inst.call.inputs)):
            if self._channel_name(inst.call, k) == key:
                return k
        return 0

    def _var_of(self, index: int, inst: _Instance, var: dict[Any, str]) -> str:
        return self._var_of_ref(self._ref(index, inst), var)

    @staticmethod
    def _var_of_ref(ref: Any, var: dict[Any, str]) -> str:
        return var[ref]

    @staticmethod
    def _fresh(used: set[str], preferred: str | None = None) -> str:
        if preferred and _safe_ident(preferred) and preferred not in used and not re.fullmatch(r"h\d+", preferred):
            used.add(preferred)
            return preferred
        k = 1
        while f"h{k}" in used:
            k += 1
        used.add(f"h{k}")
        return f"h{k}"

    @staticmethod
    def _place(tree: dict[str, Any], rel: str, source: str) -> None:
        parts = rel.split(".")
        cursor = tree
        for part in parts[:-1]:
            cursor = cursor.setdefault(part, {})
        cursor[parts[-1]] = source


def _access_rel(rel: str) -> str:
    first, *rest = rel.split(".")
    return f"self.{first}" + "".join(f"[{part!r}]" for part in rest)


def emit(model: Model) -> str:
    """Standalone PyTorch source: one class per user-defined block (per distinct structure), then the model."""
    from specdsl import __version__

    em = _Emitter(model)
    em.plan()
    graph = model.graph
    figs = model.analysis.figures
    tree: dict[str, Any] = {}
    init_lines: list[str] = []
    frozen: list[str] = []
    modules: dict[int, str] = {}
    instance_of: dict[int, _Instance] = {}

    def classed(insts: list[_Instance]) -> list[_Instance]:
        return [i for i in insts if i.path in em.class_of]

    top_classed = classed(em.top_instances)
    for inst in top_classed:
        for n in graph.nodes:
            if _inside(n.path, inst.path):
                instance_of[n.index] = inst
    placed: set[str] = set()
    for node in graph.nodes[1:]:
        access = _access(module_path(node.path))
        if node.index in instance_of:
            inst = instance_of[node.index]
            if inst.path not in placed:
                # Placed where its first node comes, so state_dict order follows the graph.
                placed.add(inst.path)
                cls_name, values = em.class_of[inst.path]
                kwargs = ", ".join(f"{k}={'self.fractal_path' if k == 'fractal_path' else repr(v)}"
                                   for k, v in values.items())
                _Emitter._place(tree, module_path(inst.path), f"{cls_name}({kwargs})")
            access = f"self.get_submodule({module_path(node.path)!r})"
            if node.index in em.ctors:
                init_lines += _init_lines(node, figs[node.index].weights, access)
                if node.frozen and any(w.role == "parameter" for w in figs[node.index].weights):
                    frozen.append(access)
            continue
        ctor = em.ctors.get(node.index)
        if ctor is None:
            continue
        path = module_path(node.path)
        _Emitter._place(tree, path, ctor.render())
        modules[node.index] = access
        init_lines += _init_lines(node, figs[node.index].weights, access)
        if node.frozen and any(w.role == "parameter" for w in figs[node.index].weights):
            frozen.append(access)
    cls = _class_name(graph.model)
    input_shape = " x ".join(str(d) for d in graph.input_shape)
    out: list[str] = [
        f'"""{cls}: generated by specdsl {__version__} from the spec {graph.model!r}.',
        "",
        f"Input N x {input_shape} ({graph.dtype}). Regenerate with `specdsl build`; edits here are not kept.",
        '"""',
        "",
        "import torch",
        "from torch import nn",
    ]
    for helper in sorted(em.helpers):
        out.append("")
        out.append(_HELPERS[helper].rstrip("\n"))
    for lines in em.classes:
        out += ["", ""]
        out += lines
    out += ["", "", f"class {cls}(nn.Module):"]
    if graph.description:
        out.append(f"    {_docstring(graph.description)}")
        out.append("")
    out += ["    def __init__(self) -> None:", "        super().__init__()"]
    if "Join" in em.helpers:
        out.append("        self.fractal_path = FractalPath()")
    out += _attribute_lines(tree)
    if init_lines:
        out.append("        self.reset_parameters()")
    for access in frozen:
        out.append(f"        for p in {access}.parameters():")
        out.append("            p.requires_grad_(False)")
    if init_lines:
        out += ["", "    def reset_parameters(self) -> None:"]
        out += [f"        {line}" for line in init_lines]
    if "Join" in em.helpers:
        joins = [n for n in graph.nodes if n.op == "join"]
        columns = max(max(j.args.columns or [1]) for j in joins)  # type: ignore[union-attr]
        drop_global = max(j.args.drop_global for j in joins)  # type: ignore[union-attr]
        out += [
            "",
            "    def _sample_fractal_path(self) -> None:",
            "        self.fractal_path.column = None",
            f"        if self.training and {drop_global!r} > 0 and float(torch.rand(())) < {drop_global!r}:",
            f"            self.fractal_path.column = int(torch.randint(1, {columns + 1}, ()))",
        ]
    out += ["", "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
            f"        {_shape_comment(graph.input_shape)}"]
    if "Join" in em.helpers:
        out.append("        self._sample_fractal_path()")
    names: dict[int, str] = {0: "x"}
    used: set[str] = {"x"}
    last_block = None
    emitted_calls: set[str] = set()
    for node in graph.nodes[1:]:
        inst = instance_of.get(node.index)
        if inst is not None:
            if inst.path in emitted_calls:
                if node.index == inst.call.output:
                    pass
                continue
            emitted_calls.add(inst.path)
            ins = [names[i] for i in inst.call.inputs]
            out_node = graph.nodes[inst.call.output]
            var = _var(out_node, used)
            names[inst.call.output] = var
            call_cls = em.class_of[inst.path][0]
            out.append(f"        {var} = {_access(module_path(inst.path))}({', '.join(ins)})  "
                       f"{_shape_comment(figs[inst.call.output].shape)}  ({call_cls})".rstrip())
            continue
        block = _block_of(node.path, graph.blocks)
        if block is not None and block != last_block:
            out.append(f"        # {block[0]}: {block[1]}")
        last_block = block
        ins = [names[i] for i in node.inputs]
        var = _var(node, used)
        names[node.index] = var
        if node.index in modules:
            expr = f"{modules[node.index]}({', '.join(ins)})"
        elif node.op == "add":
            expr = " + ".join(ins)
        elif node.op == "mean":
            expr = f"({' + '.join(ins)}) / {len(ins)}"
        else:
            expr = f"torch.cat([{', '.join(ins)}], dim={figs[node.index].attrs.dim!r})"
        out.append(f"        {var} = {expr}  {_shape_comment(figs[node.index].shape)}".rstrip())
    out.append(f"        return {names[graph.output]}")
    source = "\n".join(out) + "\n"
    # Never hand out text that is not Python, or that does more than define modules.
    return check_source(source)




def _docstring(text: str) -> str:
    # repr always yields a valid, inert string literal, whatever the description holds.
    return repr(text)


def _block_of(path: str, blocks: dict[str, str]) -> tuple[str, str] | None:
    """The outermost block call a node belongs to, as (path, block name)."""
    best = None
    for prefix, name in blocks.items():
        if path.startswith(prefix) and path != prefix and path[len(prefix)] in ".[":
            if best is None or len(prefix) < len(best[0]):
                best = (prefix, name)
    return best


def load_emitted(source: str, cls_name: str | None = None) -> Any:
    """Import emitted source from a temporary file and return its model class."""
    import importlib.util
    import sys
    import tempfile
    from pathlib import Path

    tree = ast.parse(check_source(source))  # imported code must pass the allowlist first
    cls = cls_name or next(n.name for n in reversed(tree.body) if isinstance(n, ast.ClassDef))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "specdsl_emitted.py"
        path.write_text(source, encoding="utf-8")
        spec = importlib.util.spec_from_file_location("specdsl_emitted", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules.pop("specdsl_emitted", None)
        spec.loader.exec_module(module)
    return getattr(module, cls)


def check_emitted(model: Model, source: str) -> list[str]:
    """Compare an emitted module with to_torch: state_dict keys and shapes, and eval outputs."""
    import torch
    from specdsl.backends.torch.fx import example_input, to_torch

    reference = to_torch(model, seed=0).eval()
    emitted = load_emitted(source)().eval()
    problems = []
    ref_sd, em_sd = reference.state_dict(), emitted.state_dict()
    if list(ref_sd) != list(em_sd):
        missing = sorted(set(ref_sd) - set(em_sd))[:5]
        extra = sorted(set(em_sd) - set(ref_sd))[:5]
        problems.append(f"state_dict keys differ (missing {missing}, unexpected {extra})")
        return problems
    for key, value in ref_sd.items():
        if tuple(value.shape) != tuple(em_sd[key].shape):
            problems.append(f"{key}: shape {tuple(value.shape)} vs {tuple(em_sd[key].shape)}")
    if problems:
        return problems
    emitted.load_state_dict(ref_sd)
    x = example_input(model, 2)
    with torch.no_grad():
        a, b = reference(x), emitted(x)
    if not torch.equal(a, b):
        problems.append(f"outputs differ: max abs difference {(a - b).abs().max().item():.3g}")
    return problems

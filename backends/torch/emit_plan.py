"""Block classes of the emitted file: one ``nn.Module`` class per user block (per distinct structure).

:class:`BlockClassPlan` lowers every node through the lowering table, finds the calls of
each user block, groups calls whose structure agrees, and writes one class per group, its
constructor arguments becoming the block's parameters (``nn.Conv2d(c, c * 4, ...)``). A
group whose calls cannot share one class is left for the model's own forward (``flat``).
The calls themselves, and how a call refers to its values, are ``emit_calls.py``'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from specdsl.backends.naming import module_path
from specdsl.backends.torch.emit_calls import (
    Instance,
    channel_name,
    difference,
    fresh,
    instances,
    nested_input_index,
    ref,
    refs,
)
from specdsl.backends.torch.emit_text import (
    ModuleTree,
    ParameterSource,
    access,
    attribute_lines,
    emitted_class_name,
    parameter_access,
    place,
    reuse_dead_names,
    safe_ident,
    sequences,
    tree_source,
    with_indices,
)
from specdsl.backends.torch.helper_source import helper_names
from specdsl.backends.torch.lowerings import Ctor, FunctionLowering, ModuleLowering, ParameterLowering, lowering_for
from specdsl.ir import Node
from specdsl.ops import OPS
from specdsl.ops.rule import Trait
from specdsl.passes.inplace import inplace_activations

if TYPE_CHECKING:
    from specdsl.api import Model


@dataclass
class _Draft:
    """A block class being written: its module tree and forward so far, and what names mean."""

    first: Instance  # the group's first call, whose structure every member shares
    envs: list[dict[str, Any]]  # each member's block parameters and input channel counts
    candidates: list[str]  # expressions that may stand for an integer (parameters, the block's own)
    base: str  # module path of the first call
    var: dict[Any, str]  # ref -> variable of the forward
    chan_expr: dict[Any, str]  # ref -> expression of its channel count
    used_names: set[str]
    tree: ModuleTree = field(default_factory=dict)
    forward: list[str] = field(default_factory=list)
    # Numbers no expression of the block's parameters gives (an se's squeeze from `reduction=4`): each
    # becomes a constructor argument of its own, so the calls still share the class.
    extra: list[str] = field(default_factory=list)


class BlockClassPlan:
    """Every node's lowering, and (after :meth:`plan`) the block classes and which calls use them."""

    def __init__(self, model: Model) -> None:
        self.graph = model.graph
        self.figs = model.analysis.figures
        inplace = inplace_activations(model.graph)
        # Node index -> its module's constructor, or its own parameter's (module and parameter lowerings).
        self.ctors: dict[int, Ctor] = {}
        self.functions: dict[int, FunctionLowering] = {}
        self.parameters: dict[int, ParameterLowering] = {}  # nodes that are a parameter of their container
        for node in self.graph.nodes[1:]:
            lowering = lowering_for(node.op)
            if isinstance(lowering, (ModuleLowering, ParameterLowering)):
                in_shape = self.figs[node.inputs[0]].shape
                assert in_shape is not None
                attrs = self.figs[node.index].attrs
                make = lowering.ctor if isinstance(lowering, ModuleLowering) else lowering.tensor
                self.ctors[node.index] = make(attrs, len(in_shape) - 1, node.index in inplace)
                if isinstance(lowering, ParameterLowering):
                    self.parameters[node.index] = lowering
            else:
                self.functions[node.index] = lowering
        # Classes of modules.py the file needs, and whether a shared FractalPath is passed around.
        self.helpers = {c.name for c in self.ctors.values() if not c.name.startswith("nn.")}
        self.fractal_path = any(c.fractal_path for c in self.ctors.values())
        self.top_instances = instances(self.graph, "", self.graph.nodes[1:])
        self.classes: list[list[str]] = []
        self.class_of: dict[str, tuple[str, dict[str, Any]]] = {}  # instance path -> (class, call values)
        self.flat: set[str] = set()  # instances emitted inline

    def source(self, index: int, inputs: list[str]) -> str:
        """A function-lowered node's expression over the variables ``inputs``."""
        return self.functions[index].source(inputs, self.figs[index].attrs)

    # -- structure --------------------------------------------------------------

    def _items_signature(self, inst: Instance, strict: bool = False) -> tuple[Any, ...]:
        """What calls must share to share a class. Integer arguments may differ (the class takes
        expressions of its parameters for them), and so may float ones unless ``strict``."""
        base = module_path(inst.path)
        sig: list[Any] = []
        for item in inst.items:
            if isinstance(item, Instance):
                sig.append(("call", module_path(item.path)[len(base) + 1:], item.call.block,
                            refs(item.call.inputs, inst), self._items_signature(item, strict)))
                continue
            ctor = self.ctors.get(item.index)
            literal = None if ctor is None else (ctor.name, ctor.fractal_path, tuple(k for k, _ in ctor.slots()),
                                                 # repr: a list argument (a Permute's dims) is unhashable.
                                                 tuple((k, repr(v)) for k, v in ctor.slots()
                                                       if not _number(v) or (strict and isinstance(v, float))))
            # A function's text over placeholder inputs: same arity and arguments (concat's dim).
            function = None if ctor is not None else self.source(item.index, [f"x{k}" for k in
                                                                              range(len(item.inputs))])
            sig.append(("node", module_path(item.path)[len(base) + 1:], item.op, literal,
                        refs(item.inputs, inst), function))
        return (tuple(sig), ref(inst.call.output, inst), refs(inst.call.outputs, inst))

    # -- expressions --------------------------------------------------------------

    def _env(self, inst: Instance) -> dict[str, Any]:
        env = {k: v for k, v in inst.call.params.items() if safe_ident(k)}
        for k, idx in enumerate(inst.call.inputs):
            shape = self.figs[idx].shape
            env[channel_name(inst.call, k)] = shape[0] if shape else 0
        return env

    @staticmethod
    def _choose(values: list[int], envs: list[dict[str, Any]], candidates: list[str],
                prefer_literal: bool) -> str | None:
        """An expression equal to every instance's value, or None."""
        from specdsl.blocks.expr import ExprError, evaluate

        literal_ok = len({(type(v), v) for v in values}) == 1
        if prefer_literal and literal_ok:
            return repr(values[0])
        for expr in candidates:
            try:
                # An integer argument takes only an integer expression (`0.5 * c` may equal 32, as 32.0).
                if all(type(got := evaluate(expr, env)) is type(v) and got == v
                       for env, v in zip(envs, values, strict=True)):
                    return expr
            except ExprError:
                continue
        return repr(values[0]) if literal_ok else None

    # -- classes ----------------------------------------------------------------------

    def plan(self) -> None:
        """Group every block's calls by structure; each group becomes one class."""
        by_block: dict[str, list[Instance]] = {}

        def collect(insts: list[Instance]) -> None:
            for inst in insts:
                collect(inst.nested)
                by_block.setdefault(inst.call.block, []).append(inst)

        collect(self.top_instances)
        taken = {emitted_class_name(self.graph.model), *helper_names()}
        for block, insts in by_block.items():
            groups: dict[Any, list[Instance]] = {}
            for inst in insts:
                groups.setdefault(self._items_signature(inst), []).append(inst)
            firsts = [members[0] for members in groups.values()]
            for k, members in enumerate(groups.values()):
                base = emitted_class_name(block)
                name = base if k == 0 else f"{base}{difference(firsts[0], members[0])}"
                name = f"{base}{k + 1}" if k and (name == base or name in taken) else name
                while name in taken:
                    name += "_"
                lines = self._class(name, block, members, k + 1, len(groups))
                if lines is None:
                    # Float arguments no parameter expression gives (a drop rate per call): one class
                    # per set of values, as literals.
                    lines = self._split_class(name, block, members, k + 1, len(groups), taken)
                if lines is None:
                    self.flat.update(m.path for m in members)
                    continue
                taken.add(name)
                self.classes.append(lines)

    def _split_class(self, name: str, block: str, members: list[Instance], variant: int, variants: int,
                     taken: set[str]) -> list[str] | None:
        """Members regrouped by their float arguments too; the first subgroup is ``name``, the others
        numbered after it. None when that does not help (no float differs) or a subgroup fails."""
        strict: dict[Any, list[Instance]] = {}
        for m in members:
            strict.setdefault(self._items_signature(m, strict=True), []).append(m)
        if len(strict) == 1:
            return None
        built: list[tuple[str, list[str]]] = []
        for k, sub in enumerate(strict.values()):
            sub_name = name if k == 0 else f"{name}_{k + 1}"
            while k and sub_name in taken:
                sub_name += "_"
            lines = self._class(sub_name, block, sub, variant, variants)
            if lines is None:
                for m in members:  # all or none: the members go flat together
                    self.class_of.pop(m.path, None)
                return None
            built.append((sub_name, lines))
        for sub_name, lines in built[1:]:
            taken.add(sub_name)
            self.classes.append(lines)
        return built[0][1]

    def _class(self, name: str, block: str, members: list[Instance], variant: int = 1,
               variants: int = 1) -> list[str] | None:
        """The source lines of one class for ``members`` (calls of ``block``), or None if they cannot share one."""
        first = members[0]
        if any(m.path in self.flat for m in members) or any(q.path in self.flat for m in members
                                                             for q in m.nested):
            return None
        params = [p for p in first.call.params if safe_ident(p)]
        channel = [channel_name(first.call, k) for k in range(len(first.call.inputs))]
        input_vars = ["x" if k == 0 else iname if safe_ident(iname) else f"x_in{k}"
                      for k, iname in enumerate(first.call.input_names)]
        draft = _Draft(first, [self._env(m) for m in members], [*params, *self.graph.block_exprs.get(block, ())],
                       module_path(first.path), var={("in", k): v for k, v in enumerate(input_vars)},
                       chan_expr={("in", k): channel[k] for k in range(len(channel))},
                       used_names={"x", *input_vars, *params, *channel})
        for pos_k, item in enumerate(first.items):
            member_items = [m.items[pos_k] for m in members]
            ok = self._nested_call(draft, item, member_items) if isinstance(item, Instance) \
                else self._node(draft, item, member_items)
            if not ok:
                return None
        forward = draft.forward
        # A block with several outputs returns them as a tuple (HRNet's modules), in the declared order.
        returned = ", ".join(draft.var[r] for r in refs(first.call.outputs, first)) if first.call.outputs \
            else draft.var[ref(first.call.output, first)]
        used_text = "\n".join(forward) + "\n" + "\n".join(tree_source(draft.tree, 0))
        # A name counts as used when it is read, not when it names a keyword argument.
        init_params = [c for c in channel if re.search(rf"\b{c}\b(?!\s*=[^=])", used_text)]
        init_params += [p for p in [*params, *draft.extra] if re.search(rf"\b{p}\b(?!\s*=[^=])", used_text)]
        needs_path = "self.fractal_path" in used_text
        sig_parts = [f"{p}: int" if p in channel else f"{p}: {first.call.param_types.get(p, 'int')}"
                     if p not in draft.extra else f"{p}: {type(draft.envs[0][p]).__name__}" for p in init_params]
        if needs_path:
            sig_parts.append("fractal_path: FractalPath")
        for m, env in zip(members, draft.envs, strict=True):
            values = {p: (m.call.params[p] if p in m.call.params else env[p]) for p in init_params}
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
        lines += attribute_lines(draft.tree)
        args = ", ".join(f"{v}: torch.Tensor" for v in input_vars)
        returns = f"tuple[{', '.join(['torch.Tensor'] * len(first.call.outputs))}]" if first.call.outputs \
            else "torch.Tensor"
        lines += ["", f"    def forward(self, {args}) -> {returns}:"]
        # Each tensor freed as soon as nothing reads it (`h1 = ...(x)`, then `h1` reused).
        lines += [f"        {line}" for line in reuse_dead_names([*forward, f"return {returned}"],
                                                                  tuple(input_vars))]
        sequential = sequences(draft.tree)
        return [with_indices(line, sequential) for line in lines]

    def _nested_call(self, draft: _Draft, item: Instance, member_items: list[Instance]) -> bool:
        """A call of another block inside this one: an instance of that block's class."""
        if any(it.path not in self.class_of for it in member_items):
            return False
        cls_info = [self.class_of[it.path] for it in member_items]
        if len({c[0] for c in cls_info}) != 1:
            return False
        cls, first_values = cls_info[0]
        kwargs = []
        for key in first_values:
            if key == "fractal_path":  # the one FractalPath of the model, handed down
                kwargs.append("fractal_path=self.fractal_path")
                continue
            values = [c[1][key] for c in cls_info]
            if not all(_number(v) for v in values):
                if len({repr(v) for v in values}) != 1:
                    return False
                kwargs.append(f"{key}={values[0]!r}")
                continue
            chan_candidates = []
            if key.endswith("channels"):
                k_in = nested_input_index(item, key)
                in_ref = ref(item.call.inputs[k_in], draft.first)
                if in_ref in draft.chan_expr:
                    chan_candidates.append(draft.chan_expr[in_ref])
            expr = self._choose(values, draft.envs, [*chan_candidates, *draft.candidates], prefer_literal=False)
            if expr is None:
                return False
            kwargs.append(f"{key}={expr}")
        rel = module_path(item.path)[len(draft.base) + 1:]
        place(draft.tree, rel, f"{cls}({', '.join(kwargs)})")
        ref_key = ("call", rel)
        args = [draft.var[ref(i, draft.first)] for i in item.call.inputs]
        v = fresh(draft.used_names)
        draft.var[ref_key] = v
        draft.forward.append(f"{v} = {access(rel)}({', '.join(args)})")
        # Several outputs: output k is `v[k]`, its channels chosen as a single output's are.
        outputs: list[tuple[tuple[Any, ...], list[int]]] = \
            [(ref_key, [it.call.output for it in member_items])] if not item.call.outputs else \
            [((*ref_key, k), [it.call.outputs[k] for it in member_items]) for k in range(len(item.call.outputs))]
        for out_key, nodes in outputs:
            draft.var[out_key] = v if out_key == ref_key else f"{v}[{out_key[2]}]"
            out_values = [self.figs[i].shape for i in nodes]
            out_expr = self._choose([s[0] for s in out_values if s], draft.envs, draft.candidates,
                                    prefer_literal=False) if all(out_values) else None
            if out_expr is not None:
                draft.chan_expr[out_key] = out_expr
        return True

    def _node(self, draft: _Draft, node: Node, member_nodes: list[Node]) -> bool:
        """One of the block's own nodes: a module in __init__ and its call, or an expression, in forward."""
        my_ref = ("node", draft.first.pos[node.index])
        in_refs = [ref(i, draft.first) for i in node.inputs]
        in_chans = [draft.chan_expr.get(r) for r in in_refs]
        ins = [draft.var[r] for r in in_refs]
        ctor = self.ctors.get(node.index)
        out_chans = None
        # An op that says its output channels (a broadcasting add or mul) is not second-guessed below.
        says_channels = False
        if ctor is None:
            call = self.source(node.index, ins)
            channels = self.functions[node.index].channels
            if channels is not None:
                out_chans = channels(in_chans, self.figs[node.index].attrs)
                says_channels = True
        else:
            rel = module_path(node.path)[len(draft.base) + 1:]
            exprs = self._ctor_exprs(draft, ctor, member_nodes, in_chans[0] if in_chans else None, rel)
            if exprs is None:
                return False
            parameter = self.parameters.get(node.index)
            place(draft.tree, rel, ctor.render(exprs) if parameter is None else ParameterSource(ctor.render(exprs)))
            if ctor.channels_out:
                out_slot = ctor.channels_out[0]
                out_chans = exprs.get(out_slot, repr(dict(ctor.slots())[out_slot]))
            call = f"{access(rel)}({', '.join(ins)})" if parameter is None \
                else parameter.source(ins[0], parameter_access(rel), self.figs[node.index].attrs)
        if out_chans is None and not says_channels and in_chans and OPS[node.op].has(Trait.KEEPS_CHANNELS):
            out_chans = in_chans[0]
        if out_chans is not None:
            draft.chan_expr[my_ref] = out_chans
        v = fresh(draft.used_names, node.name)
        draft.var[my_ref] = v
        draft.forward.append(f"{v} = {call}")
        return True

    def _ctor_exprs(self, draft: _Draft, ctor: Ctor, member_nodes: list[Node],
                    in_chans: str | None, rel: str) -> dict[Any, str] | None:
        """An expression for each number argument, equal in every member: one of the block's parameters
        or expressions, else a constructor argument of its own (None: per-axis tuples that differ)."""
        exprs: dict[Any, str] = {}
        member_slots = [dict(self.ctors[n.index].slots()) for n in member_nodes]
        for slot, value in ctor.slots():
            if not _number(value):
                continue
            values = [slots[slot] for slots in member_slots]
            if slot in ctor.channels_in:
                cands = [in_chans] if in_chans is not None else []
                expr = self._choose(values, draft.envs, [*cands, *draft.candidates], prefer_literal=False)
            elif slot in ctor.channels_out:
                expr = self._choose(values, draft.envs, draft.candidates, prefer_literal=False)
            else:
                expr = self._choose(values, draft.envs, draft.candidates, prefer_literal=True)
            label = "out_channels" if slot in ctor.channels_out else "in_channels" if slot in ctor.channels_in \
                else slot
            exprs[slot] = expr if expr is not None else self._extra(draft, f"{rel}_{label}", values)
        # Per-axis tuples must agree literally across the calls grouped here.
        for slot, value in ctor.slots():
            if isinstance(value, tuple) and len({repr(slots[slot]) for slots in member_slots}) != 1:
                return None
        return exprs

    def _extra(self, draft: _Draft, wanted: str, values: list[Any]) -> str:
        """A new constructor argument holding each member's value (``se_fc1_out_channels``)."""
        words = [w for w in re.split(r"\W", wanted) if w and not w[0].isdigit()]  # `6.fc1` -> fc1
        name = fresh(draft.used_names, "_".join(words))
        draft.extra.append(name)
        draft.candidates.append(name)  # a later layer's channels may equal it (the se's fc2 input)
        for env, value in zip(draft.envs, values, strict=True):
            env[name] = value
        return name


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)

"""Expansion: a validated spec becomes a Graph of primitive ops.

Blocks (the built-in ones of :mod:`specdsl.blocks.registry` and user-defined
ones, :mod:`specdsl.blocks.user`) turn into primitives here. Blocks hold no
shape math of their own: where a block must choose (an ``auto`` shortcut, a
transition's channel count) it asks the primitives' rules, through the shape
pass run node by node as the graph grows. Every node keeps the location of
the text that made it and an extended path (``layers[4].body[1]``), plus notes
naming the block calls it came from.
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Any

from specdsl.blocks import checks, control, indexed, members, references, several, user
from specdsl.blocks.base import Frame
from specdsl.blocks.estimate import LAYER_META, estimate
from specdsl.blocks.names import child
from specdsl.blocks.registry import BLOCKS
from specdsl.blocks.source_exprs import block_expressions
from specdsl.blocks.substitute import substitute
from specdsl.budgets import MAX_DEPTH, MAX_NODES, over, raise_hint
from specdsl.errors import Diagnostic, SourceLoc, SpecError
from specdsl.ir import INPUT, BlockCall, Graph, Node
from specdsl.ops import OPS
from specdsl.ops.model import validation_error
from specdsl.ops.rule import RF, Args, Shape
from specdsl.passes.diagnostics import dedupe
from specdsl.passes.receptive import node_rf
from specdsl.passes.shapes import NodeShape, infer_node
from specdsl.schema.document import Spec
from specdsl.schema.layer import LayerSpec, parse_layer
from specdsl.schema.validation import diagnostics_from
from specdsl.source import PathKey

__all__ = ["MAX_NODES", "Expander", "expand", "expand_with_shapes"]


class Expander:
    def __init__(self, spec: Spec, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH, memo: Any = None) -> None:
        self.spec = spec
        self.smap = spec.smap
        self.max_nodes = max_nodes
        self.max_depth = max_depth
        # Graph size against max_nodes: one per node plus one per extra input of a merge, so a
        # DenseNet block's quadratic concatenations are paid for, not only its nodes.
        self.size = 1
        self.diags: list[Diagnostic] = []
        self.nodes: list[Node] = [Node(0, INPUT, None, (), INPUT, name=INPUT)]
        # The shape and receptive-field passes, run on each node as it is added: blocks ask for shapes
        # and strides. Shape diagnostics are reported by the analysis, or here when expansion fails
        # because of one.
        self.shapes: list[NodeShape] = [infer_node(self.nodes[0], [], spec.input)]
        self.rfs: list[RF] = [node_rf(self.nodes[0], self.shapes[0], [])]
        self.block_names = (*BLOCKS, *spec.blocks)
        self.blocks: dict[str, str] = {}
        self.calls: dict[str, BlockCall] = {}
        self.estimating: set[str] = set()
        # (block, call depth) -> its estimated size: each block body is estimated once per depth.
        self.block_sizes: dict[tuple[str, int], int] = {}
        self.nesting = 0  # lists the estimate is inside of (it bounds Python's recursion)
        self.estimate_cut = False
        # Names of layers an `if` switched off -> where, for the error when one is referred to.
        self.switched_off: dict[str, SourceLoc | None] = {}
        # (producer, k) -> the node standing for `@producer.k`.
        self.parts: dict[tuple[int, int], int] = {}
        # (id of a scope, name) of named layers that failed: references to them are not errors of their own.
        self.failed: set[tuple[int, str]] = set()
        # Per container path: how many children it has so far, and its named children -> where named.
        self.counts: dict[str, int] = {}
        self.siblings: dict[str, dict[str, SourceLoc | None]] = {}
        # Each child's output by its path, and each named layer's path by (id of its scope, name):
        # `@backbone.4` is the output of child 4 of the stage named backbone (references.stage_path).
        self.outputs_at: dict[str, int] = {}
        self.named_paths: dict[tuple[int, str], str] = {}
        # Lists of modules (`as convs.1`, specdsl.blocks.members): their paths, and each member's where defined.
        self.lists: set[str] = set()
        self.members: dict[str, SourceLoc | None] = {}
        # Calls with several outputs (specdsl.blocks.several): (id of a scope, name) -> how many; the last
        # layer built, when it was one.
        self.multi_names: dict[tuple[int, str], int] = {}
        self.pending: several.Pending | None = None
        self.feed: tuple[int, ...] | None = None  # the inputs of an indexed repeat's next copy (several outputs)
        self.memo = memo  # a sweep's specdsl.blocks.memo.CallMemo: user-block calls replayed, not expanded again
        if memo is not None:
            memo.begin()
        self._all_names: set[str] | None = None

    @property
    def all_names(self) -> set[str]:
        """Every `name:` written in the spec: read only to explain an unknown reference, so found then."""
        if self._all_names is None:
            self._all_names = references.names_in(
                {"layers": self.spec.layers, "blocks": {n: b.model_dump() for n, b in self.spec.blocks.items()}})
        return self._all_names

    # -- what blocks may ask (specdsl.blocks.base.BlockExpander) ------------------------

    def loc(self, src: PathKey) -> SourceLoc | None:
        return self.smap.value_loc(src) if self.smap else None

    def error(self, code: str, message: str, src: PathKey | SourceLoc | None, frame: Frame,
              hint: str | None = None, path: str | None = None) -> None:
        loc = src if isinstance(src, SourceLoc) or src is None else self.loc(src)
        self.diags.append(Diagnostic("error", code, message, loc, hint=hint, notes=frame.notes, path=path))

    def add(self, op: str, args: Args, inputs: tuple[int, ...], path: str, frame: Frame,
            loc: SourceLoc | None, arg_locs: dict[str, SourceLoc] | None = None,
            name: str | None = None, notes: tuple[str, ...] = ()) -> int:
        self.size += max(1, len(inputs))
        if self.size > self.max_nodes:
            self.diags.append(Diagnostic(
                "error", "E330", f"the model expands to more than {self.max_nodes:,} nodes (merge inputs count "
                f"too); {over('max_nodes', self.max_nodes)}", loc,
                hint="reduce repeat counts or fractal columns; " + raise_hint("max_nodes"), notes=frame.notes))
            raise checks.Abort
        node = Node(len(self.nodes), op, args, inputs, path, name, loc, arg_locs or {},
                    frame.frozen, frame.init, (*notes, *frame.notes))
        self.nodes.append(node)
        shape = infer_node(node, self.shapes, self.spec.input)
        self.shapes.append(shape)
        self.rfs.append(node_rf(node, shape, self.rfs))
        return node.index

    def prim(self, op: str, inputs: tuple[int, ...], path: str, frame: Frame, loc: SourceLoc | None,
             notes: tuple[str, ...] = (), **args: Any) -> int:
        """A primitive made by a block (not written by the user): its arguments are ours."""
        return self.add(op, OPS[op].args.model_validate(args), inputs, path, frame, loc, notes=notes)

    def shape(self, index: int) -> Shape | None:
        shape = self.shapes[index].shape
        # A sweep logs what blocks read of it, to replay their calls at other shapes (specdsl.blocks.traced).
        return shape if self.memo is None else self.memo.traced(index, shape)

    def rf(self, index: int) -> RF:
        if self.memo is not None:
            self.memo.read_field(index, self.rfs[index])
        return self.rfs[index]

    def substitute(self, raw: Any, src: PathKey, frame: Frame) -> Any:
        """Replace parameter names and integer expressions by their values (specdsl.blocks.substitute)."""
        return substitute(self, raw, src, frame)

    def validate(self, model: type[Args], raw: Any, src: PathKey, frame: Frame, what: str) -> Any:
        data = {} if raw is None else raw
        try:
            return model.model_validate(data)
        except validation_error() as exc:
            for d in diagnostics_from(exc, data, src, self.smap, model, what):
                self.diags.append(replace(d, notes=(*d.notes, *frame.notes)))
            return None

    # -- sequences and layers ------------------------------------------------

    def seq(self, layers: list[Any], src: PathKey, out: str, x: int | None,
            scope: dict[str, int], frame: Frame) -> int | None:
        """Layers in sequence as children of the container at path ``out`` ("" is the model)."""
        for i, raw in enumerate(layers):
            if control.is_control(raw):  # `let` and `if c { } else { }` (specdsl.blocks.control)
                x, frame = control.statement(self, raw, (*src, i), out, x, scope, frame)
                continue
            if not several.check_next(self, raw, (*src, i), frame, out):
                x = None  # what it would read is unclear: the layers after it are checked detached
            self.pending = None
            x = self.layer(raw, (*src, i), out, x, scope, frame)
        return x

    def position(self, container: str) -> str:
        """The next positional name in a container: unnamed layers are numbered as nn.Sequential's."""
        k = self.counts.get(container, 0)
        self.counts[container] = k + 1
        return child(container, k)

    def claim(self, container: str, name: str, loc: SourceLoc | None, frame: Frame) -> str | None:
        """The path of a named child (or list member, `convs.1`), or None after reporting a bad or repeated name."""
        return members.claim(self, container, name, loc, frame)

    def layer(self, raw: Any, src: PathKey, out: str, x: int | None,
              scope: dict[str, int], frame: Frame, at: str | None = None) -> int | None:
        """One layer (maybe repeated) as a child of container ``out``; ``at`` places it at exactly that
        path instead (a block's body, a named repeat's copy)."""
        checks.limits(self, src, out, frame)
        if isinstance(raw, dict) and "index" in raw:
            # `x(n, j)`: each copy is a layer of its own, with j in scope for its arguments and `if`.
            return indexed.expand(self, raw, src, out, x, scope, frame, at)
        n_errors = len(self.diags)
        if isinstance(raw, dict) and "if" in raw:
            switched = checks.condition(self, raw, src, out, frame)
            if switched is False and all(k in LAYER_META for k in raw):
                # Switched off, yet no op at all: the mistake is in the text whatever the condition says.
                parse_layer({k: v for k, v in raw.items() if k != "if"}, src, self.smap, self.diags, self.block_names)
                return None
            if switched is not True:
                return None if switched is None else x
            raw = self.memo.without_if(raw, src) if self.memo is not None else \
                {k: v for k, v in raw.items() if k != "if"}
        hit = self.memo.layers.get(raw, src, frame.env) if self.memo is not None else None  # a sweep's: memo.py
        if hit is not None:
            checks.size(self, hit[0], hit[1], out, frame)
            return self._place(hit[1], hit[0], src, out, x, scope, frame, at)
        raw = self.substitute(raw, src, frame)
        if len(self.diags) > n_errors:
            return None  # the expression error says it all
        if isinstance(raw, dict) and raw.get("repeat") == 0 and not isinstance(raw.get("repeat"), bool):
            # `x(n - 1)` with n = 1: no copies, as nn.Sequential(*[] ) would hold none.
            if isinstance(raw.get("name"), str):
                self.switched_off[raw["name"]] = self.loc((*src, "repeat"))
            return x
        spec = parse_layer(raw, src, self.smap, self.diags, self.block_names)
        for i in range(n_errors, len(self.diags)):
            if frame.notes:
                self.diags[i] = replace(self.diags[i], notes=(*self.diags[i].notes, *frame.notes))
        if spec is None:
            return None
        if self.memo is not None and len(self.diags) == n_errors:
            self.memo.layers.keep(raw, spec)
        checks.size(self, raw, spec, out, frame)
        return self._place(spec, raw, src, out, x, scope, frame, at)

    def _place(self, spec: LayerSpec, raw: Any, src: PathKey, out: str, x: int | None, scope: dict[str, int],
               frame: Frame, at: str | None) -> int | None:
        """The layer's copies at their paths (named, positional, or inside an unnamed stage's container),
        chained; the last one's output, bound to the layer's name."""
        inputs = self.resolve_inputs(spec, x, scope, frame)
        inner = Frame(frame.env, frame.frozen or spec.meta.frozen, spec.meta.init or frame.init, frame.notes,
                      frame.calls, frame.depth + 1)
        y = None
        outs: tuple[int, ...] = ()
        if inputs is None:
            self.check_detached(spec, src, inner, isinstance(raw, dict))
        base = at
        if base is None and spec.meta.name is not None:
            base = self.claim(out, spec.meta.name, spec.arg_locs.get("name", spec.loc), frame)
            if base is None:
                return None
        # An unnamed stage is transparent: its layers continue the container's numbering (NAMING.md).
        rule = BLOCKS.get(spec.op)
        transparent = base is None and rule is not None and rule.sequence
        for r in range(spec.meta.repeat):
            if base is not None:
                path = base if spec.meta.repeat == 1 else child(base, r)
            else:
                path = out if transparent else self.position(out)
            y = None if inputs is None else self.single(spec, src, path, inputs, inner, isinstance(raw, dict),
                                                        record=not transparent)
            # A call with several outputs hands them all to the next copy (HRNet's modules in a stage).
            outs = self.calls[path].outputs if y is not None and path in self.calls else ()
            inputs = None if y is None else outs or (y,)
            if y is not None and not transparent:
                self.outputs_at[path] = y
        name_loc = spec.arg_locs.get("name", spec.loc)
        if outs:
            self.pending = several.Pending(spec.op, spec.meta.name, spec.loc, outs)
        if spec.meta.name is not None:
            if base is not None:
                self.named_paths[(id(scope), spec.meta.name)] = base
            if outs:
                several.bind(self, spec.meta.name, outs, scope, frame, name_loc, out)
            else:
                self.bind_name(spec.meta.name, y, scope, frame, name_loc, out)
        return y

    def bind_name(self, name: str, y: int | None, scope: dict[str, int], frame: Frame, loc: SourceLoc | None,
                  out: str) -> None:
        """`as name`: the layer's output (its last copy's) is known by that name in its scope."""
        members.bind_name(self, name, y, scope, frame, loc, out)

    def estimate(self, raw: Any, depth: int = 0) -> int:
        """An upper-bound-ish node count of a raw layer (specdsl.blocks.estimate)."""
        return estimate(self, raw, depth)

    def check_detached(self, spec: LayerSpec, src: PathKey, frame: Frame, written_as_mapping: bool) -> None:
        """Validate a block call whose input failed upstream, so its own mistakes still show."""
        if spec.args is not None:
            return
        op_src = (*src, spec.op) if written_as_mapping else src
        if spec.op in self.spec.blocks:
            user.bind(self, spec.op, self.spec.blocks[spec.op], spec, op_src, frame)
        elif spec.op in BLOCKS and BLOCKS[spec.op].validate_detached:
            self.validate(BLOCKS[spec.op].args, spec.raw_args, op_src, frame, f"'{spec.op}'")

    def resolve_inputs(self, spec: LayerSpec, x: int | None, scope: dict[str, int],
                       frame: Frame) -> tuple[int, ...] | None:
        return references.resolve_inputs(self, spec, x, scope, frame)

    def outputs(self, declared: tuple[tuple[str | None, str], ...],
                scope: dict[str, int]) -> tuple[tuple[str | None, int], ...]:
        return references.declared_outputs(self, declared, scope)

    def part(self, producer: int, index: int, loc: SourceLoc | None, frame: Frame) -> int:
        return references.part(self, producer, index, loc, frame)

    def single(self, spec: LayerSpec, src: PathKey, out: str, inputs: tuple[int, ...], frame: Frame,
               written_as_mapping: bool, record: bool = True) -> int | None:
        if spec.args is not None:
            rule = OPS[spec.op]
            n = len(inputs)
            if references.passes_through(spec, n):  # a merge whose other inputs are switched off
                return inputs[0]
            if n < rule.min_inputs or (rule.max_inputs is not None and n > rule.max_inputs):
                want = f"exactly {rule.min_inputs}" if rule.max_inputs == rule.min_inputs else \
                    f"at least {rule.min_inputs}"
                self.error("E316", f"'{spec.op}' takes {want} input(s); received {n}", spec.loc, frame,
                           hint="list the nodes to merge with `inputs: [a, b]`" if rule.min_inputs > 1 else
                           "only merge layers (add, concat, mean) take several inputs", path=out)
                return None
            return self.add(spec.op, spec.args, inputs, out, frame, spec.loc, spec.arg_locs)
        op_src = (*src, spec.op) if written_as_mapping else src
        if self.memo is not None:
            spec = self.memo.located(spec, op_src, self.smap)
        elif self.smap is not None:
            spec = replace(spec, loc=self.smap.key_loc(op_src) or spec.loc)
        if record:
            self.blocks.setdefault(out, spec.op)
        if spec.op in self.spec.blocks:
            return user.call(self, spec, op_src, out, inputs, frame)
        if len(inputs) != 1:
            self.error("E316", f"'{spec.op}' takes exactly 1 input; received {len(inputs)}", spec.loc, frame,
                       path=out)
            return None
        return BLOCKS[spec.op].expand(self, spec, op_src, out, inputs[0], frame)


def expand(spec: Spec, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> Graph:
    """Build the graph of primitives; raise SpecError listing every expansion problem."""
    return expand_with_shapes(spec, max_nodes, max_depth)[0]


def expand_with_shapes(spec: Spec, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH,
                       memo: Any = None) -> tuple[Graph, list[NodeShape], list[RF]]:
    """The graph plus the shape and receptive-field passes' results for its nodes, computed
    while it was built (hand them to ``passes.analysis.analyze``, which then need not run them).

    ``max_nodes`` and ``max_depth`` are budgets (specdsl.budgets): the first is checked
    against an estimate before each layer expands, and again as nodes are added. ``memo``: a
    sweep's :class:`specdsl.blocks.memo.CallMemo`, shared by its points.
    """
    ex = Expander(spec, max_nodes, max_depth, memo)
    scope: dict[str, int] = {"input": 0}
    try:
        out = ex.seq(spec.layers, ("layers",), "", 0, scope, Frame(MappingProxyType(dict(spec.params))))
        if spec.outputs is None:
            several.check_end(ex, "the model", ex.loc(("layers",)), Frame(), "")
    except checks.Abort:
        out = None
    outputs: tuple[tuple[str | None, int], ...] = ()
    if out is not None and spec.outputs is not None:
        outputs = ex.outputs(spec.outputs, scope)
        if outputs:
            out = outputs[0][1]
            if outputs[0][0] is None and len(outputs) == 1:
                outputs = ()  # a list of one is the plain output (an aux head switched off)
    sources = {spec.smap.file: spec.smap.text} if spec.smap else {}
    if any(d.is_error for d in ex.diags) or out is None:
        if not any(d.is_error for d in ex.diags):
            # Expansion stopped at a shape problem (a block needing an input's shape): show it.
            ex.diags.extend(dedupe([d for s in ex.shapes for d in s.diagnostics if d.is_error]))
        raise SpecError(ex.diags, sources)
    # Only the emitter reads the blocks' arithmetic: a sweep (memo) builds no code.
    exprs = {} if memo is not None else source_expressions(spec)
    graph = Graph(spec.model, spec.input, spec.dtype, ex.nodes, out, spec.description, ex.blocks, ex.calls, exprs,
                  outputs, frozenset(ex.lists))
    return graph, ex.shapes, ex.rfs


def source_expressions(spec: Spec) -> dict[str, tuple[str, ...]]:
    """Each user block's arithmetic the emitter may write as Python (specdsl.blocks.source_exprs)."""
    constants = {k: v for k, v in spec.params.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {name: block_expressions(block.model_dump(), set(block.params), constants)
            for name, block in spec.blocks.items()}

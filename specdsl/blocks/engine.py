"""Expansion: a validated spec becomes a Graph of primitive ops.

Blocks (residual, dense, transition, inception, fractal, stage and
user-defined ones) turn into primitives here. Blocks hold no shape math of
their own: where a block must choose (an ``auto`` shortcut, a transition's
channel count) it asks the primitives' rules, run incrementally on the nodes
built so far. Every node keeps the location of the text that made it and an
extended path (``layers[4].body[1]``), plus notes naming the block calls it
came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError

from specdsl.blocks.expr import ExprError, evaluate, identifiers, is_expression
from specdsl.budgets import MAX_DEPTH, MAX_NODES, over, raise_hint
from specdsl.errors import Diagnostic, SourceLoc, SpecError, did_you_mean
from specdsl.ir import BlockCall, Graph, Node
from specdsl.ops import OPS
from specdsl.ops.rule import Args, PositiveInt, Probability, fmt_shape
from specdsl.passes.analysis import NodeFigures, analyze_node
from specdsl.schema.document import (
    BUILTIN_BLOCKS,
    NAME_PATTERN,
    RESERVED_NAMES,
    BlockDef,
    LayerSpec,
    Spec,
    parse_layer,
    reserved_segment,
)
from specdsl.schema.validation import diagnostics_from, show_value
from specdsl.source import PathKey, format_path

__all__ = ["MAX_BLOCK_DEPTH", "MAX_FRACTAL_COLUMNS", "MAX_NODES", "Expander", "expand"]

MAX_BLOCK_DEPTH = 32
MAX_FRACTAL_COLUMNS = 12

LayerList = Annotated[list[Any], Field(min_length=1)]


class ResidualArgs(Args):
    body: LayerList = Field(description="the residual branch")
    shortcut: Literal["auto", "identity", "projection", "identity_if_same"] | LayerList = Field(
        default="auto",
        description="auto: 1x1 conv + bn exactly when stride or channels change; identity_if_same: "
        "no shortcut at all when they change (MobileNetV2)")
    pre: LayerList | None = Field(default=None, description="pre-activation layers shared by both paths")
    post: str | LayerList | None = Field(default=None, description="layers after the sum, e.g. relu")


class DenseArgs(Args):
    n: PositiveInt = Field(description="number of dense layers")
    growth: PositiveInt = Field(description="growth rate k: channels each layer adds")
    bottleneck: PositiveInt | None = Field(default=4, description="1x1 conv to bottleneck·k first; null for none")
    drop: Probability = 0.0


class TransitionArgs(Args):
    theta: Annotated[float, Field(gt=0.0, le=1.0)] | None = Field(default=None, description="compression")
    out: PositiveInt | None = None


class InceptionArgs(Args):
    branches: dict[Annotated[str, Field(pattern=NAME_PATTERN)], LayerList] | Annotated[
        list[LayerList], Field(min_length=1)]
    dim: int = 1


class FractalArgs(Args):
    columns: Annotated[int, Field(ge=1, le=MAX_FRACTAL_COLUMNS)]
    base: LayerList = Field(description="the base block f1")
    drop_local: Probability = 0.15
    drop_global: Probability = 0.5


class StageArgs(Args):
    layers: LayerList


@dataclass(frozen=True)
class Frame:
    """What a layer inherits from the blocks around it."""

    env: dict[str, Any] = field(default_factory=dict)
    frozen: bool = False
    init: Any = None
    notes: tuple[str, ...] = ()
    calls: tuple[str, ...] = ()
    depth: int = 0  # layers nested around this one, counting block calls (bounded by max_depth)


class _Abort(Exception):
    pass


class Expander:
    def __init__(self, spec: Spec, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> None:
        self.spec = spec
        self.smap = spec.smap
        self.max_nodes = max_nodes
        self.max_depth = max_depth
        # Graph size against max_nodes: one per node plus one per extra input of a merge, so a
        # DenseNet block's quadratic concatenations are paid for, not only its nodes.
        self.size = 1
        # Shape problems seen while expanding; the final analysis reports them again, so they are
        # only shown when expansion itself fails because of one (a block needing an input's shape).
        self.shape_diags: list[Diagnostic] = []
        self.diags: list[Diagnostic] = []
        self.nodes: list[Node] = [Node(0, "input", None, (), "input", name="input")]
        self.figs: list[NodeFigures] = []
        self.figs.append(analyze_node(self.nodes[0], self.figs, spec.input, []))
        self.block_names = (*BUILTIN_BLOCKS, *spec.blocks)
        self.blocks: dict[str, str] = {}
        self.calls: dict[str, BlockCall] = {}
        self._estimating: set[str] = set()
        self.all_names = _names_in(
            {"layers": spec.layers, "blocks": {n: b.model_dump() for n, b in spec.blocks.items()}})

    # -- helpers -------------------------------------------------------------

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
            raise _Abort
        node = Node(len(self.nodes), op, args, inputs, path, name, loc, arg_locs or {},
                    frame.frozen, frame.init, (*notes, *frame.notes))
        self.nodes.append(node)
        # Incremental figures so blocks can ask for shapes; diagnostics come from the final pass.
        self.figs.append(analyze_node(node, self.figs, self.spec.input, self.shape_diags))
        return node.index

    def prim(self, op: str, inputs: tuple[int, ...], path: str, frame: Frame, loc: SourceLoc | None,
             notes: tuple[str, ...] = (), **args: Any) -> int:
        """A primitive made by a block (not written by the user): its arguments are ours."""
        return self.add(op, OPS[op].args.model_validate(args), inputs, path, frame, loc, notes=notes)

    def shape(self, index: int) -> tuple[int, ...] | None:
        return self.figs[index].shape

    def substitute(self, raw: Any, src: PathKey, frame: Frame) -> Any:
        """Replace parameter names and integer expressions by their values."""
        env = frame.env
        if isinstance(raw, str):
            if raw not in env and not _OPERATOR_CHARS.intersection(raw):
                return raw  # a plain word such as `relu` or `same`: the common case, kept fast
            names = identifiers(raw)
            if raw in env or is_expression(raw, env):
                try:
                    return evaluate(raw, env)
                except ExprError as exc:
                    self.error("E320", f"cannot evaluate '{raw}': {exc}", src, frame,
                               hint="expressions use parameters, integers, + - * // and parentheses")
            elif any(n in env for n in names):
                unknown = [n for n in names if n not in env]
                guess = did_you_mean(unknown[0], env)
                self.error("E320", f"cannot evaluate '{raw}': unknown parameter '{unknown[0]}'", src, frame,
                           hint=f"did you mean '{guess}'?" if guess else "parameters in scope: " + ", ".join(env))
            return raw
        if isinstance(raw, list):
            return [self.substitute(v, (*src, i), frame) for i, v in enumerate(raw)]
        if isinstance(raw, dict):
            return {k: v if k in ("name", "inputs") else self.substitute(v, (*src, k), frame)
                    for k, v in raw.items()}
        return raw

    def validate(self, model: type[Args], raw: Any, src: PathKey, frame: Frame, what: str) -> Any:
        data = {} if raw is None else raw
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            for d in diagnostics_from(exc, data, src, self.smap, model, what):
                self.diags.append(replace(d, notes=(*d.notes, *frame.notes)))
            return None

    # -- sequences and layers ------------------------------------------------

    def seq(self, layers: list[Any], src: PathKey, out: str, x: int | None,
            scope: dict[str, int], frame: Frame) -> int | None:
        for i, raw in enumerate(layers):
            x = self.layer(raw, (*src, i), f"{out}[{i}]", x, scope, frame)
        return x

    def layer(self, raw: Any, src: PathKey, out: str, x: int | None,
              scope: dict[str, int], frame: Frame) -> int | None:
        if frame.depth >= self.max_depth:
            # Block calls nest layers beyond what the text shows; this also bounds Python's recursion.
            self.error("E324", f"layers nest deeper than {self.max_depth} levels, counting block calls "
                       "(the max_depth budget)", src, frame, path=out,
                       hint="flatten the blocks; " + raise_hint("max_depth"))
            raise _Abort
        n_errors = len(self.diags)
        raw = self.substitute(raw, src, frame)
        if len(self.diags) > n_errors:
            return None  # the expression error says it all
        spec = parse_layer(raw, src, self.smap, self.diags, self.block_names)
        for i in range(n_errors, len(self.diags)):
            if frame.notes:
                self.diags[i] = replace(self.diags[i], notes=(*self.diags[i].notes, *frame.notes))
        if spec is None:
            return None
        copies = self.estimate(raw)
        if self.size + copies > self.max_nodes:
            # Checked before expanding, so `repeat: 1000000000` costs nothing.
            self.error("E330", f"this layer would expand to about {copies:,} nodes; "
                       f"{over('max_nodes', self.max_nodes)}", spec.arg_locs.get("repeat", spec.loc), frame,
                       hint="reduce repeat counts, fractal columns or dense layers; " + raise_hint("max_nodes"),
                       path=out)
            raise _Abort
        inputs = self.resolve_inputs(spec, x, scope, frame)
        inner = replace(frame, frozen=frame.frozen or spec.meta.frozen, init=spec.meta.init or frame.init,
                        depth=frame.depth + 1)
        y = None
        if inputs is None:
            self.check_detached(spec, src, inner, isinstance(raw, dict))
        for r in range(spec.meta.repeat):
            path = out if spec.meta.repeat == 1 else f"{out}[{r}]"
            y = None if inputs is None else self.single(spec, src, path, inputs, inner, isinstance(raw, dict))
            inputs = None if y is None else (y,)
        if spec.meta.name is not None:
            name = spec.meta.name
            if name in scope or name in RESERVED_NAMES:
                self.error("E315", f"node name '{name}' is " + ("reserved" if name in RESERVED_NAMES
                                                                 else "already used in this scope"),
                           spec.arg_locs.get("name", spec.loc), frame, hint="pick a unique name", path=out)
            elif y is not None:
                scope[name] = y
                if not frame.calls:
                    self.nodes[y].name = name
        return y

    def estimate(self, raw: Any, depth: int = 0) -> int:
        """An upper-bound-ish node count of a raw layer, computed without building anything."""
        if depth > MAX_BLOCK_DEPTH:
            return 1
        if isinstance(raw, list):
            return sum(self.estimate(item, depth + 1) for item in raw)
        op = raw if isinstance(raw, str) else next((k for k in raw if k not in _META), None) \
            if isinstance(raw, dict) else None
        if op is None:
            return 1
        repeat = raw.get("repeat", 1) if isinstance(raw, dict) else 1
        repeat = repeat if isinstance(repeat, int) and not isinstance(repeat, bool) and repeat > 0 else 1
        args = raw.get(op) if isinstance(raw, dict) else None
        a = args if isinstance(args, dict) else {}

        def count(key: str) -> int:
            value = a.get(key)
            return int(value) if isinstance(value, int) and not isinstance(value, bool) else 1

        if op in self.spec.blocks:
            if op in self._estimating:
                return 1
            self._estimating.add(op)
            block = self.spec.blocks[op]
            body = block.layers if block.layers is not None else [
                {k: getattr(block, k)} for k in ("residual", "dense", "inception", "fractal", "transition")
                if getattr(block, k) is not None]
            size = self.estimate(body, depth + 1)
            self._estimating.discard(op)
        elif op == "residual":
            size = 3 + sum(self.estimate(a.get(k) or [], depth + 1) for k in ("body", "pre", "post"))
            if isinstance(a.get("shortcut"), list):
                size += self.estimate(a["shortcut"], depth + 1)
        elif op == "dense":
            n = min(count("n"), 10**9)
            size = 8 * n + 1 + n * (n + 1) // 2  # layer i concatenates i + 1 tensors
        elif op == "fractal":
            columns = min(count("columns"), 64)
            size = (2**columns - 1) * self.estimate(a.get("base") or [], depth + 1) + columns * 2 ** (columns - 1)
        elif op == "inception":
            branches = a.get("branches")
            items = branches.values() if isinstance(branches, dict) else branches if isinstance(branches, list) else []
            size = 1 + sum(1 + self.estimate(b, depth + 1) for b in items)
        elif op == "stage":
            size = self.estimate(args if isinstance(args, list) else a.get("layers") or [], depth + 1)
        elif op == "transition":
            size = 4
        else:
            size = 1
        return repeat * max(size, 1)

    def check_detached(self, spec: LayerSpec, src: PathKey, frame: Frame, written_as_mapping: bool) -> None:
        """Validate a block call whose input failed upstream, so its own mistakes still show."""
        if spec.args is not None:
            return
        op_src = (*src, spec.op) if written_as_mapping else src
        if spec.op in self.spec.blocks:
            self.bind(spec.op, self.spec.blocks[spec.op], spec, op_src, frame)
        elif spec.op in _BUILTIN_ARGS:
            self.validate(_BUILTIN_ARGS[spec.op], spec.raw_args, op_src, frame, f"'{spec.op}'")

    def resolve_inputs(self, spec: LayerSpec, x: int | None, scope: dict[str, int],
                       frame: Frame) -> tuple[int, ...] | None:
        if spec.meta.inputs is None:
            return None if x is None else (x,)
        resolved: list[int] = []
        for i, ref in enumerate(spec.meta.inputs):
            if ref in scope:
                resolved.append(scope[ref])
                continue
            guess = did_you_mean(ref, scope)
            later = " (it is defined later or in another block; inputs must come earlier)" \
                if ref in self.all_names else ""
            self.error("E314", f"unknown node '{ref}'{later}", spec.arg_locs.get(f"inputs[{i}]", spec.loc), frame,
                       hint=f"did you mean '{guess}'?" if guess else
                       "name a layer with `name:` before referring to it", path=format_path(spec.path))
        return tuple(resolved) if len(resolved) == len(spec.meta.inputs) else None

    def single(self, spec: LayerSpec, src: PathKey, out: str, inputs: tuple[int, ...], frame: Frame,
               written_as_mapping: bool) -> int | None:
        if spec.args is not None:
            rule = OPS[spec.op]
            n = len(inputs)
            if n < rule.min_inputs or (rule.max_inputs is not None and n > rule.max_inputs):
                want = f"exactly {rule.min_inputs}" if rule.max_inputs == rule.min_inputs else \
                    f"at least {rule.min_inputs}"
                self.error("E316", f"'{spec.op}' takes {want} input(s); received {n}", spec.loc, frame,
                           hint="list the nodes to merge with `inputs: [a, b]`" if rule.min_inputs > 1 else
                           "only merge layers (add, concat, mean) take several inputs", path=out)
                return None
            return self.add(spec.op, spec.args, inputs, out, frame, spec.loc, spec.arg_locs)
        op_src = (*src, spec.op) if written_as_mapping else src
        if self.smap is not None:
            spec = replace(spec, loc=self.smap.key_loc(op_src) or spec.loc)
        self.blocks.setdefault(out, spec.op)
        if spec.op in self.spec.blocks:
            return self.call(spec, op_src, out, inputs, frame)
        if len(inputs) != 1:
            self.error("E316", f"'{spec.op}' takes exactly 1 input; received {len(inputs)}", spec.loc, frame,
                       path=out)
            return None
        x = inputs[0]
        expand = getattr(self, f"expand_{spec.op}")
        return expand(spec, op_src, out, x, frame)  # type: ignore[no-any-return]

    # -- built-in blocks -----------------------------------------------------

    def expand_residual(self, spec: LayerSpec, src: PathKey, out: str, x: int, frame: Frame) -> int | None:
        args = self.validate(ResidualArgs, spec.raw_args, src, frame, "'residual'")
        if args is None:
            return None
        scope = {"input": x}
        start = x
        if args.pre is not None:
            start = self.seq(args.pre, (*src, "pre"), f"{out}.pre", x, scope, frame)
        body = self.seq(args.body, (*src, "body"), f"{out}.body", start, dict(scope), frame)
        if body is None or start is None:
            return None
        in_shape, body_shape = self.shape(x), self.shape(body)
        notes: tuple[str, ...] = ()
        shortcut: int | None
        mode = args.shortcut
        if mode == "identity_if_same" and in_shape != body_shape:
            y = body  # shapes change: the block is a plain sequence
        elif isinstance(mode, list):
            shortcut = self.seq(mode, (*src, "shortcut"), f"{out}.shortcut", start, dict(scope), frame)
        elif mode in ("identity", "identity_if_same") or (
                mode == "auto" and (in_shape == body_shape or None in (in_shape, body_shape))):
            shortcut = x
            if mode == "identity" and in_shape is not None and body_shape is not None and in_shape != body_shape:
                notes = (f"the identity shortcut carries the block input {fmt_shape(in_shape)} unchanged, "
                         f"but the body gives {fmt_shape(body_shape)}; use `shortcut: auto` to project",)
        else:
            shortcut = self.projection(start, body, f"{out}.shortcut", frame, spec.loc)
        if mode != "identity_if_same" or in_shape == body_shape:
            if shortcut is None:
                return None
            y = self.add("add", OPS["add"].args.model_validate({}), (body, shortcut), f"{out}.add", frame,
                         spec.loc, notes=notes)
        if args.post is not None:
            post = [args.post] if isinstance(args.post, str) else args.post
            post_src = (*src, "post")
            if isinstance(args.post, str):
                return self.layer(args.post, post_src, f"{out}.post[0]", y, dict(scope), frame)
            return self.seq(post, post_src, f"{out}.post", y, dict(scope), frame)
        return y

    def projection(self, x: int, body: int, path: str, frame: Frame, loc: SourceLoc | None) -> int | None:
        """1x1 conv (no bias) + batch norm matching the body's channels and stride."""
        in_shape, body_shape = self.shape(x), self.shape(body)
        if in_shape is None or body_shape is None or len(in_shape) != len(body_shape) or len(in_shape) < 2:
            # No 1x1 conv can bridge a change of rank; the add's own rule reports the mismatch.
            return x
        stride = []
        in_rf, out_rf = self.figs[x].rf, self.figs[body].rf
        for axis in range(len(in_shape) - 1):
            s = None
            if in_rf is not None and out_rf is not None:
                ratio = Fraction(out_rf[axis].stride) / Fraction(in_rf[axis].stride)
                s = int(ratio) if ratio.denominator == 1 and ratio >= 1 else None
            if s is None:
                s = max(1, -(-in_shape[1 + axis] // body_shape[1 + axis]))
            stride.append(s)
        conv = self.prim("conv", (x,), f"{path}[0]", frame, loc, out=body_shape[0], k=1,
                         stride=stride if len(set(stride)) > 1 else stride[0], bias=False)
        return self.prim("bn", (conv,), f"{path}[1]", frame, loc)

    def expand_dense(self, spec: LayerSpec, src: PathKey, out: str, x: int, frame: Frame) -> int | None:
        args = self.validate(DenseArgs, spec.raw_args, src, frame, "'dense'")
        if args is None:
            return None
        loc = spec.loc
        features = [x]
        for i in range(args.n):
            p = f"{out}.dense[{i}]"
            h = features[0] if len(features) == 1 else self.prim("concat", tuple(features), f"{p}.cat", frame, loc)
            if args.bottleneck is not None:
                h = self.prim("bn", (h,), f"{p}.norm1", frame, loc)
                h = self.prim("relu", (h,), f"{p}.relu1", frame, loc)
                h = self.prim("conv", (h,), f"{p}.conv1", frame, loc, out=args.bottleneck * args.growth, k=1,
                              bias=False)
                h = self.prim("bn", (h,), f"{p}.norm2", frame, loc)
                h = self.prim("relu", (h,), f"{p}.relu2", frame, loc)
                h = self.prim("conv", (h,), f"{p}.conv2", frame, loc, out=args.growth, k=3, pad=1, bias=False)
            else:
                h = self.prim("bn", (h,), f"{p}.norm", frame, loc)
                h = self.prim("relu", (h,), f"{p}.relu", frame, loc)
                h = self.prim("conv", (h,), f"{p}.conv", frame, loc, out=args.growth, k=3, pad=1, bias=False)
            if args.drop > 0:
                h = self.prim("dropout", (h,), f"{p}.drop", frame, loc, p=args.drop)
            features.append(h)
        return self.prim("concat", tuple(features), f"{out}.cat", frame, loc)

    def expand_transition(self, spec: LayerSpec, src: PathKey, out: str, x: int, frame: Frame) -> int | None:
        args = self.validate(TransitionArgs, spec.raw_args, src, frame, "'transition'")
        if args is None:
            return None
        if (args.theta is None) == (args.out is None):
            self.error("E313", "transition needs exactly one of theta (compression) or out (channels)", src,
                       frame, hint="write transition: {theta: 0.5}", path=out)
            return None
        shape = self.shape(x)
        if shape is None:
            return None
        channels = args.out if args.out is not None else int(shape[0] * args.theta)  # type: ignore[operator]
        if channels < 1:
            self.error("E301", f"transition compresses {shape[0]} channels to {channels}", src, frame, path=out)
            return None
        loc = spec.loc
        h = self.prim("bn", (x,), f"{out}.norm", frame, loc)
        h = self.prim("relu", (h,), f"{out}.relu", frame, loc)
        h = self.prim("conv", (h,), f"{out}.conv", frame, loc, out=channels, k=1, bias=False)
        return self.prim("avgpool", (h,), f"{out}.pool", frame, loc, k=2, stride=2)

    def expand_inception(self, spec: LayerSpec, src: PathKey, out: str, x: int, frame: Frame) -> int | None:
        args = self.validate(InceptionArgs, spec.raw_args, src, frame, "'inception'")
        if args is None:
            return None
        bad = [k for k in args.branches if isinstance(args.branches, dict) and reserved_segment(k)]
        if bad:
            self.error("E315", f"inception branch name '{bad[0]}' is reserved (a PyTorch module attribute)",
                       (*src, "branches", bad[0]), frame, hint="rename the branch, e.g. b1, b3x3, pool", path=out)
            return None
        named = args.branches.items() if isinstance(args.branches, dict) else \
            ((f"branch{i}", b) for i, b in enumerate(args.branches))
        outs = []
        for key, layers in named:
            bsrc = (*src, "branches", key if isinstance(args.branches, dict) else int(key[6:]))
            y = self.seq(layers, bsrc, f"{out}.{key}", x, {"input": x}, frame)
            if y is None:
                return None
            outs.append(y)
        if len(outs) == 1:
            return outs[0]
        return self.prim("concat", tuple(outs), f"{out}.concat", frame, spec.loc, dim=args.dim,
                         notes=("inception branches are concatenated on channels and must agree on "
                                "every other axis",))

    def expand_fractal(self, spec: LayerSpec, src: PathKey, out: str, x: int, frame: Frame) -> int | None:
        args = self.validate(FractalArgs, spec.raw_args, src, frame, "'fractal'")
        if args is None:
            return None
        counters: dict[int, int] = {}
        joins = [0]

        def base(z: int, column: int) -> int | None:
            k = counters.get(column, 0)
            counters[column] = k + 1
            return self.seq(args.base, (*src, "base"), f"{out}.col{column}[{k}]", z, {"input": z}, frame)

        def join(cols: list[tuple[int, int]]) -> int:
            if len(cols) == 1:
                return cols[0][1]
            joins[0] += 1
            return self.prim("join", tuple(y for _, y in cols), f"{out}.join{joins[0]}", frame, spec.loc,
                             drop_local=args.drop_local, drop_global=args.drop_global,
                             columns=[c for c, _ in cols],
                             notes=("fractal columns are averaged and must agree in shape",))

        def fract(c: int, z: int, offset: int) -> list[tuple[int, int]] | None:
            # f1 = base; f(C+1) = (fC ∘ fC) ⊕ base; joins flattened as in the FractalNet paper.
            # Column offset+1 is this sub-fractal's shallowest; deeper columns follow.
            shallow = base(z, offset + 1)
            if shallow is None:
                return None
            if c == 1:
                return [(offset + 1, shallow)]
            first = fract(c - 1, z, offset + 1)
            if first is None:
                return None
            second = fract(c - 1, join(first), offset + 1)
            if second is None:
                return None
            return [*second, (offset + 1, shallow)]

        cols = fract(args.columns, x, 0)
        return None if cols is None else join(sorted(cols, key=lambda t: -t[0]))

    def expand_stage(self, spec: LayerSpec, src: PathKey, out: str, x: int, frame: Frame) -> int | None:
        raw = spec.raw_args
        if isinstance(raw, list):
            raw = {"layers": raw}
            return self.seq(raw["layers"], src, f"{out}.stage", x, {"input": x}, frame)
        args = self.validate(StageArgs, raw, src, frame, "'stage'")
        if args is None:
            return None
        return self.seq(args.layers, (*src, "layers"), f"{out}.stage", x, {"input": x}, frame)

    # -- user-defined blocks -------------------------------------------------

    def call(self, spec: LayerSpec, src: PathKey, out: str, inputs: tuple[int, ...], frame: Frame) -> int | None:
        name = spec.op
        block: BlockDef = self.spec.blocks[name]
        if name in frame.calls or len(frame.calls) >= MAX_BLOCK_DEPTH:
            self.error("E323", f"block '{name}' calls itself" if name in frame.calls else
                       f"blocks nest deeper than {MAX_BLOCK_DEPTH} calls", spec.loc, frame, path=out,
                       hint="blocks cannot be recursive; use repeat instead")
            return None
        env = self.bind(name, block, spec, src, frame)
        if env is None:
            return None
        if len(inputs) != len(block.inputs):
            self.error("E316", f"block '{name}' takes {len(block.inputs)} input(s) "
                       f"({', '.join(block.inputs)}); received {len(inputs)}", spec.loc, frame, path=out,
                       hint="pass them with `inputs: [...]`")
            return None
        shown = ", ".join(f"{k}={show_value(v)}" for k, v in env.items())
        where = f" at {spec.loc}" if spec.loc else ""
        note = f"while expanding block '{name}'" + (f" ({shown})" if shown else "") + f" called{where} ({out})"
        inner = Frame(env, frame.frozen, frame.init, (note, *frame.notes), (*frame.calls, name), frame.depth)
        scope = {"input": inputs[0], **dict(zip(block.inputs, inputs))}
        bsrc: PathKey = ("blocks", name)
        if block.layers is not None:
            y = self.seq(block.layers, (*bsrc, "layers"), f"{out}.layers", inputs[0], scope, inner)
            self.record_call(out, name, block, env, inputs, y)
            return y
        kind = next(k for k in ("residual", "dense", "inception", "fractal", "transition")
                    if getattr(block, k) is not None)
        body = {kind: getattr(block, kind)}
        y = self.layer(body, bsrc, out, inputs[0], scope, inner)
        self.record_call(out, name, block, env, inputs, y)
        return y

    def record_call(self, out: str, name: str, block: BlockDef, env: dict[str, Any], inputs: tuple[int, ...],
                    y: int | None) -> None:
        if y is None:
            return
        types = {p: d if isinstance(d, str) and d in ("int", "float", "bool", "str") else type(d).__name__
                 for p, d in block.params.items()}
        self.calls[out] = BlockCall(name, dict(env), types, tuple(block.inputs), inputs, y)

    def bind(self, name: str, block: BlockDef, spec: LayerSpec, src: PathKey, frame: Frame) -> dict[str, Any] | None:
        raw = spec.raw_args
        params = list(block.params)
        if raw is None:
            raw = {}
        elif not isinstance(raw, dict):
            if not params:
                self.error("E322", f"block '{name}' takes no arguments; received {show_value(raw)}", src, frame)
                return None
            raw = {params[0]: raw}
            if self.smap is not None and src in self.smap.values:
                self.smap.values.setdefault((*src, params[0]), self.smap.values[src])
        env: dict[str, Any] = {}
        ok = True
        for key in raw:
            if key not in block.params:
                guess = did_you_mean(key, params)
                self.error("E322", f"block '{name}' has no parameter '{key}'",
                           self.smap.key_loc((*src, key)) if self.smap else spec.loc, frame,
                           hint=f"did you mean '{guess}'?" if guess else
                           ("its parameters: " + ", ".join(params)) if params else "it takes no parameters")
                ok = False
        for pname, decl in block.params.items():
            required = isinstance(decl, str) and decl in ("int", "float", "bool", "str")
            if pname not in raw:
                if required:
                    self.error("E321", f"block '{name}' is missing the argument '{pname}' ({decl})", spec.loc,
                               frame, hint=f"pass it: `{name}: {{{pname}: ...}}` in YAML, "
                               f"`{name}({pname}=...)` in the DSL")
                    ok = False
                    continue
                env[pname] = decl
                continue
            value = raw[pname]
            kind = decl if required else type(decl).__name__
            if not _type_ok(value, kind):
                self.error("E202", f"argument '{pname}' of block '{name}' expects {_KIND_TEXT[kind]}; "
                           f"received {show_value(value)}", (*src, pname), frame)
                ok = False
                continue
            env[pname] = value
        return env if ok else None


def _names_in(raw: Any) -> set[str]:
    """Every `name:` written anywhere in the spec, to explain forward references."""
    found: set[str] = set()
    stack = [raw]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("name"), str):
                found.add(item["name"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


_META = ("name", "frozen", "init", "inputs", "repeat")
_OPERATOR_CHARS = frozenset("+-*/()")
_BUILTIN_ARGS: dict[str, type[Args]] = {
    "residual": ResidualArgs, "dense": DenseArgs, "transition": TransitionArgs,
    "inception": InceptionArgs, "fractal": FractalArgs,
}
_KIND_TEXT = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    return isinstance(value, str)


def expand(spec: Spec, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> Graph:
    """Build the graph of primitives; raise SpecError listing every expansion problem."""
    return expand_analysed(spec, max_nodes, max_depth)[0]


def expand_analysed(spec: Spec, max_nodes: int = MAX_NODES,
                    max_depth: int = MAX_DEPTH) -> tuple[Graph, list[NodeFigures], list[Diagnostic]]:
    """The graph plus the figures and diagnostics its nodes got while it was built.

    Expansion already runs every node's rules (blocks need shapes to decide); handing
    those results on spares the analysis a second pass.

    ``max_nodes`` and ``max_depth`` are budgets (specdsl.budgets): the first is checked
    against an estimate before each layer expands, and again as nodes are added.
    """
    ex = Expander(spec, max_nodes, max_depth)
    scope: dict[str, int] = {"input": 0}
    try:
        out = ex.seq(spec.layers, ("layers",), "layers", 0, scope, Frame())
    except _Abort:
        out = None
    sources = {spec.smap.file: spec.smap.text} if spec.smap else {}
    if any(d.is_error for d in ex.diags) or out is None:
        if not any(d.is_error for d in ex.diags):
            from specdsl.passes.analysis import _dedupe

            ex.diags.extend(_dedupe([d for d in ex.shape_diags if d.is_error]))
        raise SpecError(ex.diags, sources)
    exprs = {name: _expressions_in(block.model_dump(), set(block.params)) for name, block in spec.blocks.items()}
    graph = Graph(spec.model, spec.input, spec.dtype, ex.nodes, out, spec.description, ex.blocks, ex.calls, exprs)
    return graph, ex.figs, ex.shape_diags


def _expressions_in(raw: Any, params: set[str]) -> tuple[str, ...]:
    found: list[str] = []
    stack = [raw]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and item not in params and item not in found and is_expression(item, params):
            found.append(item)
        elif isinstance(item, dict):
            stack.extend(v for k, v in item.items() if k not in ("name", "inputs"))
        elif isinstance(item, list):
            stack.extend(item)
    return tuple(sorted(found))


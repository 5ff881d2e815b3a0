"""A sweep's memo of user-block calls: a call with the same block, arguments, model parameters read,
inputs' shapes and nesting expands to the same nodes, so the nodes and shapes of its first expansion
are replayed (re-indexed, re-pathed, their receptive fields recomputed from the new inputs', once per
inputs' fields) instead of expanded again. The replayed nodes share their shape-pass results with the
first call's, which is how the sweep's ``specdsl.passes.analysis.FigureCache`` finds their figures.

Only ``specdsl.sweep`` passes one (``expand_with_shapes(..., memo=CallMemo())``): a replayed call
adds its nodes to the graph, but not the `while expanding` notes of the new call site (its nodes
keep the first call's) nor the nested calls' entries of ``Graph.calls`` and ``Graph.blocks``, which
figures do not read. A call whose expansion reported anything, or read a node outside its inputs,
is never recorded; one that would pass the node budget is expanded, so the budget's error is the same.

An argument (or model parameter) a block reads only in the drop probability ``p`` of its dropout-kind
ops (``stochastic_depth``, ``dropout``, ...; EfficientNet's block index ``i`` and ``depth``, which set
its stochastic depth) is not keyed by value: the figures read ``p`` only as ``p == 0`` or ``p == 1``
(``specdsl.ops.saved``) and a ``p`` outside [0, 1] is an error, which is never recorded. The key holds
instead each such ``p`` with every value strictly between 0 and 1 counted as one, and a replayed
node keeps the first call's ``p``, as it keeps its notes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from specdsl.blocks.expr import ExprError, evaluate, identifiers
from specdsl.ir import Node
from specdsl.ops import lookup
from specdsl.ops.rule import Trait
from specdsl.passes.receptive import GatedRF, node_rf

# Calls of a block recorded without one replay, after which its calls are expanded without recording.
GIVE_UP = 16
# Layers substituted and parsed kept by a sweep (LayerCache): beyond this many, the rest are parsed as usual.
MAX_LAYERS = 8192
_ABSENT = object()


@dataclass(frozen=True)
class _Reads:
    """The identifiers a block reads (nested blocks' too): ``keyed`` anywhere but in a dropout's ``p``,
    ``neutral`` only there; ``drops``: the ``p`` expressions, written in the block itself, that read one."""

    keyed: frozenset[str]
    neutral: frozenset[str] = frozenset()
    drops: tuple[tuple[str, tuple[str, ...]], ...] = ()  # with the names each reads
    order: tuple[str, ...] = field(init=False)  # keyed, sorted once (every call's key lists them in order)

    def __post_init__(self) -> None:
        object.__setattr__(self, "order", tuple(sorted(self.keyed)))


def _names(text: str) -> list[str]:
    return identifiers(text) or [text]


def _is_drop(key: Any, blocks: Mapping[str, Any]) -> bool:
    rule = lookup(key) if isinstance(key, str) and key not in blocks else None
    return rule is not None and rule.has(Trait.DROP_RATE)


def _drop_p(args: Any) -> tuple[Any, Any]:
    """A dropout-kind layer's arguments: (its p as written, the rest)."""
    if isinstance(args, dict):
        return args.get("p"), {k: v for k, v in args.items() if k != "p"}
    if isinstance(args, list):
        return (args[0], args[1:]) if args else (None, args)
    return args, None  # the shorthand `stochastic_depth: p`


def _p_class(p: Any) -> Any:
    """What of a dropout's p the figures can see: 0, 1, anything in between, or the value (an error)."""
    if isinstance(p, (int, float)) and not isinstance(p, bool) and 0 < p < 1:
        return "(0, 1)"
    return type(p), p


@dataclass(frozen=True)
class _Recorded:
    nodes: tuple[tuple[Any, ...], ...]  # per node: op, args, inputs (call input k, or new node k - inputs), ...
    shapes: tuple[Any, ...]
    size: int  # what the nodes count against max_nodes
    output: int  # position of the call's result among the nodes
    # The nodes' receptive fields per inputs' fields (with their types: a GatedRF equals its tuple).
    rfs: dict[tuple[Any, ...], tuple[Any, ...]] = field(default_factory=dict)


def _rf_kind(rf: Any) -> Any:
    """What of an input's receptive field can change an expansion: whether there is one, whether a gate
    is behind it, and which axes see the whole input. Its sizes and offsets cannot (the residual
    projection reads a ratio of strides), so they are recomputed on replay rather than keyed."""
    if rf is None:
        return None
    return type(rf) is GatedRF, tuple(a.stride == 0 for a in rf)


class CallMemo:
    def __init__(self) -> None:
        self.entries: dict[Any, _Recorded | None] = {}
        self.reads: dict[str, _Reads] = {}  # block -> identifiers written anywhere in it (nested blocks too)
        # Per block, calls recorded and calls replayed: a block whose every call differs (EfficientNet's
        # rows, one per stage and point) stops being recorded, which would only cost time.
        self.recorded: dict[str, int] = {}
        self.replayed: dict[str, int] = {}
        self.p_classes: dict[tuple[str, tuple[Any, ...]], Any] = {}  # (p's text, its names' values) -> class
        self.shapes: set[int] = set()  # ids of the shape-pass results the entries hold (and so keep alive)
        self.layers = LayerCache()  # layers substituted and parsed, for the engine (Expander.layer)
        self.estimates: dict[int, tuple[Any, dict[Any, int]]] = {}  # specdsl.blocks.estimate's, per layer object
        # Recorded calls' fields per inputs' fields, shared by the records whose nodes have the same ops, shape
        # attrs and wiring (the same call at another resolution): a node's field reads nothing else (node_rf).
        self.rf_tables: dict[Any, dict[tuple[Any, ...], tuple[Any, ...]]] = {}
        self.conditions = LayerCache()  # `if` conditions evaluated, per values of the names they mention
        self.stripped: dict[Any, tuple[Any, Any]] = {}  # source path -> (a layer with `if`, the layer without)
        self.locs: dict[tuple[Any, int], tuple[Any, Any]] = {}  # (source path, id) -> (LayerSpec, it located)

    def without_if(self, raw: dict[str, Any], src: Any) -> dict[str, Any]:
        """The layer without its `if`: the same object for an equal layer at the same place, so the layer
        cache and the estimates find it by identity."""
        found = self.stripped.get(src)
        if found is None or (found[0] is not raw and found[0] != raw):
            found = self.stripped[src] = (raw, {k: v for k, v in raw.items() if k != "if"})
        return found[1]

    def located(self, spec: Any, src: Any, smap: Any) -> Any:
        """A block call's LayerSpec with the location of its name (as the engine's single() makes it),
        made once per LayerSpec (the layer cache hands out the same one again)."""
        found = self.locs.get((src, id(spec)))
        if found is None or found[0] is not spec:
            done = spec if smap is None else replace(spec, loc=smap.key_loc(src) or spec.loc)
            if len(self.locs) >= MAX_LAYERS:
                return done
            found = self.locs[src, id(spec)] = (spec, done)  # the entry keeps spec alive: its id is not reused
        return found[1]

    def key(self, ex: Any, name: str, env: Mapping[str, Any], inputs: tuple[int, ...], frame: Any) -> Any:
        if self.recorded.get(name, 0) >= GIVE_UP and not self.replayed.get(name):
            return None
        model = ex.spec.params
        read = self._reads(ex.spec.blocks, name)
        try:
            drops = self._drops(read, model, env) if read.drops else ()
            args = tuple((k, type(v), v) for k, v in env.items() if k not in read.neutral)
            params = tuple((k, type(model[k]), model[k]) for k in read.order if k in model and k not in env)
            ins = tuple((ex.shapes[i].shape, _rf_kind(ex.rfs[i])) for i in inputs)
            key = (name, args, params, drops, ins, frame.frozen, repr(frame.init), frame.calls, frame.depth)
            hash(key)
        except (TypeError, ExprError, ArithmeticError, ValueError):
            return None  # an unhashable value (a list argument), a p that does not evaluate here: expand as usual
        return key

    def _drops(self, read: _Reads, model: Mapping[str, Any], env: Mapping[str, Any]) -> tuple[Any, ...]:
        out = []
        for text, names in read.drops:
            values = tuple(env[n] if n in env else model.get(n) for n in names)
            found = self.p_classes.get((text, values))
            if found is None:
                found = self.p_classes[text, values] = _p_class(evaluate(text, {**model, **env}))
            out.append(found)
        return tuple(out)

    def _reads(self, blocks: Mapping[str, Any], name: str) -> _Reads:
        if name not in self.reads:
            self.reads[name] = _Reads(frozenset())  # a recursive block is refused by the expander (E323)
            keyed: set[str] = set()
            in_p: set[str] = set()
            drops: list[str] = []
            bound: set[str] = set()
            # Items with whether they are layers (dicts keyed by op or block): op arguments are not.
            stack: list[tuple[Any, bool]] = [(blocks[name].model_dump(), True)]
            while stack:
                item, layer = stack.pop()
                if isinstance(item, dict):
                    if layer and isinstance(item.get("index"), str):
                        bound.add(item["index"])  # a repeat's copy number: a p reading it is not keyable
                    for k, v in item.items():
                        if layer and k in blocks and k != name:
                            keyed |= self._reads(blocks, k).keyed | self._reads(blocks, k).neutral
                        if layer and _is_drop(k, blocks):
                            p, v = _drop_p(v)
                            if isinstance(p, str):
                                in_p.update(_names(p))
                                drops.append(p)
                        stack.append((v, False))
                elif isinstance(item, list):
                    stack.extend((x, True) for x in item)  # a body's layers (or strings)
                elif isinstance(item, str):
                    keyed.update(_names(item))
            if bound & in_p:
                keyed |= in_p  # every name keyed by value
            neutral = frozenset(in_p - keyed)
            self.reads[name] = _Reads(frozenset(keyed), neutral, tuple(
                (p, tuple(dict.fromkeys(_names(p)))) for p in drops if neutral.intersection(_names(p))))
        return self.reads[name]

    def replay(self, ex: Any, key: Any, inputs: tuple[int, ...], out: str) -> int | None:
        """The call's result index after replaying its nodes, or None (not recorded, or over the budget)."""
        rec = self.entries.get(key)
        if rec is None or ex.size + rec.size > ex.max_nodes:
            return None
        name = key[0]
        self.replayed[name] = self.replayed.get(name, 0) + 1
        base = len(ex.nodes)
        ex.size += rec.size
        nodes = ex.nodes
        where = [*inputs, *range(base, base + len(rec.nodes))].__getitem__  # what the recorded inputs become
        for k, (op, args, ins, suffix, name, loc, arg_locs, frozen, init, notes) in enumerate(rec.nodes, base):
            nodes.append(Node(k, op, args, tuple(map(where, ins)), out + suffix, name, loc, arg_locs, frozen, init,
                              notes))
        ex.shapes.extend(rec.shapes)
        # Fields follow the inputs' (not keyed): computed once per inputs' fields.
        fields = tuple((type(rf), rf) for rf in (ex.rfs[i] for i in inputs))
        known = rec.rfs.get(fields)
        if known is None:
            for k in range(base, len(nodes)):
                ex.rfs.append(node_rf(nodes[k], ex.shapes[k], ex.rfs))
            rec.rfs[fields] = tuple(ex.rfs[base:])
        else:
            ex.rfs.extend(known)
        return base + rec.output

    def record(self, ex: Any, key: Any, start: int, size_before: int, diags_before: int,
               inputs: tuple[int, ...], out: str, y: int) -> None:
        if key is None or key in self.entries or len(ex.diags) != diags_before or y < start:
            return
        self.recorded[key[0]] = self.recorded.get(key[0], 0) + 1
        nodes = []
        for node in ex.nodes[start:]:
            ins = []
            for i in node.inputs:
                if i >= start:
                    ins.append(len(inputs) + i - start)
                elif i in inputs:
                    ins.append(inputs.index(i))
                else:
                    return  # reads a node outside the call: not a function of its inputs
            if not node.path.startswith(out) or any(s.diagnostics for s in ex.shapes[node.index:node.index + 1]):
                return
            nodes.append((node.op, node.args, tuple(ins), node.path[len(out):], node.name, node.loc, node.arg_locs,
                          node.frozen, node.init, node.notes))
        shapes = tuple(ex.shapes[start:])
        try:
            rfs = self.rf_tables.setdefault(
                tuple((n[0], s.attrs, n[2], s.shape is None) for n, s in zip(nodes, shapes)), {})
        except TypeError:
            rfs = {}  # unhashable attrs: fields kept for this record only
        self.entries[key] = _Recorded(tuple(nodes), shapes, ex.size - size_before, y - start, rfs)
        self.shapes.update(map(id, ex.shapes[start:]))


def _strings(raw: Any) -> list[str]:
    """Every string in a raw layer (keys aside): what substitution may read the environment for."""
    out: list[str] = []
    stack = [raw]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return out


class LayerCache:
    """A sweep's layers as substituted and parsed (``specdsl.schema.layer.parse_layer``), so a layer whose
    text and the values of the names it mentions are those of an earlier point's is not substituted,
    evaluated and validated again. Keyed by the layer's source path, with each name it mentions (a whole
    string, or an identifier of an expression: what ``specdsl.blocks.substitute`` looks up) present or not
    and its value with its type; an entry keeps the layer as written and is used only for an equal one.
    Only layers that substituted and parsed without a diagnostic are kept: an error is reported afresh."""

    def __init__(self, limit: int = MAX_LAYERS) -> None:
        self.limit = limit
        self.entries: dict[Any, tuple[Any, Any, Any]] = {}  # key -> (as written, substituted, LayerSpec)
        self.reads: dict[Any, tuple[Any, tuple[str, ...]]] = {}  # source path -> (as written, names read)
        self.pending: tuple[Any, Any] | None = None  # (key, as written) of the last miss, for keep()

    def get(self, raw: Any, src: Any, env: Mapping[str, Any]) -> tuple[Any, Any] | None:
        """(the substituted layer, its LayerSpec) for ``raw`` in ``env``, or None (then keep() may follow)."""
        self.pending = None
        read = self.reads.get(src)
        if read is None or (read[0] is not raw and read[0] != raw):
            names: dict[str, None] = {}
            for text in _strings(raw):
                names[text] = None
                names.update(dict.fromkeys(identifiers(text)))
            read = self.reads[src] = (raw, tuple(names))
        values = []
        for name in read[1]:
            value = env.get(name, _ABSENT)
            values.append((type(value), value))
        key = (src, tuple(values))
        try:
            found = self.entries.get(key)
        except TypeError:
            return None  # an unhashable value (a list): substituted as usual
        if found is not None and (found[0] is raw or found[0] == raw):
            return found[1], found[2]
        if len(self.entries) < self.limit:
            self.pending = (key, raw)
        return None

    def keep(self, substituted: Any, spec: Any) -> None:
        """Record the layer last missed by get(), now substituted and parsed without a diagnostic."""
        if self.pending is not None:
            key, raw = self.pending
            self.entries[key] = (raw, substituted, spec)
            self.pending = None

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

from specdsl.blocks.expr import ExprError, evaluate
from specdsl.blocks.layer_cache import MAX_LAYERS, LayerCache
from specdsl.blocks.memo_reads import Reads, block_reads, p_class
from specdsl.blocks.traced import OPAQUE, Traced, holds
from specdsl.ir import Node
from specdsl.passes.receptive import GatedRF, node_rf
from specdsl.passes.shapes import NodeShape, infer_node

# Shape-pass results a sweep shares (CallMemo.infer): beyond this many, nodes are inferred as usual.
MAX_INFERRED = 65536
# Calls of a block recorded without one replay, after which its calls are expanded without recording.
GIVE_UP = 16


@dataclass(frozen=True)
class _Recorded:
    nodes: tuple[tuple[Any, ...], ...]  # per node: op, args, inputs (call input k, or new node k - inputs), ...
    shapes: tuple[Any, ...]
    size: int  # what the nodes count against max_nodes
    output: int  # position of the call's result among the nodes
    # The nodes' receptive fields per inputs' fields (with their types: a GatedRF equals its tuple).
    rfs: dict[tuple[Any, ...], tuple[Any, ...]] = field(default_factory=dict)
    # What its blocks read of shapes and fields (specdsl.blocks.traced), None where a use was opaque.
    facts: tuple[tuple[Any, ...], ...] | None = ()


class _Key:
    """A call's keys: ``exact`` (its inputs' shapes), ``generic`` (their ranks and channels only, for a
    record whose facts hold at the new shapes), and where the fact log stood as its expansion began."""

    __slots__ = ("exact", "generic", "mark", "open")

    def __init__(self, exact: Any, generic: Any) -> None:
        self.exact = exact
        self.generic = generic
        self.mark = 0
        self.open = False  # expanding, to be recorded


def _rf_kind(rf: Any) -> Any:
    """What of an input's receptive field can change an expansion: whether there is one, whether a gate
    is behind it, and which axes see the whole input. Its sizes and offsets cannot (the residual
    projection reads a ratio of strides), so they are recomputed on replay rather than keyed."""
    if rf is None:
        return None
    return type(rf) is GatedRF, tuple(a.stride == 0 for a in rf)


def _same(a: Any, b: Any) -> bool:
    """Equal with the same types throughout (1 == 1.0 == True and a tuple equals a named tuple, which an
    interned value must not conflate); a float by its text (0.0 == -0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(map(_same, a.values(), b.values()))
    fields = getattr(a, "__dataclass_fields__", None)
    if fields is not None:
        return all(_same(getattr(a, f), getattr(b, f)) for f in fields)
    return bool(a == b) and (type(a) is not float or repr(a) == repr(b))


def _same_attrs(new: Any, old: Any) -> bool:
    """Whether the nodes' shape results have equal attrs and fail alike (equal old attrs become the new object)."""
    for a, b in zip(new, old, strict=True):
        if (a.shape is None) != (b.shape is None):
            return False
        if a.attrs is not b.attrs:
            if not _same(a.attrs, b.attrs):
                return False
            b.attrs = a.attrs
    return True


class CallMemo:
    def __init__(self) -> None:
        self.entries: dict[Any, _Recorded] = {}
        self.reads: dict[str, Reads] = {}  # block -> identifiers written anywhere in it (nested blocks too)
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
        # Records by their generic key, whose facts may hold at other input shapes (specdsl.blocks.traced).
        self.generic: dict[Any, _Recorded] = {}
        self.log: list[tuple[Any, ...]] = []  # this point's facts so far (Expander.shape, Expander.rf)
        # Calls being expanded to be recorded: facts are logged only then (one whose expansion failed stays
        # counted till the point ends, which only logs more).
        self.open = 0
        self.inferred: dict[tuple[Any, ...], tuple[Any, NodeShape]] = {}  # infer()'s results
        self.fields: dict[tuple[Any, ...], tuple[Any, ...]] = {}  # field()'s results
        self.interned: dict[tuple[Any, Any], Any] = {}  # every field field() computed, by type and value

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

    def begin(self) -> None:
        """A new point: the fact log names this expansion's nodes."""
        self.log = []
        self.open = 0

    def traced(self, index: int, shape: Any) -> Any:
        """Node ``index``'s shape for a block to read, every use logged (specdsl.blocks.traced) while a call
        is being recorded."""
        if not self.open:
            return shape
        self.log.append(("none", index, shape is None))
        return None if shape is None else Traced(shape, index, self.log)

    def read_field(self, index: int, rf: Any) -> None:
        """Node ``index``'s field was read (Expander.rf)."""
        if self.open:
            self.log.append(("rf", index, (type(rf), rf)))

    def key(self, ex: Any, name: str, env: Mapping[str, Any], inputs: tuple[int, ...], frame: Any) -> _Key | None:
        if self.recorded.get(name, 0) >= GIVE_UP and not self.replayed.get(name):
            return None
        model = ex.spec.params
        read = self._reads(ex.spec.blocks, name)
        try:
            drops = self._drops(read, model, env) if read.drops else ()
            args = tuple((k, type(v), v) for k, v in env.items() if k not in read.neutral)
            params = tuple((k, type(model[k]), model[k]) for k in read.order if k in model and k not in env)
            shapes = [ex.shapes[i].shape for i in inputs]
            kinds = tuple(_rf_kind(ex.rfs[i]) for i in inputs)
            rest = (frame.frozen, repr(frame.init), frame.calls, frame.depth)
            exact = (name, args, params, drops, tuple(shapes), kinds, rest)
            generic = (name, args, params, drops, tuple(None if s is None else (len(s), s[0]) for s in shapes),
                       kinds, rest)
            hash(exact)
        except (TypeError, ExprError, ArithmeticError, ValueError):
            return None  # an unhashable value (a list argument), a p that does not evaluate here: expand as usual
        return _Key(exact, generic)

    def _drops(self, read: Reads, model: Mapping[str, Any], env: Mapping[str, Any]) -> tuple[Any, ...]:
        out = []
        for text, names in read.drops:
            values = tuple(env[n] if n in env else model.get(n) for n in names)
            found = self.p_classes.get((text, values))
            if found is None:
                found = self.p_classes[text, values] = p_class(evaluate(text, {**model, **env}))
            out.append(found)
        return tuple(out)

    def _reads(self, blocks: Mapping[str, Any], name: str) -> Reads:
        return block_reads(blocks, name, self.reads)

    def replay(self, ex: Any, key: _Key, inputs: tuple[int, ...], out: str) -> int | None:
        """The call's result index after replaying its nodes, or None (not recorded, or over the budget)."""
        rec = self.entries.get(key.exact)
        if rec is None:
            rec = self._at_new_shapes(ex, key, inputs, out)
            if rec is None:
                key.mark = len(self.log)  # the call expands: its record's facts start here
                key.open = True
                self.open += 1
                return None
        elif ex.size + rec.size > ex.max_nodes:
            return None
        else:
            base = self._add_nodes(ex, rec, inputs, out)
            ex.shapes.extend(rec.shapes)
            self._add_fields(ex, rec, inputs, base)
        name = key.exact[0]
        self.replayed[name] = self.replayed.get(name, 0) + 1
        ex.size += rec.size
        if not self.open:
            pass
        elif rec.facts is None:
            self.log.append(OPAQUE)  # an enclosing call being recorded read what no fact restates
        elif rec.facts:  # the facts hold here too: an enclosing call being recorded read them as well
            where = self._where(inputs, len(ex.nodes) - len(rec.nodes))
            self.log.extend((f[0], where(f[1]), *f[2:]) if f[0] != "eq" or f[2][0] != "q" else
                            (f[0], where(f[1]), ("q", where(f[2][1])), f[3]) for f in rec.facts)
        return len(ex.nodes) - len(rec.nodes) + rec.output

    @staticmethod
    def _where(inputs: tuple[int, ...], base: int) -> Any:
        """A record's query (("in", k) or ("node", j)) as the index of the node it is now."""
        return lambda q: inputs[q[1]] if q[0] == "in" else base + q[1]

    def _add_nodes(self, ex: Any, rec: _Recorded, inputs: tuple[int, ...], out: str) -> int:
        base = len(ex.nodes)
        nodes = ex.nodes
        where = [*inputs, *range(base, base + len(rec.nodes))].__getitem__  # what the recorded inputs become
        for k, (op, args, ins, suffix, name, loc, arg_locs, frozen, init, notes) in enumerate(rec.nodes, base):
            nodes.append(Node(k, op, args, tuple(map(where, ins)), out + suffix, name, loc, arg_locs, frozen, init,
                              notes))
        return base

    def _add_fields(self, ex: Any, rec: _Recorded, inputs: tuple[int, ...], base: int) -> None:
        # Fields follow the inputs' (not keyed): computed once per inputs' fields.
        fields = tuple((type(rf), rf) for rf in (ex.rfs[i] for i in inputs))
        known = rec.rfs.get(fields)
        if known is None:
            nodes = ex.nodes
            for k in range(base, len(nodes)):
                ex.rfs.append(node_rf(nodes[k], ex.shapes[k], ex.rfs))
            rec.rfs[fields] = tuple(ex.rfs[base:])
        else:
            ex.rfs.extend(known)

    def _at_new_shapes(self, ex: Any, key: _Key, inputs: tuple[int, ...], out: str) -> _Recorded | None:
        """The call recorded with inputs of other shapes (another resolution) replayed here when every fact
        its blocks logged holds of the new shapes: the same nodes, their shapes and fields inferred anew.
        Then recorded for these shapes too. None (nothing added) where none holds."""
        first = self.generic.get(key.generic)
        if first is None or first.facts is None or ex.size + first.size > ex.max_nodes:
            return None
        base = self._add_nodes(ex, first, inputs, out)
        nodes, shapes, rfs = ex.nodes, ex.shapes, ex.rfs
        infer, field, input_shape = self.infer, self.field, ex.spec.input
        diagnostics = False
        for node in nodes[base:]:
            shape = infer(node, shapes, input_shape)
            diagnostics = diagnostics or bool(shape.diagnostics)
            shapes.append(shape)
        # A field reads its node's op, attrs and inputs' fields alone: where every attrs equals the first
        # record's (as at another resolution, for most ops), its fields per inputs' fields are these too.
        table = first.rfs if _same_attrs(shapes[base:], first.shapes) else {}
        fields = tuple((type(rf), rf) for rf in (rfs[i] for i in inputs))
        known = table.get(fields)
        if known is not None:
            rfs.extend(known)
        else:
            for node in nodes[base:]:
                rfs.append(field(node, shapes[node.index], rfs))
        where = self._where(inputs, base)
        if diagnostics or not holds(
                first.facts, lambda q: shapes[where(q)].shape, lambda q: rfs[where(q)]):
            del nodes[base:], shapes[base:], rfs[base:]
            return None
        if known is None:
            table[fields] = tuple(rfs[base:])
        rec = self.entries[key.exact] = _Recorded(first.nodes, tuple(shapes[base:]), first.size, first.output,
                                                  table, first.facts)
        self.shapes.update(map(id, rec.shapes))
        return rec

    def field(self, node: Node, shape: NodeShape, rfs: list[Any]) -> Any:
        """A node's receptive field (specdsl.passes.receptive.node_rf: a function of its op, its shape's
        attrs and its inputs' fields), found again for the same op, attrs and input fields. Attrs (by infer())
        and fields are interned, so equal ones are the same object and found by identity."""
        attrs = shape.attrs
        key = (node.op, shape.shape is None, id(attrs), *[id(rfs[i]) for i in node.inputs])
        found = self.fields.get(key)
        if found is not None:  # the entry keeps the objects its ids name alive: those ids are theirs
            return found[2]
        rf = self._intern(node_rf(node, shape, rfs))
        if len(self.fields) < MAX_INFERRED:
            self.fields[key] = (attrs, tuple(rfs[i] for i in node.inputs), rf)  # keeps what its ids name alive
        return rf

    def _intern(self, value: Any) -> Any:
        """An earlier value of the same types and values throughout, else ``value``, kept for later."""
        try:
            found = self.interned.setdefault((type(value), value), value)
        except TypeError:
            return value
        return found if found is value or _same(found, value) else value

    def infer(self, node: Node, shapes: list[NodeShape], input_shape: Any) -> NodeShape:
        """The shape pass on one node (specdsl.passes.shapes.infer_node), its result shared by the nodes of
        the sweep with the same op, the same arguments object (a recorded node's, a cached layer's) and
        the same inputs' shapes (and parts). One with diagnostics (which name their node) or inputs in parts
        is not kept."""
        try:
            key = (node.op, id(node.args), *[(shapes[i].shape, shapes[i].parts) for i in node.inputs])
            found = self.inferred.get(key)
        except TypeError:
            return infer_node(node, shapes, input_shape)
        if found is not None:  # the entry keeps the arguments alive: that id is theirs
            return found[1]
        s = infer_node(node, shapes, input_shape)
        if not s.diagnostics and not node.is_input and len(self.inferred) < MAX_INFERRED and \
                all(shapes[i].parts is None for i in node.inputs):
            s.attrs = self._intern(s.attrs)
            self.inferred[key] = (node.args, s)  # keeps the arguments alive: their id is not reused
            self.shapes.add(id(s))
        return s

    def _keep(self, key: Any, nodes: tuple[tuple[Any, ...], ...], shapes: tuple[Any, ...], size: int, output: int,
              facts: tuple[tuple[Any, ...], ...] | None) -> _Recorded:
        """A record (kept under ``key`` unless None), its fields' table shared with the records of the same
        ops, attrs and wiring."""
        try:
            rfs = self.rf_tables.setdefault(
                tuple((n[0], s.attrs, n[2], s.shape is None) for n, s in zip(nodes, shapes)), {})
        except TypeError:
            rfs = {}  # unhashable attrs: fields kept for this record only
        rec = _Recorded(nodes, shapes, size, output, rfs, facts)
        if key is not None:
            self.entries[key] = rec
            self.shapes.update(map(id, shapes))
        return rec

    def record(self, ex: Any, key: _Key | None, start: int, size_before: int, diags_before: int,
               inputs: tuple[int, ...], out: str, y: int) -> None:
        if key is not None and key.open:
            key.open = False
            self.open -= 1
        if key is None or key.exact in self.entries or len(ex.diags) != diags_before or y < start:
            return
        self.recorded[key.exact[0]] = self.recorded.get(key.exact[0], 0) + 1
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
            if not node.path.startswith(out) or ex.shapes[node.index].diagnostics:
                return
            nodes.append((node.op, node.args, tuple(ins), node.path[len(out):], node.name, node.loc, node.arg_locs,
                          node.frozen, node.init, node.notes))
        rec = self._keep(key.exact, tuple(nodes), tuple(ex.shapes[start:]), ex.size - size_before, y - start,
                         self._facts(self.log[key.mark:], inputs, start))
        if rec.facts is not None:
            self.generic[key.generic] = rec

    @staticmethod
    def _facts(log: list[tuple[Any, ...]], inputs: tuple[int, ...], start: int) -> tuple[tuple[Any, ...], ...] | None:
        """The call's facts with their queries as ("in", k) or ("node", j); None where one was opaque or asked
        about a node outside the call."""
        def query(i: int) -> tuple[str, int] | None:
            return ("node", i - start) if i >= start else ("in", inputs.index(i)) if i in inputs else None

        out = []
        try:
            log = list(dict.fromkeys(log))  # the same fact once
        except TypeError:
            return None  # compared with an unhashable value
        for fact in log:
            if fact[0] == "opaque":
                return None
            q = query(fact[1])
            other = fact[2] if fact[0] == "eq" else None
            if q is None or (other is not None and other[0] == "q" and query(other[1]) is None):
                return None
            if other is not None and other[0] == "q":
                fact = (fact[0], q, ("q", query(other[1])), fact[3])
            else:
                fact = (fact[0], q, *fact[2:])
            out.append(fact)
        return tuple(out)

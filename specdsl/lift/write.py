"""Spec data from the grouped containers: block definitions, calls, stages and repeats.

A container that is one of several instances of its class is a call of that class's block; a
named container of a plain class (nn.Sequential) or one of a kind is a `stage { } as NAME`,
written in place. Runs of equal unnamed layers become `x(n)`; runs that differ only in a numbered
name (`denselayer1`, `denselayer2`) become `x(n, j) as "denselayer{j + 1}"`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from specdsl.blocks.names import IDENTIFIER
from specdsl.blocks.registry import BLOCKS
from specdsl.lift.args import defaults, full_args, same_value
from specdsl.lift.graph import LiftedGraph
from specdsl.lift.groups import Shape, _numbers, _slot
from specdsl.lift.residual import as_residual
from specdsl.lift.tree import Box, Unwritable
from specdsl.lift.union import GENERIC, Group, first_having
from specdsl.ops import ALIASES, OPS
from specdsl.render.printer_scalars import KEYWORDS
from specdsl.schema.names import RESERVED_NAMES, reserved_segment

Expr = Callable[[int], Any]  # slot -> its literal, or the expression of the block's parameter
NUMBERED = re.compile(r"(.*?)(\d+)")


def snake(name: str) -> str:
    out = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()
    out = re.sub(r"[^a-z0-9_]", "_", out).strip("_")
    return out if out and not out[0].isdigit() else f"b_{out}"


class Writer:
    def __init__(self, graph: LiftedGraph, shapes: dict[int, Shape], groups: dict[int, Group], merge: bool,
                 builtins: bool = True):
        self.graph, self.shapes, self.merge, self.builtins = graph, shapes, merge, builtins
        self.group_of = groups
        self.blocks: dict[str, dict[str, Any]] = {}
        self.taken: set[str] = set()
        self.depth = 0  # runs being written around the current layer: each names its own index

    def layers(self, root: Box) -> list[Any]:
        shape = self.shapes[id(root)]

        def literal(slot: int) -> Any:
            value = shape.values[slot]
            return None if value is None else value[1]

        return self.entries(shape, literal, 0)

    def entries(self, shape: Shape, expr: Expr, base: int) -> list[Any]:
        out = [self.segment(shape, e, expr, base + offset) for e, offset in enumerate(shape.offsets)]
        referred = set(shape.lay.refs.values())
        return runs(out, referred)

    def segment(self, shape: Shape, e: int, expr: Expr, at: int) -> dict[str, Any]:
        """Segment e of a container: an item, or a run of copies (`x(n)`, `x(n, j)` where values step)."""
        entry, width = shape.entries[e], shape.copy_width[e]
        if entry.feed is not None and not entry.feed:
            raise Unwritable(f"module '{entry.item.path}' reads the outputs of the call before it, which "
                             "is positional: only a repeat of one call can pass several outputs on",
                             shape.box.path)
        if width is None:
            layer = self.entry(entry, expr, at)
            return {**layer, "repeat": 1} if entry.feed else layer
        index = "j" if self.depth == 0 else f"j{self.depth + 1}"
        stepped = False

        def copy(slot: int) -> Any:
            nonlocal stepped
            k = slot - (at + 1)
            value, step = expr(at + 1 + k), expr(at + 1 + width + k)
            if step is None or (not isinstance(step, str) and step == 0):
                return value
            stepped = True
            return _stepping(value, step, index)

        self.depth += 1
        try:
            layer = self.entry(entry, copy, at + 1)
        finally:
            self.depth -= 1
        count = expr(at)
        if stepped or not (isinstance(count, int) and count == 1) or entry.feed:
            layer["repeat"] = count  # `[@x, @y] -> hr2(18) x1`: only a repeat reads several inputs by the chain
        if stepped:
            layer["index"] = index
        return layer

    def entry(self, entry: Any, expr: Expr, at: int) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        if entry.reads is not None or entry.feed:
            meta["inputs"] = list(entry.reads or entry.feed or ())
        if entry.name is not None:
            meta["name"] = entry.name
        if not isinstance(entry.item, Box):
            return {**self.leaf(entry.item, expr, at), **meta}
        if entry.item.builtin is not None:
            op, given = entry.item.builtin
            written = dict(given)
            for k, v in given.items():
                if self.merge and _slot(v):
                    written[k], at = expr(at), at + 1
            return {op: written, **meta}
        shape = self.shapes[id(entry.item)]
        group = self.group_of[id(shape)]
        several = shape.box.outputs is not None
        if several and entry.name is not None and _one_run(shape):
            # A container of one run of calls with several outputs (HRNet's stage2, a sequence of its
            # modules): the named repeat itself, `[@x, @y] -> hr2(18) x(n) as stage2`.
            layer = self.segment(shape, 0, expr, at)
            layer.pop("inputs", None)
            if layer.get("repeat") == 1:  # an indexed repeat is a container even of one copy: stage2.0
                layer.setdefault("index", "j" if self.depth == 0 else f"j{self.depth + 1}")
            return {**layer, **meta}
        if entry.name is not None and len(shape.box.inputs) <= 1 and not several and \
                (len(group.members) == 1 or group.klass in GENERIC):
            return {"stage": {"layers": self.entries(shape, expr, at)}, **meta}
        name = self.block(group)
        args: dict[str, Any] = {}
        for param, (kind, where) in group.args_for(shape.key).items():
            if param not in group.params:
                continue  # made needless by the block's form (a residual's auto shortcut)
            value = expr(at + where) if kind == "slot" else where
            if value is not None and not same_value(value, group.params[param]):
                args[param] = tidy(value)
        return {name: args or None, **meta}

    def _generic_name(self, shape: Shape) -> str:
        """A plain container's block, by what it holds: `mbconvs` for a row of MBConv blocks, else its
        own name (`features`), else `seq`."""
        held = {self.graph.classes.get(it.path, "") for it in shape.box.items if isinstance(it, Box)}
        if len(held) == 1 and next(iter(held)) not in GENERIC:
            return snake(next(iter(held))) + "s"
        return snake(shape.box.name) if not shape.box.name.isdigit() else "seq"

    def leaf(self, n: int, expr: Expr, at: int) -> dict[str, Any]:
        node = self.graph.nodes[n]
        full = full_args(node.op, node.args)
        given = defaults(node.op)
        values = dict(full)
        for k in full:
            if self.merge and _slot(full[k]):
                values[k] = expr(at)
                at += 1
            elif self.merge and _numbers(full[k]):
                values[k] = [expr(at + i) for i in range(len(full[k]))]
                at += len(full[k])
        args = {k: tidy(v) for k, v in values.items() if not (k in given and same_value(v, given[k]))}
        return {node.op: args or None}

    def block(self, group: Group) -> str:
        """The block of a group (defined when first called): its name, parameters and body."""
        if group.block is not None:
            return group.block
        first = group.members[0]
        base = snake(group.klass) if group.klass not in GENERIC else self._generic_name(first)
        if base in OPS or base in ALIASES or base in BLOCKS or base in KEYWORDS or base in RESERVED_NAMES \
                or reserved_segment(base) \
                or not IDENTIFIER.fullmatch(base):
            base += "_block"
        name, k = base, 2
        while name in self.taken:
            name, k = f"{base}{k}", k + 1
        self.taken.add(name)
        group.block = name

        def expr(slot: int) -> Any:
            return group.exprs.get(slot, group.constants.get(slot))

        layers: list[dict[str, Any]] = []
        depth, self.depth = self.depth, 0  # a block's body is a scope of its own
        for u in range(len(group.entries)):
            t, e = first_having(group, u)
            layer = self.segment(t.shape, e, expr, group.offsets[u])
            condition = group.condition(u)
            layers.append({**layer, "if": condition} if condition else layer)
        self.depth = depth
        referred = {name for t in group.templates.values() for name in t.shape.lay.refs.values()}
        definition: dict[str, Any] = {}
        if group.params:
            definition["params"] = dict(group.params)
        if len(first.box.inputs) > 1:
            definition["inputs"] = list(first.lay.input_names)
        if first.box.outputs is not None:
            missing = [o for o in first.box.outputs if o not in first.lay.refs]
            if missing:  # a positional member's output (a list of modules returned whole): flattened
                raise Unwritable(f"output node {missing[0]} ({self.graph.nodes[missing[0]].path}) of "
                                 f"'{first.box.path}' has no name its block can declare", first.box.path)
            definition["outputs"] = [first.lay.refs[o] for o in first.box.outputs]
        body = runs(layers, referred)
        form = as_residual(body) if self.builtins and len(first.box.inputs) == 1 and first.box.outputs is None \
            else None
        if form is not None:
            for param in form[1]:
                group.params.pop(param, None)
            definition.pop("params", None)
            if group.params:
                definition = {"params": dict(group.params), **definition}
            definition["residual"] = form[0]
        else:
            definition["layers"] = body
        self.blocks[name] = definition
        return name


def _one_run(shape: Shape) -> bool:
    """Whether a container is one run of a call, its first copy reading all the container's inputs."""
    return len(shape.entries) == 1 and shape.copy_width[0] is not None and bool(shape.entries[0].feed)


def tidy(value: Any) -> Any:
    """A float as a person writes it: 0.075, not 0.07500000000000001 (recovery's check compares floats
    to 10 significant digits)."""
    return float(f"{value:.12g}") if isinstance(value, float) else value


def _stepping(value: Any, step: Any, index: str) -> str:
    """`first + step * j`, each part a number or a parameter's expression."""
    def text(v: Any) -> str:
        return f"({v})" if isinstance(v, str) and " " in v else str(v) if isinstance(v, str) else repr(v)

    if not isinstance(value, str) and value == 0:
        return f"{text(step)} * {index}"
    return f"{text(value)} + {text(step)} * {index}"


def runs(layers: list[dict[str, Any]], referred: set[str]) -> list[Any]:
    """Equal neighbours as one repeated layer: unnamed ones `x(n)`, numbered names `x(n, j) as "name{j + a}"`."""
    out: list[Any] = []
    i = 0
    while i < len(layers):
        j = i + 1
        while j < len(layers) and _follows(layers[i], layers[j], j - i, referred):
            j += 1
        layer = dict(layers[i])
        if j - i > 1:
            if "name" in layer:
                prefix, first = NUMBERED.fullmatch(layer["name"]).groups()  # type: ignore[union-attr]
                layer["name"] = prefix + "{j + " + first + "}" if int(first) else prefix + "{j}"
                layer["index"] = "j"
            layer["repeat"] = j - i
        out.append(_bare(layer))
        i = j
    return _periods(_counts(out))


MAX_PERIOD = 6


def _plain(layer: Any) -> bool:
    return isinstance(layer, str) or not {"name", "index", "inputs"} & layer.keys()


def _periods(layers: list[Any]) -> list[Any]:
    """A group of unnamed chained layers repeated back to back as `stage { conv -> relu } x2` (an unnamed
    stage numbers its layers on in the container: VGG's features.0 ... features.3)."""
    out: list[Any] = []
    i = 0
    while i < len(layers):
        best, best_m = 0, 1
        for p in range(2, MAX_PERIOD + 1):
            group = layers[i:i + p]
            if len(group) < p or not all(_plain(x) for x in group):
                continue
            m = 1
            while layers[i + m * p:i + (m + 1) * p] == group:
                m += 1
            # Only where it reads shorter: about three layers to a chain line, a stage two lines more.
            if m > 1 and 2 + -(-p // 3) < -(-(p * m) // 3) and p * m > best * best_m:
                best, best_m = p, m
        if best:
            out.append({"stage": {"layers": layers[i:i + best]}, "repeat": best_m})
            i += best * best_m
        else:
            out.append(layers[i])
            i += 1
    return out


def _counts(layers: list[Any]) -> list[Any]:
    """`unit(64) -> unit(64) x2` as `unit(64) x3`: unnamed unindexed neighbours equal but for their
    counts (both whole numbers) add up."""
    out: list[Any] = []
    for layer in layers:
        prev = out[-1] if out else None
        if isinstance(prev, dict) and isinstance(layer, dict) and _same_but_count(prev, layer):
            out[-1] = {**prev, "repeat": prev.get("repeat", 1) + layer.get("repeat", 1)}
            continue
        out.append(layer)
    return out


def _same_but_count(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if {"name", "index", "inputs"} & (a.keys() | b.keys()):
        return False
    if not isinstance(a.get("repeat", 1), int) or not isinstance(b.get("repeat", 1), int):
        return False
    return {k: v for k, v in a.items() if k != "repeat"} == {k: v for k, v in b.items() if k != "repeat"}


def _follows(first: dict[str, Any], other: dict[str, Any], k: int, referred: set[str]) -> bool:
    """Whether ``other`` is copy k of ``first`` (chained, equal but for a numbered name)."""
    if "inputs" in first or "inputs" in other:
        return False
    a, b = first.get("name"), other.get("name")
    if (a is None) != (b is None):
        return False
    if a is not None:
        ma, mb = NUMBERED.fullmatch(a), NUMBERED.fullmatch(b or "")
        if ma is None or mb is None or ma.group(1) != mb.group(1) or a in referred or b in referred \
                or int(mb.group(2)) != int(ma.group(2)) + k or str(int(ma.group(2))) != ma.group(2):
            return False
    return {x: v for x, v in first.items() if x != "name"} == {x: v for x, v in other.items() if x != "name"}


def _bare(layer: dict[str, Any]) -> Any:
    """`relu` rather than `{relu: null}`, where nothing else is said of the layer."""
    if len(layer) == 1:
        ((op, args),) = layer.items()
        if args is None:
            return op
    return layer

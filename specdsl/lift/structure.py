"""Structure recovery: a lifted graph (a captured model, flat) -> spec data that reads as if written.

    tree      which container (module) each node sits in, in writing order   (specdsl.lift.tree)
    layout    each container's names and references                          (specdsl.lift.layout)
    groups    containers that are one block, and the block's parameters      (specdsl.lift.groups)
    write     block definitions, calls, stages, repeats                      (specdsl.lift.write)

The result is checked before it is returned: loaded and expanded, it must give the lifted graph
node for node (op, arguments, inputs, module names; specdsl.lift.compare). Where the parameterised
blocks do not (an argument the grouping could not express), the blocks are recovered again without
parameters (one block per distinct body), which always can; what no spec can write raises
RecoveryError naming the node.
"""

from __future__ import annotations

import re
from typing import Any

from specdsl.blocks.engine import expand
from specdsl.errors import SpecError
from specdsl.lift.args import full_args
from specdsl.lift.builtins import recognise
from specdsl.lift.compare import first_difference
from specdsl.lift.graph import LiftedGraph
from specdsl.lift.groups import shapes
from specdsl.lift.simplify import without_identities
from specdsl.lift.tree import Box, RecoveryError, Unwritable, build_tree, has_several, walk
from specdsl.lift.union import groups
from specdsl.lift.write import Writer
from specdsl.ops import OPS
from specdsl.schema.document import validate_document
from specdsl.schema.names import MODEL_NAME_PATTERN

__all__ = ["RecoveryError", "recover"]


def recover(graph: LiftedGraph, check: bool = True) -> dict[str, Any]:
    """Spec data (as the front ends produce it; ``specdsl.render.printer.to_dsl`` prints it) whose
    graph is ``graph``: the same ops, arguments, data flow and module names (merges of a single
    tensor, which are their input, left out: specdsl.lift.simplify)."""
    if graph.unmapped:
        first = graph.unmapped[0]
        raise RecoveryError(f"{len(graph.unmapped)} node(s) have no specdsl op, the first "
                            f"'{first.path}' ({first.origin}): {first.reason}")
    _check_args(graph)
    graph = without_identities(graph)
    flatten: set[str] = set()
    several = True  # modules returning several tensors as blocks with `outputs`; failing that, flattened
    while True:  # at most once per container: each round flattens one more
        root = None
        try:
            root = build_tree(graph, flatten, several)
            return _recover(graph, root, check)
        except Unwritable as exc:
            if exc.path and exc.path not in flatten:
                flatten.add(exc.path)
                continue
            error = RecoveryError(str(exc))
        except RecoveryError as exc:
            error = exc
        if not several or (root is not None and not has_several(root)):
            raise error from None
        several, flatten = False, set()


def _check_args(graph: LiftedGraph) -> None:
    """Every node's op is specdsl's and its arguments are ones the op accepts (a capture's table
    could be wrong): RecoveryError naming the node, before anything is built on them."""
    for i, node in enumerate(graph.nodes[1:], start=1):
        if node.op not in OPS:
            raise RecoveryError(f"node {i} ({node.path or '<root>'}, {node.origin}) has op '{node.op}', "
                                "which specdsl does not know")
        try:
            full_args(node.op, node.args)
        except ValueError as exc:
            errors = exc.errors() if hasattr(exc, "errors") else []  # pydantic's, located by field
            why = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:3]) or str(exc)
            raise RecoveryError(f"node {i} ({node.path or '<root>'}: {node.op}) has arguments the op does not "
                                f"take: {node.args} ({why})") from None


def _recover(graph: LiftedGraph, root: Box, check: bool) -> dict[str, Any]:
    order = [0, *walk(root)]
    problem = ""
    for merge, builtins in ((True, True), (True, False), (False, False)):
        _clear(root)
        if builtins:
            recognise(graph, root)
        data = _data(graph, root, merge, builtins)
        if not check:
            return data
        found = difference(graph, data, order)
        if found is None:
            return data
        problem = problem or found
    raise RecoveryError(f"the recovered spec is not the model: {problem}")


def _clear(box: Box) -> None:
    box.builtin = None
    for it in box.items:
        if isinstance(it, Box):
            _clear(it)


def _data(graph: LiftedGraph, root: Box, merge: bool, builtins: bool = True) -> dict[str, Any]:
    all_shapes = shapes(graph, root, merge)
    writer = Writer(graph, all_shapes, groups(all_shapes), merge, builtins)
    layers = writer.layers(root)
    data: dict[str, Any] = {"model": model_name(graph.name), "input": list(graph.input_shape)}
    if graph.dtype != "float32":
        data["dtype"] = graph.dtype
    if writer.blocks:
        data["blocks"] = writer.blocks
    data["layers"] = layers
    return data


def model_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.\-]", "_", name)[:64] or "model"
    return cleaned if re.match(MODEL_NAME_PATTERN, cleaned) else f"m{cleaned}"[:64]


def difference(graph: LiftedGraph, data: dict[str, Any], order: list[int]) -> str | None:
    """None when ``data`` loads into ``graph``, else what differs first."""
    try:
        spec = validate_document(data, None)
        built = expand(spec)
    except SpecError as exc:
        return "it does not load: " + "; ".join(f"{d.code} {d.message}" for d in exc.diagnostics[:3])
    return first_difference(graph, built, order)

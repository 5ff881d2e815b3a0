"""Waste the user did not mean: layers whose output nothing reads, and block parameters nothing uses.

W350: one node whose output is never used (it is not the model output and no node reads it).
W351: a branch of several such nodes, reported once at its last node with what it costs.
W352: a parameter of a user-defined block that its body never mentions.

The parts of a split are nodes only where the spec refers to them (`@s.1`), so a part never
referred to is not a node and is not reported: leaving one unused is how a split is used.
"""

from __future__ import annotations

import re
from typing import Any

from specdsl.errors import Diagnostic
from specdsl.ir import Graph
from specdsl.passes.diagnostics import located
from specdsl.passes.figures import NodeFigures

__all__ = ["unused_nodes", "unused_params"]


def _live(graph: Graph) -> list[bool]:
    """Whether each node feeds the model output."""
    live = [False] * len(graph.nodes)
    for out in graph.output_nodes:
        live[out] = True
    for node in reversed(graph.nodes[: max(graph.output_nodes) + 1]):
        if live[node.index]:
            for i in node.inputs:
                live[i] = True
    return live


def _cost(params: int, macs: int) -> str:
    if not params and not macs:
        return ""
    parts = [f"{params:,} params"] if params else []
    if macs:
        parts.append(f"{macs:,} MACs")
    return f": {' and '.join(parts)} counted in the totals for nothing"


def unused_nodes(graph: Graph, figures: list[NodeFigures]) -> list[Diagnostic]:
    """One warning per dead end of the graph: the node nothing reads, with the dead branch behind it."""
    live = _live(graph)
    consumers = graph.consumers()
    out: list[Diagnostic] = []
    for node in graph.nodes:
        if live[node.index] or node.is_input or consumers[node.index]:
            continue
        # The dead nodes only this one keeps busy: walk back while a node feeds nothing live.
        branch: list[int] = []
        stack = [node.index]
        seen: set[int] = set()
        while stack:
            i = stack.pop()
            if i in seen or live[i] or graph.nodes[i].is_input:
                continue
            seen.add(i)
            branch.append(i)
            stack.extend(graph.nodes[i].inputs)
        if any(figures[i].failed for i in branch):
            continue  # its shape error is reported; a waste warning would only add noise
        params = sum(figures[i].params for i in branch)
        macs = sum(figures[i].macs for i in branch)
        what = f"'{node.name}'" if node.name else f"'{node.op}'"
        if len(branch) == 1:
            out.append(located(node, "W350", f"the output of {what} is never used{_cost(params, macs)}",
                               "remove the layer, or use it: refer to it as an input of a later layer",
                               None, severity="warning"))
        else:
            first = graph.nodes[min(branch)]
            out.append(located(node, "W351", f"a branch of {len(branch)} layers ending in {what} is never used "
                               f"(from {first.path}){_cost(params, macs)}",
                               "remove the branch, or merge it into the model (add, concat)", None,
                               severity="warning"))
    return out


_NAME = re.compile(r"[A-Za-z_]\w*")


def _words(raw: Any, found: set[str]) -> None:
    """Every name a block body's strings could mention (a superset of the parameters it uses)."""
    stack = [raw]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.update(_NAME.findall(item))
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def unused_params(spec: Any) -> list[Diagnostic]:
    """W352 for each parameter of a user-defined block that its body never mentions."""
    out: list[Diagnostic] = []
    for name, block in spec.blocks.items():
        if not block.params:
            continue
        body = {k: v for k, v in block.model_dump().items() if k not in ("params", "inputs", "doc", "description")}
        mentioned: set[str] = set()
        _words(body, mentioned)
        for pname in block.params:
            if pname in mentioned:
                continue
            loc = spec.smap.key_loc(("blocks", name, "params", pname)) if spec.smap else None
            out.append(Diagnostic("warning", "W352", f"block '{name}' never uses its parameter '{pname}'", loc,
                                  hint=f"remove '{pname}' from the parameters, or use it in the block's body",
                                  path=f"blocks.{name}.params.{pname}"))
    return out

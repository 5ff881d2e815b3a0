"""Spec -> Graph: resolve names and inputs; each layer becomes a node."""

from __future__ import annotations

from specdsl.errors import Diagnostic, SpecError, did_you_mean
from specdsl.ir import Graph, Node
from specdsl.ops import OPS
from specdsl.schema import RESERVED_NAMES, Spec
from specdsl.source import format_path


def build_graph(spec: Spec) -> Graph:
    diags: list[Diagnostic] = []
    nodes = [Node(0, "input", None, (), "input", name="input")]
    names: dict[str, int] = {"input": 0}
    for layer in spec.layers:
        path = format_path(layer.path)
        rule = OPS[layer.op]
        index = len(nodes)
        if layer.meta.inputs is None:
            inputs: tuple[int, ...] = (index - 1,)
        else:
            resolved = []
            for i, ref in enumerate(layer.meta.inputs):
                loc = layer.arg_locs.get(f"inputs[{i}]", layer.loc)
                if ref in names:
                    resolved.append(names[ref])
                    continue
                later = any(other.meta.name == ref for other in spec.layers)
                guess = did_you_mean(ref, names)
                diags.append(Diagnostic(
                    "error", "E314",
                    f"unknown node '{ref}'" + (" (it is defined later; inputs must come earlier)" if later else ""),
                    loc, path=path,
                    hint=f"did you mean '{guess}'?" if guess else "name a layer with `name:` before referring to it",
                ))
            inputs = tuple(resolved)
        n_in = len(layer.meta.inputs) if layer.meta.inputs is not None else 1
        if n_in < rule.min_inputs or (rule.max_inputs is not None and n_in > rule.max_inputs):
            want = (f"exactly {rule.min_inputs}" if rule.max_inputs == rule.min_inputs
                    else f"at least {rule.min_inputs}")
            diags.append(Diagnostic(
                "error", "E316", f"'{layer.op}' takes {want} input(s); received {n_in}",
                layer.loc, path=path,
                hint="list the nodes to merge with `inputs: [a, b]`" if rule.min_inputs > 1 else
                "only merge layers (add, concat, mean) take several inputs",
            ))
        name = layer.meta.name
        if name is not None:
            if name in RESERVED_NAMES or name in names:
                diags.append(Diagnostic(
                    "error", "E315",
                    f"node name '{name}' is " + ("reserved" if name in RESERVED_NAMES else "already used"),
                    layer.arg_locs.get("name", layer.loc), path=path, hint="pick a unique name"))
            else:
                names[name] = index
        nodes.append(Node(index, layer.op, layer.args, inputs, path, name, layer.loc, layer.arg_locs,
                          layer.meta.frozen, layer.meta.init))
    if diags:
        raise SpecError(diags, {spec.smap.file: spec.smap.text} if spec.smap else {})
    return Graph(spec.model, spec.input, spec.dtype, nodes, len(nodes) - 1, spec.description)

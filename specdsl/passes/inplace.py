"""Which activations may run in place, as torchvision's ``ReLU(inplace=True)`` does.

A fact about the graph and the ops' traits, torch-free: the torch backend lowers these nodes with
``inplace=True`` and the training-memory pass counts their outputs as views of their inputs.
"""

from __future__ import annotations

from specdsl.ir import Graph
from specdsl.ops import OPS
from specdsl.ops.rule import Trait


def inplace_activations(graph: Graph) -> set[int]:
    """Nodes that can overwrite their input: the op allows it, the producer's backward does not need
    that output, nothing else reads it, and it is not one of the model's outputs."""
    consumers = graph.consumers()
    found = set()
    for node in graph.nodes:
        if node.is_input or not OPS[node.op].has(Trait.INPLACE):
            continue
        producer = graph.nodes[node.inputs[0]]
        if not producer.is_input and OPS[producer.op].has(Trait.OVERWRITABLE_OUTPUT) \
                and len(consumers[producer.index]) == 1 and producer.index not in graph.output_nodes:
            found.add(node.index)
    return found

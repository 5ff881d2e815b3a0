"""Resource budgets: how much a spec may ask of specdsl before it is refused.

Specs may come from people we do not trust (a web form, a CI job on a fork), so every
stage that could be made to work hard has a budget, checked *before* the work is done:

================  ======================  =====================================================
budget            flag                    what it bounds (stage)
================  ======================  =====================================================
max_file_bytes    ``--max-file-bytes N``  size of the spec text (reading)
max_depth         ``--max-depth N``       nesting of YAML collections / DSL brackets (front ends)
max_tokens        ``--max-tokens N``      DSL tokens (the lark parser)
max_nodes         ``--max-nodes N``       expanded graph size, estimated before expanding
max_params        ``--max-params N``      total parameters (after analysis, E331)
max_activations   ``--max-activations N`` activation elements, batch included (E332)
================  ======================  =====================================================

The defaults are chosen so that `check` answers any input within about 2 s and 1 GiB on one
core of a small machine (benchmarks/bench_hostile_inputs.py measures the worst cases), and
every zoo model fits with room to spare. Commands that do more per node or per parameter
(`build`, `run`, `diff`, `diagram`, `export`) start from smaller budgets of their own
(:data:`COMMAND_DEFAULTS`); every command takes the flags. ``specdsl.load(...,
budgets=Budgets(max_nodes=20_000))`` or the flags change them. Every refusal is an ordinary
located diagnostic that names the budget and the flag that raises it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from specdsl.errors import Diagnostic

# The defaults, also the module constants the stages used before budgets existed.
# Measured on 2 cores (benchmarks/bench_hostile_inputs.py --commands): reading and checking costs about
# 8 s per MiB of YAML, a DSL token about 15 us and a node about 0.1 ms (table included), so 128 KiB,
# 50,000 tokens and 10,000 nodes keep every worst case near 1 s; the largest zoo file is 4 KB and the
# largest zoo graph 2,510 nodes.
MAX_FILE_BYTES = 128 * 1024
MAX_DEPTH = 64
MAX_TOKENS = 50_000
MAX_NODES = 10_000
# Expansion stops after this many errors (each may cost a did-you-mean search): the first ones are
# what a user fixes, and a file of 30,000 misspelt layers must not take a minute to refuse.
MAX_ERRORS = 500
MAX_PARAMS = 10**11
MAX_ACTIVATIONS = 10**12
# Later stages (validation, expansion) recurse once per level; past ~180 levels the DSL path
# reaches CPython's default recursion limit, so max_depth has a hard ceiling with a margin.
MAX_DEPTH_CEILING = 128


@dataclass(frozen=True)
class Budgets:
    """Limits on what one spec may cost; see the module docstring for each one."""

    max_file_bytes: int = MAX_FILE_BYTES
    max_depth: int = MAX_DEPTH
    max_tokens: int = MAX_TOKENS
    max_nodes: int = MAX_NODES
    max_params: int = MAX_PARAMS
    max_activations: int = MAX_ACTIVATIONS

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"budget {f.name} must be a positive integer; received {value!r}")
        if self.max_depth > MAX_DEPTH_CEILING:
            raise ValueError(f"budget max_depth is at most {MAX_DEPTH_CEILING} (deeper specs would exhaust "
                             f"Python's recursion limit); received {self.max_depth}")


DEFAULT = Budgets()

# Commands whose work grows faster than `check`'s: building a module allocates every parameter (4 bytes
# each), running one holds activations at the command's batch, emitting Python costs about 1 ms per node
# and Graphviz's layout grows faster than the graph. 10**9 parameters (4 GiB) admits torchvision's
# largest model, regnet_y_128gf (645 M). run and diff pick a smaller input when a spec's own is over
# max_activations (cli.report.load_runnable); build and export allocate no activations (their --verify
# runs at batch 1 or 2), so they keep check's activation budget.
_TORCH = replace(DEFAULT, max_nodes=5_000, max_params=10**9, max_activations=2 * 10**8)
_EMIT = replace(_TORCH, max_activations=DEFAULT.max_activations)
COMMAND_DEFAULTS: dict[str, Budgets] = {
    "build": _EMIT, "run": _TORCH, "diff": _TORCH, "export": _EMIT,
    "diagram": replace(DEFAULT, max_nodes=3_000),
}


def defaults_for(command: str | None) -> Budgets:
    """The default budgets of a CLI command (those of `check` for the commands not listed)."""
    return COMMAND_DEFAULTS.get(command or "", DEFAULT)

HELP = {
    "max_file_bytes": "bytes of spec text",
    "max_depth": "nesting of YAML collections, DSL brackets, expressions and layers (block calls included)",
    "max_tokens": "DSL tokens",
    "max_nodes": "expanded graph size: nodes, plus the extra inputs of merges (checked before expanding)",
    "max_params": "total parameters",
    "max_activations": "activation elements summed over all nodes, batch included",
}


def flag(name: str) -> str:
    """The CLI flag of a budget: ``max_nodes`` -> ``--max-nodes``."""
    return "--" + name.replace("_", "-")


def raise_hint(name: str) -> str:
    """How to raise a budget, for the end of a hint."""
    return f"to allow more, raise the {name} budget: `{flag(name)} N` (Python: Budgets({name}=N))"


def over(name: str, limit: int, unit: str = "") -> str:
    """Message tail naming the budget: 'the max_nodes budget is 1,000,000'."""
    return f"the {name} budget is {limit:,}{unit}"


def numel(shape: tuple[int, ...]) -> int:
    out = 1
    for d in shape:
        out *= d
    return out


def check_totals(model: Any, budgets: Budgets) -> list[Diagnostic]:
    """E331 / E332: the analysed parameter and activation totals against their budgets.

    Located at the node that contributes most, so the caret points at the layer to shrink.
    """
    totals = model.analysis.totals
    rows = model.rows()
    found: list[Diagnostic] = []
    if totals.params > budgets.max_params:
        node, fig = max(rows, key=lambda r: r[1].params)
        found.append(Diagnostic(
            "error", "E331", f"the model has {totals.params:,} parameters; {over('max_params', budgets.max_params)}",
            node.loc, path=node.path,
            notes=(f"the largest layer, {node.path} ({node.op}), holds {fig.params:,} parameters", *node.notes),
            hint="shrink the widest layers; " + raise_hint("max_params")))
    if totals.activation_elements > budgets.max_activations:
        node, fig = max(rows[1:] or rows, key=lambda r: numel(r[1].shape) if r[1].shape else 0)
        largest = numel(fig.shape) * totals.batch if fig.shape else 0
        found.append(Diagnostic(
            "error", "E332",
            f"the model's activations hold {totals.activation_elements:,} elements at batch {totals.batch}; "
            f"{over('max_activations', budgets.max_activations)}",
            node.loc, path=node.path,
            notes=(f"the largest output, {node.path} ({node.op}), holds {largest:,} elements", *node.notes),
            hint="reduce the input size, the batch or the widest layers; " + raise_hint("max_activations")))
    return found

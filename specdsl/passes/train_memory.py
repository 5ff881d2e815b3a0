"""The peak memory of one training step on a GPU, and its parts, from the saved-for-backward pass.

The model (README, "Training memory"):

* held throughout: the parameters and buffers, and the optimizer's state (momentum: one copy
  of the trainable parameters; Adam/AdamW: two);
* forward: every tensor autograd keeps (``specdsl.passes.memory``) stays until its node's
  backward has run; other outputs are freed after their last use;
* backward walks the nodes in reverse: each node allocates its inputs' gradients (or hands its
  own on: add, concat, views) and its parameters' gradients (float32; under autocast first in
  the low dtype, then cast), then frees its output's gradient and what it kept; a gradient
  arriving where one is waiting is added in place into whichever is not shared;
* the optimizer step: Adam's foreach update makes one temporary the size of the parameters.

Every allocation is rounded up to the CUDA caching allocator's 512-byte blocks. Not counted:
cuDNN/cuBLAS workspaces (beyond the calibrated term below), the CUDA context, fragmentation
(``max_memory_allocated``, not ``reserved``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from specdsl.ir import DTYPES, Graph
from specdsl.passes.figures import NodeFigures
from specdsl.passes.memory import WIDTH, SavedReport, saved_tensors

OPTIMIZERS = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}  # state: copies of the trainable parameters
AMP = {"bf16": "bfloat16", "fp16": "float16"}
BLOCK = 512


def rounded(n: int) -> int:
    """Bytes the CUDA caching allocator hands out for a request of ``n`` (512-byte blocks)."""
    return -(-n // BLOCK) * BLOCK if n else 0


@dataclass
class TrainMemory:
    """The predicted peak of one training step and its parts (bytes; parts at the moment of the peak
    where they vary)."""

    batch: int
    optimizer: str
    amp: str | None
    params: int
    buffers: int
    gradients: int
    optimizer_state: int
    saved: int  # everything autograd keeps at the end of forward
    backward_transient: int  # above parameters, state and what is still kept, at the backward's peak
    step_transient: int  # the optimizer's temporaries
    peak: int
    saved_by_kind: dict[str, int]
    per_node: list[int]  # saved bytes each node is the first to keep


def train_memory(graph: Graph, figures: list[NodeFigures], batch: int, table: Mapping[str, Any], *,
                 inplace: set[int] | frozenset[int] = frozenset(), optimizer: str = "sgd",
                 amp: str | None = None) -> TrainMemory:
    """One training step's peak on a CUDA device: ``table`` is the PyTorch backend's ``SAVED``."""
    low = AMP.get(amp, amp) if amp else None
    report = saved_tensors(graph, figures, batch, table, inplace=inplace, device="cuda", amp=low)
    width = DTYPES[graph.dtype]
    params = buffers = grads = 0
    grad_of: list[int] = [0] * len(graph.nodes)
    low_grad_of: list[int] = [0] * len(graph.nodes)
    for node, fig in zip(graph.nodes, figures, strict=True):
        for w in fig.weights:
            size = rounded(w.numel * (8 if w.dtype == "int64" else width))
            if w.role == "buffer":
                buffers += size
                continue
            params += size
            if not node.frozen:
                grad_of[node.index] += size
                if low is not None and table[node.op].autocast == "low":
                    low_grad_of[node.index] += rounded(w.numel * WIDTH[low])
        grads += grad_of[node.index]
    state = OPTIMIZERS[optimizer] * grads
    held = params + buffers + state
    walk = _backward(graph, report, table, grad_of, low_grad_of)
    step_temp = grads if optimizer in ("adam", "adamw") else 0
    saved = sum(rounded(t.nbytes) for t in _unique(report))
    peak = max(held + walk, held + grads + step_temp)
    return TrainMemory(batch, optimizer, amp, params, buffers, grads, state, saved,
                       held + walk - held - saved, step_temp, peak, report.by_kind, report.first)


def _unique(report: SavedReport) -> list[Any]:
    seen: dict[Any, Any] = {}
    for kept in report.per_node:
        for t in kept:
            seen.setdefault(t.key, t)
    return list(seen.values())


def _backward(graph: Graph, report: SavedReport, table: Mapping[str, Any], grad_of: list[int],
              low_grad_of: list[int]) -> int:
    """The most bytes live at once from the end of forward to the end of backward, beyond the
    parameters, buffers and optimizer state: kept tensors, gradients, and each node's new ones."""
    keepers, size, kept_keys, live = _end_of_forward(graph, report)
    output = graph.output
    # Gradient tensors: id -> [bytes, references] (a gradient handed on to several inputs, or sliced
    # by a concat's backward, has several); buffers: node -> (gradient id waiting there, whether it
    # is a slice of it: a concat's inputs get slices of its gradient).
    tensors: dict[int, list[int]] = {0: [rounded(report.out_bytes[output]), 1]}
    buffer: dict[int, tuple[int, bool]] = {output: (0, False)}
    live += tensors[0][0]
    peak = live
    fresh = 1
    param_grads = 0
    for node in reversed(graph.nodes):
        k = node.index
        if node.is_input or not report.needs_grad[k] or k not in buffer:
            continue
        mine = buffer.pop(k)[0]
        entry = table[node.op]
        sliced = entry.grads == "slices"
        made = low_grad_of[k] + grad_of[k]
        arriving: list[tuple[int, int, bool]] = []  # (input node, gradient id, a slice of it)
        for i in dict.fromkeys(node.inputs):
            if not report.needs_grad[i]:
                continue
            if entry.grads in ("pass", "slices"):
                tensors[mine][1] += 1
                arriving.append((i, mine, sliced))
            else:
                g = rounded(report.out_bytes[i])
                tensors[fresh] = [g, 1]
                arriving.append((i, fresh, False))
                fresh += 1
                made += g
        peak = max(peak, live + made + param_grads)
        live += made - low_grad_of[k]
        param_grads += grad_of[k]
        live -= grad_of[k]  # counted in param_grads from here
        live -= _release(tensors, mine)
        for key in kept_keys[k]:
            keepers[key] -= 1
            if keepers[key] == 0:
                live -= size[key]
        for i, g, part in arriving:
            if i not in buffer:
                buffer[i] = (g, part)
                continue
            waiting, waiting_part = buffer[i]
            # PyTorch's InputBuffer::accumulate: add in place into whichever of the two is whole and
            # not shared; else an out-of-place sum replaces both.
            if tensors[waiting][1] == 1 and not waiting_part:
                live -= _release(tensors, g)
            elif tensors[g][1] == 1 and not part:
                live -= _release(tensors, waiting)
                buffer[i] = (g, part)
            else:
                total = rounded(report.out_bytes[i])
                tensors[fresh] = [total, 1]
                live += total
                peak = max(peak, live + param_grads)
                live -= _release(tensors, waiting) + _release(tensors, g)
                buffer[i] = (fresh, False)
                fresh += 1
    return peak


def _end_of_forward(graph: Graph, report: SavedReport) -> tuple[dict[Any, int], dict[Any, int], list[Any], int]:
    """At the end of forward: how many nodes keep each storage, its bytes, each node's kept
    storages, and the bytes live (kept tensors, the loss's, the output and input)."""
    # How many nodes still keep each storage; a storage is freed when the last of them has run.
    keepers: dict[Any, int] = {}
    size: dict[Any, int] = {}
    kept_keys = [{t.key for t in kept} if kept else () for kept in report.per_node]
    for kept, keys in zip(report.per_node, kept_keys):
        for key in keys:
            keepers[key] = keepers.get(key, 0) + 1
        for t in kept:
            size[t.key] = rounded(t.nbytes)
    live = sum(size.values())
    output = graph.output
    # The loss keeps log-probabilities of the output (float32); the caller holds the output and input.
    extra = rounded(report.out_bytes[output] // WIDTH[report.dtypes[output]] * 4)
    out_layout, in_layout = report.layouts[output], report.layouts[0]
    assert out_layout is not None and in_layout is not None  # a checked model: every node has a shape
    for key in (out_layout.owner, in_layout.owner):
        if key not in keepers:
            extra += rounded(report.storage[key])
    live += extra
    return keepers, size, kept_keys, live


def _release(tensors: dict[int, list[int]], g: int) -> int:
    """Drop one reference; the bytes freed (all of them when it was the last)."""
    tensors[g][1] -= 1
    return tensors[g][0] if tensors[g][1] == 0 else 0


def predict(model: Any, batch: int, optimizer: str = "sgd", amp: str | None = None) -> TrainMemory:
    """``train_memory`` for a checked model (``specdsl.api.Model``), with the PyTorch backend's table
    and in-place activations (neither imports torch)."""
    from specdsl.ops.saved import SAVED
    from specdsl.passes.inplace import inplace_activations

    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer '{optimizer}'; expected one of {', '.join(OPTIMIZERS)}")
    if amp is not None and amp not in AMP:
        raise ValueError(f"unknown autocast dtype '{amp}'; expected one of {', '.join(AMP)}")
    return train_memory(model.graph, model.analysis.figures, batch, SAVED, inplace=inplace_activations(model.graph),
                        optimizer=optimizer, amp=amp)


def largest_batch(model: Any, budget: int, optimizer: str = "sgd", amp: str | None = None,
                  limit: int = 1 << 40) -> int:
    """The largest batch whose predicted training peak is at most ``budget`` bytes (0: none fits).
    The peak grows with the batch, so a doubling search then bisection finds it."""
    def fits(b: int) -> bool:
        return predict(model, b, optimizer, amp).peak <= budget

    if not fits(1):
        return 0
    lo, hi = 1, 2
    while hi <= limit and fits(hi):
        lo, hi = hi, hi * 2
    hi = min(hi, limit + 1)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo

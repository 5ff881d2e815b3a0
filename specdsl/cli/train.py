"""`specdsl check --train / --fit`: the flags, their checks, and the training-memory report.

No torch: the prediction reads the PyTorch backend's saved-for-backward table, which is data.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

INT64_MAX = (1 << 63) - 1
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*\Z")


def size_arg(text: str) -> int:
    """A memory size: ``24GiB``, ``80GB``, ``1.5TiB``, ``512MiB`` or a number of bytes."""
    m = _SIZE.match(text)
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in _UNITS:
        raise argparse.ArgumentTypeError(
            f"expected a memory size such as 24GiB, 80GB or 512MiB; received '{text}'")
    number = m.group(1)
    whole, _, frac = number.partition(".")
    # Exact decimal arithmetic: no float rounding of a byte count.
    value = (int(whole) * _UNITS[unit]) + (int(frac) * _UNITS[unit] // 10 ** len(frac) if frac else 0)
    if not 0 < value <= INT64_MAX:
        raise argparse.ArgumentTypeError(f"expected a size between 1 byte and 8 EiB; received '{text}'")
    return value


def add_train_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training memory", "the peak of one training step on a GPU "
                                      "(see the README, 'Training memory')")
    group.add_argument("--train", action="store_true",
                       help="predict the peak memory of one training step and its parts")
    group.add_argument("--amp", choices=("bf16", "fp16"), help="under torch.autocast with this dtype")
    group.add_argument("--optimizer", choices=("sgd", "momentum", "adam", "adamw"), default="sgd",
                       help="whose state counts (default sgd: none)")
    group.add_argument("--fit", type=size_arg, metavar="SIZE",
                       help="the largest batch whose training peak fits in SIZE (e.g. 24GiB)")


def wants_training(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "train", False) or getattr(args, "fit", None) or getattr(args, "amp", None)
                or getattr(args, "optimizer", "sgd") != "sgd")


def args_error(args: argparse.Namespace) -> str | None:
    """A usage error in the training flags that needs no model, or None."""
    if wants_training(args) and args.batch > INT64_MAX:
        return f"--batch {args.batch:,} does not fit a 64-bit integer; give a smaller batch"
    return None


def human(n: int) -> str:
    for scale, suffix in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= scale:
            return f"{n / scale:,.1f} {suffix}"
    return f"{n} B"


def training(model: Any, args: argparse.Namespace) -> tuple[Any, int | None] | str:
    """(TrainMemory at the batch asked for, the largest batch that fits or None), or a usage error's text."""
    from specdsl.passes.train_memory import largest_batch, predict

    batch = model.totals.batch
    elements = sum(int(f.shape is not None) and _numel(f.shape) for f in model.analysis.figures)
    if batch * max(elements, 1) * 8 * 4 > INT64_MAX:
        return (f"--batch {batch:,} makes {model.name}'s training memory overflow a 64-bit byte count; "
                "give a smaller batch")
    memory = predict(model, batch, args.optimizer, args.amp)
    fit = None
    if args.fit is not None:
        fixed = memory.params + memory.buffers + memory.gradients + memory.optimizer_state
        if args.fit < fixed:
            return (f"--fit {human(args.fit)} is less than {model.name}'s parameters, gradients and "
                    f"optimizer state alone ({human(fixed)}): no batch fits")
        limit = max(1, INT64_MAX // (max(elements, 1) * 8 * 4))
        fit = largest_batch(model, args.fit, args.optimizer, args.amp, limit=limit)
    return memory, fit


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def usage_error(message: str) -> None:
    print(f"specdsl check: error: {message}", file=sys.stderr)


def train_json(memory: Any, fit: int | None, fit_bytes: int | None) -> dict[str, Any]:
    out = {
        "train_peak_bytes": memory.peak,
        "train_memory": {
            "batch": memory.batch,
            "optimizer": memory.optimizer,
            "amp": memory.amp,
            "device": "cuda",
            "params_bytes": memory.params,
            "buffer_bytes": memory.buffers,
            "gradient_bytes": memory.gradients,
            "optimizer_state_bytes": memory.optimizer_state,
            "saved_bytes": memory.saved,
            "saved_by_kind": memory.saved_by_kind,
            "backward_transient_bytes": memory.backward_transient,
            "optimizer_step_transient_bytes": memory.step_transient,
        },
    }
    if fit_bytes is not None:
        out["fit"] = {"bytes": fit_bytes, "largest_batch": fit}
    return out


def train_lines(model: Any, memory: Any, fit: int | None, fit_bytes: int | None) -> list[str]:
    amp = f", autocast {memory.amp}" if memory.amp else ""
    lines = [
        f"Training:    peak {human(memory.peak)} per step (batch {memory.batch}, {memory.optimizer}{amp}, "
        "CUDA, 512-byte blocks)",
        f"             params {human(memory.params)}, buffers {human(memory.buffers)}, "
        f"gradients {human(memory.gradients)}, optimizer state {human(memory.optimizer_state)}",
        f"             saved for backward {human(memory.saved)} ("
        + ", ".join(f"{k} {human(v)}" for k, v in sorted(memory.saved_by_kind.items(), key=lambda kv: -kv[1]))
        + f"), backward transient {human(memory.backward_transient)}",
    ]
    if fit_bytes is not None:
        lines.append(f"Fit:         largest batch within {human(fit_bytes)}: {fit:,}" if fit else
                     f"Fit:         no batch fits within {human(fit_bytes)}")
    return lines

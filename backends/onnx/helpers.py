"""Small pieces several ONNX lowerings share: padding in PyTorch's modes, per-channel weights."""

from __future__ import annotations

from collections.abc import Sequence

from specdsl.backends.onnx.builder import Builder

PAD_MODES = {"zeros": "constant", "constant": "constant", "reflect": "reflect", "replicate": "edge",
             "circular": "wrap"}


def pad(b: Builder, x: str, in_shape: Sequence[int], before: Sequence[int], after: Sequence[int], mode: str,
        value: float = 0.0, name: str | None = "pad") -> str:
    """ONNX Pad over the spatial axes (``mode`` PyTorch's name); circular needs opset 19's 'wrap'."""
    onnx_mode = PAD_MODES[mode]
    shape = (in_shape[0], *(n + p + q for n, p, q in zip(in_shape[1:], before, after, strict=True)))
    pads = b.ints([0, 0, *before, 0, 0, *after], "pads")
    ins = [x, pads] + ([b.scalar(value, "value")] if onnx_mode == "constant" else [])
    return b.op("Pad", ins, shape, name=name, needs=f"Pad:{onnx_mode}", mode=onnx_mode)


def per_channel(b: Builder, w: str, channels: int, rank: int, name: str) -> str:
    """A [C] weight shaped (C, 1, ...) to broadcast over (N, C, *spatial)."""
    if rank == 0:
        return w
    return b.unsqueeze(w, list(range(1, rank + 1)), (channels, *(1,) * rank), name=name, batched=False)

"""Sliding-window arithmetic shared by convolution and pooling (PyTorch's formulas)."""

from __future__ import annotations

from specdsl.ops.rule import RuleContext, RuleViolation, axis_name


def window_output(
    n: int,
    kernel: int,
    stride: int,
    pad_before: int,
    pad_after: int,
    dilation: int,
    *,
    rank: int,
    axis: int,
    ceil_mode: bool = False,
    ctx: RuleContext | None = None,
) -> int:
    """Output length of one axis: floor((n + p - d(k-1) - 1)/s) + 1, or PyTorch's ceil rule."""
    name = axis_name(rank, axis)
    k_eff = dilation * (kernel - 1) + 1
    padded = n + pad_before + pad_after
    span = padded - k_eff
    # With ceil_mode PyTorch accepts a window overhanging the padded input while one output remains.
    if k_eff > padded and not (ceil_mode and span + stride > 0):
        dil = f", dilation {dilation}" if dilation != 1 else ""
        raise RuleViolation(
            "E304",
            f"kernel larger than the padded input along {name}: effective kernel {k_eff} "
            f"(k={kernel}{dil}) > {name}={n} + padding {pad_before + pad_after} = {padded}",
            hint="reduce the kernel or add padding; an earlier layer may have shrunk the input too far",
            field="k",
        )
    if ceil_mode:
        out = -(-span // stride) + 1
        # PyTorch: the last window must start inside the input or the left padding.
        if (out - 1) * stride >= n + pad_before:
            out -= 1
        return out
    out = span // stride + 1
    leftover = span % stride
    dropped = leftover - pad_after
    # With k_eff < stride the op samples with gaps by design; only when windows
    # tile contiguously is the tail lost to floor division alone.
    if ctx is not None and dropped > 0 and k_eff >= stride:
        ctx.warn(
            "W301",
            f"{dropped} input position(s) at the end of {name} are never read: "
            f"({n} + {pad_before + pad_after} - {k_eff}) mod {stride} = {leftover}, "
            f"and only {pad_after} of those are padding",
            hint=f"pad {name} to a size where (n + padding - kernel) is a multiple of {stride}, "
            "or accept the loss" if dropped else None,
        )
    return out


def check_pool_padding(kernel: int, pad: int, axis_label: str) -> None:
    if pad > kernel // 2:
        raise RuleViolation(
            "E307",
            f"pooling padding must be at most half the kernel (PyTorch rule pad <= k // 2); "
            f"received pad={pad} with k={kernel} along {axis_label}",
            hint=f"use pad <= {kernel // 2}",
            field="pad",
        )


def same_padding(kernel: int, dilation: int) -> tuple[int, int]:
    """PyTorch's padding='same': total d(k-1), the odd unit goes after."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def tf_same_padding(n: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's SAME: ceil(n / stride) outputs; the total padding that needs, at least 0,
    split with the odd unit after (timm's pad_same)."""
    total = max((-(-n // stride) - 1) * stride + dilation * (kernel - 1) + 1 - n, 0)
    return total // 2, total - total // 2

"""conv's import reader (imports.py): nn.Conv1d/2d/3d, and the convolutions whose padding or weight
PyTorch's lacks: timm's Conv2dSame (TensorFlow's SAME: pad=same_tf), StdConv2d and ScaledStdConv2d
(and their *Same forms: ws, gain, gamma, eps), and specdsl's own ConvSameTF and StdConv
(modules_conv.py), so a spec's to_torch imports back. No torch imported here."""

from __future__ import annotations

from typing import Any

from specdsl.backends.torch.import_readers import axes
from specdsl.backends.torch.import_types import Site

# Classes that always pad as TensorFlow's SAME, with nothing on the instance to say so.
_ALWAYS_SAME_TF = {"timm.layers.conv2d_same.Conv2dSame"}
# Classes that standardise their weight (ws); with a gain parameter they are the scaled form.
_STANDARDISED = {"timm.layers.std_conv.StdConv2d", "timm.layers.std_conv.StdConv2dSame",
                 "timm.layers.std_conv.ScaledStdConv2d", "timm.layers.std_conv.ScaledStdConv2dSame",
                 "specdsl.backends.torch.modules_conv.StdConv"}


def conv(site: Site) -> dict[str, Any]:
    m = site.module
    cls = f"{type(m).__module__}.{type(m).__qualname__}"
    before = axes(m.padding) if not isinstance(m.padding, str) else m.padding
    # specdsl's helpers keep PyTorch's asymmetric 'same' as padding / padding_after.
    after = getattr(m, "padding_after", None)
    pad = "same" if after is not None and tuple(after) != tuple(m.padding) else before
    if cls in _ALWAYS_SAME_TF or getattr(m, "same_pad", False) or getattr(m, "same_tf", False):
        pad = "same_tf"
    args: dict[str, Any] = {
        "out": m.weight.shape[0], "k": axes(m.kernel_size), "stride": axes(m.stride), "pad": pad,
        "dilation": axes(m.dilation), "groups": m.groups, "bias": m.bias is not None,
        "padding_mode": getattr(m, "padding_mode", "zeros")}
    if cls in _STANDARDISED:
        args.update(ws=True, eps=float(m.eps))
        if getattr(m, "gain", None) is not None:
            # timm keeps scale = gamma / sqrt(fan_in), not gamma.
            args.update(gain=True, gamma=float(m.scale) * m.weight[0].numel() ** 0.5)
    return args

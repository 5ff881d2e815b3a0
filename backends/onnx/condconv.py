"""ONNX for condconv (timm's CondConv2d). ONNX's Conv takes one kernel for the whole batch, so the export
uses the sum's linearity: every expert's kernel runs as one grouped Conv (the weight initializer, kept under
its name, reshaped in the graph to [g·E·out/g, C/g, kh, kw], group-major), and the experts' outputs are
weighted by the routing and summed, conv(x, Σ r_e W_e) = Σ r_e conv(x, W_e); the bias is routing @ bias.
No ONNX pattern reads this back as one layer (the import reports it by its parts)."""

from __future__ import annotations

from specdsl.backends.onnx.builder import Builder
from specdsl.backends.onnx.site import Site


def condconv(b: Builder, s: Site) -> str:
    a = s.attrs
    c, experts, g = a.conv, a.experts, a.conv.groups
    per_group, cin = c.out_channels // g, c.in_channels // g
    s.fixed_size("the experts' outputs are reshaped at their spatial size")
    w = b.op("Reshape", [s.w["weight"], b.ints([experts, g, per_group, cin, *c.kernel])], None, name="experts",
             batched=False)
    w = b.op("Transpose", [w], None, name="group_major", batched=False, perm=[1, 0, 2, 3, 4, 5])
    w = b.op("Reshape", [w, b.ints([experts * c.out_channels, cin, *c.kernel])], None, name="kernels",
             batched=False)
    spatial = s.shape[1:]
    y = b.op("Conv", [s.ins[0], w], (experts * c.out_channels, *spatial), name="conv", kernel_shape=list(c.kernel),
             strides=list(c.stride), pads=[*c.padding, *c.padding_after], dilations=list(c.dilation), group=g)
    y = b.reshape(y, [g, experts, per_group, *spatial], (g, experts, per_group, *spatial), name="by_expert")
    r = b.reshape(s.ins[1], [1, experts, 1, 1, 1], (1, experts, 1, 1, 1), name="routing")
    y = b.op("Mul", [y, r], (g, experts, per_group, *spatial), name="weighted")
    y = b.op("ReduceSum", [y, b.ints([2], "axes")], (g, per_group, *spatial), name="sum", keepdims=0)
    if not c.bias:
        return b.reshape(y, [c.out_channels, *spatial], s.shape)
    y = b.reshape(y, [c.out_channels, *spatial], s.shape, name="mixed")
    bias = b.op("MatMul", [s.ins[1], s.w["bias"]], (c.out_channels,), name="bias")
    return b.op("Add", [y, b.unsqueeze(bias, [2, 3], (c.out_channels, 1, 1), name="bias_hw")], s.shape)

"""How each op becomes ONNX: one table, one entry per op of ``specdsl.ops.OPS``.

An entry is a :class:`~specdsl.backends.onnx.site.Lowering`: ``lower(builder, site)`` adds the
node's ONNX nodes (layers.py, elementwise.py) and returns its output's name; ``onnx`` lists the
ONNX ops it may write. Every op lowers at opset 17; where a newer opset has the op itself (Gelu 20,
Mish 18) the lowering uses it, and where only a newer opset can express what the spec asks
(circular padding: Pad's 'wrap', opset 19) the builder refuses with a located E505 naming the op
and the opset. Symbolic spatial sizes (``--dynamic-size``) are refused the same way by the
lowerings that bake a size in. A missing entry is a :class:`MissingEntry`, never a fallback.
This module imports neither torch nor onnxscript.
"""

from __future__ import annotations

from specdsl.backends.onnx import condconv, fixed, reduce
from specdsl.backends.onnx import elementwise as e
from specdsl.backends.onnx import layers as ly
from specdsl.backends.onnx import norm_evo as evo
from specdsl.backends.onnx import norm_global as gn
from specdsl.backends.onnx.site import Lowering
from specdsl.ops.registry import OpTable

_IDENTITY = Lowering(e.simple("Identity"), ("Identity",))
_NORM = ("ReduceMean", "Sub", "Mul", "Add", "Sqrt", "Div", "Unsqueeze")

LOWERINGS: OpTable[Lowering] = OpTable("ONNX lowering", "LOWERINGS", __name__, {
    # layers with weights
    "conv": Lowering(ly.conv, ("Conv", "Pad", "Reshape", "ReduceMean", "Sub", "Mul", "Add", "Sqrt", "Div")),
    "deconv": Lowering(ly.deconv, ("ConvTranspose",)),
    "linear": Lowering(ly.linear, ("Gemm", "MatMul", "Transpose", "Add")),
    "local": Lowering(ly.local, ("Pad", "Slice", "Unsqueeze", "Concat", "Reshape", "Transpose", "MatMul", "Add")),
    # pooling
    "maxpool": Lowering(ly.maxpool, ("MaxPool",)),
    "avgpool": Lowering(ly.avgpool, ("AveragePool", "Mul")),
    "gap": Lowering(ly.global_pool("ReduceMean"), ("ReduceMean",)),
    "gmp": Lowering(ly.global_pool("ReduceMax"), ("ReduceMax",)),
    "adaptive_avgpool": Lowering(ly.adaptive("avg"), ("GlobalAveragePool", "AveragePool", "MatMul", "Transpose")),
    "adaptive_maxpool": Lowering(ly.adaptive("max"), ("GlobalMaxPool", "MaxPool", "Gather", "ReduceMax")),
    # normalisation: eval mode (running statistics where the norm keeps them)
    "bn": Lowering(e.bn, ("BatchNormalization", *_NORM)),
    "instancenorm": Lowering(e.instancenorm, ("BatchNormalization", "InstanceNormalization")),
    "layernorm": Lowering(e.layernorm, ("LayerNormalization",)),
    "groupnorm": Lowering(e.groupnorm, ("Reshape", *_NORM)),
    "channel_norm": Lowering(e.channel_norm, _NORM),
    "evonorm": Lowering(evo.evonorm, evo.EVO_OPS),
    "frn": Lowering(evo.frn, evo.FRN_OPS),
    "grn": Lowering(gn.grn, gn.GRN_OPS),
    "rmsnorm": Lowering(gn.rmsnorm, gn.RMS_OPS),
    "simplenorm": Lowering(gn.simplenorm, gn.RMS_OPS),
    "layer_scale": Lowering(e.layer_scale, ("Mul", "Reshape")),
    "lrn": Lowering(e.lrn, ("LRN", "Mul", "Reshape", "AveragePool", "Add", "Pow", "Div")),
    # activations
    "relu": Lowering(e.simple("Relu"), ("Relu",)),
    "relu6": Lowering(e.clip(0.0, 6.0), ("Clip",)),
    "leaky_relu": Lowering(e.with_attrs("LeakyRelu", alpha="slope"), ("LeakyRelu",)),
    "elu": Lowering(e.with_attrs("Elu", alpha="alpha"), ("Elu",)),
    "hardtanh": Lowering(e.hardtanh, ("Clip",)),
    "gelu": Lowering(e.gelu, ("Gelu", "Erf", "Tanh", "Mul", "Add")),
    "silu": Lowering(e.silu, ("Sigmoid", "Mul")),
    "hardswish": Lowering(e.simple("HardSwish"), ("HardSwish",)),
    "hardsigmoid": Lowering(e.simple("HardSigmoid", alpha=1 / 6, beta=0.5), ("HardSigmoid",)),
    "mish": Lowering(e.mish, ("Mish", "Softplus", "Tanh", "Mul")),
    "selu": Lowering(e.simple("Selu", alpha=e.SELU_ALPHA, gamma=e.SELU_SCALE), ("Selu",)),
    "prelu": Lowering(e.prelu, ("PRelu",)),
    "sigmoid": Lowering(e.simple("Sigmoid"), ("Sigmoid",)),
    "tanh": Lowering(e.simple("Tanh"), ("Tanh",)),
    "softplus": Lowering(e.softplus, ("Softplus", "Greater", "Where")),
    "softmax": Lowering(e.with_attrs("Softmax", axis="dim"), ("Softmax",)),
    "log_softmax": Lowering(e.with_attrs("LogSoftmax", axis="dim"), ("LogSoftmax",)),
    # inference: dropout and stochastic depth are the identity
    "dropout": _IDENTITY,
    "dropout1d": _IDENTITY,
    "dropout2d": _IDENTITY,
    "dropout3d": _IDENTITY,
    "stochastic_depth": _IDENTITY,
    "identity": _IDENTITY,
    # shapes
    "flatten": Lowering(e.flatten, ("Flatten", "Reshape")),
    "upsample": Lowering(ly.upsample, ("Resize", "Gather")),
    "crop": Lowering(e.crop, ("Slice",)),
    "pad": Lowering(e.pad_op, ("Pad",)),
    "permute": Lowering(e.with_attrs("Transpose", perm="dims"), ("Transpose",)),
    "channel_shuffle": Lowering(e.channel_shuffle, ("Reshape", "Transpose")),
    "pixel_shuffle": Lowering(e.pixel_shuffle, ("DepthToSpace",)),
    "pixel_unshuffle": Lowering(e.pixel_unshuffle, ("Reshape", "Transpose")),
    # merges; drop-path is for training, so at inference a join is the mean of its inputs
    "add": Lowering(e.merge("Add", "Sum"), ("Add", "Sum")),
    "mul": Lowering(e.merge("Mul", None), ("Mul",)),
    "mean": Lowering(e.merge("Mean", "Mean"), ("Mean",)),
    "join": Lowering(e.merge("Mean", "Mean"), ("Mean",)),
    "concat": Lowering(e.concat, ("Concat",)),
    # multi-output: split and chunk pass their input on whole; each part slices it
    "split": _IDENTITY,
    "chunk": _IDENTITY,
    "part": Lowering(e.part, ("Slice",)),
    # reshapes and constants (fixed.py)
    "reshape": Lowering(fixed.reshape, ("Reshape",)),
    "unsqueeze": Lowering(fixed.unsqueeze, ("Unsqueeze",)),
    "squeeze": Lowering(fixed.squeeze, ("Squeeze",)),
    "scale": Lowering(fixed.scale, ("Mul",)),
    "blurpool": Lowering(fixed.blurpool, ("Pad", "Conv")),
    "stack": Lowering(reduce.stack, ("Unsqueeze", "Concat")),
    "sum": Lowering(reduce.sum_, ("ReduceSum",)),
    "condconv": Lowering(condconv.condconv, ("Reshape", "Transpose", "Conv", "Mul", "ReduceSum", "MatMul", "Add")),
})

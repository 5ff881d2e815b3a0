"""How ONNX comes back to each op: one import entry per op of ``specdsl.ops.OPS``.

The import table is the ONNX lowering table (lowerings.py) read the other way, under the same
registry contract (:class:`~specdsl.ops.registry.OpTable`, a coverage test asks both): each
entry lists the ONNX node patterns it recognises, each matched from the ONNX node it ends with
back to its inputs (``Pad -> Conv``: the Pad is taken with the Conv), or, where no ONNX form
maps back, says why. A pattern recognises what specdsl's own export writes and what torch.onnx
writes (Gemm or MatMul + Add for a linear layer, Erf or Gelu for gelu, Split for chunk); an
ONNX node no pattern takes is reported unmapped by the lifter (imports.py), never guessed.
This module imports neither torch nor onnxscript.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from specdsl.backends.onnx import imports_elementwise as e
from specdsl.backends.onnx import imports_layers as ly
from specdsl.backends.onnx import imports_norm_evo as evo
from specdsl.backends.onnx import imports_norm_global as gn
from specdsl.backends.onnx import imports_norms as nm
from specdsl.backends.onnx import imports_shapes as sh
from specdsl.backends.onnx import imports_splits as sp
from specdsl.backends.onnx import reduce
from specdsl.backends.onnx.imports_reader import ImportEntry, Pattern, decimal
from specdsl.ops.registry import OpTable


def entry(*patterns: Pattern, fill: tuple[tuple[str, object], ...] = ()) -> ImportEntry:
    return ImportEntry(patterns, fill=fill)


def refused(why: str) -> ImportEntry:
    return ImportEntry(refusal=why)


def one(onnx_op: str, reads: str | None = None,
        args: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None) -> Pattern:
    """A one-node pattern of one data input; ``args`` maps its attributes to the spec's."""
    return Pattern(onnx_op, e.unary(args), reads or onnx_op)


_INFERENCE = "an inference graph holds no trace of it (PyTorch's eval mode is the identity): its Identity, " \
             "where one is left, imports as identity; its required p is not in the file"
# A plain pool reads as such first; specdsl's files, whose doc strings name the op, try this one first.
_DIVIDING_BINS = "a pool whose kernel is its stride, unpadded (bins that divide the input)"
_SAME_AT_INFERENCE = {"Identity": e.identity, "Mean": e.merge(1)}


def _written(op: str, onnx_op: str) -> Pattern:
    """An op ONNX spells as another (a dropout as Identity, a join as Mean at inference), where
    specdsl's export names it in the node's doc string; its training-only arguments are lost."""
    return Pattern(onnx_op, e.written_as(op, _SAME_AT_INFERENCE[onnx_op]),
                   f"{onnx_op} whose doc string (specdsl's export) names {op}", priority=5)

IMPORTS: OpTable[ImportEntry] = OpTable("ONNX import entry", "IMPORTS", __name__, {
    # layers with weights
    "conv": entry(Pattern("Conv", ly.conv, "Conv (+ bias); Pad (reflect, edge, wrap) -> Conv as padding_mode")),
    "deconv": entry(Pattern("ConvTranspose", ly.deconv, "ConvTranspose (+ bias), symmetric pads")),
    "linear": entry(Pattern("Gemm", ly.gemm, "Gemm (transB 0 or 1, + bias)"),
                    Pattern("Add", ly.matmul_add, "MatMul (W or Transpose(W)) -> Add(bias)", priority=20),
                    Pattern("MatMul", ly.matmul, "MatMul with a weight (W or Transpose(W))")),
    "local": refused("its ONNX form is hundreds of Slices, Concats and a MatMul per position, which "
                     "no pattern reads back (an unshared-weight conv has no ONNX op)"),
    # pooling
    "maxpool": entry(Pattern("MaxPool", sh.pool("max"), "MaxPool; extra end pads as ceil_mode")),
    "avgpool": entry(Pattern("AveragePool", sh.pool("avg"), "AveragePool (count_include_pad, ceil_mode)"),
                     Pattern("Mul", sh.avgpool_divided, "AveragePool times PyTorch's ceil_mode divisors", priority=10)),
    "gap": entry(Pattern("ReduceMean", sh.reduce_spatial, "ReduceMean over every spatial axis")),
    "gmp": entry(Pattern("ReduceMax", sh.reduce_spatial, "ReduceMax over every spatial axis")),
    "adaptive_avgpool": entry(Pattern("GlobalAveragePool", sh.global_pool, "GlobalAveragePool as adaptive_avgpool(1)"),
                              Pattern("Transpose", sh.adaptive_bins, "MatMul by PyTorch's bins per axis (Transpose "
                                      "the axis last and back)", priority=10),
                              Pattern("MatMul", sh.adaptive_bins, "MatMul by PyTorch's bins over the last axis",
                                      priority=10),
                              Pattern("AveragePool", sh.adaptive_window, _DIVIDING_BINS, priority=-5),
                              Pattern("Gather", sh.global_pool_strided, "ReduceMean over the spatial axes -> "
                                      "Reshape(-1) -> Gather of every index in order (dynamo's as_strided)")),
    "adaptive_maxpool": entry(Pattern("GlobalMaxPool", sh.global_pool, "GlobalMaxPool as adaptive_maxpool(1)"),
                              Pattern("MaxPool", sh.adaptive_window, _DIVIDING_BINS, priority=-5)),
    # normalisation
    "bn": entry(Pattern("BatchNormalization", ly.batchnorm, "BatchNormalization (inference; ones and zeros "
                        "owned by no module: affine=false)"),
                *(Pattern(op, nm.batch_statistics, f"normalised over the batch and spatial axes (ReduceMean/Sub/"
                          f"Mul/ReduceMean/Add/Sqrt/Div), ending in {op}: track_running_stats=false", priority=30)
                  for op in ("Add", "Div")),
                fill=(("num_batches_tracked", 0),)),
    "instancenorm": entry(Pattern("InstanceNormalization", ly.instancenorm, "InstanceNormalization")),
    "layernorm": entry(Pattern("LayerNormalization", ly.layernorm, "LayerNormalization over the trailing axes")),
    "groupnorm": entry(*(Pattern(op, nm.groupnorm, f"Reshape(N, G, rest), normalised over rest, Reshape back, "
                                 f"the affine; ending in {op}", priority=30) for op in ("Add", "Reshape"))),
    "channel_norm": entry(Pattern("Add", ly.channel_norm, "ReduceMean/Sub/Mul/ReduceMean/Add/Sqrt/Div over the "
                                  "channels, then Mul(weight), Add(bias)", priority=30),
                          Pattern("Transpose", ly.channel_norm_permuted, "Transpose(0,2,3,1) -> LayerNormalization "
                                  "-> Transpose(0,3,1,2) (torchvision's LayerNorm2d)", priority=10)),
    "grn": entry(Pattern("Add", gn.grn, "Add(x, Add(Mul(weight, Mul(x, Div(ReduceL2(x), Add(ReduceMean_c, eps)))), "
                         "bias)): ConvNeXt V2's global response norm", priority=30)),
    "rmsnorm": entry(*(Pattern(op, gn.rmsnorm, f"Div(x, Sqrt(Add(ReduceMean_c(Mul(x, x)), eps))), ending in {op}",
                               priority=30) for op in ("Mul", "Div"))),
    "simplenorm": entry(*(Pattern(op, gn.simplenorm, f"Div(x, Sqrt(Add(unbiased variance over the channels, eps))), "
                                  f"ending in {op}", priority=30) for op in ("Mul", "Div"))),
    "evonorm": entry(Pattern("Add", evo.evonorm, "Add(Mul(Reshape(Div(Reshape(Mul(x, Sigmoid(Mul(x, v)))) or the "
                             "grouped x, group std), Shape(x)), weight), bias): EvoNorm-S0", priority=30)),
    "frn": entry(*(Pattern(op, evo.frn, f"Div(x, Sqrt(Add(ReduceMean_spatial(Mul(x, x)), eps))), the affine, ending "
                           f"in {op} (Max with tau: the TLU)", priority=30) for op in ("Max", "Add"))),
    "layer_scale": entry(Pattern("Mul", e.layer_scale, "Mul by a parameter shaped (C, 1, ...)", priority=5)),
    "lrn": entry(one("LRN", "LRN (odd size)", ly.lrn)),
    # activations
    "relu": entry(one("Relu")),
    "relu6": entry(Pattern("Clip", e.relu6, "Clip(0, 6)", priority=10)),
    "leaky_relu": entry(one("LeakyRelu", args=lambda a: {} if decimal(a.get("alpha", 0.01)) == 0.01
                            else {"slope": decimal(a["alpha"])})),
    "elu": entry(one("Elu", args=lambda a: {} if decimal(a.get("alpha", 1.0)) == 1.0
                     else {"alpha": decimal(a["alpha"])})),
    "hardtanh": entry(Pattern("Clip", e.hardtanh, "Clip(min, max)")),
    "gelu": entry(one("Gelu", args=e.gelu_op),
                  Pattern("Mul", e.gelu_erf, "½x(1 + Erf(x/√2)), in specdsl's or torch.onnx's order", priority=30),
                  Pattern("Mul", e.gelu_tanh, "½x(1 + Tanh(√(2/π)(x + 0.044715x³)))", priority=30)),
    "silu": entry(Pattern("Mul", e.silu, "Mul(x, Sigmoid(x))", priority=20)),
    "hardswish": entry(one("HardSwish")),
    "hardsigmoid": entry(one("HardSigmoid", "HardSigmoid(alpha=1/6, beta=1/2)", e.hardsigmoid)),
    "mish": entry(one("Mish"), Pattern("Mul", e.mish, "Mul(x, Tanh(Softplus(x)))", priority=20)),
    "selu": entry(one("Selu", "Selu (PyTorch's constants)", e.selu)),
    "prelu": entry(Pattern("PRelu", e.prelu, "PRelu (slope [1], [C] or Unsqueeze([C]))")),
    "sigmoid": entry(one("Sigmoid")),
    "tanh": entry(one("Tanh")),
    "softplus": entry(one("Softplus", "Softplus (beta 1; PyTorch's threshold 20 differs by < 1e-8)"),
                      Pattern("Where", e.softplus_where, "Where(βx > threshold, x, Softplus(βx)/β)")),
    "softmax": entry(one("Softmax", args=e.softmax)),
    "log_softmax": entry(one("LogSoftmax", args=e.softmax)),
    # inference: dropout and stochastic depth are the identity
    "dropout": entry(Pattern("Dropout", e.dropout, "Dropout (ratio as p)"), _written("dropout", "Identity")),
    "dropout1d": entry(_written("dropout1d", "Identity")),
    "dropout2d": entry(_written("dropout2d", "Identity")),
    "dropout3d": entry(_written("dropout3d", "Identity")),
    "stochastic_depth": refused(_INFERENCE),
    "identity": entry(Pattern("Identity", e.identity, "Identity of a tensor that is no graph output")),
    # shapes
    "flatten": entry(Pattern("Flatten", sh.flatten, "Flatten(axis=1)"),
                     Pattern("Reshape", sh.reshape_flatten, "Reshape folding a run of axes (by inferred shapes)")),
    "upsample": entry(Pattern("Resize", sh.resize, "Resize (nearest floor/asymmetric, nearest-exact, linear, cubic)"),
                      Pattern("Gather", sh.nearest_gather, "Gather per spatial axis of PyTorch's nearest indices")),
    "crop": refused("ONNX keeps only the Slice's numbers, not the tensor whose size it crops to: the Slice is "
                    "reported unmapped"),
    "pad": entry(Pattern("Pad", sh.pad, "Pad over the spatial axes (constant, reflect, edge, wrap)")),
    "permute": entry(one("Transpose", "Transpose keeping the batch first", sh.permute)),
    "channel_shuffle": entry(Pattern("Reshape", sh.channel_shuffle, "Reshape(N, g, C/g, ...) -> Transpose(1, 2) "
                                     "-> Reshape back", priority=20)),
    "pixel_shuffle": entry(one("DepthToSpace", "DepthToSpace (CRD)", sh.pixel_shuffle)),
    "pixel_unshuffle": entry(Pattern("Reshape", sh.pixel_unshuffle, "Reshape -> Transpose(0,1,3,5,2,4) -> Reshape",
                                     priority=20)),
    # merges
    "add": entry(Pattern("Add", e.merge(2, 2), "Add of two tensors"), Pattern("Sum", e.merge(1), "Sum")),
    "mul": entry(Pattern("Mul", e.merge(2, 2), "Mul of two tensors")),
    "mean": entry(Pattern("Mean", e.merge(1), "Mean")),
    "join": entry(_written("join", "Mean")),
    "concat": entry(Pattern("Concat", e.concat, "Concat along a non-batch axis")),
    # multi-output: a split or chunk and a part per output
    "split": entry(Pattern("Split", sp.split(False), "Split"),
                   Pattern("Slice", sp.slices(False), "Slices of one tensor tiling one axis"),
                   Pattern("Identity", sp.sliced(False), "Identity read by Slices tiling one axis", priority=10)),
    "chunk": entry(Pattern("Split", sp.split(True), "Split into torch.chunk's sizes", priority=10),
                   Pattern("Slice", sp.slices(True), "Slices in torch.chunk's sizes", priority=10),
                   Pattern("Identity", sp.sliced(True), "Identity read by Slices in torch.chunk's sizes",
                           priority=20)),
    "part": refused("made by the split and chunk patterns, one per output of the Split (or Slice)"),
    # reshapes and constants
    "reshape": entry(Pattern("Reshape", sh.reshape, "Reshape keeping the batch first (to its inferred shape)",
                             priority=-10)),
    "unsqueeze": entry(Pattern("Unsqueeze", sh.axis_op, "Unsqueeze of one non-batch axis")),
    "squeeze": entry(Pattern("Squeeze", sh.axis_op, "Squeeze of one non-batch axis")),
    "scale": entry(Pattern("Mul", e.scale, "Mul by a one-value constant"),
                   Pattern("Div", e.scale, "Div by a one-value constant")),
    "blurpool": entry(Pattern("Conv", sh.blurpool, "Pad -> depthwise Conv with the binomial filter", priority=10)),
    "stack": entry(Pattern("Concat", reduce.read_stack, "Unsqueeze of each input at one axis -> Concat along it",
                           priority=10)),
    "sum": entry(Pattern("ReduceSum", reduce.read_sum, "ReduceSum over non-batch axes")),
    "condconv": refused("ONNX's Conv has one kernel for the batch: the export writes a CondConv as every expert's "
                        "conv, weighted by the routing and summed (onnx/condconv.py), which no pattern reads back"),
})


def patterns_by_onnx_op() -> dict[str, list[tuple[str, Pattern]]]:
    """(spec op, pattern) by the ONNX op a pattern ends with, the larger priority first."""
    index: dict[str, list[tuple[str, Pattern]]] = {}
    for op, item in IMPORTS.items():
        for pattern in item.patterns:
            index.setdefault(pattern.onnx, []).append((op, pattern))
    for found in index.values():
        found.sort(key=lambda pair: -pair[1].priority)
    return index

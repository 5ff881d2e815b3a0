"""E301-E319: a layer's rule refuses its arguments or its input's shape (PyTorch's rules, to the letter),
and the graph's wiring (names, references, numbers of inputs)."""

from __future__ import annotations

from specdsl.catalog.entry import Entry

_HEAD = "model m\ninput [3, 32, 32]\n"

ENTRIES = (
    Entry(
        "E301", "output size out of range",
        "A layer's output would have an axis of size 0 or less (a kernel, stride or padding that "
        "shrinks the input away, a transition or se that leaves no channels, an upsample scale that "
        "rounds to 0), or an axis larger than 2^63-1. The message shows PyTorch's size formula with "
        "the numbers filled in.",
        "model m\ninput [3, 4, 4]\nlayers {\n    upsample(scale=0.2)\n}\n",
        "Shrink the input less (a larger scale, padding, a smaller stride) or give the model a larger "
        "input.",
    ),
    Entry(
        "E302", "declared size differs from the input's",
        "A layer declares the size of its input (`in=` on conv or linear, se's `channels`, "
        "layernorm's normalized shape) and the layer before it produces another. Declaring it is "
        "optional; when given it is checked, so a wrong assumption is caught where it is written.",
        _HEAD + "layers {\n    conv(16, k=5) -> maxpool(2) -> flatten -> linear(10, in=400)\n}\n",
        "Set the declared size to what the message received (`in=3136`), drop the declaration, or "
        "fix the layer that feeds it.",
    ),
    Entry(
        "E303", "groups must divide the channels",
        "A grouped conv splits its input and output channels into `groups` equal parts, and "
        "groupnorm its channels: the channel counts must be multiples of groups (PyTorch's rule).",
        _HEAD + "layers {\n    conv(8, k=3, groups=2)\n}\n",
        "Pick groups from the divisors of both channel counts (`groups=depthwise` for one group per "
        "channel), or change the channels.",
    ),
    Entry(
        "E304", "input smaller than the kernel",
        "A window (conv, pool) is larger than its padded input along an axis, 3-D average pooling "
        "is larger than the unpadded input, or instancenorm gets one spatial element per channel: "
        "PyTorch refuses each of these at run time. simplenorm of one channel (an unbiased variance "
        "of one value) would give NaN.",
        "model m\ninput [3, 4, 4]\nlayers {\n    maxpool(5)\n}\n",
        "Use a smaller kernel, pad the input, or downsample less before this layer.",
    ),
    Entry(
        "E305", "one value per spatial axis",
        "A per-axis argument (kernel, stride, padding, dilation, an upsample scale or size) lists a "
        "different number of values than the input has spatial axes.",
        _HEAD + "layers {\n    conv(8, k=[3, 3, 3])\n}\n",
        "Give one value per spatial axis (`k=[3, 3]` for a [C, H, W] input) or a single number for "
        "all of them.",
    ),
    Entry(
        "E306", "input of the wrong rank",
        "A layer needs an input with a given number of axes: conv, pooling and channel_shuffle need "
        "spatial axes, an upsample mode is for inputs of one rank (bilinear for 2-D), a two-input "
        "upsample or crop needs two inputs of the same rank. A flatten or a global pool before it "
        "usually removed the spatial axes.",
        _HEAD + "layers {\n    flatten -> conv(8, k=3)\n}\n",
        "Move the layer before the flatten or global pool, or use the layer meant for this rank.",
    ),
    Entry(
        "E307", "pooling padding larger than half the kernel",
        "PyTorch's pooling layers allow a padding of at most half the kernel (pad <= k // 2).",
        _HEAD + "layers {\n    maxpool(2, pad=2)\n}\n",
        "Use `pad` <= k // 2, or pad the input with `pad(...)` first.",
    ),
    Entry(
        "E308", "padding 'same' needs stride 1",
        "PyTorch computes padding='same' only for stride 1.",
        _HEAD + "layers {\n    conv(8, k=3, stride=2, pad=same)\n}\n",
        "Give the padding explicitly, e.g. `pad=1` for k=3 (in general (k - 1) // 2).",
    ),
    Entry(
        "E309", "padding too wide for its mode",
        "Reflect padding must be smaller than the input along the axis, and circular padding may "
        "wrap around the input at most once (PyTorch's rules, for conv's padding_mode and for the "
        "`pad` layer).",
        "model m\ninput [3, 4, 4]\nlayers {\n    pad(4, mode=reflect)\n}\n",
        "Use less padding, or mode=constant / replicate, which take any width.",
    ),
    Entry(
        "E310", "output_padding too large",
        "A transposed conv's output_padding must be smaller than its stride or its dilation "
        "(PyTorch's rule).",
        _HEAD + "layers {\n    deconv(8, k=3, stride=2, output_padding=2)\n}\n",
        "Use an output_padding below the stride (here 0 or 1).",
    ),
    Entry(
        "E386", "conv argument that needs another",
        "A weight-standardised conv's arguments go together: `gain` needs `ws=true`, `gamma` needs "
        "`gain=true`, `eps` needs `ws=true`; and `pad=same_tf` (TensorFlow's SAME) and `ws` pad with "
        "zeros, so they take no other padding_mode (timm's Conv2dSame, StdConv2d, ScaledStdConv2d). A "
        "standardised weight needs more than one element per output channel.",
        _HEAD + "layers {\n    conv(8, k=3, gain=true)\n}\n",
        "Add the argument it needs (`ws=true` for gain and eps, `gain=true` for gamma), or drop it.",
    ),
    Entry(
        "E311", "dimension out of range",
        "A `dim` (softmax, log_softmax, concat, stack, sum) or flatten's start_dim/end_dim names an "
        "axis the batched input does not have, or the batch axis 0; sum also refuses an axis named "
        "twice, or summing every axis of a sample away (keepdims=true keeps them). Dims use "
        "PyTorch's numbering, batch included: 1 is the channels.",
        _HEAD + "layers {\n    softmax(dim=4)\n}\n",
        "Use an axis between 1 and the input's last (negative dims count from the end).",
    ),
    Entry(
        "E312", "merge inputs do not fit together",
        "add and mul need inputs that are equal or broadcast (on every axis equal sizes, or 1), "
        "mean, join and stack need equal shapes, concat inputs that agree on every axis but the one "
        "joined, and condconv routing weights [E] as its second input. The message names what differs.",
        _HEAD + "layers {\n    conv(16, k=3, stride=2, pad=1) as body\n    [@body, @input] -> add\n}\n",
        "Project the odd input (a 1×1 conv with the right channels and stride), or fix the branch "
        "that changed its shape.",
    ),
    Entry(
        "E313", "exactly one of two sizing arguments",
        "Some layers take a size in one of two ways, and need exactly one: se a `squeeze` or a "
        "`reduction`, transition a `theta` or an `out`, upsample a `scale`, a `size` or (with two "
        "inputs) the second input's size. Neither, or both, leaves the size undecided.",
        _HEAD + "layers {\n    upsample(scale=2, size=[64, 64])\n}\n",
        "Keep one of them: `upsample(scale=2)`, `se(channels=64, squeeze=16)`, `transition(theta=0.5)`.",
    ),
    Entry(
        "E314", "unknown node",
        "An input reference (`@name` in the DSL, `inputs: [name]` in YAML) names no earlier node in "
        "its scope. Inputs must come earlier in the layers; names inside a block are that block's own.",
        _HEAD + "layers {\n    conv(8, k=3) as stem\n    [@stme, @stem] -> add\n}\n",
        "Fix the name (the hint gives the nearest), or name the layer with `as NAME` (YAML `name:`) "
        "before referring to it.",
    ),
    Entry(
        "E315", "name already taken",
        "A name clashes with one that exists: two nodes with the same name in one scope, a name "
        "reserved because PyTorch modules use it as an attribute, a block named after a built-in "
        "layer, or a block parameter named like one of its inputs.",
        _HEAD + "layers {\n    conv(8, k=3) as a\n    relu as a\n}\n",
        "Pick a unique name.",
    ),
    Entry(
        "E316", "wrong number of inputs",
        "A layer gets more or fewer inputs than it takes: a merge (add, concat, mean) needs at least "
        "two, other layers exactly one, a user block as many as it declares with `inputs(...)`, and "
        "join as many as its `columns` list.",
        _HEAD + "layers {\n    relu -> concat\n}\n",
        "List the inputs to merge: `[@a, @b] -> concat` (YAML `inputs: [a, b]`).",
    ),
    Entry(
        "E317", "a block needs exactly one body",
        "A YAML block definition has one body: `layers`, or one of the built-in bodies (residual, "
        "dense, inception, fractal, ...). This one has none, or several.",
        "model: m\ninput: [3, 32, 32]\nblocks:\n  unit:\n    params: {c: int}\nlayers:\n"
        "  - unit: {c: 8}\n",
        "Give the block its body: `layers: [...]` or `residual: {body: [...]}`.",
    ),
    Entry(
        "E318", "crop reference larger than the input",
        "`[@x, @ref] -> crop` cuts the centre of x at ref's spatial size, which must not be larger "
        "than x's along any axis.",
        _HEAD + "layers {\n    conv(4, k=3) as small\n    [@small, @input] -> crop\n}\n",
        "Swap the two inputs, or crop a larger map.",
    ),
    Entry(
        "E319", "align_corners only with an interpolating mode",
        "upsample's align_corners applies to the interpolating modes (linear, bilinear, bicubic, "
        "trilinear); PyTorch refuses it with nearest.",
        _HEAD + "layers {\n    upsample(scale=2, align_corners=true)\n}\n",
        "Drop align_corners, or choose an interpolating mode: `upsample(scale=2, mode=bilinear, "
        "align_corners=false)`.",
    ),
)

"""Wxxx: warnings. The model still builds; `--strict` makes any of them exit 1, `--quiet` hides them."""

from __future__ import annotations

from specdsl.catalog.entry import Entry

_HEAD = "model m\ninput [3, 32, 32]\n"

ENTRIES = (
    Entry(
        "W301", "input positions never read",
        "A window (conv, pool) with a stride that does not divide the padded input leaves the last "
        "rows or columns unread: (n + padding - k_eff) mod stride positions at the end. PyTorch "
        "drops them silently; usually a padding of (k - 1) // 2 was meant.",
        "model m\ninput [3, 224, 224]\nlayers {\n    conv(32, k=3, stride=2) -> relu\n}\n",
        "Pad the input (`pad=1` for k=3), or change the kernel or stride so that they fit.",
    ),
    Entry(
        "W302", "linear on a tensor with spatial axes",
        "linear acts on the last axis only, as nn.Linear does: on a [C, H, W] input it mixes the W "
        "positions of each row and keeps C and H. Usually a `flatten` or a global pool was forgotten.",
        _HEAD + "layers {\n    conv(8, k=3) -> linear(10)\n}\n",
        "Add `flatten` (or `gap`) before it; when acting on the last axis is meant (channels last, as "
        "in ConvNeXt), permute the channels last first.",
    ),
    Entry(
        "W320", "merge inputs not aligned",
        "The inputs of a merge (add, mul, concat, mean) see the input with different effective "
        "strides or different centres, so the merged positions come from different places of the "
        "image (receptive fields, Araujo et al., Distill 2019). The message names both paths.",
        _HEAD + "layers {\n    conv(8, k=3, pad=1) as a\n    @input -> conv(8, k=2, pad=same) as b\n"
        "    [@a, @b] -> add\n}\n",
        "Use odd kernels with symmetric padding on both branches (or the same strides), so that the "
        "centres agree.",
    ),
    Entry(
        "W321", "fixed upsample size does not follow the input",
        "An upsample with a fixed `size` sets the model's output size, but the model input (changed "
        "with `--input`) has another: the output no longer follows the input, as a segmentation "
        "head's should.",
        "model: m\ninput: [3, 32, 32]\nlayers:\n  - conv: {out: 4, k: 3, stride: 4, pad: 1}\n"
        "  - upsample: {size: [32, 32], mode: bilinear}\n",
        "Resize to the input itself: `[@x, @input] -> upsample(mode=bilinear, align_corners=false)`.",
        load={"input": [3, 64, 64]},
    ),
    Entry(
        "W340", "chunk gives unequal parts",
        "chunk(n) follows torch.chunk's rule: parts of ceil(size / n), the last smaller, and possibly "
        "fewer than n parts when n does not divide the axis.",
        _HEAD + "layers {\n    chunk(2) as s\n    @s.0 -> relu\n}\n",
        "Say the sizes with `split([2, 1])`, or use a chunk count that divides the axis.",
    ),
    Entry(
        "W350", "layer output never used",
        "A layer's output reaches no output of the model: it costs parameters, MACs and memory for "
        "nothing. The message gives what it costs.",
        _HEAD + "layers {\n    conv(8, k=3) as unused\n    @input -> conv(16, k=3)\n}\n",
        "Remove the layer, or use it: refer to it as an input of a later layer, or list it in "
        "`outputs`.",
    ),
    Entry(
        "W351", "branch never used",
        "A chain of several layers ends in a node whose output reaches no output of the model.",
        _HEAD + "layers {\n    conv(8, k=3) -> relu -> conv(8, k=3)\n    @input -> conv(16, k=3)\n}\n",
        "Remove the branch, or merge it into the model (add, concat).",
    ),
    Entry(
        "W352", "block parameter never used",
        "A user-defined block declares a parameter that its body never mentions: every call passes a "
        "value that changes nothing.",
        "model m\ninput [3, 32, 32]\nblock unit(c: int, stride=1) {\n    conv(c, k=3)\n}\n"
        "layers {\n    unit(8)\n}\n",
        "Remove the parameter, or use it in the block's body (`conv(c, k=3, stride=stride)`).",
    ),
)

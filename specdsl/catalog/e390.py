"""E391-E392: the ops that give a sample a new shape (reshape / view, unsqueeze, squeeze)."""

from __future__ import annotations

from specdsl.catalog.entry import Entry

_HEAD = "model m\ninput [8, 4, 4]\n"

ENTRIES = (
    Entry(
        "E391", "reshape sizes",
        "reshape (and its alias view) gives one sample a new shape, the batch kept first: its sizes are "
        "positive, one of them may be -1 (inferred from the rest), and their product is the sample's "
        "element count.",
        _HEAD + "layers {\n    reshape([3, -1])\n}\n",
        "Write sizes whose product is the sample's element count (8·4·4 = 128 here), or -1 for one of "
        "them: `reshape([1, -1])`.",
    ),
    Entry(
        "E392", "unsqueeze / squeeze axis",
        "unsqueeze and squeeze number the axes as PyTorch does, the batch included as axis 0 (the "
        "channels are axis 1), negative numbers counting from the end. The batch axis is not the "
        "sample's and is refused; squeeze needs an axis of size 1 (PyTorch would leave any other as it "
        "is); a sample keeps at least one axis and at most four.",
        _HEAD + "layers {\n    squeeze(2)\n}\n",
        "Name an axis of size 1 in PyTorch numbering: after `gap(keepdims=true)`, `squeeze(-1)`.",
    ),
)

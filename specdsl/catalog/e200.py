"""E2xx: the schema — which keys a spec, a layer or a block may have, and what type each value is."""

from __future__ import annotations

from specdsl.catalog.entry import Entry

ENTRIES = (
    Entry(
        "E201", "unknown key",
        "A mapping has a key the language does not know: at the top of the spec, in a layer (besides "
        "its op: name, inputs, repeat, index, if, frozen, init), in a block or in a layer's arguments. "
        "The hint names the nearest known key.",
        "model: m\ninput: [3, 32, 32]\nlayers:\n  - conv: {out: 8, k: 3}\n    nmae: stem\n",
        "Fix the spelling (`name:`); `specdsl ops` lists each layer's arguments.",
    ),
    Entry(
        "E202", "wrong type of value",
        "A value has the wrong type for its place: a layer argument (`k: three`), a spec that is not "
        "a mapping, a parameter declaration or a block argument whose value does not match the "
        "parameter's type, `params:` or `variants:` that are not mappings. The message names the "
        "expected type and the value received.",
        "model m\ninput [3, 32, 32]\nlayers {\n    conv(8, k=three)\n}\n",
        "Give a value of the expected type: `conv(8, k=3)`.",
    ),
    Entry(
        "E203", "missing required key",
        "A required key is absent: `model`, `input` or `layers` at the top of a spec, or a required "
        "argument of a layer (conv's `out`, for one).",
        "model: m\ninput: [3, 32, 32]\nlayers:\n  - conv: {k: 3}\n",
        "Add the key: `conv: {out: 8, k: 3}` (DSL: `conv(8, k=3)`).",
    ),
    Entry(
        "E204", "unknown layer, or not one layer",
        "A layer entry must name exactly one known op or block: this one names an op that does not "
        "exist (the hint suggests the nearest), no op at all, several ops in one list item, or a "
        "built-in block's argument (such as se's gate) names an op this version lacks.",
        "model m\ninput [3, 32, 32]\nlayers {\n    conv(8, k=3) -> rleu\n}\n",
        "Fix the name (`relu`); `specdsl ops` lists every layer. In YAML put each op in its own list "
        "item.",
    ),
    Entry(
        "E205", "value out of its allowed range",
        "A layer argument has the right type but breaks its constraint: a size or count below 1, a "
        "probability outside [0, 1], a stride of 0, a negative padding.",
        "model m\ninput [3, 32, 32]\nlayers {\n    conv(8, k=0)\n}\n",
        "Give a value in range (the message states the rule): `conv(8, k=3)`.",
    ),
    Entry(
        "E206", "malformed `let` or conditional group",
        "A list of layers may hold two items that are not layers: `let: {name: value}` (DSL `let name = "
        "value`), which binds names for the items after it, and a conditional group `{if: COND, then: [...], "
        "else: [...]}` (DSL `if COND { ... } else { ... }`). This one holds another key beside them (a `name` "
        "or `repeat` belongs on the layers inside), has no `if`, a `then`/`else` that is not a list of "
        "layers, or binds a keyword or a function's name.",
        "model: m\ninput: [3, 32, 32]\nlayers:\n  - if: true\n    then: [relu]\n    name: act\n",
        "Keep the group to `if`, `then` and `else`, and name the layers inside it: `then: [{relu: null, name: "
        "act}]`; DSL `if c { relu as act }`.",
    ),
)

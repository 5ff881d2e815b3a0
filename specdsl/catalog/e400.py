"""E4xx: the DSL's syntax, and the tools that rewrite spec text (convert, fmt)."""

from __future__ import annotations

from specdsl.catalog.entry import Entry

ENTRIES = (
    Entry(
        "E401", "DSL syntax error",
        "The DSL parser met a character or token it did not expect: a missing bracket or comma, a "
        "`:` where `=` belongs, a `->` with nothing after it, `=>` for `->`, a stray character. The "
        "message says what was found and, where it can, what was expected.",
        "model m\ninput [3, 32, 32]\nlayers {\n    conv(8, k=3) ->\n}\n",
        "Fix the text at the caret: here write the next layer (`-> relu`) or remove the `->`.",
    ),
    Entry(
        "E402", "positional argument in the wrong place",
        "Positional arguments come before keyword arguments (`conv(16, k=3)`, not `conv(k=3, 16)`), "
        "and a variant names every parameter it sets.",
        "model m\ninput [3, 32, 32]\nlayers {\n    conv(k=3, 16)\n}\n",
        "Put positional arguments first, or name them: `conv(out=16, k=3)`.",
    ),
    Entry(
        "E403", "branch sections misplaced",
        "`branch NAME { ... }` sections belong directly inside an inception, and an inception holds "
        "nothing but branch sections.",
        "model m\ninput [3, 32, 32]\nlayers {\n    inception {\n        conv(8, k=1)\n    }\n}\n",
        "Wrap the layers in branches: `inception { branch a { conv(8, k=1) } branch b { ... } }`.",
    ),
    Entry(
        "E404", "too many positional arguments",
        "A layer or block call gives more positional arguments than it takes by position (`specdsl "
        "ops` shows which arguments of each layer may be positional; a user block takes its "
        "parameters in order).",
        "model m\ninput [3, 32, 32]\nlayers {\n    linear(10, 20)\n}\n",
        "Name the extra arguments (`linear(10, bias=false)`), or drop them.",
    ),
    Entry(
        "E405", "a chain ending in `if`",
        "`if COND` after a layer conditions that one layer, as `x3` repeats it and `as` names it. At the "
        "end of a chain (`conv -> bn if c`) it would read as a condition on the whole chain, so there it "
        "is refused unless every layer of the chain carries the same condition (then both readings "
        "agree). YAML writes one layer per item and has no such chain.",
        "model m(c=false)\ninput [3, 32, 32]\nlayers {\n    conv(8, k=3) -> bn if c\n}\n",
        "For the whole chain write `if c { conv(8, k=3) -> bn }`; for the last layer alone put it on a line "
        "of its own (`conv(8, k=3)` then `bn if c`).",
    ),
    Entry(
        "E409", "DSL text too large or nested too deeply",
        "The DSL text has more tokens than the max_tokens budget (50,000 by default) or nests brackets "
        "deeper than max_depth (64): the budgets keep a hostile file from exhausting the parser. The "
        "language server also reports it for a document it cannot analyse for its depth.",
        "model m\ninput [3, 32, 32]\nlayers {\n    stage {\n        stage {\n            relu\n"
        "        }\n    }\n}\n",
        "Split the model into blocks, or raise the budget with `--max-tokens N` / `--max-depth N`.",
        load={"budgets": {"max_depth": 2}},
    ),
    Entry(
        "E420", "convert or fmt would not be faithful",
        "`specdsl convert` and `specdsl fmt` read their output back before writing it, and refuse "
        "when it would not mean the same as the input, would drop or move a comment, or cannot be "
        "written in the other syntax. Nothing is written.",
        "specdsl convert model.yaml --to dsl    (a spec whose YAML has no DSL spelling)",
        "Rewrite the part the message names by hand, or keep the file in its syntax.",
        unchecked="a command line: the check runs in convert and fmt (render/reformat.py), not in load",
    ),
)

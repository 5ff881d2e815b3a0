"""E000 and E1xx: internal errors and reading a spec (files, encodings, sizes, YAML)."""

from __future__ import annotations

from specdsl.catalog.entry import Entry

ENTRIES = (
    Entry(
        "E000", "internal error in the language server",
        "The language server met an exception while analysing the document: a bug in specdsl, not a "
        "mistake in the spec. The server stays up and shows this diagnostic instead of the analysis. "
        "(The command line reports the same kind of bug as exit status 3, without a code.)",
        "(any document that makes the analysis raise)",
        "Report it with the document that triggered it; `SPECDSL_DEBUG=1 specdsl check FILE` shows "
        "the traceback.",
        unchecked="no spec is meant to produce it: it marks a bug",
    ),
    Entry(
        "E100", "no such file or zoo model",
        "The argument names neither a readable file nor a model of the bundled zoo. A single-line "
        "argument is taken as a path or a zoo name; spec text itself spans several lines.",
        "resnet_19",
        "Check the path, or run `specdsl zoo` for the bundled names (here: resnet18).",
    ),
    Entry(
        "E101", "YAML syntax error",
        "The YAML parser could not read the file: bad indentation, an unclosed bracket or quote, a "
        "tab used for indentation, or a control character.",
        "model: m\ninput: [3, 32, 32\nlayers:\n  - relu\n",
        "Fix the text at the caret; `input: [3, 32, 32]` closes the list.",
    ),
    Entry(
        "E102", "declared twice",
        "The same key, name or argument is given twice in one place: a YAML mapping key, a DSL "
        "declaration (`model`, `input`), a block, a variant, a parameter, a branch or a layer "
        "argument (also one given both by position and by name). YAML itself would keep the last "
        "value silently; specdsl refuses.",
        "model: m\ninput: [3, 32, 32]\nlayers:\n  - conv: {out: 8, k: 3, k: 5}\n",
        "Remove or rename one of the two.",
    ),
    Entry(
        "E103", "YAML anchors and aliases are not allowed",
        "`&name` and `*name` let one YAML node stand for many (and a small file expand enormously), "
        "so specs may not use them.",
        "model: m\ninput: &shape [3, 32, 32]\nlayers:\n  - relu\n",
        "Write the value out, or define a block and call it where the value repeats.",
    ),
    Entry(
        "E104", "YAML tags are not allowed",
        "Tags such as `!!python/object` or `!custom` ask the loader to build objects; a spec holds "
        "only names, numbers, lists and mappings.",
        "model: m\ninput: !!python/tuple [3, 32, 32]\nlayers:\n  - relu\n",
        "Remove the tag.",
    ),
    Entry(
        "E105", "ambiguous YAML boolean",
        "Words such as `yes`, `no`, `on` and `off` are booleans in YAML 1.1 and strings in YAML 1.2; "
        "different tools read them differently, so a spec must say which it means.",
        "model: m\ninput: [3, 32, 32]\nlayers:\n  - conv: {out: 8, k: 3, bias: no}\n",
        "Write `true`/`false` for a flag, or quote the word (`\"no\"`) for a name.",
    ),
    Entry(
        "E106", "ambiguous YAML number",
        "A number with a leading zero (`010`, octal in YAML 1.1) or with digit separators (`1_000`, "
        "read by YAML 1.1 and not by 1.2) means different things to different YAML readers.",
        "model: m\ninput: [3, 32, 32]\nlayers:\n  - conv: {out: 016, k: 3}\n",
        "Write the plain decimal number (`16`), or quote it for a string.",
    ),
    Entry(
        "E107", "mapping keys must be plain names",
        "A YAML key that is itself a list, a mapping or a complex (`? `) key is not part of the "
        "language.",
        "model: m\ninput: [3, 32, 32]\n? [a, b]\n: 1\nlayers:\n  - relu\n",
        "Write `name: value`.",
    ),
    Entry(
        "E108", "more than one YAML document",
        "A spec file holds one YAML document; a `---` separator starts a second one.",
        "model: m\ninput: [3, 32, 32]\nlayers:\n  - relu\n---\nmodel: n\n",
        "Remove the `---` separator, or split the file in two.",
    ),
    Entry(
        "E109", "YAML nested too deeply",
        "Lists and mappings nest deeper than the max_depth budget (64 by default). Specs are shallow; "
        "the budget keeps a hostile file from exhausting the parser.",
        "model: m\ninput: [3, 32, 32]\nlayers: [[[[relu]]]]\n",
        "Use blocks instead of deep nesting, or raise the budget with `--max-depth N`.",
        load={"budgets": {"max_depth": 3}},
    ),
    Entry(
        "E110", "spec file too large",
        "The spec text is larger than the max_file_bytes budget (128 KiB by default). Real specs "
        "are a few kilobytes: repeated layers are written once with blocks and repeats.",
        "model: m\ninput: [3, 32, 32]\nlayers:\n  - relu\n  - relu\n  - relu\n",
        "Generate repeated layers with blocks and `repeat`, or raise the budget with "
        "`--max-file-bytes N`.",
        load={"budgets": {"max_file_bytes": 40}},
    ),
    Entry(
        "E111", "not valid UTF-8 or Unicode",
        "A spec file must be UTF-8 text; this one holds a byte sequence (or, given as a string, a lone "
        "surrogate) that no UTF-8 file could hold.",
        "model: m\ninput: [3, 32, 32]\nlayers:\n  - relu  # \ud800\n",
        "Save the file as UTF-8.",
    ),
    Entry(
        "E112", "integer out of range",
        "Integers in a spec are at most 2^63-1: no tensor could have a larger size or count, and "
        "larger numbers would only slow the analysis down.",
        "model m\ninput [3, 32, 32]\nlayers {\n    conv(99999999999999999999, k=3)\n}\n",
        "Use a size a model could hold.",
    ),
    Entry(
        "E113", "not YAML 1.2",
        "Specs are YAML 1.2; a `%YAML 1.1` directive asks for the older rules (octal numbers, `yes` "
        "as true) that specs refuse.",
        "%YAML 1.1\n---\nmodel: m\ninput: [3, 32, 32]\nlayers:\n  - relu\n",
        "Remove the `%YAML` line (or write `%YAML 1.2`).",
    ),
)

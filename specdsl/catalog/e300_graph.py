"""E320-E375: expanding blocks and expressions, budgets, split parts, model parameters, conditions,
outputs, and the rules of the newer ops."""

from __future__ import annotations

from specdsl.catalog.entry import Entry

_HEAD = "model m\ninput [3, 32, 32]\n"
_FAMILY = "model toy(width=1.0, depth=2)\nvariant toy_small(width=0.5)\ninput [3, 32, 32]\n" \
    "layers {\n    conv(round(16 * width), k=3) x(depth)\n}\n"

ENTRIES = (
    Entry(
        "E320", "cannot evaluate an expression",
        "An argument, repeat count, condition or input size is an expression that cannot be "
        "evaluated: it names a parameter not in scope, divides by zero, or applies an operation to "
        "values of the wrong kind. Expressions use parameters, numbers, + - * / // %, comparisons, "
        "and/or/not, min, max, round, floor, ceil, int, abs and make_divisible.",
        "model m\ninput [3, 32, 32]\nblock unit(c: int) {\n    conv(c * widht, k=3)\n}\n"
        "layers {\n    unit(8)\n}\n",
        "Fix the name (the hint lists the parameters in scope), or declare the parameter.",
    ),
    Entry(
        "E321", "block argument missing",
        "A user block is called without a value for a parameter that has no default.",
        "model m\ninput [3, 32, 32]\nblock unit(c: int) {\n    conv(c, k=3)\n}\nlayers {\n    unit\n}\n",
        "Pass it: `unit(16)` or `unit(c=16)` (YAML `unit: {c: 16}`), or give the parameter a "
        "default in the block's declaration.",
    ),
    Entry(
        "E322", "block has no such parameter",
        "A user block is called with an argument it does not declare (or with any argument, when it "
        "declares none).",
        "model m\ninput [3, 32, 32]\nblock unit(c: int) {\n    conv(c, k=3)\n}\nlayers {\n"
        "    unit(c=8, s=2)\n}\n",
        "Fix the name (the hint gives the nearest), or add the parameter to the block.",
    ),
    Entry(
        "E323", "recursive block",
        "A block calls itself, directly or through other blocks (or block calls nest deeper than any "
        "non-recursive chain could). A block is expanded in place, so recursion would never end.",
        "model m\ninput [3, 32, 32]\nblock loop() {\n    relu -> loop\n}\nlayers {\n    loop\n}\n",
        "Use `xN` (YAML `repeat: N`) to stack copies instead.",
    ),
    Entry(
        "E324", "layers nest too deeply",
        "Layers nest deeper than the max_depth budget (64 by default), counting built-in blocks "
        "and block calls; the budget bounds the expansion's recursion.",
        "model m\ninput [3, 32, 32]\nblock a() {\n    relu\n}\nblock b() {\n    a\n}\nblock c() {\n    b\n}\n"
        "block d() {\n    c\n}\nlayers {\n    d\n}\n",
        "Flatten the blocks, or raise the budget with `--max-depth N`.",
        load={"budgets": {"max_depth": 3}},
    ),
    Entry(
        "E330", "too many nodes",
        "The model would expand to more nodes than the max_nodes budget (10,000 by default); repeats, "
        "dense blocks and fractal columns multiply quickly. The size is estimated before expanding, "
        "so a hostile spec is refused without doing the work.",
        _HEAD + "layers {\n    relu x100\n}\n",
        "Reduce the repeat counts, or raise the budget with `--max-nodes N`.",
        load={"budgets": {"max_nodes": 50}},
    ),
    Entry(
        "E331", "too many parameters",
        "The model's parameters exceed the max_params budget (10^11 by default; the commands that "
        "build a module use 5·10^8). The note names the largest layer.",
        _HEAD + "layers {\n    flatten -> linear(1000)\n}\n",
        "Make the model smaller (a global pool before the classifier), or raise the budget with "
        "`--max-params N`.",
        load={"budgets": {"max_params": 1000}},
    ),
    Entry(
        "E332", "activations too large",
        "The activations at the given batch size exceed the max_activations budget (10^12 elements "
        "by default; the commands that run the model use 2·10^8).",
        _HEAD + "layers {\n    conv(64, k=3, pad=1)\n}\n",
        "Use a smaller input or batch, or raise the budget with `--max-activations N`.",
        load={"budgets": {"max_activations": 10000}},
    ),
    Entry(
        "E333", "too many errors",
        "Expansion stops after 500 errors: the first ones are what to fix, and a file of thousands "
        "of mistakes must not take minutes to refuse. The rest of the spec was not checked.",
        "model: m\ninput: [3, 8, 8]\nlayers:\n  - bogus0\n  - bogus1\n  # ... 500 unknown layers in all\n",
        "Fix the first errors and check again.",
        unchecked="needs 500 mistakes in one file (tests/test_untrusted_round2.py writes such a file)",
    ),
    Entry(
        "E340", "split or chunk along the batch axis",
        "split and chunk cut a non-batch axis: `dim` runs from 1 (the channels, the default) to the "
        "input's last axis, in PyTorch's numbering with the batch as 0.",
        _HEAD + "layers {\n    split([1, 2], dim=0) as s\n    @s.0 -> relu\n}\n",
        "Use dim=1 for the channels, or a spatial axis.",
    ),
    Entry(
        "E341", "split sizes do not add up",
        "split's sizes must add up to the extent of the axis it cuts (PyTorch's torch.split with a "
        "list).",
        _HEAD + "layers {\n    split([1, 1]) as s\n    @s.0 -> relu\n}\n",
        "Make the sizes add up to the axis (`split([1, 2])` for 3 channels), or use `chunk(n)` for "
        "equal parts.",
    ),
    Entry(
        "E342", "no such part",
        "`@name.k` takes part k of a split or chunk: this node is not a split, or has fewer parts.",
        _HEAD + "layers {\n    chunk(3) as s\n    @s.3 -> relu\n}\n",
        "Use an index below the number of parts (counted from 0), or refer to the node without `.k`.",
    ),
    Entry(
        "E343", "channel_shuffle groups must divide the channels",
        "channel_shuffle interleaves `groups` equal groups of channels, so the channels must be a "
        "multiple of groups.",
        _HEAD + "layers {\n    channel_shuffle(2)\n}\n",
        "Use a divisor of the channel count.",
    ),
    Entry(
        "E344", "a split's parts used as one input",
        "A layer placed right after a split or chunk (or referring to it without a part) would get "
        "all its parts at once; a layer takes one tensor.",
        _HEAD + "layers {\n    chunk(3) -> relu\n}\n",
        "Name the split (`as s`) and refer to one part (`@s.0`, YAML `inputs: [s.0]`), or concat "
        "the parts.",
    ),
    Entry(
        "E345", "the model ends in a split",
        "The model's output is a split or chunk, several tensors where an output is one.",
        _HEAD + "layers {\n    chunk(3)\n}\n",
        "End with one part (`@s.0`), merge the parts (`[@s.0, @s.1] -> concat`), or declare several "
        "outputs: `outputs [@s.0, @s.1]`.",
    ),
    Entry(
        "E360", "no such variant",
        "The variant asked for (`--variant`, `variant=` or a zoo variant name) is not declared in "
        "the family file.",
        _FAMILY,
        "Use a declared variant (the message lists them), or declare it: `variant toy_big(width=1.5)`.",
        load={"variant": "toy_smal"},
    ),
    Entry(
        "E361", "not a parameter of the model",
        "A variant, `--param` or `params=` sets a name that the model does not declare as a "
        "parameter.",
        _FAMILY,
        "Fix the name (the hint gives the nearest), or declare it: `model toy(width=1.0, depth=2, "
        "classes=1000)`.",
        load={"params": {"widht": 0.5}},
    ),
    Entry(
        "E362", "parameter value of the wrong type",
        "A model parameter gets a value of another type than it declares or its default has (an int "
        "parameter given 2.5, a bool given a number). The message says where the value came from.",
        _FAMILY,
        "Give a value of the parameter's type: `--param depth=3`.",
        load={"params": {"depth": 2.5}},
    ),
    Entry(
        "E363", "parameter has no value",
        "The model declares a parameter with a type but no default, and neither the chosen variant "
        "nor `--param` sets it.",
        "model toy(classes: int)\ninput [3, 32, 32]\nlayers {\n    flatten -> linear(classes)\n}\n",
        "Pick a variant that sets it, set it (`--param classes=10`), or give it a default.",
    ),
    Entry(
        "E364", "every output switched off",
        "All the outputs the model declares are switched off by their conditions (`if`), so the "
        "model would return nothing.",
        "model toy(aux=false)\ninput [3, 32, 32]\nlayers {\n    conv(8, k=3)\n    relu if aux as head\n}\n"
        "outputs [@head]\n",
        "Keep at least one output unconditional.",
    ),
    Entry(
        "E365", "condition is not true or false",
        "A layer's `if` must evaluate to a bool; a number or a string is not read as one.",
        "model toy(depth=2)\ninput [3, 32, 32]\nlayers {\n    relu if depth\n}\n",
        "Compare it (`if depth > 1`), or use a bool parameter.",
    ),
    Entry(
        "E366", "reference to a switched-off node",
        "A layer refers to a node whose `if` is false, or that a repeat count of 0 left out (or that "
        "sits in the branch of `if COND { ... } else { ... }` not taken). A merge (add, mul, concat, mean, "
        "join) is the exception: it drops such an input (E378 when it drops them all).",
        "model toy(aux=false)\ninput [3, 32, 32]\nlayers {\n    conv(8, k=3) if aux as a\n    @a -> relu\n}\n",
        "Give the referring layer the same condition, or refer to a node that is always there.",
    ),
    Entry(
        "E378", "every input of a merge is switched off",
        "A merge (add, mul, concat, mean, join) drops the inputs that an `if` (or a repeat count of 0) "
        "switched off, and passes a single survivor through unchanged; here none is left, so there is "
        "nothing to merge.",
        "model toy(a=false, b=false)\ninput [3, 32, 32]\nlayers {\n    conv(8, k=1) if a as x\n"
        "    @input -> conv(8, k=1) if b as y\n    [@x, @y] -> add\n}\n",
        "Keep one input unconditional, or give the merge the same condition as its inputs.",
    ),
    Entry(
        "E367", "sweep too large",
        "`specdsl sweep` refuses a grid of more points than its limit: every combination of the "
        "values given with `--param` is one point.",
        "specdsl sweep toy.cnn --param width=0.5,0.6,... --param depth=1,2,... (over the limit in all)",
        "Sweep fewer values per parameter, or split the sweep.",
        unchecked="a command line, not a spec: `specdsl sweep` and specdsl.sweep.sweep raise it",
    ),
    Entry(
        "E376", "bad sweep condition or objective",
        "`specdsl sweep --where` and `--objective` (and specdsl.search's constraints) are expressions in the "
        "spec's own language over a point's figures (params, macs, peak_bytes, rf, ...; `specdsl params "
        "FAMILY` lists them) and the family's parameters, with units (600M, 24GiB) and "
        "train_peak(batch=N, amp='bf16'). A name that is neither, a syntax error, or a condition that is "
        "not true or false is refused before the sweep runs, with a caret under the flag's text.",
        "specdsl sweep efficientnet --param width=1.0,1.2 --where \"parms <= 5e6\"",
        "Fix the name (the hint gives the nearest), or compare a figure: `params <= 5e6`.",
        unchecked="a command-line flag, not a spec: `specdsl sweep` and specdsl.sweep.sweep raise it",
    ),
    Entry(
        "E377", "range in a grid",
        "A range of numbers (`--param width=0.5:2.0`) has no list of values for a grid to enumerate; "
        "only integer ranges (`depth=1..4`) do.",
        "specdsl sweep efficientnet --param width=0.5:2.0",
        "Sample the space (`--sample 100`) or list values (`--param width=0.5,1.0,2.0`).",
        unchecked="a command-line flag, not a spec: `specdsl sweep` and specdsl.sweep.sweep raise it",
    ),
    Entry(
        "E368", "output is not a node",
        "A declared output (`outputs [...]`, YAML `outputs:`) names no node of the model's layers.",
        _HEAD + "layers {\n    conv(8, k=3) as logits\n}\noutputs [@logit]\n",
        "Fix the name (the hint gives the nearest), or name the layer (`as NAME`) and list it.",
    ),
    Entry(
        "E369", "malformed indexed repeat",
        "`x(n, j)` (YAML `repeat: n` with `index: j`) numbers the copies of a repeat. The index must "
        "be a plain name that does not hide a parameter, it needs a repeat count, and the count must "
        "evaluate to a whole number, 0 or more.",
        "model toy(n=2.5)\ninput [3, 32, 32]\nlayers {\n    conv(8, k=3) x(n, j)\n}\n",
        "Round the count (`x(ceil(n), j)`), rename the index, or add the count.",
    ),
    Entry(
        "E370", "prelu num_parameters",
        "prelu learns one slope or one per channel: num_parameters is 1 or the input's channels "
        "(PyTorch's rule).",
        _HEAD + "layers {\n    prelu(num_parameters=4)\n}\n",
        "Use 1 or the channel count.",
    ),
    Entry(
        "E371", "permute dims",
        "permute's dims list each axis of the batched input exactly once, in PyTorch's numbering, "
        "with the batch axis 0 kept first.",
        _HEAD + "layers {\n    permute([0, 2, 2, 1])\n}\n",
        "List every axis once with 0 first: `permute([0, 2, 3, 1])` for channels last.",
    ),
    Entry(
        "E372", "pad widths",
        "pad takes one width for every side, or two per spatial axis (before, after), last axis "
        "first as F.pad does.",
        _HEAD + "layers {\n    pad([1, 1, 1])\n}\n",
        "Give one width, or two per spatial axis: `pad([1, 1, 2, 2])` pads W by 1 and H by 2.",
    ),
    Entry(
        "E373", "pixel shuffle factor",
        "pixel_shuffle(r) needs channels divisible by r², pixel_unshuffle(r) H and W divisible by r.",
        _HEAD + "layers {\n    pixel_shuffle(2)\n}\n",
        "Give the layer before it a multiple of r² channels (or H and W a multiple of r).",
    ),
    Entry(
        "E374", "hardtanh bounds out of order",
        "hardtanh clamps to [min_val, max_val]; PyTorch needs max_val > min_val.",
        _HEAD + "layers {\n    hardtanh(min_val=1, max_val=-1)\n}\n",
        "Swap the two bounds.",
    ),
    Entry(
        "E375", "se act is not an activation",
        "se's `act` (between its two 1×1 convs) must name an activation op such as relu or silu.",
        _HEAD + "layers {\n    se(channels=3, squeeze=1, act=conv)\n}\n",
        "Use an activation: `act=relu` (torchvision's default) or `act=silu` (EfficientNet).",
    ),
    Entry(
        "E380", "not a valid layer name",
        "A layer name becomes a module attribute and a state_dict key, so it is a module name: "
        "letters, digits, `_` and `-`, at most 64 characters, not all digits (those are the positional "
        "names of unnamed layers), not starting with `__`, and not a name PyTorch's nn.Module takes "
        "for itself (`forward`, `training`, ...) or `input`, which means the model input. In an "
        "indexed repeat a name may be a template (`as \"block{j}\"`), whose braces must evaluate to "
        "an integer.",
        _HEAD + "layers {\n    conv(8, k=3) as forward\n}\n",
        "Name it like a Python attribute (`as conv1`), or quote a name with `-` (`as \"block1-0\"`).",
    ),
    Entry(
        "E385", "a call with several outputs read as one tensor",
        "A block that declares several outputs (`outputs [@a, @b]` at the end of its body, YAML `outputs:`) "
        "returns a tuple, as HRNet's modules do. Its call is read one output at a time, `@NAME.0`, "
        "`@NAME.1`, ...: a layer chained right after the call, a reference to the call as a whole "
        "(`@NAME`) or to an output it does not have, and a body or model that ends on the call without "
        "declaring its own outputs are errors.",
        _HEAD + "block two(c: int) {\n    conv(c, k=1) as a\n    conv(c, k=3, pad=1) as b\n    outputs [@a, @b]\n}\n"
        "layers {\n    two(8) as t\n    relu\n}\n",
        "Read one output: `@t.1 -> relu`; declare the model's or block's outputs (`outputs [@t.0, @t.1]`) to "
        "return them all.",
    ),
)

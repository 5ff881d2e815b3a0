"""E5xx: checkpoints and the PyTorch backend. Each needs torch and a file, so none is run from its
example here; tests/test_checkpoint.py provokes them with real files."""

from __future__ import annotations

from specdsl.catalog.entry import Entry

_NEEDS_TORCH = "needs torch and a checkpoint file (tests/test_checkpoint.py covers it)"

ENTRIES = (
    Entry(
        "E501", "checkpoint file cannot be read",
        "The weights file is not a checkpoint that can be read safely: it does not exist or cannot "
        "be opened, is far larger than the spec's tensors need, is not a valid safetensors or "
        "PyTorch file, holds Python objects other than tensors (which could run code when "
        "unpickled; it is refused, and nothing runs), or holds no state_dict of named tensors.",
        "specdsl.to_torch(\"resnet18\", weights=\"whole_model.pth\")   # torch.save(model, path)",
        "Save only the state_dict (`torch.save(model.state_dict(), path)`), or convert it to "
        ".safetensors.",
        unchecked=_NEEDS_TORCH,
    ),
    Entry(
        "E502", "freeze_until names no node",
        "`freeze_until=\"NODE\"` (`--freeze-until NODE`) stops training a node and everything it "
        "depends on; no node of the model has that name.",
        "specdsl.to_torch(\"resnet18\", freeze_until=\"layer5\")",
        "Use a node's name (the hint gives the nearest), or name a layer with `as NAME`.",
        unchecked="needs torch: the PyTorch backend raises it when building the module",
    ),
    Entry(
        "E503", "checkpoint does not fit the spec",
        "The checkpoint's tensors must correspond to the spec's one to one, each of the same shape. "
        "Here one is missing, left over or of another shape (the message names the spec layer, its "
        "line and both shapes); with `transfer=True`, no tensor fits at all, or the tensors fit in "
        "more than one way (same-shaped layers that could swap), and the load is refused rather than "
        "guessed.",
        "specdsl.to_torch(\"resnet18_10class.cnn\", weights=\"resnet18.pth\")   # a 10-class head",
        "Load with `transfer=True` (`--transfer`) to take only the tensors that fit, or check that the "
        "checkpoint is this model's.",
        unchecked=_NEEDS_TORCH,
    ),
    Entry(
        "E504", "checkpoint holds NaN or infinite values",
        "A floating-point tensor of the checkpoint holds NaN or ±inf, usually the trace of a diverged "
        "training run; it is refused unless asked for.",
        "specdsl.to_torch(\"resnet18\", weights=\"diverged.pth\")",
        "Use an earlier checkpoint, or pass `allow_nonfinite=True` (`--allow-nonfinite`) if that is "
        "intended.",
        unchecked=_NEEDS_TORCH,
    ),
    Entry(
        "E505", "cannot be written as ONNX as asked",
        "The ONNX backend (`specdsl export -o model.onnx`) writes every op, but not every op in every "
        "form the flags ask for: an op needs an ONNX operator or mode that a newer opset introduced "
        "(circular padding is Pad's 'wrap' mode, opset 19), `--dynamic-size` meets a layer that bakes "
        "a size in (a fixed upsample size, a crop, a flatten into a linear layer), or the model's dtype "
        "is one the backend does not write.",
        "specdsl export net.cnn -o net.onnx --opset 17   # conv(8, k=3, pad=1, padding_mode=circular)",
        "Export with the opset the message names (`--opset 19`), or without `--dynamic-size`.",
        unchecked="needs the export command and its flags (tests/test_onnx_backend.py covers it)",
    ),
    Entry(
        "E510", "imported model: a node has no specdsl op",
        "`specdsl import` (and `specdsl.from_torch` / `from_onnx`) maps every call of the model, module, "
        "function or tensor method, or every ONNX node, to a specdsl op through the import tables "
        "(backends/torch/imports.py, backends/onnx/imports_table.py). A call no entry takes (a custom "
        "autograd Function, an op specdsl lacks), one its entry refuses (max pooling with return_indices), "
        "or control flow on a tensor's values (`if x.sum() > 0:`, which no trace can stand for) is listed, "
        "every one, with its module path and the source line of the call, and nothing is written.",
        "specdsl import mymodel.py:Net --input 3,32,32 -o net.cnn   # forward calls torch.erf",
        "Write the call with ops specdsl has, or import with `--partial` to get the spec with such nodes as "
        "'# TODO' comments to finish by hand (checking it fails until they are done).",
        unchecked="needs torch and a model to trace (tests/test_import_torch.py covers it)",
    ),
    Entry(
        "E511", "imported spec is not the model",
        "An import recovers the model's blocks, repeats and names, then checks the result: rebuilt with "
        "to_torch, the spec must take the original's state_dict by name (the same keys in the same "
        "order), have its parameter, buffer and MAC counts, and give its outputs on a random input to "
        "1e-5 relative. A difference (or a structure no spec can write) is this error, naming the first "
        "node or key that differs, rather than a spec that is silently another model.",
        "specdsl import torchvision:resnet50 -o resnet50.cnn",
        "This is a gap in import: report it with the model. `--no-verify` writes the spec unchecked.",
        unchecked="needs torch and a model whose import differs (tests/test_import_torch.py covers E510)",
    ),
    Entry(
        "E512", "ONNX file cannot be imported",
        "`specdsl import FILE.onnx` (and `specdsl.from_onnx`) reads the file as untrusted input: it must "
        "be an ONNX model protobuf (external data only inside the model's folder), with one data input "
        "(the others are initializers or fixed-shape weights) whose axes after the batch are fixed or "
        "given with `--input`, and a graph ONNX's shape inference accepts. Anything else is this error, "
        "and nothing is written.",
        "specdsl import notes.txt.onnx -o net.cnn   # a file that is no ONNX model",
        "Export the model again (`torch.onnx.export`), or give the input shape with `--input 3,224,224` "
        "where its axes are symbolic.",
        unchecked="needs an ONNX file (tests/test_untrusted.py covers it)",
    ),
)

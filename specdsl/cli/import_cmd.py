"""`specdsl import`: an existing model (torchvision, timm, a user's nn.Module, an ONNX file) becomes a spec.

    specdsl import torchvision:resnet50 -o resnet50.cnn
    specdsl import timm:mixnet_s -o mixnet_s.cnn
    specdsl import mypkg/model.py:Net --args '{"width": 0.5}' --input 3,224,224 -o net.cnn
    specdsl import model.onnx -o model.cnn [--weights-out model.safetensors]

The model's own code runs (a user's .py file is the user's code, imported as Python imports it); the
spec that comes out is data, printed by the printer, and never becomes code. Nothing is written unless
the whole import succeeded (and, with --verify, round-tripped); the output never replaces the input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from importlib import import_module
from typing import Any

from specdsl.cli.common import EXIT_OK, EXIT_SPEC, EXIT_USAGE, shape_arg

# Packages a source form needs beyond specdsl's extras, and the line that installs each.
_INSTALL = {"torch": "pip install 'specdsl[torch]'", "torchvision": "pip install torchvision",
            "timm": "pip install timm", "onnx": "pip install 'specdsl[onnx]'",
            "onnxruntime": "pip install onnxruntime", "safetensors": "pip install 'specdsl[torch]'"}


def register(sub: Any) -> None:
    cmd = sub.add_parser(
        "import", help="turn a PyTorch or ONNX model into a spec (torchvision:NAME, timm:NAME, FILE.py:CLASS, "
                       "FILE.onnx)",
        description="Trace an existing model and write it as a spec whose names are the model's module paths, "
                    "so its state_dict loads by name into the spec's to_torch. With --verify (the default when "
                    "torch is installed) the spec is rebuilt, the weights loaded by name and the parameters, "
                    "buffers, MACs and outputs compared with the original's; a difference is an error.")
    cmd.add_argument("source", metavar="torchvision:NAME|timm:NAME|FILE.py:CLASS|FILE.onnx")
    cmd.add_argument("-o", "--output", help="write the spec here (.cnn) instead of stdout")
    cmd.add_argument("--input", type=shape_arg,
                     help="input shape without the batch, e.g. 3,224,224 (default: the model's own where known)")
    cmd.add_argument("--args", metavar="JSON", default="{}",
                     help="keyword arguments for the model's constructor, as a JSON object")
    cmd.add_argument("--name", help="the spec's model name (default: the source's)")
    verify = cmd.add_mutually_exclusive_group()
    verify.add_argument("--verify", dest="verify", action="store_true", default=None,
                        help="rebuild the spec and compare it with the model (default when torch is installed)")
    verify.add_argument("--no-verify", dest="verify", action="store_false", help="skip the round trip")
    cmd.add_argument("--any-key-order", action="store_true",
                     help="accept the model's state_dict keys in another order than the spec's (the same names: "
                          "loading by name does not mind; a model that registers a shortcut before its body)")
    cmd.add_argument("--partial", action="store_true",
                     help="write the spec even where nodes have no specdsl op, as '# TODO' comments (check "
                          "then fails on them)")
    cmd.add_argument("--weights-out", metavar="FILE.safetensors",
                     help="also write the model's weights under the spec's names")
    cmd.set_defaults(func=cmd_import)


def _usage(message: str) -> int:
    print(f"specdsl import: {message}", file=sys.stderr)
    return EXIT_USAGE


def cmd_import(args: argparse.Namespace) -> int:
    from specdsl.cli.files import refuse_input

    try:
        kwargs = json.loads(args.args)
    except json.JSONDecodeError as exc:
        return _usage(f"--args takes a JSON object; received '{args.args}' ({exc.msg})")
    if not isinstance(kwargs, dict):
        return _usage(f"--args takes a JSON object; received '{args.args}'")
    if args.weights_out and not args.weights_out.endswith(".safetensors"):
        return _usage(f"--weights-out must end in .safetensors; received '{args.weights_out}'")
    file = _file_of(args.source)
    inputs: list[str | os.PathLike[str]] = [file] if file else []
    refuse_input(args.output, inputs, "import")
    refuse_input(args.weights_out, inputs, "import")
    try:
        imported = _run(args, kwargs)
    except ModuleNotFoundError as exc:
        install = _INSTALL.get((exc.name or "").split(".")[0])
        if install is None:
            raise
        print(f"specdsl import: this needs {exc.name}, which is not installed; install it with:\n  {install}",
              file=sys.stderr)
        return EXIT_SPEC
    if imported is None:
        return EXIT_USAGE
    _write(args, imported)
    return EXIT_SPEC if imported.unmapped else EXIT_OK


def _file_of(source: str) -> str | None:
    if source.endswith(".onnx"):
        return source
    head, sep, _ = source.rpartition(":")
    return head if sep and head.endswith(".py") else None


def _run(args: argparse.Namespace, kwargs: dict[str, Any]) -> Any:
    """The import, by the source's form; None after a usage message."""
    if args.source.endswith(".onnx"):
        from specdsl.cli.import_onnx import import_onnx

        return import_onnx(args)
    made = _module(args.source, kwargs)
    if made is None:
        return None
    module, shape, name = made
    shape = args.input or shape
    if shape is None:
        _usage(f"{args.source}: give the input shape with --input, e.g. --input 3,224,224")
        return None
    from specdsl.backends.torch.capture_import import from_torch

    verify = True if args.verify is None else args.verify
    return from_torch(module, shape, name=args.name or name, verify=verify, partial=args.partial,
                      key_order=not args.any_key_order)


def _module(source: str, kwargs: dict[str, Any]) -> tuple[Any, tuple[int, ...] | None, str] | None:
    """(module, its default input shape or None, its name) for torchvision:NAME, timm:NAME, FILE.py:CLASS."""
    kind, sep, name = source.partition(":")
    makers: dict[str, Callable[[str, dict[str, Any]], tuple[Any, tuple[int, ...] | None]]] = {
        "torchvision": _torchvision, "timm": _timm}
    if sep and kind in makers:
        module, shape = makers[kind](name, kwargs)
        return module, shape, name
    file, sep, cls = source.rpartition(":")
    if not sep or not file.endswith(".py"):
        _usage(f"expected torchvision:NAME, timm:NAME, FILE.py:CLASS or FILE.onnx; received '{source}'")
        return None
    if not os.path.isfile(file):
        _usage(f"no such file: {file}")
        return None
    made = _user_class(file, cls)
    return (made(**kwargs), None, cls.lower()) if made is not None else None


def _torchvision(name: str, kwargs: dict[str, Any]) -> tuple[Any, tuple[int, ...]]:
    torchvision = import_module("torchvision")  # an optional package: its absence is exit 1 with the pip line

    kwargs = {"weights": None, **kwargs}
    module = torchvision.models.get_model(name, **kwargs)
    where = type(module).__module__
    if ".video." in where:
        return module, (3, 16, 224, 224) if name == "s3d" else (3, 16, 112, 112)
    if ".segmentation." in where:
        return module, (3, 520, 520)
    return module, (3, 299, 299) if name == "inception_v3" else (3, 224, 224)


def _timm(name: str, kwargs: dict[str, Any]) -> tuple[Any, tuple[int, ...]]:
    import warnings

    with warnings.catch_warnings():
        # timm's hrnet module declares a torch.jit.interface as it is imported, which torch deprecates:
        # a note to timm's authors, printed into every import of any timm model otherwise.
        warnings.filterwarnings("ignore", r"`torch\.jit\.interface` is deprecated", FutureWarning)
        timm = import_module("timm")
    module = timm.create_model(name, pretrained=False, **kwargs)
    size = getattr(module, "pretrained_cfg", {}).get("input_size") or (3, 224, 224)
    return module, tuple(int(d) for d in size)


def _user_class(file: str, cls: str) -> Any:
    """The class ``cls`` of the user's Python file, imported as Python imports a module (it is their code)."""
    import importlib.util

    folder = os.path.dirname(os.path.abspath(file))
    if folder not in sys.path:
        sys.path.insert(0, folder)  # the file's own imports of its neighbours
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(file))[0], file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    if not hasattr(module, cls):
        _usage(f"{file} defines no '{cls}'")
        return None
    return getattr(module, cls)


def _write(args: argparse.Namespace, imported: Any) -> None:
    from specdsl.cli.files import write_atomic

    if args.weights_out and not imported.unmapped:
        from safetensors.numpy import save

        write_atomic(args.weights_out, save(dict(imported.graph.weights)))
    if args.output:
        write_atomic(args.output, imported.text)
        rt = imported.round_trip
        summary = (f"; round trip exact: {rt.params:,} parameters, {rt.macs:,} MACs, outputs within "
                   f"{rt.max_rel_error:.1e}") if rt is not None else ""
        print(f"wrote {args.output} ({len(imported.text.splitlines())} lines){summary}", file=sys.stderr)
    else:
        sys.stdout.write(imported.text)
    if imported.unmapped:
        from specdsl.cli.report import report
        from specdsl.lift.imported import unmapped_error

        err = unmapped_error(imported.unmapped, "a traced")
        report(args, err.diagnostics, err.sources)

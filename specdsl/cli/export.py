"""`specdsl export`: the model as ONNX, or its weights as safetensors, optionally from a checkpoint."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from specdsl.cli.common import EXIT_OK, EXIT_USAGE, positive_arg, shape_arg

FORMATS = (".onnx", ".safetensors")


def register(sub: Any) -> None:
    export = sub.add_parser(
        "export", help="write the model as ONNX (-o model.onnx) or its weights as safetensors",
        description="Build the PyTorch module (with --weights, from a checkpoint) and write it as an ONNX "
                    "graph that ONNX Runtime, TensorRT or Netron read, or its weights alone as .safetensors.")
    export.add_argument("spec", metavar="FILE|ZOO-NAME")
    export.add_argument("-o", "--output", required=True, help="model.onnx or model.safetensors")
    add_weight_flags(export)
    export.add_argument("--opset", type=positive_arg, default=18, help="ONNX opset version (default 18)")
    export.add_argument("--batch", default="1", metavar="N|dynamic",
                        help="batch size of the exported graph, or `dynamic` for a symbolic batch axis")
    export.add_argument("--input", type=shape_arg, help="override the input shape, e.g. 3,128,128")
    export.add_argument("--seed", type=int, default=0, help="seed of the random initialisation without --weights")
    export.set_defaults(func=cmd_export)


def add_weight_flags(parser: argparse.ArgumentParser) -> None:
    """--weights and what goes with it (shared by the commands that build a module)."""
    parser.add_argument("--weights", metavar="CHECKPOINT",
                        help="load a checkpoint (.safetensors, or a PyTorch state_dict file read with "
                             "weights_only) whose keys are the spec's module names (the zoo's: torchvision's)")
    parser.add_argument("--transfer", action="store_true",
                        help="keep only the tensors whose name and shape fit (a changed head) and report the rest")
    parser.add_argument("--match", choices=("name", "position"), default="name",
                        help="match checkpoint tensors by name (default) or by order and shape, for a "
                             "checkpoint whose names differ")
    parser.add_argument("--freeze-until", metavar="NODE",
                        help="stop training the named node and every layer it depends on")


def build_module(args: argparse.Namespace, model: Any) -> Any:
    """The module for a command: from --weights (printing the load report) and --freeze-until."""
    from specdsl.backends.torch.fx import to_torch

    module = to_torch(model, seed=getattr(args, "seed", 0), weights=args.weights, transfer=args.transfer,
                      match=getattr(args, "match", "name"), freeze_until=args.freeze_until)
    report = getattr(module, "load_report", None)
    if report is not None:
        print(f"weights from {args.weights}: " + report.table().replace("\n", "\n  "), file=sys.stderr)
    return module


def cmd_export(args: argparse.Namespace) -> int:
    from specdsl.cli.files import refuse_input
    from specdsl.cli.report import load_model

    suffix = Path(args.output).suffix
    if suffix not in FORMATS:
        print(f"specdsl export: -o must end in .onnx or .safetensors; received '{args.output}'", file=sys.stderr)
        return EXIT_USAGE
    refuse_input(args.output, [args.spec, *([args.weights] if args.weights else [])], "export")
    dynamic = args.batch == "dynamic"
    if not dynamic and not (args.batch.isdigit() and int(args.batch) > 0):
        print(f"specdsl export: --batch takes a positive number or `dynamic`; received '{args.batch}'",
              file=sys.stderr)
        return EXIT_USAGE
    model = load_model(args, args.spec, input=args.input)
    module = build_module(args, model)
    if suffix == ".safetensors":
        from specdsl.backends.torch.checkpoint import save_checkpoint

        save_checkpoint(module, args.output)
        what = f"{len(module.state_dict())} tensors"
    else:
        from specdsl.backends.torch.export import export_onnx

        export_onnx(module, model, args.output, opset=args.opset, dynamic_batch=dynamic,
                    batch=1 if dynamic else int(args.batch))
        what = f"ONNX opset {args.opset}, batch {'dynamic' if dynamic else args.batch}"
    print(f"wrote {args.output} ({what}, {model.totals.params:,} parameters)", file=sys.stderr)
    return EXIT_OK

"""`specdsl export`: the model as ONNX, or its weights as safetensors, optionally from a checkpoint."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from specdsl.cli.common import EXIT_BUG, EXIT_OK, EXIT_USAGE, positive_arg, shape_arg

FORMATS = (".onnx", ".safetensors")


def register(sub: Any) -> None:
    export = sub.add_parser(
        "export", help="write the model as ONNX (-o model.onnx) or its weights as safetensors",
        description="Write the model as an ONNX graph that ONNX Runtime, TensorRT or Netron read (lowered "
                    "from the spec by specdsl itself; --via torch uses torch.onnx's exporter instead), or "
                    "its weights alone as .safetensors.")
    export.add_argument("spec", metavar="FILE|ZOO-NAME")
    export.add_argument("-o", "--output", required=True, help="model.onnx or model.safetensors")
    add_weight_flags(export)
    export.add_argument("--via", choices=("onnx", "torch"), default="onnx",
                        help="onnx (default): specdsl writes the graph with the onnx package alone, in "
                             "milliseconds; torch: build the PyTorch module and run torch.onnx's exporter")
    export.add_argument("--opset", type=positive_arg, default=18, help="ONNX opset version (default 18)")
    export.add_argument("--batch", metavar="N|dynamic",
                        help="batch size of the exported graph, or `dynamic` for a symbolic batch axis "
                             "(default: dynamic; 1 with --via torch)")
    export.add_argument("--dynamic-size", action="store_true",
                        help="symbolic spatial axes too, where the spec lets the input size vary")
    export.add_argument("--no-weights", action="store_true",
                        help="write the graph without weights (they become graph inputs), for inspecting it")
    export.add_argument("--verify", action="store_true",
                        help="run the file in ONNX Runtime against the NumPy reference and print each "
                             "output's largest error")
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
        return _usage(f"-o must end in .onnx or .safetensors; received '{args.output}'")
    refuse_input(args.output, [args.spec, *([args.weights] if args.weights else [])], "export")
    torch_route = args.via == "torch" or suffix == ".safetensors"
    batch = args.batch or ("1" if torch_route else "dynamic")
    if batch != "dynamic" and not (batch.isdigit() and int(batch) > 0):
        return _usage(f"--batch takes a positive number or `dynamic`; received '{batch}'")
    problem = _flag_problem(args, torch_route)
    if problem:
        return _usage(problem)
    model = load_model(args, args.spec, input=args.input)
    fixed = None if batch == "dynamic" else int(batch)
    problem = _batch_problem(args, model, fixed, torch_route)
    if problem:
        return _usage(problem)
    if not torch_route:
        return _export_onnx(args, model, fixed)
    module = build_module(args, model)
    if suffix == ".safetensors":
        from specdsl.backends.torch.checkpoint import save_checkpoint

        save_checkpoint(module, args.output)
        what = f"{len(module.state_dict())} tensors"
    else:
        from specdsl.backends.torch.export import export_onnx

        export_onnx(module, model, args.output, opset=args.opset, dynamic_batch=fixed is None, batch=fixed or 1)
        what = f"ONNX opset {args.opset} via torch.onnx, batch {batch}"
    print(f"wrote {args.output} ({what}, {model.totals.params:,} parameters)", file=sys.stderr)
    if args.verify and suffix == ".onnx":
        from specdsl.backends.numpy.weights import check_weights

        return _verify(args, model, check_weights(model, module.state_dict()), fixed, False)
    return EXIT_OK


def _usage(message: str) -> int:
    print(f"specdsl export: {message}", file=sys.stderr)
    return EXIT_USAGE


# A batch is an ONNX dimension (int64), but --verify and the torch route allocate an input and the
# activations at it: those stay within run's activation budget, the graph's dimension within int32.
MAX_BATCH = 2**31 - 1


def _batch_problem(args: argparse.Namespace, model: Any, batch: int | None, torch_route: bool) -> str | None:
    from specdsl.budgets import defaults_for

    if batch is None:
        return None
    if batch > MAX_BATCH:
        return f"--batch is at most {MAX_BATCH:,}; received {batch:,}"
    if not (args.verify or (torch_route and Path(args.output).suffix == ".onnx")):
        return None
    per_sample = model.totals.activation_elements // max(model.totals.batch, 1)
    limit = getattr(args, "max_activations", None) or defaults_for("run").max_activations
    if batch * per_sample > limit:
        why = "--verify runs" if args.verify else "the torch route traces"
        most = max(limit // max(per_sample, 1), 1)
        return (f"{why} the model at batch {batch:,}: {batch * per_sample:,} activation elements, over the "
                f"max_activations budget ({limit:,}); use a smaller --batch (at most {most:,})")
    return None


def _flag_problem(args: argparse.Namespace, torch_route: bool) -> str | None:
    """What is wrong with the flags' combination, if anything."""
    from specdsl.backends.onnx.export import MAX_OPSET, MIN_OPSET

    if not MIN_OPSET <= args.opset <= MAX_OPSET and Path(args.output).suffix == ".onnx":
        return (f"--opset must be between {MIN_OPSET} and {MAX_OPSET} (the newest the installed onnx "
                f"defines); received {args.opset}")
    if torch_route:
        only = [flag for flag, on in (("--dynamic-size", args.dynamic_size), ("--no-weights", args.no_weights))
                if on]
        return f"{only[0]} needs the ONNX backend (not --via torch or .safetensors)" if only else None
    if args.no_weights and args.weights:
        return "--no-weights and --weights exclude each other"
    return None


def _export_onnx(args: argparse.Namespace, model: Any, batch: int | None) -> int:
    from specdsl.backends.onnx.export import model_weights, save_onnx

    probe = _size_probe(args, model) if args.dynamic_size else None
    weights = None if args.no_weights else model_weights(model, args.weights, args.seed, transfer=args.transfer,
                                                          match=getattr(args, "match", "name"))
    save_onnx(model, args.output, False if weights is None else weights, batch=batch, opset=args.opset,
              size_probe=probe)
    sizes = ", symbolic size" if probe is not None else ""
    print(f"wrote {args.output} (ONNX opset {args.opset}, batch {batch or 'dynamic'}{sizes}, "
          f"{model.totals.params:,} parameters{'' if weights is not None else ' as inputs'})", file=sys.stderr)
    if not args.verify:
        return EXIT_OK
    if weights is None:
        from specdsl.backends.numpy.weights import random_weights

        weights = random_weights(model, args.seed, "float32")
    return _verify(args, model, weights, batch, args.no_weights)


def _size_probe(args: argparse.Namespace, model: Any) -> Any:
    """The spec again at another input size (axis i scaled by i + 2), to see which sizes follow the
    input's; a spec that does not load there cannot take a symbolic size (E505, its first error)."""
    from specdsl.api import load
    from specdsl.backends.onnx.builder import refusal
    from specdsl.cli.common import budgets_of
    from specdsl.cli.params import choice_of
    from specdsl.errors import SpecError

    shape = model.graph.input_shape
    other = (shape[0], *(n * (i + 2) for i, n in enumerate(shape[1:])))
    try:
        return load(args.spec, warn=False, input=other, budgets=budgets_of(args), **choice_of(args))
    except SpecError as exc:
        first = exc.diagnostics[0]
        raise refusal(f"--dynamic-size needs a spec that takes other input sizes; at input {list(other)}: "
                      f"{first.code} {first.message}", model.graph.nodes[0], hint="export without --dynamic-size"
                      ) from None


def _verify(args: argparse.Namespace, model: Any, weights: Any, batch: int | None, as_inputs: bool) -> int:
    import onnxruntime  # noqa: F401  (missing, the CLI says how to install it: exit 1)

    from specdsl.backends.onnx.verify import verify

    n = batch or 2
    errors = verify(args.output, model, weights, batch=n, seed=args.seed, weights_as_inputs=as_inputs)
    print(f"verify: {args.output} in ONNX Runtime vs the NumPy reference (float64), batch {n}:")
    for e in errors:
        print(e.line())
    if all(e.ok for e in errors):
        return EXIT_OK
    print(f"specdsl export: the exported graph differs from the reference by more than {errors[0].tolerance:.0e}; "
          "please report it", file=sys.stderr)
    return EXIT_BUG

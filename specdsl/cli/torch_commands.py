"""`specdsl run` and `specdsl build`: the PyTorch side of the CLI (torch imported lazily)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from specdsl.cli.common import EXIT_OK, EXIT_SPEC, EXIT_USAGE, positive_arg, shape_arg
from specdsl.cli.export import add_weight_flags, build_module


def register(sub: Any) -> None:
    run = sub.add_parser("run", help="run the model on random data and report throughput, latency, memory",
                         description="Build the PyTorch module and time forward (or training) steps on random data.")
    run.add_argument("spec", metavar="FILE|ZOO-NAME")
    run.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    run.add_argument("--batch", type=positive_arg, default=8)
    run.add_argument("--input", type=shape_arg, help="override the input shape, e.g. 3,128,128")
    run.add_argument("--amp", choices=("bf16", "fp16"), help="autocast to this precision")
    run.add_argument("--channels-last", action="store_true", help="use channels_last memory format")
    run.add_argument("--compile", action="store_true", help="torch.compile the module first")
    run.add_argument("--train", action="store_true", help="time forward + backward + SGD steps")
    run.add_argument("--steps", type=positive_arg, default=20, help="timed steps (after 3 warm-up steps)")
    run.add_argument("--threads", type=positive_arg, help="torch CPU threads")
    run.add_argument("--verify", action="store_true",
                     help="first check every node's runtime shape, params and MACs against the static analysis")
    run.add_argument("--seed", type=int, default=0)
    add_weight_flags(run)
    run.set_defaults(func=cmd_run)

    build = sub.add_parser("build", help="emit a standalone PyTorch .py file for the model",
                           description="Write readable PyTorch source that imports only torch.")
    build.add_argument("spec", metavar="FILE|ZOO-NAME")
    build.add_argument("-o", "--output", help="the .py file to write (default: stdout)")
    build.add_argument("--input", type=shape_arg, help="override the input shape")
    build.add_argument("--verify", action="store_true",
                       help="load the emitted module and compare it with the in-memory one")
    build.add_argument("--seed", type=int, default=0, help="seed of the initialisation without --weights")
    add_weight_flags(build)
    build.set_defaults(func=cmd_build)


def _load(args: argparse.Namespace) -> Any:
    from specdsl.cli.report import load_model, load_runnable

    # run may pick a smaller input to stay within the activation budget; build emits the spec as it is.
    return (load_runnable if args.command == "run" else load_model)(args, args.spec, input=args.input)


def _progress(step: int, total: int, label: str) -> None:
    if sys.stderr.isatty():
        width = 30
        done = int(width * step / total)
        sys.stderr.write(f"\r{label} [{'#' * done}{'.' * (width - done)}] {step}/{total}")
        if step == total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def cmd_run(args: argparse.Namespace) -> int:
    import torch

    try:
        return _run(args)
    except (RuntimeError, ValueError, torch.cuda.OutOfMemoryError) as exc:
        # PyTorch refusing a configuration (e.g. batch norm over one value per channel at batch 1,
        # or running out of memory) is a problem with the request, not a bug in specdsl.
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"specdsl run: PyTorch could not run the model: {message}", file=sys.stderr)
        return EXIT_SPEC


def _run(args: argparse.Namespace) -> int:
    import torch

    from specdsl.backends.torch.fx import example_input

    model = _load(args)
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("specdsl run: CUDA is not available on this machine; use --device cpu", file=sys.stderr)
        return EXIT_USAGE
    if args.verify and not _verified(model, device):
        return EXIT_SPEC
    module = build_module(args, model).to(device)
    # With a checkpoint or frozen layers, a training run shows what it changed (a fine-tuning smoke test).
    before = {k: p.detach().clone() for k, p in module.named_parameters()} \
        if args.train and (args.weights or args.freeze_until) else None
    x = example_input(model, args.batch, device=device)
    memory_format = torch.channels_last if args.channels_last and x.dim() == 4 else \
        torch.channels_last_3d if args.channels_last and x.dim() == 5 else None
    if memory_format is not None:
        module = module.to(memory_format=memory_format)
        x = x.contiguous(memory_format=memory_format)
    times = _timed(_step(args, module, x, device), device, args.steps)
    _print_timing(args, model, device, memory_format is not None, times)
    return _training_changes(before, module) if before is not None else EXIT_OK


def _verified(model: Any, device: Any) -> bool:
    """`run --verify`: every node's runtime figures against the static ones (mismatches printed)."""
    from specdsl.backends.torch.verify import verify

    report = verify(model, device=device)
    if not report.ok:
        for m in report.mismatches:
            print(f"verify: {m}", file=sys.stderr)
        return False
    print(f"verified: {report.nodes} nodes, shapes, parameters and {report.static_macs:,} MACs agree")
    return True


def _step(args: argparse.Namespace, module: Any, x: Any, device: Any) -> Callable[[], None]:
    """One forward pass, or (``--train``) one forward, backward and SGD step, as the flags ask."""
    import torch

    runner: Any = torch.compile(module) if args.compile else module
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp or "")
    optimizer = torch.optim.SGD([p for p in module.parameters() if p.requires_grad], lr=1e-3) \
        if args.train and any(p.requires_grad for p in module.parameters()) else None
    module.train(args.train)

    def step() -> None:
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            if args.train:
                out = runner(x)
                outs = out.values() if isinstance(out, dict) else out if isinstance(out, tuple) else (out,)
                loss = sum(o.float().square().mean() for o in outs)
            else:
                with torch.no_grad():
                    runner(x)
                return
        loss.backward()
        if optimizer is not None:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    return step


def _timed(step: Callable[[], None], device: Any, steps: int) -> list[float]:
    """Seconds per step over ``steps`` steps after 3 warm-up steps, sorted (GPU work waited for)."""
    import torch

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for i in range(3):
        step()
        _progress(i + 1, 3, "warm-up")
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for i in range(steps):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
        _progress(i + 1, steps, "timing ")
    times.sort()
    return times


def _print_timing(args: argparse.Namespace, model: Any, device: Any, channels_last: bool,
                  times: list[float]) -> None:
    import resource

    import torch

    median = times[len(times) // 2]
    mode = "train step (fwd+bwd+SGD)" if args.train else "forward"
    print(f"{model.name}: {mode}, batch {args.batch}, input {list(model.graph.input_shape)}, device {device}"
          + (f", amp {args.amp}" if args.amp else "") + (", channels_last" if channels_last else "")
          + (", compiled" if args.compile else ""))
    out_shape = model.analysis.figures[model.graph.output].shape
    print(f"  output:     [{args.batch}, {', '.join(map(str, out_shape or ()))}] ({model.graph.dtype})")
    print(f"  latency:    median {median * 1e3:.2f} ms, min {times[0] * 1e3:.2f} ms over {args.steps} steps")
    print(f"  throughput: {args.batch / median:,.1f} samples/s")
    if device.type == "cuda":
        print(f"  peak GPU memory: {torch.cuda.max_memory_allocated(device) / 2**20:,.1f} MiB")
    else:
        print(f"  peak process RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.1f} MiB")


def _training_changes(before: dict[str, Any], module: Any) -> int:
    """What training changed; EXIT_SPEC if it changed a frozen parameter."""
    import torch

    params = dict(module.named_parameters())
    changed = [k for k, v in before.items() if not torch.equal(v, params[k].detach())]
    frozen = [k for k, p in params.items() if not p.requires_grad]
    moved = sorted(set(changed) & set(frozen))
    print(f"  training changed {len(changed)} of {len(params)} parameter tensors; "
          f"{len(frozen)} frozen, {len(moved)} of those changed")
    if moved:
        print(f"specdsl run: frozen parameters changed: {', '.join(moved[:5])}", file=sys.stderr)
        return EXIT_SPEC
    return EXIT_OK


def class_name(source: str) -> str:
    """The model class an emitted file defines (its last top-level class)."""
    names = [line.split()[1].split("(")[0] for line in source.splitlines() if line.startswith("class ")]
    return names[-1] if names else "?"


def cmd_build(args: argparse.Namespace) -> int:
    from specdsl.backends.torch.emit import emit
    from specdsl.cli.files import refuse_input, write_atomic

    refuse_input(args.output, [args.spec, *([args.weights] if args.weights else [])], "build")
    if args.weights and not args.output:
        print("specdsl build: --weights writes a .safetensors beside the .py: give -o FILE.py", file=sys.stderr)
        return EXIT_USAGE
    model = _load(args)
    weights_file = None
    if args.weights:
        from pathlib import Path

        from specdsl.backends.torch.checkpoint import save_checkpoint

        module = build_module(args, model)
        weights_path = Path(args.output).with_suffix(".safetensors")
        refuse_input(str(weights_path), [args.spec, args.weights], "build")
        save_checkpoint(module, weights_path)
        weights_file = weights_path.name
        print(f"wrote {weights_path} ({len(module.state_dict())} tensors; the .py loads it with "
              "model.load_weights())", file=sys.stderr)
    source = emit(model, weights_file)
    if args.output:
        write_atomic(args.output, source)
        print(f"wrote {args.output} (class {class_name(source)}, {model.totals.params:,} parameters)",
              file=sys.stderr)
    else:
        sys.stdout.write(source)
    if args.verify:
        from specdsl.backends.torch.emit import check_emitted

        problems = check_emitted(model, source)
        for p in problems:
            print(f"verify: {p}", file=sys.stderr)
        if problems:
            return EXIT_SPEC
        print("verified: the emitted module has the same state_dict keys, shapes and outputs", file=sys.stderr)
    return EXIT_OK

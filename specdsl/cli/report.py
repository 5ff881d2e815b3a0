"""How every command reports a spec's diagnostics: as `check` does (stderr, full or concise), with
`--quiet` (no warnings) and `--strict` (warnings fail the command) on every command.

Commands that load a spec call :func:`load_model`, which prints the diagnostics as soon as the model
is built. A command that calls ``specdsl.load`` itself still gets its warnings reported: the API
issues them as :class:`SpecWarning`, which :func:`run_reporting` collects and prints the same way.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from typing import Any

from specdsl.cli.common import EXIT_OK, EXIT_SPEC, budgets_of, print_diagnostics
from specdsl.cli.params import choice_of
from specdsl.errors import Diagnostic, SpecWarning

__all__ = ["add_report_flags", "load_model", "report", "run_reporting"]

QUIET_HELP = "do not print warnings (errors are always printed)"
STRICT_HELP = "treat warnings as errors: exit 1 when the spec has any"


def add_report_flags(parser: argparse.ArgumentParser) -> None:
    """--quiet and --strict, unless the command already has them."""
    have = {opt for action in parser._actions for opt in action.option_strings}
    group = parser.add_argument_group("diagnostics")
    if "--quiet" not in have:
        group.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)
    if "--strict" not in have:
        group.add_argument("--strict", action="store_true", help=STRICT_HELP)


def report(args: argparse.Namespace, diags: list[Diagnostic], sources: dict[str, str]) -> None:
    """Print diagnostics the way `check` does; count the warnings for --strict."""
    warned = [d for d in diags if d.severity == "warning"]
    args.warned = getattr(args, "warned", 0) + len(warned)
    shown = [d for d in diags if d.severity != "warning"] if getattr(args, "quiet", False) else diags
    print_diagnostics(shown, sources, getattr(args, "concise", False))


def load_model(args: argparse.Namespace, source: Any, **kwargs: Any) -> Any:
    """``specdsl.load`` for a command: its diagnostics printed (errors raise, printed by main)."""
    from specdsl.api import load

    kwargs.setdefault("budgets", budgets_of(args))
    kwargs.update(choice_of(args))  # --variant, --param
    model = load(source, warn=False, **kwargs)
    report(args, model.diagnostics, model.sources)
    return model


def load_runnable(args: argparse.Namespace, source: Any, input: tuple[int, ...] | None) -> Any:
    """``load_model`` for a command that runs the model (run, diff). A spec over the activation budget
    at its own input size, with neither --input nor --max-activations given (a zoo segmentation model at
    520 x 520), runs at a smaller input of the same rank instead, and the command says so."""
    from specdsl.errors import SpecError

    try:
        return load_model(args, source, input=input)
    except SpecError as exc:
        if input is not None or getattr(args, "max_activations", None) is not None or \
                {d.code for d in exc.errors} != {"E332"}:
            raise
        smaller = _smaller_input(args, source)
        if smaller is None:
            raise
        model, declared, held = smaller
    print(f"specdsl {args.command}: at its input {list(declared)} the model holds {held:,} activation "
          f"elements, over the max_activations budget ({budgets_of(args).max_activations:,}); running at "
          f"{list(model.graph.input_shape)} instead (--input SHAPE picks the size, --max-activations N "
          "raises the budget)", file=sys.stderr)
    return model


def _smaller_input(args: argparse.Namespace, source: Any) -> tuple[Any, tuple[int, ...], int] | None:
    """(the model at an input that holds an eighth of the budget, found by shrinking every spatial axis by
    the same factor, the declared input, its activation elements), or None when no smaller input loads
    cleanly. An eighth, not all of it: run and diff hold every activation in float32 and diff in float64
    as well, with im2col copies on top, so an input at the budget's edge takes gigabytes and minutes to
    show what a smaller one shows as well (that the backends agree)."""
    from dataclasses import replace

    from specdsl.api import load
    from specdsl.errors import SpecError

    budgets = budgets_of(args)
    full = load(source, warn=False, strict=False, budgets=replace(budgets, max_activations=10**15),
                **choice_of(args))
    declared, held = full.graph.input_shape, full.analysis.totals.activation_elements
    spatial = len(declared) - 1
    if spatial < 1 or any(d.is_error for d in full.diagnostics):
        return None
    scale = (budgets.max_activations / 8 / held) ** (1 / spatial)  # activations grow with the area
    while scale > 0.01:
        shape = (declared[0], *(max(1, int(n * scale)) for n in declared[1:]))
        try:
            return load_model(args, source, input=shape), declared, held
        except SpecError as exc:
            if {d.code for d in exc.errors} != {"E332"}:
                return None
        scale *= 0.8
    return None


def run_reporting(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command; report the SpecWarnings of any ``specdsl.load`` it made; apply --strict."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SpecWarning)
        status = func(args)
    diags: list[Diagnostic] = []
    sources: dict[str, str] = {}
    for w in caught:
        if isinstance(w.message, SpecWarning):
            diags.append(w.message.diagnostic)
            sources.update(w.message.sources)
        else:  # someone else's warning (torch, numpy): shown as it would have been
            warnings.showwarning(w.message, w.category, w.filename, w.lineno, w.file, w.line)
    if diags:
        report(args, diags, sources)
    if status == EXIT_OK and getattr(args, "strict", False) and getattr(args, "warned", 0):
        print(f"specdsl {args.command}: {args.warned} warning(s), which --strict treats as errors",
              file=sys.stderr)
        return EXIT_SPEC
    return status

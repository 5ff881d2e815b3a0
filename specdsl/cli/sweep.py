"""`specdsl sweep`: a model family's static figures over a grid or a sample of parameter values."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any

from specdsl.cli.common import EXIT_OK, EXIT_SPEC, positive_arg, shape_arg
from specdsl.schema.params import TextValue


def axis_arg(text: str) -> tuple[str, Any]:
    from specdsl.search.space import parse_range

    name, eq, values = text.partition("=")
    items = [v.strip() for v in values.split(",") if v.strip()]
    if not eq or not name.strip() or not items:
        raise argparse.ArgumentTypeError(f"expected NAME=V1,V2,..., NAME=LOW:HIGH or NAME=LOW..HIGH (e.g. "
                                         f"width=0.5,1.0 or depth=1..4); received '{text}'")
    if len(items) == 1:
        try:
            found = parse_range(items[0])
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{exc} (in '{text}')") from None
        if found is not None:
            return name.strip(), found
    return name.strip(), [TextValue(v) for v in items]


def register(sub: Any) -> None:
    sweep = sub.add_parser(
        "sweep", help="params, MACs, memory and receptive field over a grid or a sample of parameter values",
        description="Load the spec at every combination of the given parameter values (or at --sample N points "
                    "drawn from them), keep the points that meet --where, and report their static figures, "
                    "marking the Pareto front of the objectives (default: fewer parameters, MACs and memory, "
                    "a larger receptive field). No torch needed.")
    sweep.add_argument("spec", metavar="FILE|ZOO-NAME")
    sweep.add_argument("--param", type=axis_arg, action="append", default=[], metavar="NAME=VALUES",
                       help="a parameter and its values: V1,V2,... (the grid is their product), LOW:HIGH "
                            "(numbers, sampled) or LOW..HIGH (integers); repeatable")
    sweep.add_argument("--sample", type=positive_arg, metavar="N", help="draw N points instead of the grid")
    sweep.add_argument("--sampler", choices=("sobol", "random"), default="sobol",
                       help="how --sample draws: a scrambled Sobol sequence (even coverage) or uniformly")
    sweep.add_argument("--seed", type=int, default=0, help="the sampler's seed")
    sweep.add_argument("--where", metavar="CONDITION",
                       help="keep the points that meet it, e.g. \"params <= 5e6 and macs <= 600M and "
                            "train_peak(batch=128, amp='bf16') <= 24GiB\" (see specdsl params FAMILY for names)")
    sweep.add_argument("--objective", action="append", metavar="FIGURE[:min|:max]",
                       help="an axis of the Pareto front (repeatable; default params, macs, peak_bytes, rf:max)")
    sweep.add_argument("--top", type=positive_arg, metavar="K",
                       help="show the K best points (Pareto rank, then the first objective)")
    sweep.add_argument("--variant", metavar="NAME", help="start from this variant's values")
    sweep.add_argument("--batch", type=positive_arg, default=1, help="batch size for the memory figure")
    sweep.add_argument("--input", type=shape_arg, help="override the input shape")
    sweep.add_argument("--jobs", type=positive_arg, metavar="N",
                       help="worker processes sharing the points (default: one per core; 1: none)")
    out = sweep.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON object per point, as a list")
    out.add_argument("--csv", action="store_true", help="comma-separated values with a header row")
    sweep.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    from specdsl.search.space import sample
    from specdsl.sweep import best, objectives_of, sweep

    axes = dict(args.param)
    points = sample(axes, args.sample, sampler=args.sampler, seed=args.seed) if args.sample else None
    found = sweep(args.spec, axes, points=points, variant=args.variant, batch=args.batch, input=args.input,
                  jobs=args.jobs, where=args.where, objectives=args.objective)
    names = list(axes)
    shown = [p for p in found if p.feasible]
    kept = len(shown)
    if args.top:
        shown = best(shown, args.top, objectives_of(args.objective, names))
    calls = sorted({k for p in shown for k in p.figures if k.startswith("train_peak_")})
    if args.json or args.csv:
        rows = [_row(p, names) for p in shown]
        if args.json:
            json.dump(rows, sys.stdout, indent=1)
            sys.stdout.write("\n")
        else:
            writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else names, lineterminator="\n")
            writer.writeheader()
            writer.writerows({k: _csv(v) for k, v in r.items()} for r in rows)
    else:
        _table(shown, names, calls)
        count = f"{kept} of {len(found)} points meet --where" if args.where else f"{len(found)} points"
        top = f", the best {len(shown)} shown" if args.top else ""
        goals = ", ".join(str(g) for g in objectives_of(args.objective, names))
        print(f"{count}{top}, {sum(p.pareto for p in found)} on the Pareto front ({goals})")
    return EXIT_OK if all(p.ok for p in found) else EXIT_SPEC


def _row(p: Any, names: list[str]) -> dict[str, Any]:
    """A point as typed values: numbers stay numbers, in JSON and CSV alike."""
    return {**{n: _plain(p.values[n]) for n in names}, **p.figures, "pareto": p.pareto, "error": p.error}


def _csv(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


def _table(points: list[Any], names: list[str], calls: list[str]) -> None:
    from specdsl.render.table import human_bytes

    head = [*names, "params", "MACs", "peak memory", *(f"train peak {k[11:]}" for k in calls), "RF", ""]
    table = [head]
    for p in points:
        values = [_shown(p.values[n]) for n in names]
        if p.ok:
            rf = (str(p.rf) if p.rf else "-") + (" + global" if p.rf_global and p.rf else "")
            table.append([*values, f"{p.params:,}", f"{p.macs:,}", human_bytes(p.peak_bytes or 0),
                          *(human_bytes(p.figures[k]) for k in calls), rf, "pareto" if p.pareto else ""])
        else:
            table.append([*values, p.error or "rejected", *[""] * (len(head) - len(names) - 1)])
    widths = [max(len(r[i]) for r in table if len(r) > i) for i in range(len(head))]
    for r in table:
        print("  ".join(v.rjust(w) if len(names) <= i < len(head) - 1 else v.ljust(w)
                        for i, (v, w) in enumerate(zip(r, widths))).rstrip())


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, TextValue) else value


def _shown(value: Any) -> str:
    """A value in the table: sampled floats to 4 significant digits (JSON and CSV keep every digit)."""
    if isinstance(value, float):
        text = f"{value:.4g}"
        return text if any(c in text for c in ".en") else text + ".0"
    return str(_plain(value))

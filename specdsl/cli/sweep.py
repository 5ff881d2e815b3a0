"""`specdsl sweep`: a model family's static figures over a grid of parameter values."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any

from specdsl.cli.common import EXIT_OK, EXIT_SPEC, positive_arg, shape_arg
from specdsl.schema.params import TextValue


def axis_arg(text: str) -> tuple[str, list[TextValue]]:
    name, eq, values = text.partition("=")
    items = [v.strip() for v in values.split(",") if v.strip()]
    if not eq or not name.strip() or not items:
        raise argparse.ArgumentTypeError(f"expected NAME=V1,V2,... (e.g. width=0.5,1.0); received '{text}'")
    return name.strip(), [TextValue(v) for v in items]


def register(sub: Any) -> None:
    sweep = sub.add_parser("sweep", help="params, MACs, memory and receptive field over a grid of parameter values",
                           description="Load the spec at every combination of the given parameter values and "
                                       "report its static figures, marking the Pareto front (fewer parameters, "
                                       "MACs and memory, a larger receptive field). No torch needed.")
    sweep.add_argument("spec", metavar="FILE|ZOO-NAME")
    sweep.add_argument("--param", type=axis_arg, action="append", default=[], metavar="NAME=V1,V2,...",
                       help="a parameter and the values to sweep (repeatable; the grid is their product)")
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
    from specdsl.render.table import human_bytes
    from specdsl.sweep import sweep

    axes = dict(args.param)
    points = sweep(args.spec, axes, variant=args.variant, batch=args.batch, input=args.input, jobs=args.jobs)
    names = list(axes)
    rows = [{**{n: _plain(p.values[n]) for n in names}, "params": p.params, "macs": p.macs,
             "peak_bytes": p.peak_bytes, "rf": p.rf, "pareto": p.pareto, "error": p.error} for p in points]
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif args.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else names, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        head = [*names, "params", "MACs", "peak memory", "RF", ""]
        table = [head]
        for p in points:
            values = [str(_plain(p.values[n])) for n in names]
            if p.ok:
                table.append([*values, f"{p.params:,}", f"{p.macs:,}", human_bytes(p.peak_bytes or 0),
                              str(p.rf) if p.rf else "-", "pareto" if p.pareto else ""])
            else:
                table.append([*values, p.error or "rejected", "", "", "", ""])
        widths = [max(len(r[i]) for r in table if len(r) > i) for i in range(len(head))]
        for r in table:
            print("  ".join(v.rjust(w) if 0 < i < len(head) - 1 and i >= len(names) else v.ljust(w)
                            for i, (v, w) in enumerate(zip(r, widths))).rstrip())
        front = sum(p.pareto for p in points)
        print(f"{len(points)} points, {front} on the Pareto front (fewer params, MACs and memory, a larger "
              "receptive field)")
    return EXIT_OK if all(p.ok for p in points) else EXIT_SPEC


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, TextValue) else value

"""`specdsl diagram`: draw a spec's graph as DOT text, or as SVG, PNG or PDF with Graphviz's `dot`."""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

from specdsl.cli.common import EXIT_OK, EXIT_SPEC, EXIT_USAGE, shape_arg
from specdsl.render.dot import DEFAULT_SHOW, RANKDIRS, SHOW_CHOICES
from specdsl.render.dot_layout import parse_expand, parse_wrap

FORMATS = ("svg", "png", "jpg", "pdf", "dot")
# Raster images at Graphviz's 72 dpi are too small to read on today's screens.
DEFAULT_DPI = 150


def expand_arg(text: str) -> int | str | None:
    """``all``, ``none``, a block depth (see :func:`specdsl.render.dot.parse_expand`), or the name or path
    of the block to open (checked against the model once it is loaded)."""
    try:
        return parse_expand(text)
    except ValueError as exc:
        if re.fullmatch(r"[A-Za-z_][\w.\[\]]*", text.strip()):
            return text.strip()
        raise argparse.ArgumentTypeError(str(exc)) from None


def wrap_arg(text: str) -> int | None:
    try:
        return parse_wrap(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def dpi_arg(text: str) -> int:
    if not text.isdigit() or not 10 <= int(text) <= 1200:
        raise argparse.ArgumentTypeError(f"expected dots per inch between 10 and 1200; received '{text}'")
    return int(text)


def show_arg(text: str) -> tuple[str, ...]:
    items = [s.strip().lower() for s in text.split(",") if s.strip()]
    if items == ["none"]:
        return ()
    bad = [s for s in items if s not in SHOW_CHOICES]
    if bad:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {', '.join(SHOW_CHOICES)} (or none); received '{text}'")
    return tuple(items)


def format_of(path: str) -> str:
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    ext = {"gv": "dot", "jpeg": "jpg"}.get(ext, ext)
    if ext not in FORMATS:
        raise argparse.ArgumentTypeError(
            f"cannot tell the format of '{path}': use a name ending in .svg, .png, .jpg, .pdf or .dot")
    return ext


def cmd_diagram(args: argparse.Namespace) -> int:
    from specdsl.render.dot import to_dot
    from specdsl.render.graphviz import INSTALL_HINT, DotFailed, DotMissing, find_dot, render

    fmt = "dot"
    if args.output:
        try:
            fmt = format_of(args.output)
        except argparse.ArgumentTypeError as exc:
            print(f"specdsl diagram: {exc}", file=sys.stderr)
            return EXIT_USAGE
    if fmt != "dot" and find_dot() is None:
        print(f"specdsl diagram: writing {args.output} needs Graphviz's `dot` program, which is not "
              f"on PATH.\n  {INSTALL_HINT}", file=sys.stderr)
        return EXIT_USAGE
    from specdsl.cli.files import refuse_input
    from specdsl.cli.report import load_model

    refuse_input(args.output, [args.spec], "diagram")
    model = load_model(args, args.spec, input=args.input, strict=False)  # parse/expansion errors raise
    expand = args.expand
    if isinstance(expand, str):
        from specdsl.errors import did_you_mean

        names = {*model.graph.blocks, *model.graph.blocks.values()}
        if expand not in names and not any(k.startswith((expand + "[", expand + ".")) for k in model.graph.blocks):
            guess = did_you_mean(expand, names)
            print(f"specdsl diagram: --expand {expand}: expected all, none or a block depth, or the name or path "
                  "of one of the model's blocks; "
                  + (f"did you mean '{guess}'?" if guess else
                     f"its blocks: {', '.join(sorted(set(model.graph.blocks.values()))) or 'none'}"),
                  file=sys.stderr)
            return EXIT_USAGE
    text = to_dot(model, expand=expand, rankdir=args.rankdir, show=args.show, wrap=args.wrap)
    if fmt != "dot" and (args.wrap or 1) > 1:
        import re

        from specdsl.render.dot_layout import FOLD_MAX_BOXES

        statements = re.findall(r"^\s*(\w+) \[", text, re.M)  # node statements: `n12 [label=...]`
        boxes = sum(1 for name in statements if name not in ("graph", "node", "edge"))
        if boxes > FOLD_MAX_BOXES:
            print(f"specdsl diagram: --wrap {args.wrap} folds {boxes:,} boxes into columns, which Graphviz "
                  f"lays out in minutes (at most {FOLD_MAX_BOXES:,} fold); draw one column (--wrap none), fewer "
                  "boxes (--expand none), or write DOT text (-o OUT.dot)", file=sys.stderr)
            return EXIT_USAGE
    try:
        data = text.encode("utf-8") if fmt == "dot" else render(text, fmt, dpi=args.dpi)
    except DotMissing:
        print(f"specdsl diagram: {INSTALL_HINT}", file=sys.stderr)
        return EXIT_USAGE
    except DotFailed as exc:
        print(f"specdsl diagram: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.output:
        from specdsl.cli.files import write_atomic

        write_atomic(args.output, data)
    else:
        sys.stdout.write(text)
    errors = sum(d.is_error for d in model.diagnostics)
    if args.output:
        note = f" ({errors} error(s) drawn in red)" if errors else ""
        print(f"wrote {args.output}{note}", file=sys.stderr)
    return EXIT_SPEC if errors else EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser(
        "diagram", help="draw the graph (svg, png, jpg, pdf with Graphviz's dot; or DOT text)",
        description="Draw a spec's graph: blocks as clusters (collapsed to a summary box or expanded), "
                    "edges labelled with tensor shapes, nodes coloured by op family. A spec with shape "
                    "errors still draws, the failing node in red. Exit codes: 0 ok, 1 spec errors (the "
                    "diagram is still written when the graph could be built), 2 usage, or Graphviz "
                    "missing or failing.")
    p.add_argument("spec", metavar="FILE|ZOO-NAME")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="OUT.svg, OUT.png, OUT.jpg, OUT.pdf (rendered by `dot`) or OUT.dot; "
                        "DOT text on stdout if omitted")
    p.add_argument("--expand", type=expand_arg, default=0, metavar="all|none|N|NAME",
                   help="open blocks nested less than N deep, deeper ones drawn as one summary box; or open "
                        "only the blocks called NAME (a block name such as dense, or a path such as layers[4]) "
                        "(default none)")
    p.add_argument("--wrap", type=wrap_arg, default=None, metavar="auto|none|N",
                   help="fold a deep graph into N columns side by side (rows with --rankdir LR), like wrapped "
                        "text; auto (default) folds a graph more than 40 boxes deep so that it reads on a screen")
    p.add_argument("--dpi", type=dpi_arg, default=DEFAULT_DPI,
                   help=f"resolution of .png and .jpg images (default {DEFAULT_DPI})")
    p.add_argument("--rankdir", type=str.upper, choices=RANKDIRS, default="TB",
                   help="top to bottom (TB, default) or left to right (LR)")
    p.add_argument("--show", type=show_arg, default=DEFAULT_SHOW, metavar="LIST",
                   help="figures to write: shapes,params,macs,rf or none (default shapes,params,macs)")
    p.add_argument("--input", type=shape_arg, help="override the input shape, e.g. 3,299,299")
    p.set_defaults(func=cmd_diagram)

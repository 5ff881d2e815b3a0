"""How long is an imported spec, beside the zoo's hand-written member of the same family?

Issue 25: structure recovery must give a spec that reads as if written by hand, at most 1.5x the
non-comment lines of the zoo's file (resnet.cnn for resnet50, densenet.cnn for densenet121,
efficientnet.cnn for efficientnet_b0, convnext.cnn for convnext_tiny). For each model two imports
are measured:

  torchvision  torchvision's own module (pretrained=False), captured by backends/torch/capture_lift
               and recovered (needs torchvision: run it with /work/tvenv/bin/python)
  zoo graph    the zoo member's expanded graph handed over as a capture would (tests/lift_oracle.py)

Each recovered spec is the text `specdsl fmt` prints (recovery checks it against the model node for
node before returning it). ``--check`` exits 1 when a figure is over the bound; ``--show NAME``
prints that model's recovered text.

    /work/tvenv/bin/python benchmarks/bench_import_lines.py [--check] [--show resnet50]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import specdsl  # noqa: E402
from specdsl.lift.lines import BOUND, FAMILIES, code_lines, hand_written_lines  # noqa: E402
from specdsl.lift.structure import RecoveryError, recover  # noqa: E402
from specdsl.render.printer import to_dsl  # noqa: E402


def from_torchvision(name: str) -> tuple[Any, float]:
    import torchvision

    from specdsl.backends.torch.capture_lift import lift_module

    module = getattr(torchvision.models, name)(weights=None)
    start = time.perf_counter()
    lifted = lift_module(module, (3, 224, 224), name=name, weights=False)
    return lifted, time.perf_counter() - start


def from_zoo(name: str) -> tuple[Any, float]:
    from lift_oracle import lifted

    return lifted(specdsl.load(name, warn=False).graph), 0.0


def measure(name: str, source: str) -> tuple[int | None, str]:
    """The recovered spec's lines and text, or None and why not."""
    try:
        lifted, capture_s = (from_torchvision if source == "torchvision" else from_zoo)(name)
    except ImportError as exc:
        return None, f"skipped ({exc.name or exc} is not installed)"
    except Exception as exc:
        return None, f"capture failed: {type(exc).__name__}: {exc}"
    try:
        start = time.perf_counter()
        text = to_dsl(recover(lifted))
        took = time.perf_counter() - start
    except RecoveryError as exc:
        return None, f"recovery failed: {exc}"
    timing = f"capture {capture_s:.2f} s, " if capture_s else ""
    return code_lines(text), f"{timing}recovery {took:.2f} s\n{text}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a figure is over the bound")
    parser.add_argument("--show", action="append", default=[], help="print this model's recovered text")
    parser.add_argument("--source", choices=("torchvision", "zoo", "both"), default="both")
    options = parser.parse_args()
    sources = ("torchvision", "zoo") if options.source == "both" else (options.source,)
    over = False
    print(f"{'model':<16} {'import':<12} {'lines':>5} {'by hand':>8} {'ratio':>6}  (bound {BOUND}x)")
    for name, family in FAMILIES.items():
        by_hand = hand_written_lines(family)
        for source in sources:
            lines, detail = measure(name, source)
            if lines is None:
                print(f"{name:<16} {source:<12} {'-':>5} {by_hand:>8} {'-':>6}  {detail}")
                over = over or not detail.startswith("skipped")
                continue
            ratio = lines / by_hand
            over = over or ratio > BOUND
            note = detail.split("\n", 1)[0]
            print(f"{name:<16} {source:<12} {lines:>5} {by_hand:>8} {ratio:>6.2f}  {note}"
                  + ("  OVER" if ratio > BOUND else ""))
            if name in options.show:
                print(detail.split("\n", 1)[1])
    return 1 if options.check and over else 0


if __name__ == "__main__":
    raise SystemExit(main())

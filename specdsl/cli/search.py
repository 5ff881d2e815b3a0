"""`specdsl search`: train members of a family with Optuna or Ray Tune, rejecting infeasible ones statically.

Needs the search extra (``pip install specdsl[search]``) and torch; imported only when run.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from specdsl.cli.common import EXIT_OK, EXIT_USAGE, positive_arg
from specdsl.cli.sweep import axis_arg


def register(sub: Any) -> None:
    cmd = sub.add_parser(
        "search", help="train family members chosen by Optuna or Ray Tune (needs specdsl[search])",
        description="Each trial samples a member of the family, checks it against --where on its static "
                    "figures (an infeasible member is never built), builds it with to_torch and calls your "
                    "training function, MODULE:FUNCTION, as train(module, candidate) -> metric.")
    cmd.add_argument("spec", metavar="FILE|ZOO-NAME")
    cmd.add_argument("--train", required=True, metavar="MODULE:FUNCTION", help="your training function")
    cmd.add_argument("--param", type=axis_arg, action="append", default=[], metavar="NAME=VALUES",
                     help="the space: V1,V2,..., LOW:HIGH (numbers) or LOW..HIGH (integers); repeatable")
    cmd.add_argument("--trials", type=positive_arg, default=20, metavar="N", help="trials to run (default 20)")
    cmd.add_argument("--where", metavar="CONDITION", help="constraints on the static figures, as for sweep")
    cmd.add_argument("--objective", action="append", metavar="NAME[:min|:max]",
                     help="metric (the training function's result) or a figure; repeatable for a "
                          "multi-objective study (default metric:max)")
    cmd.add_argument("--backend", choices=("optuna", "ray"), default="optuna")
    cmd.add_argument("--study", metavar="STORAGE", help="Optuna storage shared by processes and machines, "
                                                         "e.g. sqlite:///study.db")
    cmd.add_argument("--study-name", metavar="NAME", help="the study's name in the storage (default: the spec's)")
    cmd.add_argument("--address", metavar="ADDRESS", help="Ray cluster to join (ray.init(address=...))")
    cmd.add_argument("--cpus-per-trial", type=float, default=1.0, help="Ray resources of each trial")
    cmd.add_argument("--gpus-per-trial", type=float, default=0.0, help="Ray resources of each trial")
    cmd.add_argument("--variant", metavar="NAME", help="start from this variant's values")
    cmd.add_argument("--seed", type=int, help="the sampler's seed")
    cmd.set_defaults(func=cmd_search)


def cmd_search(args: argparse.Namespace) -> int:
    from specdsl.cli.files import refuse_input
    from specdsl.search.candidate import METRIC, load_function

    if args.study and args.study.startswith("sqlite:///"):  # the one storage that is a local file
        refuse_input(args.study[len("sqlite:///"):], [args.spec, args.train.partition(":")[0]], "search")
    from specdsl.api import load

    # The family's own errors first (exit 1, located), before any training code loads; --param here is
    # the search space, not a member's values.
    load(args.spec, variant=args.variant, warn=False)
    try:
        train = load_function(args.train)
    except (ValueError, ImportError) as exc:
        print(f"specdsl search: --train: {exc}", file=sys.stderr)
        return EXIT_USAGE
    space = dict(args.param)
    objectives = args.objective or [f"{METRIC}:max"]
    if args.backend == "ray":
        from specdsl.search.ray_search import run_ray

        resources = {"cpu": args.cpus_per_trial, **({"gpu": args.gpus_per_trial} if args.gpus_per_trial else {})}
        points = run_ray(args.spec, train, space, trials=args.trials, where=args.where, objectives=objectives,
                         variant=args.variant, address=args.address, resources=resources, seed=args.seed)
        rows = [{**p.values, **p.figures, "feasible": p.feasible, "pareto": p.pareto} for p in points]
        json.dump(rows, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return EXIT_OK
    from specdsl.search.optuna_search import run_optuna

    name = args.study_name or (args.spec.rsplit("/", 1)[-1].rsplit(".", 1)[0] if args.study else None)
    study = run_optuna(args.spec, train, space, trials=args.trials, storage=args.study, study_name=name,
                       where=args.where, objectives=objectives, variant=args.variant, seed=args.seed)
    complete = [t for t in study.trials if t.values is not None]
    feasible = [t for t in complete if all(v <= 0 for v in t.user_attrs.get("constraints", ()))]
    print(f"{len(complete)} trials ({len(complete) - len(feasible)} rejected on their figures, never built); best:")
    for t in study.best_trials:
        values = ", ".join(f"{g.rpartition(':')[0] or g} {v:g}" for g, v in zip(objectives, t.values))
        print(f"  trial {t.number}: {t.params} -> {values}; params {t.user_attrs.get('params'):,}, "
              f"MACs {t.user_attrs.get('macs'):,}")
    return EXIT_OK

"""Design-space search over a model family: spaces and samplers, conditions and objectives over the
static figures, and training runs through Optuna or Ray Tune.

:mod:`specdsl.search.space` and :mod:`specdsl.search.where` are plain Python (``specdsl sweep``
uses them). Optuna and Ray Tune are optional (``pip install specdsl[search]``) and imported only by
the functions that need them: ``optuna_objective`` and ``run_optuna``
(:mod:`specdsl.search.optuna_search`), ``run_ray`` (:mod:`specdsl.search.ray_search`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["optuna_objective", "run_optuna", "run_ray"]


def __getattr__(name: str) -> Any:
    # Lazy: importing specdsl.search (as the sweep does) must not import Optuna or Ray.
    if name in ("optuna_objective", "run_optuna"):
        from specdsl.search import optuna_search

        return getattr(optuna_search, name)
    if name == "run_ray":
        from specdsl.search.ray_search import run_ray

        return run_ray
    raise AttributeError(f"module 'specdsl.search' has no attribute {name!r}")

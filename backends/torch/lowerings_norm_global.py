"""PyTorch lowerings of grn, rmsnorm and simplenorm (specdsl/ops/norm_global.py): entries of the table in
``lowerings.py``, each a constructor call of a module in ``modules_modern.py`` with the arguments that
differ from its defaults (``GlobalResponseNorm(40)``, ``RmsNorm(40, centred=True)``). No torch here."""

from __future__ import annotations

from typing import Any

from specdsl.backends.torch.lowering_types import Ctor


def _options(a: Any, **extra: Any) -> tuple[tuple[str, Any], ...]:
    kw: dict[str, Any] = {"eps": a.eps} if a.eps != 1e-6 else {}
    kw.update({k: v for k, v in extra.items() if v})
    if a.channels_last:
        kw["channels_last"] = True
    return tuple(kw.items())


def grn(a: Any, rank: int, inplace: bool) -> Ctor:
    return Ctor("GlobalResponseNorm", (a.channels,), _options(a), channels_in=(0,))


def _rms(centred: bool) -> Any:
    def ctor(a: Any, rank: int, inplace: bool) -> Ctor:
        kw = _options(a, centred=centred)
        return Ctor("RmsNorm", (a.channels,), kw if a.affine else (*kw, ("affine", False)), channels_in=(0,))

    return ctor


rmsnorm = _rms(centred=False)
simplenorm = _rms(centred=True)

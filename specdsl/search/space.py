"""The points of a design space: value lists, ranges, and the grid, random and Sobol samplers.

An axis is a parameter and what it may take: a list of values (``width=0.5,1.0``), a float
range (``width=0.5:2.0``, both ends included) or an integer range (``depth=1..4``). The grid is the
product of the lists (an integer range counts as its list); ``sample`` draws N points instead,
uniformly at random or from a scrambled Sobol sequence, which covers the space more evenly than
random draws for the same N (every axis split into 2^k equal bins gets one of the first 2^k
points). Sampling needs no numpy or scipy: the Sobol generator is the classic one, Joe and Kuo's
direction numbers (S. Joe, F. Y. Kuo, "Constructing Sobol sequences with better two-dimensional
projections", SIAM J. Sci. Comput. 2008), for up to 12 axes.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from specdsl.errors import Diagnostic, SpecError
from specdsl.schema.params import TextValue, from_text, kind_of_decl

# At most this many points: a grid is a product, and a typo (`--param d=1,...,1000`) should not run for hours.
MAX_POINTS = 10_000
SAMPLERS = ("grid", "random", "sobol")


@dataclass(frozen=True)
class Range:
    """A closed range of numbers: floats (``0.5:2.0``) or integers (``1..4``)."""

    low: float | int
    high: float | int
    integer: bool

    def at(self, u: float) -> float | int:
        """The value at u in [0, 1): integers uniformly over low..high, floats over [low, high]."""
        if self.integer:
            return int(self.low) + min(int(u * (int(self.high) - int(self.low) + 1)), int(self.high) - int(self.low))
        return float(self.low) + u * (float(self.high) - float(self.low))

    def values(self) -> list[int]:
        return list(range(int(self.low), int(self.high) + 1))

    def __str__(self) -> str:
        return f"{self.low}..{self.high}" if self.integer else f"{self.low}:{self.high}"


Axis = Sequence[Any] | Range


def parse_range(text: str) -> Range | None:
    """``a:b`` (floats) or ``a..b`` (integers); None for anything else. Raises ValueError on a bad range."""
    for sep, integer in (("..", True), (":", False)):
        if sep in text:
            low, _, high = text.partition(sep)
            try:
                lo, hi = (int(low), int(high)) if integer else (float(low), float(high))
            except ValueError:
                raise ValueError(f"expected {'integers' if integer else 'numbers'} on both sides of "
                                 f"'{sep}'; received '{text}'") from None
            if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
                raise ValueError(f"a range goes from low to high; received '{text}'")
            return Range(lo, hi, integer)
    return None


def _too_many(count: int) -> SpecError:
    return SpecError([Diagnostic("error", "E367", f"the sweep has {count:,} points, more than {MAX_POINTS:,}",
                                 None, hint="sweep fewer values per parameter, or sample: --sample N")])


def grid(axes: Mapping[str, Axis]) -> list[dict[str, Any]]:
    """Every combination of the axes' values, in order (the last axis varies fastest)."""
    lists: dict[str, Sequence[Any]] = {}
    for name, axis in axes.items():
        if isinstance(axis, Range):
            if not axis.integer:
                raise SpecError([Diagnostic("error", "E377", f"parameter '{name}' has the range {axis}, which a "
                                            "grid cannot enumerate", None,
                                            hint=f"sample the space (--sample 100) or list values: "
                                                 f"--param {name}={axis.low},{axis.high}")])
            if axis.high - axis.low + 1 > MAX_POINTS:
                raise _too_many(int(axis.high - axis.low + 1))
            lists[name] = axis.values()
        else:
            lists[name] = axis
    count = math.prod(len(v) for v in lists.values()) if lists else 1
    if count > MAX_POINTS:
        raise _too_many(count)
    names = list(lists)
    return [dict(zip(names, combo)) for combo in itertools.product(*(lists[n] for n in names))]


def sample(axes: Mapping[str, Axis], n: int, *, sampler: str = "sobol", seed: int = 0) -> list[dict[str, Any]]:
    """``n`` points drawn from the axes (a list axis: one of its values, equally likely)."""
    if sampler not in ("random", "sobol"):
        raise ValueError(f"sampler is random or sobol; received {sampler!r}")
    if n > MAX_POINTS:
        raise _too_many(n)
    names = list(axes)
    units = sobol(n, len(names), seed) if sampler == "sobol" else _uniform(n, len(names), seed)
    return [{name: _pick(axes[name], u) for name, u in zip(names, row)} for row in units]


def _pick(axis: Axis, u: float) -> Any:
    if isinstance(axis, Range):
        return axis.at(u)
    return axis[min(int(u * len(axis)), len(axis) - 1)]


def _uniform(n: int, dims: int, seed: int) -> list[list[float]]:
    rng = random.Random(seed)
    return [[rng.random() for _ in range(dims)] for _ in range(n)]


# Joe & Kuo (new-joe-kuo-6.21201), dimensions 2..12: (degree s, coefficients a, initial m_1..m_s).
# The first dimension is the van der Corput sequence in base 2 (every m is 1).
_DIRECTIONS = (
    (1, 0, (1,)), (2, 1, (1, 3)), (3, 1, (1, 3, 1)), (3, 2, (1, 1, 1)), (4, 1, (1, 1, 3, 3)),
    (4, 4, (1, 3, 5, 13)), (5, 2, (1, 1, 5, 5, 17)), (5, 4, (1, 1, 5, 5, 5)), (5, 7, (1, 1, 7, 11, 19)),
    (5, 11, (1, 1, 5, 1, 1)), (5, 13, (1, 1, 1, 3, 11)),
)
MAX_SOBOL_AXES = 1 + len(_DIRECTIONS)
_BITS = 30


def _direction_numbers(dim: int) -> list[int]:
    """V_1.._BITS of one dimension, as integers scaled by 2^_BITS."""
    if dim == 0:
        return [1 << (_BITS - i) for i in range(1, _BITS + 1)]
    s, a, m_init = _DIRECTIONS[dim - 1]
    m = list(m_init)
    for i in range(s, _BITS):
        new = m[i - s] ^ (m[i - s] << s)
        for k in range(1, s):
            if (a >> (s - 1 - k)) & 1:
                new ^= m[i - k] << k
        m.append(new)
    return [m[i] << (_BITS - 1 - i) for i in range(_BITS)]


def sobol(n: int, dims: int, seed: int = 0) -> list[list[float]]:
    """The first n points of the Sobol sequence in [0, 1)^dims (Gray-code order), each axis
    scrambled by a random digital shift from ``seed`` (which keeps the stratification)."""
    if dims > MAX_SOBOL_AXES:
        raise ValueError(f"Sobol sampling covers at most {MAX_SOBOL_AXES} parameters; received {dims} "
                         "(use --sampler random)")
    directions = [_direction_numbers(d) for d in range(dims)]
    rng = random.Random(seed)
    shifts = [rng.getrandbits(_BITS) for _ in range(dims)]
    x = [0] * dims
    out: list[list[float]] = []
    scale = float(1 << _BITS)
    for i in range(n):
        out.append([(x[d] ^ shifts[d]) / scale for d in range(dims)])
        c = (~i & (i + 1)).bit_length() - 1  # the lowest zero bit of i
        for d in range(dims):
            x[d] ^= directions[d][c]
    return out


def typed(values: Mapping[str, Any], declared: Mapping[str, Any]) -> dict[str, Any]:
    """Command-line text as the parameter's declared kind, so reports carry 1.5, not "1.5"."""
    out = {}
    for name, value in values.items():
        kind = kind_of_decl(declared.get(name)) if name in declared else None
        if isinstance(value, str) and kind is not None:
            converted = from_text(value, kind)
            value = converted if converted is not None else TextValue(value)
        elif kind == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        out[name] = value
    return out


def typed_space(space: Mapping[str, Axis], declared: Mapping[str, Any]) -> dict[str, Axis]:
    """Value lists as the parameters' declared kinds (ranges are numbers already)."""
    return {name: axis if isinstance(axis, Range) else [typed({name: v}, declared)[name] for v in axis]
            for name, axis in space.items()}


def family(source: str) -> dict[str, Any]:
    """The parameters (name -> kind and default), the variants (name -> values) of a family, parsed only."""
    from specdsl.api import _zoo_variant, read_data, read_source
    from specdsl.schema.params import TYPES, ParamChoice, resolve

    hit = _zoo_variant(source)
    file, text = (hit[0], hit[1]) if hit else read_source(source)
    data, _ = read_data(text, file)
    declared = p if isinstance(data, dict) and isinstance(p := data.get("params"), dict) else {}
    variants = v if isinstance(data, dict) and isinstance(v := data.get("variants"), dict) else {}
    # A default written as an expression (`b=a // 2`) has the kind of its value at the defaults.
    resolved = resolve(data, None, ParamChoice(), []) if declared else None
    env = resolved.env if resolved is not None else {}
    params = {name: {"kind": kind_of_decl(env.get(name, decl)),
                     "default": None if decl in TYPES else env.get(name, decl)} for name, decl in declared.items()}
    return {"file": file, "params": params, "variants": variants}

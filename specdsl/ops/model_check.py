"""The fast path of the argument models (specdsl.ops.model): strict validation without pydantic.

``checker_of(model)`` is a function from input to the validated instance, or FAIL where the input
is not one it accepts for certain (pydantic's twin then decides: it gives the errors); None for a
model with a type this module does not know. A check accepts only what pydantic's strict mode
accepts and gives the same values (tests/test_arg_models.py compares the two on every model).
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal, Union

from specdsl.ops.model_field import FieldSpec


def is_model(hint: Any) -> bool:
    """An argument model (specdsl.ops.model.Model, which imports this module: recognised by its API)."""
    return isinstance(hint, type) and hasattr(hint, "pydantic_twin") and hasattr(hint, "model_fields")


FAIL: Any = object()  # "not accepted here": the twin decides
Check = Callable[[Any], Any]


class _Unsupported(Exception):
    """A type the fast path does not know: the model validates through its twin alone."""


_CHECKERS: dict[Any, Check | None] = {}
_BUILDING: set[Any] = set()


def checker_of(cls: Any) -> Check | None:
    if cls in _CHECKERS:
        return _CHECKERS[cls]
    if cls in _BUILDING:  # a model inside itself: through the late-bound lookup below
        return lambda v: (_CHECKERS.get(cls) or (lambda _: FAIL))(v)
    _BUILDING.add(cls)
    try:
        check: Check | None = _model_checker(cls)
    except _Unsupported:
        check = None
    finally:
        _BUILDING.discard(cls)
    _CHECKERS[cls] = check
    return check


def _model_checker(cls: Any) -> Check:
    hints = cls.type_hints()
    plan = []
    for name, spec in cls.model_fields.items():
        if spec.foreign is not None:
            raise _Unsupported(name)
        value_check = _checker(hints[name])
        if spec.constraints:
            value_check = _constrained(value_check, spec.constraints, hints[name])
        plan.append((name, spec.alias or name, value_check, spec))
    keys = frozenset(key for _, key, _, _ in plan)

    def check(obj: Any) -> Any:
        if type(obj) is cls:
            return obj
        if type(obj) is not dict or not keys.issuperset(obj):
            return FAIL
        values: dict[str, Any] = {}
        given: set[str] = set()
        for name, key, value_check, spec in plan:
            if key in obj:
                value = value_check(obj[key])
                if value is FAIL:
                    return FAIL
                given.add(name)
            elif spec.is_required():
                return FAIL
            else:
                value = spec.get_default(call_default_factory=True)
            values[name] = value
        return cls._build(values, given)

    return check


_INT_LIMIT = 2 ** 53  # beyond it pydantic's and Python's ints or floats may part ways: the twin decides


def _check_int(v: Any) -> Any:
    return v if type(v) is int and -_INT_LIMIT < v < _INT_LIMIT else FAIL


def _check_float(v: Any) -> Any:
    if type(v) is float:
        return v if math.isfinite(v) else FAIL
    return float(v) if type(v) is int and -_INT_LIMIT < v < _INT_LIMIT else FAIL  # strict mode takes an int


def _exactly(kind: type) -> Check:
    return lambda v: v if type(v) is kind else FAIL


def _any(v: Any) -> Any:
    return v


def _checker(hint: Any) -> Check:
    if hint is int:
        return _check_int
    if hint is float:
        return _check_float
    if hint in (bool, str):
        return _exactly(hint)
    if hint is None or hint is type(None):
        return lambda v: None if v is None else FAIL
    if hint is Any or hint is object:
        return _any
    if is_model(hint):
        return _nested(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        specs = hint.__metadata__
        if not all(isinstance(m, FieldSpec) and m.is_required() and m.alias is None for m in specs):
            raise _Unsupported(hint)
        inner = _checker(args[0])
        for m in specs:
            inner = _constrained(inner, m.constraints, args[0])
        return inner
    if origin is Literal:
        return _literal(args)
    if origin in (Union, types.UnionType):
        return _union([_checker(a) for a in args])
    if origin is list and len(args) == 1:
        return _list(_checker(args[0]))
    if origin is dict and len(args) == 2:
        return _dict(_checker(args[0]), _checker(args[1]))
    raise _Unsupported(hint)


def _nested(cls: Any) -> Check:
    def check(v: Any) -> Any:
        inner = checker_of(cls)
        return FAIL if inner is None else inner(v)
    return check


def _literal(options: tuple[Any, ...]) -> Check:
    if not all(type(o) in (str, int, bool) for o in options):
        raise _Unsupported(options)
    accepted = frozenset((type(o), o) for o in options)
    return lambda v: v if type(v) in (str, int, bool) and (type(v), v) in accepted else FAIL


def _union(members: list[Check]) -> Check:
    def check(v: Any) -> Any:
        found = [r for r in (m(v) for m in members) if r is not FAIL]
        # Two members taking the value: pydantic's smart mode picks one by rules of its own.
        return found[0] if len(found) == 1 else FAIL
    return check


def _list(item: Check) -> Check:
    def check(v: Any) -> Any:
        if type(v) is not list:
            return FAIL
        out = [item(x) for x in v]
        return FAIL if any(x is FAIL for x in out) else out
    return check


def _dict(key: Check, value: Check) -> Check:
    def check(v: Any) -> Any:
        if type(v) is not dict:
            return FAIL
        out = {key(k): value(x) for k, x in v.items()}
        return FAIL if FAIL in out or any(x is FAIL for x in out.values()) else out
    return check


def _constrained(inner: Check, constraints: dict[str, Any], hint: Any) -> Check:
    """``inner`` with Field constraints, on the kinds of value pydantic applies them to."""
    if not constraints:
        return inner
    numeric = {"gt", "ge", "lt", "le"} & set(constraints)
    sized = {"min_length", "max_length"} & set(constraints)
    base = typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint
    kind = typing.get_origin(base) or base
    if (numeric and kind not in (int, float)) or (sized and kind not in (str, list, dict)) or (
            "pattern" in constraints and kind is not str):
        raise _Unsupported(hint)  # a constraint on a union or an odd type: pydantic's rules
    gt, ge, lt, le = (constraints.get(k) for k in ("gt", "ge", "lt", "le"))
    lo, hi = constraints.get("min_length"), constraints.get("max_length")
    pattern = None
    if "pattern" in constraints:
        import re

        pattern = re.compile(constraints["pattern"])

    def check(v: Any) -> Any:
        v = inner(v)
        if v is FAIL:
            return v
        if (gt is not None and not v > gt) or (ge is not None and not v >= ge) or (
                lt is not None and not v < lt) or (le is not None and not v <= le):
            return FAIL
        if (lo is not None and len(v) < lo) or (hi is not None and len(v) > hi):
            return FAIL
        # Rust's regex (pydantic's) and Python's agree on ASCII text without line breaks.
        if pattern is not None and not (v.isascii() and "\n" not in v and "\r" not in v and pattern.search(v)):
            return FAIL
        return v
    return check

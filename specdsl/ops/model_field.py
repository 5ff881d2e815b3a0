"""Fields of the argument models (specdsl.ops.model): ``Field(...)`` and what ``model_fields`` holds."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any


class _Undefined:
    """A required field's default; spelled as pydantic spells its own (``specdsl ops`` prints it)."""

    def __repr__(self) -> str:
        return "PydanticUndefined"


UNDEFINED: Any = _Undefined()
_CONSTRAINTS = ("gt", "ge", "lt", "le", "min_length", "max_length", "pattern")


class FieldSpec:
    """A field's declaration: what ``Field(...)`` returns, and the entries of ``model_fields``
    (read like pydantic's FieldInfo: ``alias``, ``default``, ``description``, ``is_required()``)."""

    def __init__(self, default: Any = UNDEFINED, *, default_factory: Callable[[], Any] | None = None,
                 alias: str | None = None, description: str | None = None, **constraints: Any) -> None:
        unknown = set(constraints) - set(_CONSTRAINTS)
        if unknown:  # a keyword the fast path would not enforce: refuse it at declaration, loudly
            raise TypeError(f"Field() takes no {', '.join(sorted(unknown))} (add it to specdsl/ops/model.py)")
        self.default = default
        self.default_factory = default_factory
        self.alias = alias
        self.description = description
        self.constraints = {k: v for k, v in constraints.items() if v is not None}
        self.name = ""
        self.owner: Any = None  # the model (specdsl.ops.model.Model) that declares it
        self.foreign: Any = None  # the pydantic FieldInfo it was read from, if it was declared with one

    def is_required(self) -> bool:
        return self.default is UNDEFINED and self.default_factory is None

    def get_default(self, call_default_factory: bool = False) -> Any:
        if self.default_factory is not None:
            return self.default_factory() if call_default_factory else None
        return smart_copy(self.default)

    @property
    def annotation(self) -> Any:
        """The field's type, Annotated metadata included (evaluated on first use)."""
        assert self.owner is not None
        return self.owner.type_hints()[self.name]

    def named(self, name: str, owner: Any) -> FieldSpec:
        spec = copy.copy(self)
        spec.name, spec.owner = name, owner
        return spec

    def to_pydantic(self) -> Any:
        if self.foreign is not None:
            return self.foreign
        from pydantic import Field as PydanticField

        kwargs: dict[str, Any] = dict(self.constraints)
        if self.default_factory is not None:
            kwargs["default_factory"] = self.default_factory
        elif self.default is not UNDEFINED:
            kwargs["default"] = self.default
        if self.alias is not None:
            kwargs["alias"] = self.alias
        if self.description is not None:
            kwargs["description"] = self.description
        return PydanticField(**kwargs)

    def __repr__(self) -> str:
        return f"FieldSpec({self.name or '?'}, default={self.default!r}, alias={self.alias!r})"


def Field(default: Any = UNDEFINED, *, default_factory: Callable[[], Any] | None = None,
          alias: str | None = None, description: str | None = None, gt: float | None = None,
          ge: float | None = None, lt: float | None = None, le: float | None = None,
          min_length: int | None = None, max_length: int | None = None, pattern: str | None = None) -> Any:
    """A field's default, alias, description and constraints, as pydantic's ``Field`` takes them."""
    return FieldSpec(default, default_factory=default_factory, alias=alias, description=description, gt=gt,
                     ge=ge, lt=lt, le=le, min_length=min_length, max_length=max_length, pattern=pattern)


def smart_copy(value: Any) -> Any:
    """A default as pydantic hands it out: immutable values themselves, containers copied."""
    if value is None or type(value) in (int, float, bool, str, bytes, tuple, frozenset) or value is UNDEFINED:
        return value
    if type(value) in (list, dict, set) and not value:
        return value.copy()
    return copy.deepcopy(value)


def is_foreign_field(value: Any) -> bool:
    """A pydantic FieldInfo (a model declared with ``from pydantic import Field``)."""
    return type(value).__name__ == "FieldInfo" and type(value).__module__.startswith("pydantic")


def from_foreign(info: Any) -> FieldSpec:
    spec = FieldSpec()
    default = info.default
    spec.default = UNDEFINED if type(default).__name__ == "PydanticUndefinedType" else default
    spec.default_factory, spec.alias, spec.description = info.default_factory, info.alias, info.description
    spec.foreign = info
    return spec


"""Strict, frozen argument models that import nothing heavy: pydantic's semantics, pydantic on demand.

Every argument model (the ops', the blocks', a layer's meta keys, the document) is declared as a
pydantic model would be (annotations, ``Field(...)``) on :class:`Model`, with the configuration every
one of them shares: strict types, unknown keys refused, aliases only, frozen, no inf/nan. Declaring
one costs almost nothing: its annotations are read when it first validates.

Validation has two paths with one meaning. The fast path understands the types the models use
(int, float, bool, str, None, Any, Literal, unions, list, dict, nested models, Annotated with
``Field`` constraints) and accepts only what pydantic's strict mode accepts, giving the same values;
anything else it declines, never rejects. What it declines goes to the model's pydantic twin
(built on first need, from the same declarations), which gives pydantic's own ValidationError for
input that is wrong (so every diagnostic reads as before) or the values, for input it accepts. So
`check` of a valid spec never imports pydantic (a third of a whole process's start-up), and a model
with a type the fast path does not know (a new op's) is as correct as before, only validated by
pydantic. tests/test_arg_models.py checks the two paths agree on every model.
"""

from __future__ import annotations

import inspect
import sys
import types
import typing
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, TypeVar, Union

from specdsl.ops.model_check import FAIL, checker_of
from specdsl.ops.model_field import UNDEFINED, Field, FieldSpec, from_foreign, is_foreign_field

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound="Model")

if TYPE_CHECKING:
    class _ModelType(type):
        """mypy takes a variable of type ``type[C]`` as Hashable only where C has a metaclass
        (functools.cache keys on model classes: lsp/complete.py)."""
else:
    _ModelType = type


class Model(metaclass=_ModelType):
    """Base of the argument models: declare fields as on a pydantic model (see the module's doc)."""

    __slots__ = ("__dict__", "_fields_set")
    model_fields: ClassVar[dict[str, FieldSpec]] = {}
    _fields_set: set[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields: dict[str, FieldSpec] = {}
        for base in reversed(cls.__mro__[1:]):  # each base's fields hold its own bases' already
            if issubclass(base, Model):
                fields.update(base.model_fields)
        for name, hint in inspect.get_annotations(cls).items():
            if name.startswith("_") or (isinstance(hint, str) and hint.startswith(("ClassVar", "typing.ClassVar"))):
                continue
            value = cls.__dict__.get(name, UNDEFINED)
            spec = value if isinstance(value, FieldSpec) else (
                from_foreign(value) if is_foreign_field(value) else FieldSpec(value))
            fields[name] = spec.named(name, cls)
            if name in cls.__dict__:  # as pydantic does: a field is no class attribute
                delattr(cls, name)
        cls.model_fields = fields
        if "<locals>" in cls.__qualname__:  # declared in a function: its annotations may name its locals
            _LOCALS[cls] = dict(sys._getframe(1).f_locals)

    # -- construction ---------------------------------------------------------------------------

    def __init__(self, **data: Any) -> None:
        done = type(self).model_validate(data)
        self.__dict__.update(done.__dict__)
        object.__setattr__(self, "_fields_set", done._fields_set)

    @classmethod
    def model_validate(cls: type[M], obj: Any) -> M:
        """``obj`` validated; pydantic's ValidationError where it is wrong."""
        check = checker_of(cls)
        if check is not None:
            done = check(obj)
            if done is not FAIL:
                return typing.cast(M, done)
        return typing.cast(M, _ours(cls.pydantic_twin().model_validate(_theirs(obj))))

    @classmethod
    def _build(cls: type[M], values: dict[str, Any], fields_set: set[str]) -> M:
        obj = object.__new__(cls)
        obj.__dict__.update(values)
        object.__setattr__(obj, "_fields_set", fields_set)
        return obj

    # -- reading --------------------------------------------------------------------------------

    @property
    def model_fields_set(self) -> set[str]:
        return self._fields_set

    def model_dump(self, *, by_alias: bool = False, exclude_defaults: bool = False,
                   exclude_none: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        fields = type(self).model_fields
        for name, value in self.__dict__.items():
            spec = fields[name]
            if exclude_none and value is None:
                continue
            if exclude_defaults and not spec.is_required() and value == spec.get_default(call_default_factory=True):
                continue
            out[spec.alias or name if by_alias else name] = _dumped(value, by_alias, exclude_defaults, exclude_none)
        return out

    @classmethod
    def model_json_schema(cls, **kwargs: Any) -> dict[str, Any]:
        return cls.pydantic_twin().model_json_schema(**kwargs)

    @classmethod
    def type_hints(cls) -> dict[str, Any]:
        """Each field's evaluated annotation (``from __future__ import annotations`` keeps them text)."""
        hints = _HINTS.get(cls)
        if hints is None:
            every = typing.get_type_hints(cls, localns=_LOCALS.get(cls), include_extras=True)
            hints = _HINTS[cls] = {name: every[name] for name in cls.model_fields}
        return hints

    @classmethod
    def pydantic_twin(cls) -> type[BaseModel]:
        """The pydantic model of the same declarations (for errors, the JSON Schema, unknown types)."""
        twin = _TWINS.get(cls)
        if twin is None:
            from pydantic import ConfigDict, create_model

            config = ConfigDict(strict=True, extra="forbid", populate_by_name=False, frozen=True,
                                allow_inf_nan=False)
            hints = cls.type_hints()
            fields: dict[str, Any] = {name: (_to_pydantic(hints[name]), spec.to_pydantic())
                                      for name, spec in cls.model_fields.items()}
            twin = create_model(cls.__name__, __config__=config, __doc__=cls.__doc__, __module__=cls.__module__,
                                **fields)
            _TWINS[cls] = twin
            _OURS[twin] = cls
        return twin

    # -- as a frozen value ----------------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError(f"{type(self).__name__} is frozen: '{name}' cannot be set")

    def __delattr__(self, name: str) -> None:
        raise TypeError(f"{type(self).__name__} is frozen: '{name}' cannot be deleted")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Model):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash(tuple(self.__dict__.values()))

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        yield from self.__dict__.items()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"

    def __str__(self) -> str:
        return " ".join(f"{k}={v!r}" for k, v in self.__dict__.items())

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), dict(self.__dict__), set(self._fields_set)))


def _rebuild(cls: type[Model], values: dict[str, Any], fields_set: set[str]) -> Model:
    return cls._build(values, fields_set)


def validation_error() -> type[ValidationError]:
    """pydantic's ValidationError, imported when an except clause needs it: write
    ``except validation_error() as exc`` around ``model_validate`` (the clause is evaluated only
    when something was raised, and only the twin raises it)."""
    from pydantic import ValidationError

    return ValidationError


def _dumped(value: Any, by_alias: bool, exclude_defaults: bool, exclude_none: bool) -> Any:
    if isinstance(value, Model):
        return value.model_dump(by_alias=by_alias, exclude_defaults=exclude_defaults, exclude_none=exclude_none)
    if type(value) is list:
        return [_dumped(v, by_alias, exclude_defaults, exclude_none) for v in value]
    if type(value) is dict:
        return {k: _dumped(v, by_alias, exclude_defaults, exclude_none) for k, v in value.items()}
    return value


# -- the pydantic twin: same declarations, values converted both ways -----------------------------

_HINTS: dict[type[Model], dict[str, Any]] = {}
_LOCALS: dict[type[Model], dict[str, Any]] = {}
_TWINS: dict[type[Model], Any] = {}
_OURS: dict[Any, type[Model]] = {}


def _to_pydantic(hint: Any) -> Any:
    """A type for the twin: our models as their twins, our Field metadata as pydantic's."""
    if isinstance(hint, type) and issubclass(hint, Model):
        return hint.pydantic_twin()
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        meta = [m.to_pydantic() if isinstance(m, FieldSpec) else m for m in hint.__metadata__]
        return Annotated[(_to_pydantic(args[0]), *meta)]
    if origin in (Union, types.UnionType):
        return Union[tuple(_to_pydantic(a) for a in args)]  # noqa: UP007 - built from a tuple
    if origin in (list, dict, tuple, set, frozenset) and args:
        return origin[tuple(_to_pydantic(a) for a in args)]
    return hint


def _ours(value: Any) -> Any:
    """The twin's validated values as ours (its models as our models)."""
    cls = _OURS.get(type(value))
    if cls is not None:
        return cls._build({k: _ours(v) for k, v in value.__dict__.items()}, set(value.model_fields_set))
    if type(value) is list:
        return [_ours(v) for v in value]
    if type(value) is dict:
        return {k: _ours(v) for k, v in value.items()}
    return value


def _theirs(value: Any) -> Any:
    """Input for the twin: an instance of our model given as a value becomes the twin's."""
    if isinstance(value, Model):
        twin = type(value).pydantic_twin()
        return twin.model_construct(_fields_set=set(value.model_fields_set),
                                    **{k: _theirs(v) for k, v in value.__dict__.items()})
    if type(value) is list:
        return [_theirs(v) for v in value]
    if type(value) is dict:
        return {k: _theirs(v) for k, v in value.items()}
    return value


__all__ = ["UNDEFINED", "Field", "FieldSpec", "Model", "validation_error"]

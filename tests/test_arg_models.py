"""The argument models' fast path (specdsl/ops/model_check.py) means what pydantic means.

Every model the language has (each op's and block's arguments, a layer's meta keys, the document,
a user block) is validated both ways on generated input: where the fast path accepts, pydantic's
twin accepts too and gives the same values (same types, same fields set, same repr and dumps);
where the twin refuses, the fast path has declined. Plus the cases pydantic's strict mode is known
for, and what `check` relies on: every built-in model has a fast path, and a model declared with
pydantic's own Field still validates (through its twin).
"""

from __future__ import annotations

import copy
import pickle
import typing
from typing import Annotated, Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from specdsl.blocks.registry import BLOCKS
from specdsl.ops import OPS
from specdsl.ops.model import Field, Model, validation_error
from specdsl.ops.model_check import FAIL, checker_of, is_model
from specdsl.ops.rule import Args, PositiveInt
from specdsl.schema.document import BlockDef, SpecDocument
from specdsl.schema.layer import InitSpec, LayerMeta


def every_model() -> dict[str, type[Model]]:
    models: dict[str, type[Model]] = {f"op {n}": r.args for n, r in OPS.items()}
    models.update({f"block {n}": b.args for n, b in BLOCKS.items()})
    models.update({"LayerMeta": LayerMeta, "InitSpec": InitSpec, "SpecDocument": SpecDocument, "BlockDef": BlockDef})
    return models


MODELS = every_model()
SCALARS = st.sampled_from([0, 1, 2, 3, -1, 7, 64, 2 ** 60, 0.0, 0.5, 1.0, 1e-6, -2.5, float("inf"), float("nan"),
                           True, False, None, "", "a", "relu", "same", "x.0", "b\n", "é", "in", "fan_in"])


def values_for(hint: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values near what ``hint`` takes (its literals, its kinds), mixed with scalars of every kind."""
    if depth > 3:
        return SCALARS
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    near: list[st.SearchStrategy[Any]] = [SCALARS]
    if is_model(hint):
        near.append(mappings(hint, depth + 1))
    elif origin is Annotated:
        near.append(values_for(args[0], depth + 1))
    elif origin is Literal:
        near.append(st.sampled_from(args))
    elif origin in (typing.Union, __import__("types").UnionType):
        near.extend(values_for(a, depth + 1) for a in args)
    elif origin is list:
        near.append(st.lists(values_for(args[0], depth + 1), max_size=5))
    elif origin is dict:
        near.append(st.dictionaries(st.sampled_from(["a", "b1", "x y", "1a", "width"]),
                                    values_for(args[1], depth + 1), max_size=3))
    elif hint in (int, float):
        near.append(st.integers(-3, 300) | st.floats(allow_nan=True, allow_infinity=True))
    elif hint is str:
        near.append(st.text(max_size=6))
    return st.one_of(near)


def mappings(model: type[Model], depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """Mappings of a model's keys (some left out) to values (an unknown key: the explicit cases)."""
    hints = model.type_hints()
    return st.fixed_dictionaries({}, optional={(f.alias or n): values_for(hints[n], depth)
                                               for n, f in model.model_fields.items()})


def both_ways(model: type[Model], data: Any) -> None:
    twin = model.pydantic_twin()
    check = checker_of(model)
    fast = FAIL if check is None else check(data)
    try:
        theirs = twin.model_validate(data)
    except ValidationError:
        assert fast is FAIL, f"the fast path accepted what pydantic refuses: {data!r} -> {fast!r}"
        with pytest.raises(ValidationError):
            model.model_validate(data)
        return
    ours = model.model_validate(data)
    if fast is not FAIL:
        assert fast == ours
    assert repr(ours) == repr(theirs)
    # Same kinds of value (a nested model is the twin's class there, named as ours).
    assert [type(v).__name__ for v in ours.__dict__.values()] == [type(v).__name__ for v in theirs.__dict__.values()]
    assert ours.model_fields_set == theirs.model_fields_set
    for how in ({}, {"by_alias": True}, {"by_alias": True, "exclude_defaults": True}, {"exclude_none": True}):
        assert ours.model_dump(**how) == theirs.model_dump(**how), how


@pytest.mark.parametrize("name", sorted(MODELS))
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fast_path_means_what_pydantic_means(name: str, data: st.DataObject) -> None:
    model = MODELS[name]
    both_ways(model, data.draw(mappings(model)))


def test_every_built_in_model_has_a_fast_path() -> None:
    # A model without one validates through pydantic: correct, but `check` then imports pydantic.
    slow = sorted(name for name, model in MODELS.items() if checker_of(model) is None)
    assert slow == [], f"models the fast path does not know (a type or Field keyword new to model_check.py): {slow}"


@pytest.mark.parametrize(("model", "data"), [
    (OPS["conv"].args, {"out": 8, "k": 3}),
    (OPS["conv"].args, {"out": True, "k": 3}),          # bool is no int in strict mode
    (OPS["conv"].args, {"out": 8, "k": [3, 3, 3, 3]}),  # too many axes
    (OPS["conv"].args, {"out": 8, "k": 3, "in": 4}),    # the alias
    (OPS["conv"].args, {"out": 8, "k": 3, "in_": 4}),   # not the field's name
    (OPS["conv"].args, {"out": 8, "k": 3, "eps": 1}),   # an int where a float goes: 1.0
    (OPS["conv"].args, {"out": 8, "k": 3, "gamma": float("nan")}),
    (OPS["conv"].args, {"out": 8, "k": 3, "groups": "depthwise"}),
    (OPS["conv"].args, {"out": 8.0, "k": 3}),
    (OPS["conv"].args, [8, 3]),
    (LayerMeta, {"init": {"scheme": "kaiming", "mode": "fan_out"}}),
    (LayerMeta, {"init": {"scheme": "kaiming", "std": 0}}),
    (LayerMeta, {"name": "x\n"}),
    (LayerMeta, {"inputs": ["a.0", "b.c"], "if": False}),
    (SpecDocument, {"model": "m", "input": [3, 8, 8], "layers": ["relu"], "outputs": {"a": "x"}}),
    (SpecDocument, {"model": "m", "input": [3, 8, 8], "layers": ["relu"], "params": {"1a": 2}}),
    (BlockDef, {"layers": ["relu"], "residual": {"body": ["relu"]}}),
])
def test_cases_pydantic_is_known_for(model: type[Model], data: Any) -> None:
    both_ways(model, data)


def test_literal_true_for_one_goes_to_pydantic() -> None:
    class OneOrTwo(Args):
        n: Literal[1, 2] = 1

    assert checker_of(OneOrTwo)({"n": True}) is FAIL  # pydantic takes True for 1: the twin decides
    both_ways(OneOrTwo, {"n": True})


def test_instances_are_frozen_values() -> None:
    conv = OPS["conv"].args
    a, b = conv.model_validate({"out": 8, "k": 3}), conv(out=8, k=3)
    assert a == b and hash(a) == hash(b) and a.model_fields_set == {"out", "k"}
    assert a != conv.model_validate({"out": 8, "k": 3, "stride": 2})
    assert pickle.loads(pickle.dumps(a)) == a and copy.deepcopy(a) == a
    assert pickle.loads(pickle.dumps(a)).model_fields_set == {"out", "k"}
    with pytest.raises(TypeError):
        a.out = 9  # type: ignore[misc]
    doc = SpecDocument.model_validate({"model": "m", "input": [3], "layers": ["relu"]})
    again = SpecDocument.model_validate({"model": "m", "input": [3], "layers": ["relu"]})
    assert doc.params is not again.params  # a default container is each instance's own


def test_a_model_declared_with_pydantic_field_still_validates() -> None:
    # A new op module written with `from pydantic import Field`: correct through its twin.
    from pydantic import Field as PydanticField

    class Legacy(Args):
        out: PositiveInt = PydanticField(description="output channels")
        mode: Literal["a", "b"] = PydanticField(default="a", alias="kind")

    assert checker_of(Legacy) is None
    assert Legacy.model_validate({"out": 3, "kind": "b"}).mode == "b"
    assert Legacy.model_fields["out"].is_required() and Legacy.model_fields["mode"].alias == "kind"
    with pytest.raises(validation_error()):
        Legacy.model_validate({"out": 0})


def test_field_refuses_keywords_the_fast_path_would_not_enforce() -> None:
    with pytest.raises(TypeError, match="multiple_of"):
        Field(default=1, multiple_of=2)  # type: ignore[call-arg]


def test_json_schema_comes_from_the_twin() -> None:
    schema = OPS["conv"].args.model_json_schema()
    assert schema["title"] == "ConvArgs" and schema["additionalProperties"] is False
    assert schema["properties"]["in"]["anyOf"][0] == {"exclusiveMinimum": 0, "type": "integer"}

"""Model families: parameters, variants, expressions, conditional layers, sweeps — in both syntaxes."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import specdsl
from specdsl.blocks.expr import ExprError, evaluate, make_divisible
from specdsl.cli.main import main
from specdsl.errors import SpecError
from specdsl.render.printer import to_dsl, to_yaml

FAMILY = """\
# A toy family: width and depth multipliers, an optional layer, a class count.
model toy(width=1.0, depth=2, extra=true, classes=1000)
variant toy_small(width=0.5, depth=1)
variant toy_big(width=1.5, depth=3, extra=false)
input [3, 32, 32]

block unit(c: int) {
    conv(c, k=3, pad=1, bias=false) -> bn -> relu
    conv(c, k=1) if extra and c > 16
}

layers {
    conv(make_divisible(32 * width, 8), k=3, stride=2, pad=1) -> relu
    unit(make_divisible(64 * width, 8)) x(depth + 1)
    gap -> linear(classes)
}
"""


@pytest.fixture
def family(tmp_path) -> str:
    path = tmp_path / "toy.cnn"
    path.write_text(FAMILY)
    return str(path)


def convs(model: specdsl.Model) -> list[int]:
    return [fig.shape[0] for node, fig in model.rows() if node.op == "conv"]


def test_defaults_variants_and_overrides(family: str) -> None:
    default = specdsl.load(family)
    assert convs(default) == [32, 64, 64, 64, 64, 64, 64]  # depth 2: three units with the extra 1x1
    small = specdsl.load(family, variant="toy_small")
    assert convs(small) == [16, 32, 32, 32, 32]
    big = specdsl.load(family, variant="toy_big", params={"classes": 10})
    assert convs(big) == [48, 96, 96, 96, 96]  # extra=false switches the 1x1 off
    assert big.rows()[-1][1].shape == (10,)


def test_parameter_problems_name_the_parameter_and_where_its_value_came_from(family: str) -> None:
    with pytest.raises(SpecError) as info:
        specdsl.load(family, variant="toy_smal")
    assert info.value.errors[0].code == "E360" and "did you mean 'toy_small'" in info.value.errors[0].hint
    with pytest.raises(SpecError) as info:
        specdsl.load(family, params={"widht": 2, "depth": 1.5})
    assert [e.code for e in info.value.errors] == ["E361", "E362"]
    assert "from load(params=...)" in info.value.errors[1].message


def test_a_variant_setting_an_unknown_parameter_is_located(tmp_path) -> None:
    path = tmp_path / "bad.cnn"
    path.write_text(FAMILY.replace("variant toy_small(width=0.5", "variant toy_small(widht=0.5"))
    with pytest.raises(SpecError) as info:
        specdsl.load(str(path))
    error = info.value.errors[0]
    assert error.code == "E361" and error.loc.line == 3 and "did you mean 'width'" in error.hint


def test_yaml_families_match_the_dsl(family: str, tmp_path) -> None:
    from specdsl.api import read_data

    data, _ = read_data(FAMILY, family)
    yaml_path = tmp_path / "toy.yaml"
    yaml_path.write_text(to_yaml(data))
    for variant in (None, "toy_small", "toy_big"):
        assert specdsl.load(str(yaml_path), variant=variant).totals == specdsl.load(family, variant=variant).totals
    again, _ = read_data(to_dsl(data), "again.cnn")
    assert again == data


def test_input_shape_from_parameters(tmp_path) -> None:
    path = tmp_path / "res.cnn"
    path.write_text("model r(resolution=32)\nvariant r64(resolution=64)\ninput [3, resolution, resolution]\n"
                    "layers {\n    conv(8, k=3, pad=1)\n}\n")
    assert specdsl.load(str(path)).graph.input_shape == (3, 32, 32)
    assert specdsl.load(str(path), variant="r64").graph.input_shape == (3, 64, 64)


def test_a_switched_off_node_is_named_when_referred_to(tmp_path) -> None:
    path = tmp_path / "off.cnn"
    path.write_text("model o(aux=false)\ninput [3, 8, 8]\nlayers {\n    conv(8, k=1) as a\n"
                    "    conv(8, k=1) if aux as b\n    @b -> relu\n}\n")  # a merge would drop it (issue 26)
    with pytest.raises(SpecError) as info:
        specdsl.load(str(path))
    assert info.value.errors[0].code == "E366" and "switched off" in info.value.errors[0].message
    assert specdsl.load(str(path), params={"aux": True}).rows()[-1][1].shape == (8, 8, 8)


def test_a_condition_must_be_true_or_false(tmp_path) -> None:
    path = tmp_path / "cond.cnn"
    path.write_text("model c(n=2)\ninput [3, 8, 8]\nlayers {\n    relu if n\n}\n")
    with pytest.raises(SpecError) as info:
        specdsl.load(str(path))
    assert "needs true or false" in info.value.errors[0].message


def test_a_float_where_an_integer_belongs_says_how_to_round(tmp_path) -> None:
    path = tmp_path / "f.cnn"
    path.write_text("model f(width=1.5)\ninput [3, 8, 8]\nlayers {\n    conv(8 * width, k=1)\n}\n")
    with pytest.raises(SpecError) as info:
        specdsl.load(str(path))
    assert "make_divisible" in info.value.errors[0].hint


@pytest.mark.parametrize(("value", "divisor", "expected"), [
    # torchvision's _make_divisible on the channel counts of MobileNetV3 / EfficientNet
    (32 * 1.1, 8, 32), (16 * 0.75, 8, 16), (24 * 1.4, 8, 32), (40 * 1.2, 8, 48), (1280 * 1.1, 8, 1408),
    (3, 8, 8), (91, 8, 88), (83, 8, 80), (72 * 0.25, 8, 24),
])
def test_make_divisible_is_torchvisions(value: float, divisor: int, expected: int) -> None:
    assert make_divisible(value, divisor) == expected


def _reference_make_divisible(v: float, divisor: int) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


@given(st.floats(0.5, 5000), st.sampled_from([1, 2, 4, 8, 16]))
def test_make_divisible_property(value: float, divisor: int) -> None:
    got = make_divisible(value, divisor)
    assert got == _reference_make_divisible(value, divisor)
    assert got % divisor == 0 and got >= 0.9 * value


@pytest.mark.parametrize(("text", "expected"), [
    ("c * 4", 128), ("(c + 1) // 2", 16), ("c / 64", 0.5), ("c % 5", 2), ("max(1, c // 4)", 8),
    ("min(c, 8, 9)", 8), ("ceil(3 * 1.2)", 4), ("floor(3.7)", 3), ("round(2.5)", 2), ("int(7.9)", 7),
    ("abs(-c)", 32), ("c > 16 and not flag", True), ("c > 16 or flag", True), ("4 if flag else 2", 2),
    ("make_divisible(c * 1.1, 8)", 32), ("-c", -32), ("2 * -c", -64),
])
def test_expressions(text: str, expected: object) -> None:
    assert evaluate(text, {"c": 32, "flag": False}) == expected


@pytest.mark.parametrize(("text", "snippet"), [
    ("c // 0", "division by zero"), ("min(c)", "min takes 2 to 8 arguments"), ("foo(c)", "unknown function"),
    ("[c] + 1", "needs a number"), ("c if c else 2", "needs true or false"), ("10 ** 13", "out of range"),
    ("c * 1e13", "out of range"), ("(" * 40 + "c" + ")" * 40, "nested too deeply"),
])
def test_bad_expressions(text: str, snippet: str) -> None:
    with pytest.raises(ExprError, match=snippet):
        evaluate(text, {"c": 32, "flag": False})


@given(st.integers(1, 500), st.integers(1, 9), st.floats(0.1, 4.0))
def test_dsl_and_yaml_expressions_agree(c: int, k: int, width: float) -> None:
    text = f"make_divisible({c} * width, {k}) + max({k}, {c} // {k})"
    expected = make_divisible(c * width, k) + max(k, c // k)
    assert evaluate(text, {"width": width}) == expected
    from specdsl.api import read_data

    data, _ = read_data(f"model m(width={width!r})\ninput [3]\nlayers {{\n    linear({text})\n}}\n", "m.cnn")
    assert data["layers"][0]["linear"]["out"] == text
    assert math.isfinite(width)


def test_cli_variant_and_param(family: str, capsys) -> None:
    assert main(["check", family, "--variant", "toy_big", "--param", "classes=10", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["nodes"][-1]["shape"] == [10]
    assert main(["check", family, "--param", "extra=maybe"]) == 1
    assert "expects true or false; received 'maybe' (from --param)" in capsys.readouterr().err
    assert main(["check", family, "--param", "width"]) == 2


def test_sweep_table_csv_json_and_pareto_front(family: str, capsys) -> None:
    assert main(["sweep", family, "--param", "width=0.5,1.0", "--param", "depth=1,2"]) == 0
    out = capsys.readouterr().out
    assert "4 points" in out and "pareto" in out
    assert main(["sweep", family, "--param", "width=0.5,1.0", "--csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("width,params,trainable,macs,") and lines[0].endswith(",pareto,error")
    assert len(lines) == 3
    assert main(["sweep", family, "--param", "depth=1,2,3", "--json"]) == 0
    points = json.loads(capsys.readouterr().out)
    assert [p["depth"] for p in points] == ["1", "2", "3"] or [p["depth"] for p in points] == [1, 2, 3]
    assert sum(p["pareto"] for p in points) >= 1
    assert main(["sweep", family, "--param", "widht=0.5"]) == 1
    assert "did you mean 'width'" in capsys.readouterr().err


def test_diff_takes_param_and_variant(family: str, capsys) -> None:
    pytest.importorskip("torch")
    import re

    counts = []
    for extra in ([], ["--param", "depth=4"], ["--variant", "toy_small"]):
        assert main(["diff", family, *extra]) == 0
        counts.append(int(re.search(r"all (\d+) nodes agree", capsys.readouterr().out)[1]))
    assert counts[1] > counts[0] > counts[2], counts


def test_a_sweep_in_worker_processes_gives_what_one_process_gives(family: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Forked workers share the grid interleaved; the points come back in grid order, rejected ones too
    (depth -1 is an error at every width), and the Pareto front is the same."""
    import threading

    from specdsl.sweep import MIN_POINTS_PER_WORKER, _workers, sweep

    axes = {"width": [0.25, 0.5, 0.75, 1.0, 1.25, 1.5], "depth": [-2, 0, 1, 2, 3]}
    alone = sweep(family, axes, jobs=1)
    shared = sweep(family, axes, jobs=2)
    assert shared == alone
    assert [p.values for p in alone] == [{"width": w, "depth": d} for w in axes["width"] for d in axes["depth"]]
    assert [p.ok for p in alone].count(False) == 6 and sum(p.pareto for p in alone) >= 1
    if threading.active_count() == 1:
        assert _workers(2, 2 * MIN_POINTS_PER_WORKER) == 2
    assert _workers(8, MIN_POINTS_PER_WORKER) == 1  # too few points to be worth a process
    import concurrent.futures

    class NoSemaphores:
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise ImportError("This platform lacks a functioning sem_open implementation")

    with monkeypatch.context() as patch:  # where workers cannot start, the sweep runs in this process
        patch.setattr(concurrent.futures, "ProcessPoolExecutor", NoSemaphores)
        assert sweep(family, axes, jobs=2) == alone
    with pytest.raises(SpecError) as info:  # a misspelt parameter stops the sweep, from a worker too
        sweep(family, {"widht": [0.5] * 20}, jobs=2)
    assert "did you mean 'width'" in str(info.value)


def test_a_block_using_make_divisible_builds(tmp_path) -> None:
    pytest.importorskip("torch")
    from specdsl.backends.torch.emit import check_emitted, emit

    path = tmp_path / "md.cnn"
    path.write_text("model m\ninput [72, 8, 8]\nblock b(c: int) {\n    conv(make_divisible(c // 4, 8), k=1)\n}\n"
                    "layers {\n    b(72) -> b(24)\n}\n")
    model = specdsl.load(str(path))
    source = emit(model)
    assert "make_divisible" not in source  # emitted classes spell only integer arithmetic
    assert check_emitted(model, source) == []

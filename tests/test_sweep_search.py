"""specdsl sweep as a design-space search: conditions, objectives, top K, typed values, samplers, params."""

from __future__ import annotations

import json
from typing import Any

import pytest

import specdsl
from specdsl.cli.main import main
from specdsl.errors import SpecError
from specdsl.search.space import Range, grid, parse_range, sample, sobol
from specdsl.sweep import best, objectives_of, sweep

# A CIFAR ResNet family (He et al. 2016, section 4.2): 6n+2 layers, widths 16, 32 and 64 times w.
RESNET_CIFAR = """\
model resnet_cifar(n=3, w=1.0)
input [3, 32, 32]
block unit(c: int, stride=1) = residual(shortcut=auto, post=relu) {
    conv(c, k=3, stride=stride, pad=1, bias=false) -> bn -> relu
    conv(c, k=3, pad=1, bias=false) -> bn
}
layers {
    conv(make_divisible(16 * w, 4), k=3, pad=1, bias=false) -> bn -> relu
    unit(make_divisible(16 * w, 4)) x(n)
    unit(make_divisible(32 * w, 4), stride=2) -> unit(make_divisible(32 * w, 4)) x(n - 1)
    unit(make_divisible(64 * w, 4), stride=2) -> unit(make_divisible(64 * w, 4)) x(n - 1)
    gap -> linear(10)
}
"""


@pytest.fixture
def cifar(tmp_path) -> str:
    path = tmp_path / "resnet_cifar.cnn"
    path.write_text(RESNET_CIFAR)
    return str(path)


def test_the_efficientnet_front_has_local_fields() -> None:
    points = sweep("efficientnet", {"width": [1.0, 1.1], "depth": [1.0, 1.4], "resolution": [224, 240]}, jobs=1)
    assert all(p.rf and p.rf_global for p in points)  # SE gates: a local field, plus global context
    assert sum(p.pareto for p in points) > 1
    assert {p.rf for p in points if p.values["depth"] == 1.0} == {851}


def test_sweep_figures_equal_the_loaded_models(cifar: str) -> None:
    for p in sweep(cifar, {"n": [1, 2], "w": [1, 2]}, jobs=1):
        m = specdsl.load(cifar, params=p.values)
        t = m.totals
        assert (p.params, p.macs, p.peak_bytes, p.figures["nodes"]) == (t.params, t.macs, t.peak_bytes,
                                                                          len(m.graph.nodes))


def test_the_resnet20_budget_question_is_one_command(cifar: str, capsys) -> None:
    # "The biggest ResNet-20 variant under 500k parameters and 80 M MACs" (README).
    assert main(["sweep", cifar, "--param", "n=3", "--param", "w=1.0:2.0", "--sample", "64", "--where",
                 "params <= 500k and macs <= 80M", "--objective", "params:max", "--top", "1", "--json",
                 "--jobs", "1"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["params"] <= 500_000 and row["macs"] <= 80_000_000 and 1.0 <= row["w"] <= 2.0
    grid = sweep(cifar, {"n": [3], "w": [k / 64 for k in range(64, 129)]}, jobs=1)  # Sobol hits each 1/64
    assert row["params"] == max(p.params for p in grid if p.params <= 500_000 and p.macs <= 80_000_000)


def test_the_resnet20_budget_question_is_one_call(cifar: str) -> None:
    points = sweep(cifar, {"n": [3], "w": [1, 2, 3, 4]}, where="params <= 500k and macs <= 80M",
                   objectives=["params:max"], jobs=1)
    kept = [p for p in points if p.feasible]
    assert [p.values["w"] for p in kept] == [1]  # ResNet-20: 272,474 parameters, 40.8 M MACs
    assert best(points, 1, objectives_of(["params:max"]))[0].values == {"n": 3, "w": 1}
    assert kept[0].params == 272_474  # He et al.'s 0.27 M


def test_where_with_units_and_train_peak(cifar: str) -> None:
    points = sweep(cifar, {"w": [1, 4]}, where="train_peak(batch=64, amp='bf16') <= 300MiB", jobs=1)
    peaks = [p.figures["train_peak_0"] for p in points]
    assert peaks[0] < peaks[1]
    assert [p.feasible for p in points] == [peak <= 300 * 2**20 for peak in peaks]
    m = specdsl.load(cifar, params={"w": 4})
    assert peaks[1] == m.train_memory(64, amp="bf16").peak


@pytest.mark.parametrize(("where", "message", "col"), [
    ("parms <= 5e6", "'parms', which is neither a figure nor a parameter", 1),
    ("params <= 5e6 and macs", "`and` needs true or false; received 40813184", 1),
    ("params + macs", "is a condition, true or false", 1),
    ("params <= ", "is not an expression", 1),
    ("params <= 1 and train_peak(batch=0) <= 1", "batch is a positive integer", 17),
])
def test_a_bad_condition_is_a_located_error(cifar: str, where: str, message: str, col: int) -> None:
    with pytest.raises(SpecError) as info:
        sweep(cifar, {"w": [1]}, where=where, jobs=1)
    d = info.value.errors[0]
    assert d.code == "E376" and message in d.message
    assert d.loc is not None and d.loc.file == "--where" and d.loc.col == col


def test_objectives_choose_the_front_and_top_k(cifar: str) -> None:
    points = sweep(cifar, {"n": [1, 2, 3], "w": [1, 2]}, objectives=["macs", "nodes:max"], jobs=1)
    front = [p.values for p in points if p.pareto]
    assert front == [{"n": n, "w": 1} for n in (1, 2, 3)]  # w=2 only costs MACs at the same depth
    goals = objectives_of(["macs", "nodes:max"])
    top = best(points, 4, goals)
    assert [p.values for p in top[:3]] == sorted(front, key=lambda v: v["n"]) and top[3].values["w"] == 2


def test_values_come_back_typed_in_json_and_csv(cifar: str, capsys) -> None:
    assert main(["sweep", "efficientnet", "--param", "width=1.0,1.1", "--param", "resolution=224", "--json",
                 "--jobs", "1"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["width"] == 1.0 and isinstance(rows[0]["width"], float) and rows[0]["resolution"] == 224
    assert rows[0]["rf_global"] is True and isinstance(rows[0]["macs"], int)
    assert main(["sweep", cifar, "--param", "w=1,2", "--csv", "--where", "params <= 2M", "--jobs", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("w,params,") and lines[1].startswith("1.0,272474,") and len(lines) == 3


def test_cli_where_top_and_message(cifar: str, capsys) -> None:
    assert main(["sweep", cifar, "--param", "n=1..3", "--param", "w=1,2", "--where", "params <= 1M",
                 "--top", "2", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "5 of 6 points meet --where, the best 2 shown" in out
    assert main(["sweep", cifar, "--param", "w=1", "--where", "prams < 1", "--jobs", "1"]) == 1
    err = capsys.readouterr().err
    assert "--where:1:1: error E376" in err and "did you mean 'params'?" in err


def test_ranges_and_samplers() -> None:
    assert parse_range("0.5:2.0") == Range(0.5, 2.0, False) and parse_range("1..4") == Range(1, 4, True)
    assert parse_range("1.0") is None
    with pytest.raises(ValueError):
        parse_range("4..1")
    assert grid({"d": Range(1, 3, True)}) == [{"d": 1}, {"d": 2}, {"d": 3}]
    with pytest.raises(SpecError, match="E377"):
        grid({"w": Range(0.5, 2.0, False)})
    axes = {"w": Range(0.5, 2.0, False), "d": Range(1, 4, True), "k": [3, 5]}
    a, b = sample(axes, 64, seed=7), sample(axes, 64, seed=7)
    assert a == b and a != sample(axes, 64, seed=8)
    assert all(0.5 <= p["w"] <= 2.0 and p["d"] in (1, 2, 3, 4) and p["k"] in (3, 5) for p in a)
    assert {p["d"] for p in a} == {1, 2, 3, 4} and sum(p["k"] == 3 for p in a) == 32  # Sobol: even strata
    assert len(sample(axes, 10, sampler="random", seed=1)) == 10


@pytest.mark.parametrize("k", [3, 6])
def test_sobol_stratifies_every_axis(k: int) -> None:
    n = 2 ** k
    points = sobol(n, 12, seed=5)
    for d in range(12):
        assert sorted(int(p[d] * n) for p in points) == list(range(n))
    for a in range(k + 1):  # the first two axes form a (0, k, 2)-net
        assert len({(int(p[0] * 2 ** a), int(p[1] * 2 ** (k - a))) for p in points}) == n


def test_sampled_sweep_on_the_command_line(capsys) -> None:
    assert main(["sweep", "efficientnet", "--param", "width=0.5:1.5", "--param", "depth=1..2", "--sample", "4",
                 "--seed", "3", "--json", "--jobs", "1"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 4 and all(isinstance(r["width"], float) and r["depth"] in (1.0, 2.0) for r in rows)


def test_params_lists_a_family(capsys) -> None:
    assert main(["params", "efficientnet"]) == 0
    out = capsys.readouterr().out
    assert "width        float  1.0" in out and "efficientnet_b3: width=1.2, depth=1.4" in out
    assert "train_peak(batch=N" in out
    assert main(["params", "resnet", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["params"]["bottleneck"] == {"kind": "bool", "default": True}
    assert found["variants"]["resnet18"]["n1"] == 2 and "macs" in found["figures"]


@pytest.mark.parametrize(("family", "axes"), [
    ("resnet", {"n1": [1, 3], "n2": [2, 4], "bottleneck": [True, False]}),
    ("efficientnet", {"width": [1.0, 1.2], "depth": [1.0, 1.4], "resolution": [224, 240]}),
    ("regnet", {"d2": [1, 3], "d3": [2, 6], "se_ratio": [0.0, 0.25]}),
    ("densenet", {"n1": [2, 6], "growth": [12, 32]}),
    ("mobilenet_v3", {"large": [True, False], "width": [0.75, 1.0]}),
])
def test_replayed_block_calls_give_every_point_the_same_figures(family: str, axes: dict,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep replays a block call seen before (specdsl.blocks.memo); without the memo every call
    expands, and the figures of every point are the same, rejected points included."""
    from specdsl.blocks.memo import CallMemo, LayerCache

    where = "train_peak(batch=8) > 0"
    replayed = sweep(family, axes, where=where, jobs=1)
    monkeypatch.setattr(CallMemo, "key", lambda self, *args: None)
    monkeypatch.setattr(LayerCache, "get", lambda self, *args: None)
    expanded = sweep(family, axes, where=where, jobs=1)
    assert [(p.values, p.figures, p.error) for p in replayed] == [(p.values, p.figures, p.error) for p in expanded]


def test_the_layer_cache_keys_every_name_a_layer_mentions_by_value_and_type() -> None:
    """A sweep's layers substituted and parsed once (specdsl.blocks.memo.LayerCache): found again only for
    an equal layer at the same place with every name it mentions equal in value and type, present or not."""
    from specdsl.blocks.memo import LayerCache

    cache = LayerCache()
    raw = {"conv": {"out": "c * width", "k": "k"}}
    src = ("blocks", "b", "layers", 0)
    assert cache.get(raw, src, {"c": 8, "width": 2, "k": 3}) is None
    cache.keep({"conv": {"out": 16, "k": 3}}, "spec")
    assert cache.get(dict(raw), src, {"c": 8, "width": 2, "k": 3, "other": 1}) == ({"conv": {"out": 16, "k": 3}},
                                                                                   "spec")
    assert cache.get(raw, src, {"c": 8, "width": 2.0, "k": 3}) is None  # 2 == 2.0, but not the same type
    assert cache.get(raw, src, {"c": 8, "width": True, "k": 3}) is None
    assert cache.get(raw, src, {"c": 8, "width": 2}) is None  # k absent: a word, not a number
    assert cache.get(raw, ("layers", 0), {"c": 8, "width": 2, "k": 3}) is None  # another place
    assert cache.get({"conv": {"out": "c * width", "k": 5}}, src, {"c": 8, "width": 2, "k": 3}) is None
    assert cache.get(raw, src, {"c": [8], "width": 2, "k": 3}) is None  # a list: not keyed, substituted
    assert cache.pending is None


def test_the_layer_cache_never_keeps_a_layer_with_an_error() -> None:
    """Points whose layers fail report their errors each time; a cached layer never hides one."""
    text = ("model m(c=8)\ninput [3, 8, 8]\nlayers {\n  conv(c, k=3)\n  conv(c, k=3, pad=c // 0 if c > 8 else 1)\n"
            "  gap\n  linear(10)\n}\n")
    points = sweep(text, {"c": [8, 16, 4, 24, 2]}, jobs=1)
    assert [p.ok for p in points] == [True, False, True, False, True]
    assert [p.error[:4] for p in points if not p.ok] == ["E320", "E320"]


def test_the_memo_replays_repeated_calls_within_and_across_points() -> None:
    from specdsl.blocks import memo as memo_module

    seen: list[int] = []
    original = memo_module.CallMemo.replay

    def counting(self, *args):
        found = original(self, *args)
        seen.append(found is not None)
        return found

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(memo_module.CallMemo, "replay", counting)
        sweep("resnet", {"n3": [2, 6, 12]}, jobs=1)
    assert sum(seen) > len(seen) / 3  # units repeat within a stage and across points


def test_sweep_and_check_never_import_optuna_or_ray() -> None:
    import subprocess
    import sys

    code = ("import sys; from specdsl.cli.main import main; "
            "main(['sweep', 'resnet', '--param', 'n1=1,2', '--where', 'params < 1e9', '--jobs', '1']); "
            "main(['check', 'resnet18']); import specdsl.search; "
            "assert not {'optuna', 'ray', 'torch'} & set(sys.modules), sorted({'optuna', 'ray', 'torch'} & "
            "set(sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize(("family", "first", "second"), [
    ("resnet", {"n3": 2}, {"n3": 6}),
    ("efficientnet", {"depth": 1.0}, {"depth": 1.0, "resolution": 240}),
    ("regnet", {"d3": 2}, {"d3": 4}),
])
def test_a_replayed_graph_is_the_expanded_graph(family: str, first: dict, second: dict) -> None:
    """Node by node: ops, arguments, inputs, paths, shapes and receptive fields (recomputed on replay);
    a dropout's p only as the figures see it (0, 1 or between: a replayed MBConv keeps the first's)."""
    from specdsl.api import read_data, read_source
    from specdsl.blocks.engine import expand_with_shapes
    from specdsl.blocks.memo import CallMemo
    from specdsl.ops import lookup
    from specdsl.schema.document import validate_document
    from specdsl.schema.params import ParamChoice

    data, smap = read_data(*reversed(read_source(family)))
    memo = CallMemo()

    def graph(values: dict, memo: CallMemo | None) -> list[tuple]:
        spec = validate_document(data, smap, ParamChoice(None, values))
        g, shapes, rfs = expand_with_shapes(spec, memo=memo)
        return [(n.op, seen_args(n), n.inputs, n.path, s.shape, type(rf), rf) for n, s, rf in zip(g.nodes, shapes, rfs)]

    def seen_args(node: Any) -> Any:
        rule = lookup(node.op)
        if rule is None or rule.family != "dropout":
            return node.args
        rest = {k: v for k, v in node.args.model_dump().items() if k != "p"}
        return type(node.args), rest, node.args.p == 0, node.args.p == 1

    graph(first, memo)
    assert memo.entries
    assert graph(second, memo) == graph(second, None)


def _load_figures(source: str, values: dict, where_peak: bool) -> tuple[dict, str | None]:
    """A point's figures the long way: specdsl.load (no memo, no cache), or its first error's code."""
    from specdsl.sweep import point_figures, train_peak

    try:
        m = specdsl.load(source, params=values, warn=False)
    except SpecError as exc:
        return {}, exc.errors[0].code
    figures = point_figures(m.analysis, len(m.graph.nodes))
    if where_peak:
        call = objectives_of(["train_peak(batch=8)"], list(values))[0].expr.calls[0]
        figures[call.name] = train_peak(m.graph, m.analysis, call)
    return figures, None


# A block whose drop rate is its only use of `i` and `q` (keyed by p's class), one whose `i` also sets
# a width (keyed by value), one whose p reads a repeat's copy number (never keyed by class).
TOY = """model toy(q=0.1, n=2)
input [3, 16, 16]
block drop_only(c: int, i: int) {
    conv(c, k=3, pad=1) -> relu
    dropout(q * i)
}
block drop_and_width(c: int, i: int) {
    conv(c * (1 + i % 2), k=1) -> relu
    stochastic_depth(q * i, mode=row)
}
block copies(c: int) {
    conv(c, k=1) -> dropout(q * j) x(n, j)
}
layers {
    drop_only(8, i=0)
    drop_only(8, i=1) x(3)
    drop_and_width(8, i=1)
    drop_and_width(8, i=2)
    drop_and_width(8, i=3)
    copies(8) x(2)
    gap
    linear(10)
}
"""


@pytest.mark.parametrize(("source", "axes"), [
    ("efficientnet", {"width": [1.0, 1.1], "depth": [1.0, 1.2, 1.6], "resolution": [224, 240],
                      "sd": [0.0, 0.2, 5.0]}),
    ("resnet", {"n1": [1, 2], "n2": [1, 3], "n3": [2, 5]}),
    (TOY, {"q": [0.0, 0.1, 0.3, 0.5, 1.0, 2.0], "n": [1, 3]}),
])
def test_every_point_has_the_figures_load_gives(source: str, axes: dict) -> None:
    """The sweep's memo (dropout p keyed by class) and figure cache change no figure of any point, the
    training peak (which reads p == 0) included; a point whose p leaves [0, 1] is rejected as load rejects it."""
    points = sweep(source, axes, where="train_peak(batch=8) > 0", jobs=1)
    assert any(p.ok for p in points)
    for p in points:
        figures, code = _load_figures(source, p.values, True)
        if code is not None:
            assert p.error is not None and p.error.startswith(code), (p.values, p.error, code)
        else:
            assert p.error is None and p.figures == figures, p.values


def test_mbconv_calls_replay_across_their_block_index() -> None:
    """EfficientNet's MBConv reads its index `i` (and `depth`) only in its stochastic depth's p."""
    from specdsl.blocks import memo as memo_module

    replayed: list[str] = []
    original = memo_module.CallMemo.replay

    def counting(self, ex, key, *args):
        found = original(self, ex, key, *args)
        if found is not None:
            replayed.append(key.exact[0])
        return found

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(memo_module.CallMemo, "replay", counting)
        sweep("efficientnet", {"depth": [1.0, 1.2]}, jobs=1)
    assert replayed.count("mbconv") >= 10


def test_what_a_block_reads_only_in_a_drop_rate() -> None:
    from specdsl.api import read_data, read_source
    from specdsl.blocks.memo import CallMemo
    from specdsl.schema.document import validate_document
    from specdsl.schema.params import ParamChoice

    data, smap = read_data(*reversed(read_source(TOY)))
    blocks = validate_document(data, smap, ParamChoice(None, {})).blocks
    memo = CallMemo()
    assert memo._reads(blocks, "drop_only").neutral == {"q", "i"}
    assert memo._reads(blocks, "drop_and_width").neutral == {"q"}  # i also sets a width
    assert memo._reads(blocks, "copies").neutral == frozenset()  # p reads the copy number j


def test_the_front_is_the_set_no_key_dominates() -> None:
    """_front (sorted, compared with the front so far) against every pair compared, ties and NaN included."""
    import random

    from specdsl.sweep import _dominates, _front

    rng = random.Random(28)
    for trial in range(300):
        dims = rng.randint(1, 4)
        keys = {i: tuple(float(rng.randint(0, 4)) for _ in range(dims)) for i in range(rng.randint(0, 30))}
        if trial % 10 == 0 and keys:
            keys[0] = (float("nan"),) * dims
        brute = {i for i, key in keys.items() if not any(_dominates(k, key) for j, k in keys.items() if j != i)}
        assert _front(keys) == brute, keys

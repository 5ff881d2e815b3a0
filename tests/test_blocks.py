"""Blocks: expansion into primitives, the modern-CNN zoo, RF across branches, reports by block."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import specdsl
from specdsl.cli.main import main
from specdsl.errors import SpecError, render_all

GOLDEN = Path(__file__).parent / "golden_blocks"
CASES = sorted(p.stem for p in GOLDEN.glob("*.yaml"))
UPDATE = os.environ.get("SPECDSL_UPDATE_GOLDEN") == "1"

# torchvision's published figures: params, MACs (conv + linear, bias excluded).
ZOO = {
    "resnet18": (11_689_512, 1_814_073_344),
    "resnet34": (21_797_672, 3_663_761_408),
    "resnet50": (25_557_032, 4_089_184_256),
    "resnet101": (44_549_160, 7_801_405_440),
    "resnet152": (60_192_808, 11_513_626_624),
    "densenet121": (7_978_856, 2_834_161_664),
    "densenet169": (14_149_480, 3_359_843_328),
    "densenet201": (20_013_928, 4_291_365_888),
    "googlenet": (6_624_904, 1_498_376_192),
    "inception_v3": (23_834_568, 5_713_216_096),
    "mobilenet_v2": (3_504_872, 300_774_272),
    "squeezenet1_0": (1_248_424, 818_924_576),
    "r3d_18": (33_371_472, 40_696_553_472),
}
RESNET_RF = {
    "resnet18": (435, 32, 217),
    "resnet34": (899, 32, 449),
    "resnet50": (427, 32, 213),
    "resnet101": (971, 32, 485),
    "resnet152": (1451, 32, 725),
}


def model(text: str) -> specdsl.Model:
    return specdsl.load(text)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_matches_torchvision(name: str) -> None:
    m = specdsl.load(name, warn=False)  # the zoo's warnings are asserted in test_zoo.py
    assert (m.totals.params, m.totals.macs) == ZOO[name]
    assert not [d for d in m.diagnostics if d.is_error]


def test_fractalnet_params() -> None:
    m = specdsl.load("fractalnet_cifar10")
    assert m.totals.params == 33_724_618
    assert m.graph.input_shape == (3, 32, 32)


@pytest.mark.parametrize("name", ["unet", "timeseries_cnn"])
def test_own_designs_check_cleanly(name: str) -> None:
    m = specdsl.load(name)
    assert m.diagnostics == []
    assert m.totals.params > 0


def test_unet_output_matches_input_size() -> None:
    m = specdsl.load("unet")
    assert m.rows()[-1][1].shape == (2, 128, 128)


@pytest.mark.parametrize("name", sorted(RESNET_RF))
def test_resnet_receptive_fields(name: str) -> None:
    rf = specdsl.load(name).node("layer4")[1].rf
    assert rf is not None
    assert {(a.size, a.stride, a.pad) for a in rf} == {RESNET_RF[name]}


def _projections(m: specdsl.Model) -> list[str]:
    return sorted({n.path.rsplit(".downsample", 1)[0] for n in m.graph.nodes if ".downsample[" in n.path})


def test_auto_shortcuts_where_torchvision_puts_them() -> None:
    # BasicBlock nets: a downsample in the first block of stages 2-4.
    r18 = _projections(specdsl.load("resnet18"))
    assert len(r18) == 3
    # Bottleneck nets: also the first block of stage 1 (64 -> 256 channels).
    for name in ("resnet50", "resnet101", "resnet152"):
        assert len(_projections(specdsl.load(name))) == 4
    # Every projection is a 1x1 conv without bias followed by batch norm.
    m = specdsl.load("resnet50")
    for node in m.graph.nodes:
        if node.path.endswith(".downsample[0]"):  # torchvision's name: layer1.0.downsample.0
            assert node.op == "conv"
            assert node.args.k == 1 and node.args.bias is False
        if node.path.endswith(".downsample[1]"):
            assert node.op == "bn"


def test_projection_takes_the_body_stride() -> None:
    m = model("""
model: m
input: [16, 32, 32]
layers:
  - residual:
      body:
        - conv: {out: 32, k: 3, stride: 2, pad: 1}
      shortcut: auto
""")
    conv = next(n for n in m.graph.nodes if n.path == "[0].downsample[0]")
    assert m.analysis.figures[conv.index].attrs.stride == (2, 2)
    assert m.rows()[-1][1].shape == (32, 16, 16)


def test_identity_if_same_drops_the_shortcut_when_shapes_change() -> None:
    text = """
model: m
input: [16, 8, 8]
layers:
  - residual: {body: [{conv: {out: OUT, k: 1}}], shortcut: identity_if_same}
"""
    same = model(text.replace("OUT", "16"))
    changed = model(text.replace("OUT", "24"))
    assert [n.op for n in same.graph.nodes] == ["input", "conv", "add"]
    assert [n.op for n in changed.graph.nodes] == ["input", "conv"]


def test_dense_block_channel_arithmetic() -> None:
    m = model("""
model: m
input: [8, 16, 16]
layers:
  - dense: {n: 3, growth: 4, bottleneck: 4}
  - transition: {theta: 0.5}
""")
    convs = [(n.path, m.analysis.figures[n.index].attrs.in_channels) for n in m.graph.nodes
             if n.op == "conv" and n.path.endswith("conv1")]
    # Layer i sees the block input plus i earlier outputs of k = 4 channels each.
    assert [c for _, c in convs] == [8, 12, 16]
    shapes = {n.path: m.analysis.figures[n.index].shape for n in m.graph.nodes}
    assert shapes["[0].cat"] == (8 + 3 * 4, 16, 16)
    assert shapes["[1].pool"] == (10, 8, 8)  # floor(20 * 0.5) channels, 2x2 average pool


def test_dense_block_without_bottleneck() -> None:
    m = model("model: m\ninput: [8, 8, 8]\nlayers:\n  - dense: {n: 2, growth: 5, bottleneck: null}\n")
    assert m.rows()[-1][1].shape == (18, 8, 8)
    assert sum(1 for n in m.graph.nodes if n.op == "conv") == 2


def test_dense_layer_names_template() -> None:
    m = model("model: m\ninput: [8, 8, 8]\nlayers:\n  - dense: {n: 2, growth: 4, layer_names: 'denselayer{i + 1}'}\n"
              "    name: denseblock1\n")
    assert [n.path for n in m.graph.nodes if n.op == "conv"] == [
        "denseblock1.denselayer1.conv1", "denseblock1.denselayer1.conv2",
        "denseblock1.denselayer2.conv1", "denseblock1.denselayer2.conv2"]
    with pytest.raises(SpecError) as info:  # a template without the index names every layer alike
        specdsl.load("model: m\ninput: [8, 8, 8]\nlayers:\n  - dense: {n: 2, growth: 4, layer_names: same}\n")
    assert info.value.diagnostics[0].code == "E315"


@pytest.mark.parametrize("columns", [1, 2, 3, 4, 5])
def test_fractal_has_2_pow_c_minus_1_base_blocks(columns: int) -> None:
    m = model(f"""
model: m
input: [4, 8, 8]
layers:
  - fractal: {{columns: {columns}, base: [{{conv: {{out: 4, k: 3, pad: 1}}}}, bn, relu]}}
""")
    convs = [n for n in m.graph.nodes if n.op == "conv"]
    assert len(convs) == 2**columns - 1
    joins = [n for n in m.graph.nodes if n.op == "join"]
    # Joins sit after every second block of the deepest column: 2^(C-2) of them (FractalNet, fig. 1).
    assert len(joins) == (2 ** (columns - 2) if columns > 1 else 0)
    # Every column is named after its depth; column c holds 2^(c-1) base blocks.
    for c in range(1, columns + 1):
        assert len({n.path.split(".col")[1].split("]")[0] for n in convs if f".col{c}[" in n.path}) == 2 ** (c - 1)
    if joins:
        final = joins[-1]
        assert len(final.inputs) == columns
        assert final.args.columns == sorted(final.args.columns, reverse=True)
        assert final.args.drop_local == 0.15 and final.args.drop_global == 0.5


def test_fractal_column_limit_is_checked_before_expanding() -> None:
    with pytest.raises(SpecError) as info:
        model("model: m\ninput: [4, 8, 8]\nlayers:\n  - fractal: {columns: 40, base: [relu]}\n")
    assert info.value.errors[0].code in ("E205", "E330")


def test_inception_concatenates_named_branches() -> None:
    m = model("""
model: m
input: [16, 8, 8]
layers:
  - inception:
      branches:
        a: [{conv: {out: 4, k: 1}}]
        b: [{conv: {out: 6, k: 3, pad: 1}}, relu]
        c: [{maxpool: {k: 3, stride: 1, pad: 1}}]
""")
    assert m.rows()[-1][1].shape == (4 + 6 + 16, 8, 8)
    assert {n.path for n in m.graph.nodes} >= {"[0].a[0]", "[0].b[1]", "[0].c[0]", "[0].concat"}


def test_user_blocks_expressions_defaults_and_repeat() -> None:
    m = model("""
model: m
input: [3, 32, 32]
blocks:
  unit:
    params: {c: int, mult: 2, stride: 1}
    layers:
      - conv: {out: c * mult, k: 3, stride: stride, pad: (3 - 1) // 2}
      - relu
layers:
  - unit: 4
  - unit: {c: 8, stride: 2}
    repeat: 3
    name: last
""")
    assert m.shape("last") == (16, 4, 4)
    assert m.shape("[0][0]") == (8, 32, 32)
    paths = [n.path for n in m.graph.nodes if n.op == "conv"]
    # A block call is a container; `as last` on a repeat is the container of its copies.
    assert paths == ["[0][0]", "last[0][0]", "last[1][0]", "last[2][0]"]


def test_blocks_with_several_inputs_and_skip_connections() -> None:
    m = specdsl.load("unet")
    concats = [n for n in m.graph.nodes if n.op == "concat"]
    assert len(concats) == 4
    for node in concats:
        a, b = (m.analysis.figures[i].shape for i in node.inputs)
        assert a[1:] == b[1:]


def test_names_are_scoped_to_their_block() -> None:
    m = model("""
model: m
input: [4, 8, 8]
blocks:
  twice:
    layers:
      - conv: {out: 4, k: 1}
        name: inner
      - add:
        inputs: [inner, input]
layers:
  - twice
  - twice
""")
    adds = [n for n in m.graph.nodes if n.op == "add"]
    assert adds[0].inputs == (1, 0)
    assert adds[1].inputs == (3, 2)


def test_frozen_block_freezes_every_node() -> None:
    m = model("""
model: m
input: [3, 8, 8]
layers:
  - residual: {body: [{conv: {out: 3, k: 3, pad: 1}}, bn]}
    frozen: true
  - conv: {out: 2, k: 1}
""")
    assert m.totals.frozen == 3 * 3 * 9 + 3 + 6
    assert m.totals.trainable == 3 * 2 + 2


def test_receptive_field_is_the_largest_over_branches() -> None:
    m = model("""
model: m
input: [4, 32, 32]
layers:
  - inception:
      branches:
        small: [{conv: {out: 4, k: 1}}]
        large: [{conv: {out: 4, k: 5, pad: 2}}, {conv: {out: 4, k: 5, pad: 2}}]
""")
    rf = m.rows()[-1][1].rf
    assert rf is not None and rf[0].size == 9 and rf[0].pad == 4


def test_resnet_merges_are_aligned() -> None:
    for name in ("resnet18", "resnet50", "densenet121", "googlenet"):
        assert not [d for d in specdsl.load(name).diagnostics if d.code == "W320"], name


def test_depth_report_collapses_blocks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "resnet50", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    rows = [line.split()[:2] for line in lines[5:lines.index(lines[1], 5)]]
    # torchvision's modules: the stem, four stages (their units folded in), the pool and the head
    assert rows == [["conv1", "conv"], ["bn1", "bn"], ["relu", "relu"], ["maxpool", "maxpool"],
                    ["layer1", "stage"], ["layer2", "stage"], ["layer3", "stage"], ["layer4", "stage"],
                    ["avgpool", "gap"], ["fc", "linear"]]
    assert "25,557,032" in out


def test_depth_subtotals_add_up() -> None:
    from specdsl.render.table import rows

    m = specdsl.load("densenet121")
    assert sum(r.params for r in rows(m, depth=1)) == m.totals.params
    assert sum(r.macs for r in rows(m, depth=1)) == m.totals.macs


@pytest.mark.parametrize("name", CASES)
def test_block_error_golden(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.chdir(GOLDEN)
    try:
        m = specdsl.load(f"{name}.yaml", warn=False)  # its warnings are in the golden file
        actual = render_all(m.diagnostics, m.sources, full=True) + "\n"
    except SpecError as exc:
        actual = exc.render(full=True) + "\n"
    expected = GOLDEN / f"{name}.out"
    if UPDATE:
        expected.write_text(actual, encoding="utf-8")
    assert actual == expected.read_text(encoding="utf-8")


def test_errors_deep_in_a_block_point_at_the_block_with_the_expansion_path() -> None:
    with pytest.raises(SpecError) as info:
        specdsl.load(str(GOLDEN / "error_inside_block.yaml"))
    (diag,) = info.value.errors
    assert diag.loc is not None and diag.loc.line == 7
    assert diag.path == "[0][0]"
    assert any("while expanding block 'unit'" in n for n in diag.notes)


# ---------------------------------------------------------------- the block table and the passes


def test_block_table_drives_the_schema_and_the_names() -> None:
    from specdsl.blocks.registry import BLOCKS, BODY_BLOCKS
    from specdsl.schema.document import BUILTIN_BLOCKS, BlockDef
    from specdsl.schema.jsonschema import json_schema

    assert BUILTIN_BLOCKS == tuple(BLOCKS)
    assert all(name == rule.name for name, rule in BLOCKS.items())
    rules = json_schema()["$defs"]["Layer"]["else"]["allOf"]
    in_schema = {r["if"]["required"][0]: r["then"]["properties"] for r in rules}
    for name, rule in BLOCKS.items():
        entry = in_schema[name][name]
        assert entry["then"] == {"$ref": f"#/$defs/{rule.args.__name__}"}
        assert (entry["else"]["else"]["type"] == "array") == rule.list_form
    assert set(BlockDef.model_fields) == {"params", "inputs", "layers", "outputs", *BODY_BLOCKS}
    assert "stage" not in BODY_BLOCKS


def test_analysis_from_the_expanders_shapes_equals_a_fresh_run() -> None:
    from specdsl.api import parse
    from specdsl.blocks.engine import expand_with_shapes
    from specdsl.passes.analysis import analyze
    from specdsl.passes.receptive import receptive_fields
    from specdsl.passes.shapes import infer_shapes
    from specdsl.schema.params import ParamChoice

    m = specdsl.load("resnet18")
    spec = parse(m.sources[m.file], m.file, choice=ParamChoice("resnet18"))  # a variant of resnet.cnn
    graph, shapes, rfs = expand_with_shapes(spec)
    fresh = infer_shapes(graph)
    assert [(s.shape, s.attrs, s.failed) for s in shapes] == [(s.shape, s.attrs, s.failed) for s in fresh]
    assert rfs == receptive_fields(graph, fresh)
    handed, alone = analyze(graph, shapes=shapes, rfs=rfs), analyze(graph)
    assert handed.figures == alone.figures == m.analysis.figures
    assert handed.totals == alone.totals == m.totals


def test_analysis_reports_shape_problems_once_in_node_order() -> None:
    m = specdsl.load("model: m\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 4, k: 9}\n  - relu\n"
                     "  - conv: {out: 4, k: 3, in: 5}\n    inputs: [input]\n", strict=False)
    # The relu fails silently: its input's error explains it.
    assert [(d.code, d.path) for d in m.diagnostics] == [("E304", "[0]"), ("E302", "[2]")]
    assert [f.failed for _, f in m.rows()] == [False, True, True, True]


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(module, at run time) of every absolute import in a file; `if TYPE_CHECKING:` ones are not."""
    import ast

    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, runtime: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                visit(child, False)
                continue
            if isinstance(child, ast.Import):
                found.extend((a.name, runtime) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module:
                found.extend((f"{child.module}.{a.name}", runtime) for a in child.names)
                found.append((child.module, runtime))
            visit(child, runtime)

    visit(ast.parse(path.read_text(encoding="utf-8")), True)
    return found


def test_block_modules_and_passes_import_no_cycles() -> None:
    root = Path(specdsl.__file__).parent
    blocks = [p for p in (root / "blocks").glob("*.py") if p.stem not in ("__init__", "engine")]
    for path in blocks:
        runtime = {m for m, at_run_time in _imports(path) if at_run_time}
        assert "specdsl.blocks.engine" not in runtime, path
        if path.stem not in ("user",):
            assert not any(m.startswith("specdsl.schema.document") for m in runtime), path
    for path in (root / "passes").glob("*.py"):
        assert not any(m.startswith(("specdsl.blocks", "specdsl.schema")) for m, _ in _imports(path)), path
    for path in (root / "schema").glob("*.py"):
        runtime = {m for m, at_run_time in _imports(path) if at_run_time}
        assert not any(m.startswith(("specdsl.blocks.engine", "specdsl.passes")) for m in runtime), path


def test_a_new_block_is_one_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    from specdsl.blocks.base import BlockRule
    from specdsl.blocks.registry import BLOCKS
    from specdsl.ops.rule import Args, PositiveInt

    class TwiceArgs(Args):
        out: PositiveInt

    def expand(ex, spec, src, out, x, frame):
        args = ex.validate(TwiceArgs, spec.raw_args, src, frame, "'twice'")
        if args is None:
            return None
        for i in range(2):
            x = ex.prim("conv", (x,), f"{out}.conv{i}", frame, spec.loc, out=args.out, k=3, pad=1)
        return ex.prim("add", (x, ex.prim("conv", (x,), f"{out}.skip", frame, spec.loc, out=args.out, k=1)),
                       f"{out}.add", frame, spec.loc)

    monkeypatch.setitem(BLOCKS, "twice", BlockRule("twice", TwiceArgs, expand, lambda raw, nested: 4, doc="test"))
    m = model("model: m\ninput: [3, 8, 8]\nlayers:\n  - twice: {out: 5}\n    repeat: 2\n")
    assert [n.path for n in m.graph.nodes][-4:] == ["[1].conv0", "[1].conv1", "[1].skip", "[1].add"]
    assert m.graph.blocks == {"[0]": "twice", "[1]": "twice"}
    with pytest.raises(SpecError) as info:
        model("model: m\ninput: [3, 8, 8]\nlayers:\n  - twice: {out: 0}\n")
    assert [d.code for d in info.value.errors] == ["E205"]

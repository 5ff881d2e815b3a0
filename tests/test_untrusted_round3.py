"""Untrusted input, round three (issue 30): the surfaces the last month added.

Defence in depth for emitted source: the allowlist accepts what the emitter writes and nothing
else, so code that would run on import (an argument default) or reach past torch's tensor API
(torch.ops, torch.utils.cpp_extension, torch.hub, a tensor's tofile) fails it even though no
spec can produce it today.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from specdsl.backends.torch.safety import problems

HEADER = "import torch\nfrom torch import nn\n\n\nclass M(nn.Module):\n"


def _module(body: str) -> str:
    return HEADER + "".join(f"    {line}\n" for line in body.splitlines())


@pytest.mark.parametrize(("body", "needle"), [
    ('def forward(self, x=torch.save(0, "PWNED")):\n    return x', "default that is not a constant"),
    ("def forward(self, *, x=len):\n    return x", "default that is not a constant"),
    ('def forward(self, x):\n    torch.ops.load_library("evil.so")\n    return x', "torch.ops.load_library"),
    ('def forward(self, x):\n    torch.utils.cpp_extension.load_inline("m", "")\n    return x',
     "torch.utils.cpp_extension.load_inline"),
    ('def forward(self, x):\n    torch.hub.list("a/b")\n    return x', "torch.hub.list"),
    ("def forward(self, x):\n    self.apply(torch.save)\n    return x", "reference to torch.save"),
    ('def forward(self, x):\n    x.tofile("/tmp/p")\n    return x', "method .tofile()"),
    ("def forward(self, x):\n    f = torch.ops\n    return x", "reference to torch.ops"),
    ("def forward(self, x):\n    return nn.modules.module.Module(x)", "nn.modules.module.Module"),
])
def test_the_allowlist_refuses_what_the_emitter_never_writes(body: str, needle: str) -> None:
    found = problems(_module(body))
    assert any(needle in p for p in found), found


@pytest.mark.parametrize("body", [
    "def __init__(self, c: int = 4, scale: float = -0.5, name: str = 'x', ks=(3, 3)):\n    super().__init__()\n"
    "    self.conv1 = nn.Conv2d(c, c, 3)\n    nn.init.kaiming_normal_(self.conv1.weight, mode='fan_out')",
    "def forward(self, x):\n    y = torch.cat([x, x], dim=1)\n    return self.conv1(y).flatten(1)",
    "def forward(self, x):\n    return torch.nn.functional.interpolate(x, size=x.shape[2:], mode='nearest')",
    "def forward(self, x):\n    return x.permute(0, 2, 3, 1).reshape(x.size(0), -1)",
])
def test_the_allowlist_accepts_the_emitters_own_forms(body: str) -> None:
    assert problems(_module(body)) == []


# -- a full disk while writing -------------------------------------------------------------

def _disk_full(*_: object) -> None:
    import errno
    import os

    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch) -> None:
    import os

    from specdsl.atomic import replace_file

    target = tmp_path / "m.safetensors"
    target.write_bytes(b"old")
    monkeypatch.setattr(os, "fsync", _disk_full)
    with pytest.raises(OSError) as caught:
        replace_file(target, b"new")
    assert caught.value.filename == str(target) and "No space left" in str(caught.value)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]  # no temporary file left


@pytest.mark.parametrize("argv", [["export", "lenet5", "-o", "OUT/m.safetensors"],
                                  ["build", "lenet5", "-o", "OUT/m.py"]])
def test_a_full_disk_is_exit_1_with_a_message(argv: list[str], tmp_path, monkeypatch, capsys) -> None:
    import os

    pytest.importorskip("torch")
    from specdsl.cli.main import main

    argv = [a.replace("OUT", str(tmp_path)) for a in argv]
    monkeypatch.setattr(os, "fsync", _disk_full)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "could not write" in err and "No space left on device" in err and "this is a bug" not in err
    assert list(tmp_path.iterdir()) == []


# -- no command writes over a file it reads --------------------------------------------------

@pytest.mark.parametrize("spelling", ["same", "relative", "symlink"])
def test_build_refuses_to_write_over_its_weights(spelling: str, tmp_path, monkeypatch, capsys) -> None:
    import os

    torch = pytest.importorskip("torch")
    import specdsl
    from specdsl.cli.main import main

    monkeypatch.chdir(tmp_path)
    checkpoint = tmp_path / "ck.pt"
    torch.save(specdsl.to_torch("lenet5", seed=0).state_dict(), checkpoint)
    before = checkpoint.read_bytes()
    output = {"same": str(checkpoint), "relative": "./sub/../ck.pt", "symlink": "link.pt"}[spelling]
    (tmp_path / "sub").mkdir()
    if spelling == "symlink":
        os.symlink(checkpoint, tmp_path / "link.pt")
    assert main(["build", "lenet5", "--weights", str(checkpoint), "-o", output]) == 2
    assert "which this command reads" in capsys.readouterr().err
    assert checkpoint.read_bytes() == before


# -- bounded work in expressions -------------------------------------------------------------

def test_round_with_a_huge_digit_count_is_refused_at_once() -> None:
    # Refused before Python computes 10**(10**12) (the time is benchmarks/bench_hostile_inputs.py's).
    from specdsl.blocks.expr import ExprError, evaluate

    with pytest.raises(ExprError, match="round's digits"):
        evaluate("round(4, -1000000000000)", {})
    assert evaluate("round(1234, -2)", {}) == 1200 and evaluate("round(2.675, 2)", {}) == round(2.675, 2)


_NUMBERS = st.one_of(st.integers(-(10**60), 10**60).map(str), st.sampled_from(["9" * 5001, "0", "1e300", "2.5"]),
                     st.integers(-10**13, 10**13).map(str))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(function=st.sampled_from(["min", "max", "round", "floor", "ceil", "int", "abs", "make_divisible"]),
       args=st.lists(_NUMBERS, min_size=1, max_size=3), op=st.sampled_from(["+", "*", "//", "%", "-", "/"]))
def test_every_builtin_is_cheap_or_refused_whatever_its_arguments(function: str, args: list[str], op: str) -> None:
    """Every value an expression makes stays within MAX_MAGNITUDE (or is refused), so no builtin or
    operator can be handed a number whose arithmetic is unbounded."""
    from specdsl.blocks.expr import MAX_MAGNITUDE, ExprError, evaluate

    text = f"{function}({', '.join(args)}) {op} {args[0]}"
    try:
        value = evaluate(text, {})
    except ExprError:
        return
    assert isinstance(value, (int, float)) and abs(value) <= MAX_MAGNITUDE, text[:100]


def test_a_huge_literal_in_a_block_nothing_calls_is_no_crash() -> None:
    import specdsl

    big = "9" * 5001
    text = (f"model: m\ninput: [3, 8, 8]\nblocks:\n  b:\n    params: {{c: int}}\n    layers:\n"
            f"      - conv: {{out: \"c + {big}\", k: 1}}\nlayers:\n  - conv: {{out: 4, k: 1}}\n")
    model = specdsl.load(text, warn=False)
    assert model.totals.params == 16
    used = text.replace("  - conv: {out: 4, k: 1}", "  - b: {c: 2}")
    with pytest.raises(specdsl.SpecError) as caught:
        specdsl.load(used, warn=False)
    message = str(caught.value)  # located, and the 5,001 digits quoted cut
    assert "<string>:7:" in message and "characters)" in message and len(message) < 1000


# -- messages --------------------------------------------------------------------------------

def test_file_names_reach_the_terminal_without_control_characters(tmp_path, monkeypatch, capsys) -> None:
    from specdsl.cli.main import main

    monkeypatch.chdir(tmp_path)
    name = "e\x1b]0;pwned\a.cnn"
    (tmp_path / name).write_text("model m\ninput [3, 8, 8]\nlayers {\n  conv(4,   k=1)\n}\n", encoding="utf-8")
    assert main(["fmt", "--check", name]) == 1
    err = capsys.readouterr().err
    assert "would reformat" in err and "\x1b" not in err and "\a" not in err and "pwned" in err


def test_an_unknown_variant_among_thousands_lists_a_few(tmp_path) -> None:
    import specdsl

    lines = ["model m(a=1)", *(f"variant v{i}(a={i})" for i in range(4000)), "input [3, 8, 8]",
             "layers {", "    conv(a, k=1)", "}"]
    spec = tmp_path / "many.cnn"
    spec.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(specdsl.SpecError) as caught:
        specdsl.load(spec, variant="v40000", warn=False)
    message = caught.value.diagnostics[0].message
    assert "... and 3,988 more" in message and len(message) < 300
    assert "v400" in (caught.value.diagnostics[0].hint or "")  # did you mean 'v4000'?


# -- weight files: every reader has the same guards (diff's NumPy route included) ----------------

def _hostile_weights(tmp_path, name: str) -> str:
    import json
    import os
    import pickle
    import zipfile

    import numpy as np

    path = tmp_path / name
    if name == "object.npz":
        np.savez(path, a=np.array([{"x": 1}], dtype=object))
    elif name == "pickled.npz":
        path.write_bytes(pickle.dumps({"a": 1}))
    elif name == "renamed.npz":
        np.save(tmp_path / "a.npy", np.zeros(3))
        os.replace(tmp_path / "a.npy", path)
    elif name == "truncated.npz":
        np.savez(tmp_path / "whole.npz", a=np.zeros(300))
        path.write_bytes((tmp_path / "whole.npz").read_bytes()[:200])
    elif name == "wrong_keys.npz":
        np.savez(path, zzz=np.zeros(3))
    elif name == "lying.safetensors":
        header = json.dumps({"a": {"dtype": "F32", "shape": [10**5, 10**5], "data_offsets": [0, 4 * 10**10]}})
        path.write_bytes(len(header).to_bytes(8, "little") + header.encode() + bytes(16))
    elif name == "directory.npz":
        path.mkdir()
    elif name == "bomb.npz":  # 1.2 GB of zeros declared in a ~1 MB archive
        import io

        head = io.BytesIO()
        np.lib.format.write_array_header_1_0(head, {"descr": "<f4", "fortran_order": False, "shape": (3 * 10**8,)})
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z, z.open("c1.weight.npy", "w",
                                                                           force_zip64=True) as f:
            f.write(head.getvalue())
            for _ in range(72):
                f.write(bytes(1 << 24))
    elif name == "fifo":
        os.mkfifo(path)
    elif name == "spec.pt":
        path.write_text("# a spec\nmodel m\ninput [3, 8, 8]\nlayers {\n  conv(4, k=1)\n}\n", encoding="utf-8")
    return str(path)


WEIGHT_CASES = {
    "object.npz": "object values", "pickled.npz": "not an .npz", "renamed.npz": "single NumPy array",
    "truncated.npz": "not an .npz", "wrong_keys.npz": "no checkpoint tensor name", "lying.safetensors": "header",
    "directory.npz": "is a directory", "bomb.npz": "declares 1,200,000,000 bytes", "fifo": "FIFO",
    "/dev/zero": "character device", "spec.pt": "is a spec",
}


@pytest.mark.parametrize("name", list(WEIGHT_CASES))
def test_the_numpy_route_refuses_hostile_weight_files_quickly(name: str, tmp_path) -> None:
    import resource

    import specdsl
    from specdsl.backends.numpy.weights import load_weights

    path = name if name.startswith("/") else _hostile_weights(tmp_path, name)
    model = specdsl.load("lenet5", warn=False)
    if name.endswith(".pt"):
        pytest.importorskip("torch")  # a .pt file is read by torch: its import is not the reader's time
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(specdsl.SpecError) as caught:
        load_weights(path, model)
    assert WEIGHT_CASES[name] in str(caught.value)
    assert "Python objects other than tensors" not in str(caught.value)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 200 * 1024  # KiB: nothing inflated


@pytest.mark.parametrize("name", ["fifo", "/dev/zero", "spec.pt", "directory.npz", "pickled.npz"])
# torch.load says so of the hostile pickle before refusing it; the refusal is what is asserted.
@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_the_torch_route_names_what_the_file_is(name: str, tmp_path) -> None:
    pytest.importorskip("torch")
    import specdsl
    from specdsl.backends.torch.checkpoint import read_checkpoint

    path = name if name.startswith("/") else _hostile_weights(tmp_path, name)
    with pytest.raises(specdsl.SpecError) as caught:
        read_checkpoint(path)
    message = str(caught.value)
    assert "Python objects other than tensors" not in message or name == "pickled.npz"
    if name != "pickled.npz":
        assert WEIGHT_CASES[name] in message


@pytest.mark.parametrize("name", ["bomb.npz", "fifo", "wrong_keys.npz", "lying.safetensors"])
def test_diff_with_hostile_weights_is_exit_1(name: str, tmp_path, capsys) -> None:
    pytest.importorskip("torch")
    from specdsl.cli.main import main

    assert main(["diff", "lenet5", "--weights", _hostile_weights(tmp_path, name)]) == 1
    assert "this is a bug" not in capsys.readouterr().err


@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=st.binary(max_size=600), suffix=st.sampled_from([".npz", ".safetensors"]))
def test_any_bytes_as_weights_are_loaded_or_refused(data: bytes, suffix: str) -> None:
    import tempfile

    import specdsl
    from specdsl.backends.numpy.weights import load_weights

    model = specdsl.load("lenet5", warn=False)
    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/w{suffix}"
        with open(path, "wb") as fh:
            fh.write(data)
        with pytest.raises(specdsl.SpecError):
            load_weights(path, model)


def test_many_empty_tensors_are_refused_before_they_are_read(tmp_path) -> None:

    torch = pytest.importorskip("torch")
    import specdsl
    from specdsl.backends.torch.checkpoint import load_weights

    path = tmp_path / "empties.pt"
    torch.save({f"t{i}": torch.empty(0) for i in range(20_000)}, path)
    model = specdsl.load("lenet5", warn=False)
    module = specdsl.to_torch(model, seed=0)
    with pytest.raises(specdsl.SpecError, match="20,0"):
        load_weights(module, model, path)


def test_a_position_alignment_is_bounded_before_its_table_is_built() -> None:

    import specdsl
    from specdsl.backends.weights_match import Slot, match

    class Shaped:
        shape = (3,)

    slots = [Slot(f"s{i}", (3,), f"s{i}", None) for i in range(4_000)]
    tensors = {f"t{i}": Shaped() for i in range(3_999)}
    with pytest.raises(specdsl.SpecError, match="15,996,000 pairs"):
        match(slots, tensors, True, "position")


# -- no command writes over a file it reads, whatever the command and the spelling ---------------

def _spelled(tmp_path, target, spelling: str, name: str) -> str:
    import os

    if spelling == "same":
        return str(target)
    if spelling == "relative":
        (tmp_path / "sub").mkdir(exist_ok=True)
        return f"./sub/../{target.name}"
    link = tmp_path / name
    (os.symlink if spelling == "symlink" else os.link)(target, link)
    return name


@pytest.mark.parametrize("spelling", ["same", "relative", "symlink", "hardlink"])
@pytest.mark.parametrize("command", ["convert", "diagram", "export-onnx-weights", "export-safetensors-weights",
                                     "export-onnx-spec", "build-spec", "search-study"])
def test_no_command_writes_over_a_file_it_reads(command: str, spelling: str, tmp_path, monkeypatch, capsys) -> None:
    from specdsl.cli.main import main

    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "m.cnn"
    spec.write_text("model m\ninput [3, 8, 8]\nlayers {\n  conv(4, k=1)\n}\n", encoding="utf-8")
    weights = tmp_path / "w.onnx"
    if command.startswith("export-") and "weights" in command:
        weights = tmp_path / ("w.safetensors" if "safetensors" in command else "w.onnx")
        weights.write_bytes(b"not really weights")
    read = weights if "weights" in command else spec
    if spelling in ("same", "relative") and command in ("diagram", "export-onnx-spec", "build-spec"):
        pytest.skip("the output's suffix (.svg, .onnx, .py) cannot spell the spec's own name")
    ext = {"convert": ".cnn", "diagram": ".dot", "build-spec": ".py", "search-study": ".db"}.get(
        command, ".safetensors" if "safetensors" in command else ".onnx")
    out = _spelled(tmp_path, read, spelling, "out" + ext)
    argv = {
        "convert": ["convert", "m.cnn", "--to", "dsl", "-o", out],
        "diagram": ["diagram", "m.cnn", "-o", out],
        "export-onnx-weights": ["export", "m.cnn", "--weights", str(weights), "-o", out],
        "export-safetensors-weights": ["export", "m.cnn", "--weights", str(weights), "-o", out],
        "export-onnx-spec": ["export", "m.cnn", "-o", out],
        "build-spec": ["build", "m.cnn", "-o", out],
        "search-study": ["search", "m.cnn", "--train", "x:y", "--study", f"sqlite:///{out}"],
    }[command]
    before = read.read_bytes()
    assert main(argv) == 2
    assert "which this command reads" in capsys.readouterr().err
    assert read.read_bytes() == before


# -- the drawing agrees with the diagram budget; a sweep is budgeted by its total work --------------

def _flat(n: int) -> str:
    return "model flat\ninput [3, 8, 8]\nlayers {\n" + "".join(
        "  conv(4, k=1)\n" if i % 2 == 0 else "  relu\n" for i in range(n)) + "}\n"


def test_auto_wrap_folds_only_what_graphviz_lays_out_quickly() -> None:
    import specdsl
    from specdsl.render.dot import to_dot
    from specdsl.render.dot_layout import FOLD_MAX_BOXES

    small = to_dot(specdsl.load(_flat(300), warn=False), wrap=None)
    large = to_dot(specdsl.load(_flat(FOLD_MAX_BOXES + 100), warn=False), wrap=None)
    assert "cluster_column1" in small and "cluster_column" not in large


def test_an_explicit_wrap_of_thousands_of_boxes_is_refused_early(tmp_path, monkeypatch, capsys) -> None:

    from specdsl.cli.main import main
    from specdsl.render import graphviz

    monkeypatch.chdir(tmp_path)
    (tmp_path / "flat.cnn").write_text(_flat(2_990), encoding="utf-8")
    monkeypatch.setattr(graphviz, "find_dot", lambda: "/usr/bin/dot")
    assert main(["diagram", "flat.cnn", "-o", "flat.svg", "--wrap", "4"]) == 2
    assert "--wrap none" in capsys.readouterr().err and not (tmp_path / "flat.svg").exists()


@pytest.mark.skipif(__import__("shutil").which("dot") is None, reason="Graphviz's dot is not installed")
def test_a_diagram_at_the_node_budget_draws(tmp_path) -> None:

    from specdsl.cli.main import main

    spec = tmp_path / "flat.cnn"
    spec.write_text(_flat(2_990), encoding="utf-8")
    assert main(["diagram", str(spec), "-o", str(tmp_path / "flat.svg")]) == 0


def test_a_sweep_of_large_members_is_refused_by_its_total_work() -> None:

    import specdsl
    from specdsl.sweep import sweep

    text = "model big(n=9000)\ninput [4, 8, 8]\nlayers {\n  conv(4, k=1) x(n)\n}\n"
    with pytest.raises(specdsl.SpecError, match="nodes in all") as caught:
        sweep(text, {"n": list(range(9000, 10000))}, jobs=1)
    assert "nodes in all" in str(caught.value)
    small = sweep(text, {"n": [1, 2, 3]}, jobs=1)
    assert [p.figures["nodes"] for p in small] == [2, 3, 4]


# -- ONNX output names are unique and legal, whatever the spec calls its outputs -------------------

_OUTPUT_NAMES = st.lists(st.sampled_from(["input", "input_1", "relu", "a", "b", "output", "conv", "x", "c1",
                                          "logits", "relu_1", "b_1"]), min_size=2, max_size=2, unique=True)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(names=_OUTPUT_NAMES)
def test_onnx_output_names_are_unique_and_the_file_runs(names: list[str]) -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    import numpy as np

    import specdsl
    from specdsl.backends.onnx.export import to_onnx

    text = (f"model two\ninput [3, 8, 8]\nlayers {{\n  conv(4, k=1) as a\n  relu as b\n}}\n"
            f"outputs({names[0]}=@a, {names[1]}=@b)\n")
    try:
        model = specdsl.load(text, warn=False)
    except specdsl.SpecError:
        return  # a name the language refuses (E380: the model input's own name) never reaches ONNX
    proto = to_onnx(model)
    onnx.checker.check_model(proto, full_check=True)
    outputs = [o.name for o in proto.graph.output]
    assert len(set(outputs)) == len(outputs) == 2
    produced = [v for node in proto.graph.node for v in node.output]
    assert len(set(produced)) == len(produced)  # SSA: each value written once
    session = ort.InferenceSession(proto.SerializeToString())
    got = session.run(None, {session.get_inputs()[0].name: np.zeros((1, 3, 8, 8), np.float32)})
    assert [g.shape for g in got] == [(1, 4, 8, 8), (1, 4, 8, 8)]


def test_a_position_alignment_of_thousands_of_tensors_pairs_only_shapes_both_sides_hold() -> None:

    from specdsl.backends.weights_match import Slot, match

    class Shaped:
        def __init__(self, shape: tuple[int, ...]) -> None:
            self.shape = shape

    # 4,000 spec tensors, 4,000 checkpoint tensors (a 200 KB file): only every 10th shape is shared.
    slots = [Slot(f"s{i}", (i, 1), f"s{i}", None) for i in range(4_000)]
    tensors = {f"t{i}": Shaped((i, 1) if i % 10 == 0 else (i, 2)) for i in range(4_000)}
    report = match(slots, tensors, True, "position")
    assert [(s, c) for s, c, _ in report.loaded] == [(f"s{i}", f"t{i}") for i in range(0, 4_000, 10)]
    assert len(report.new) == 3_600 and len(report.unused) == 3_600
    assert [s.key for s in report.new][:2] == ["s1", "s2"] and report.unused[0] == ("t1", (1, 2))


def test_an_npz_of_many_entries_is_refused_from_its_end_record(tmp_path, monkeypatch) -> None:
    import zipfile

    import specdsl
    from specdsl.backends.numpy.weights import load_weights

    path = tmp_path / "many.npz"
    with zipfile.ZipFile(path, "w") as z:
        for i in range(30_000):
            z.writestr(f"t{i}.npy", b"")
    model = specdsl.load("lenet5", warn=False)
    # zipfile must not even list them: the count comes from the archive's last bytes.
    monkeypatch.setattr(zipfile.ZipFile, "__init__", lambda *a, **k: pytest.fail("the archive was parsed"))
    with pytest.raises(specdsl.SpecError, match="30,000 arrays"):
        load_weights(path, model)


@pytest.mark.parametrize("text", [
    "model: m\ninput: [3, 8, 8]\nparams: {large: false}\nlayers:\n  - conv: {out: 4, k: 1}\n  - if: large\n",
    "model m(large=false)\ninput [3, 8, 8]\nlayers {\n    conv(4, k=1)\n}\n",
])
def test_a_switched_off_layer_still_names_an_op(text: str) -> None:
    """Found by the printer fuzzer: `- if: large` (no op) passed check while large was false, then
    convert could not print it. A layer without an op is an error whatever its condition."""
    import specdsl

    if "if:" not in text:
        assert specdsl.load(text, warn=False).totals.params == 16
        return
    with pytest.raises(specdsl.SpecError) as caught:
        specdsl.load(text, warn=False)
    assert [d.code for d in caught.value.errors] == ["E204"] and caught.value.errors[0].loc.line == 6


def test_a_spec_path_that_is_no_file_is_named_for_what_it_is(tmp_path) -> None:
    import os

    import specdsl

    fifo = tmp_path / "spec.cnn"
    os.mkfifo(fifo)
    for path, kind in ((fifo, "a FIFO"), (tmp_path, "a directory"), ("/dev/zero", "a device")):
        with pytest.raises(specdsl.SpecError, match=f"it is {kind}"):  # at once: nothing is opened
            specdsl.load(path)

"""Issue 29, "the first hour, round two": what a new user tripped over, each pinned by a test."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import spec_text

import specdsl
from specdsl.errors import SpecError

# ================================================================ NumPy nearest upsample = PyTorch (item 10)


@pytest.mark.parametrize("input,scale", [
    ((1, 3, 1), 1.3),        # the case: 2-D, output size == input size with a written scale
    ((2, 3, 5), 2.3),        # 2-D, output exactly twice the input: i >> 1, not floor(i / 2.3)
    ((2, 4, 5), 1.2),
    ((2, 3), 1.3),           # 1-D and 3-D kernels apply the formula, and so must the reference
    ((2, 3), 2.3),
    ((1, 3, 4, 3), 1.3),
    ((1, 3, 2, 3), 2.3),
])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nearest_upsample_with_a_written_scale_matches_torch(input: tuple[int, ...], scale: float,
                                                             dtype: str) -> None:
    torch = pytest.importorskip("torch")
    from specdsl.backends import numpy as nb

    model = specdsl.load(spec_text({"upsample": {"mode": "nearest", "scale": scale}}, input=input))
    x = np.random.default_rng(0).standard_normal((2, *input)).astype(dtype)
    got = nb.to_numpy(model)(x)
    want = torch.nn.Upsample(scale_factor=scale, mode="nearest")(torch.from_numpy(x)).numpy()
    assert got.shape == want.shape and np.array_equal(got, want)


# ================================================================ E110 names the file (item 9)


def test_a_too_large_file_is_named(tmp_path: Any) -> None:
    from specdsl.cli.main import main

    big = tmp_path / "x.yaml"
    big.write_text("#" * 200_030 + "\n")
    with pytest.raises(SpecError) as info:
        specdsl.load(big)
    assert info.value.errors[0].code == "E110"
    assert info.value.errors[0].message.startswith(f"spec file {big} is too large: 200,031 bytes")
    with pytest.raises(SpecError) as info:
        specdsl.load("#" * 200_030 + "\nmodel: m\n")
    assert info.value.errors[0].message.startswith("spec text is too large")
    assert main(["check", str(big)]) == 1


# ================================================================ a missing extra: exit 1, the install line (item 1)

TORCH = "pip install 'specdsl[torch]'"
# (command line, modules made unimportable, the install line printed)
NEEDS_AN_EXTRA = [
    ("run lenet5 --steps 1", "torch", TORCH),
    ("build lenet5 --verify -o {tmp}/m.py", "torch", TORCH),
    ("diff lenet5", "torch", TORCH),
    ("export lenet5 -o {tmp}/m.safetensors", "torch", TORCH),
    ("export lenet5 -o {tmp}/m.onnx --via torch", "torch", TORCH),
    ("export lenet5 -o {tmp}/m.onnx", "onnx", "pip install 'specdsl[onnx]'"),
    ("export lenet5 -o {tmp}/m.onnx --verify", "onnxruntime", "pip install onnxruntime"),
    ("search lenet5 --train m:f", "optuna", "pip install 'specdsl[search]'"),
]
# A module set to None in sys.modules cannot be imported: what an environment without it does.
BLOCKED = "import sys; sys.modules.update(dict.fromkeys({mods!r}.split(','))); " \
          "from specdsl.cli.main import main; sys.exit(main({argv!r}))"


def _blocked(command: str, modules: str, tmp: Any) -> Any:
    import subprocess
    import sys

    argv = command.format(tmp=tmp).split()
    (tmp / "m.py").write_text("def f(module, candidate):\n    return 0.0\n")  # search's --train m:f
    return subprocess.run([sys.executable, "-c", BLOCKED.format(mods=modules, argv=argv)],
                          capture_output=True, text=True, timeout=300, cwd=tmp)


@pytest.mark.parametrize("command,modules,install", NEEDS_AN_EXTRA)
def test_a_missing_extra_is_exit_1_with_the_line_that_installs_it(command: str, modules: str, install: str,
                                                                   tmp_path: Any) -> None:
    done = _blocked(command, modules, tmp_path)
    assert done.returncode == 1, done.stderr
    assert f"which is not installed; install it with:\n  {install}\n" in done.stderr
    assert "bug" not in done.stderr and "Traceback" not in done.stderr


def test_commands_without_an_extra_need_none(tmp_path: Any) -> None:
    for command in ("check lenet5", "build lenet5 -o {tmp}/m.py", "sweep lenet5 --json", "zoo"):
        done = _blocked(command, "torch,onnx,onnxruntime,optuna,ray,pygls", tmp_path)
        assert done.returncode == 0, (command, done.stderr)


def test_a_broken_submodule_is_still_a_bug() -> None:
    from specdsl.cli.common import missing_extra

    assert missing_extra(ModuleNotFoundError("x", name="torch._C")) is None
    assert missing_extra(ModuleNotFoundError("x", name="specdsl.nothing")) is None
    assert missing_extra(ModuleNotFoundError("x", name="torch")) == TORCH


# ================================================================ --input keeps the spec's rank (item 2)


def test_an_input_of_another_rank_is_a_located_error(capsys: Any) -> None:
    from specdsl.cli.main import main

    with pytest.raises(SpecError) as info:
        specdsl.load("lenet5", input=(32, 32))
    (d,) = info.value.errors
    assert d.code == "E306" and d.loc is not None and (d.loc.file, d.loc.line) == ("<zoo>/lenet5.cnn", 4)
    assert d.message == ("an input shape given for the spec's (--input) keeps its rank, 3 values [C, H, W]; "
                         "received [32, 32], 2 values, for [1, 32, 32]")
    assert d.hint is not None and d.hint.startswith("give 3 values, channels first (e.g. 1,32,32)")
    assert main(["check", "resnet18", "--input", "32,32"]) == 1
    assert "E306" in capsys.readouterr().err
    assert specdsl.load("lenet5", input=(1, 36, 36)).graph.input_shape == (1, 36, 36)


# ================================================ start-up: only the command being run is imported (item 11)

NOT_FOR_CHECK = ("specdsl.cli.diagram", "specdsl.render.dot", "specdsl.cli.diff", "specdsl.cli.export",
                 "specdsl.cli.torch_commands", "specdsl.cli.sweep", "specdsl.cli.search", "specdsl.lsp.analysis",
                 "specdsl.backends.numpy", "specdsl.backends.torch", "torch", "numpy", "graphviz")


def test_check_imports_no_other_command() -> None:
    import subprocess
    import sys

    code = ("import sys; from specdsl.cli.main import main; rc = main(['check', 'vgg16', '-q']); "
            f"print(sorted(m for m in {NOT_FOR_CHECK!r} if m in sys.modules)); sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    bare = subprocess.run([sys.executable, "-c", "import sys, specdsl.cli.main; "
                           "print(sorted(m for m in sys.modules if m.startswith('specdsl.cli.')))"],
                          capture_output=True, text=True, timeout=60)
    assert bare.stdout.split() == ["['specdsl.cli.common',", "'specdsl.cli.files',", "'specdsl.cli.main']"]


def test_help_still_lists_every_command(capsys: Any) -> None:
    from specdsl.cli.main import COMMANDS, main

    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"    {name} " in out for name in COMMANDS)
    assert main(["chek", "vgg16"]) == 2
    assert "invalid choice: 'chek'" in capsys.readouterr().err


# =========================================== YAML traps (item 3), hints in the user's syntax (item 4)

BLOCK = "blocks:\n  basic:\n    params: {c: int}\n    layers:\n      - conv: {out: c, k: 3, pad: 1}\n"


def _error(tmp: Any, name: str, text: str) -> Any:
    (tmp / name).write_text(text)
    with pytest.raises(SpecError) as info:
        specdsl.load(tmp / name)
    (d,) = info.value.errors
    return d


def test_a_comma_in_a_flow_mapping_hints_to_quote(tmp_path: Any) -> None:
    d = _error(tmp_path, "flow.yaml", "model: m\ninput: [3, 32, 32]\nparams: {width: 1.0}\n" + BLOCK +
               "layers:\n  - basic: {c: make_divisible(16 * width, 8)}\n")
    assert d.code == "E320" and d.loc.line == 10
    assert d.hint == ("inside `{...}` or `[...]` a comma ends the YAML value, so the expression was cut at its "
                      "first comma; quote it: 'make_divisible(16 * width, 8)'")
    quoted = "model: m\ninput: [3, 32, 32]\nparams: {width: 1.0}\n" + BLOCK + \
             "layers:\n  - basic: {c: 'make_divisible(16 * width, 8)'}\n"
    assert specdsl.load(quoted).totals.params == 16 * 3 * 9 + 16


def test_as_on_a_yaml_layer_hints_name(tmp_path: Any) -> None:
    d = _error(tmp_path, "as.yaml", "model: m\ninput: [3, 32, 32]\n" + BLOCK +
               "layers:\n  - basic: {c: 16}\n    as: stage3\n")
    assert d.code == "E204"
    assert d.hint == "a YAML layer is named with `name: stage3` (`as stage3` is the DSL's way of writing it)"


def test_a_declared_size_hint_in_each_syntax(tmp_path: Any) -> None:
    dsl = _error(tmp_path, "in.cnn", "model m\ninput [3, 32, 32]\nlayers {\n  conv(8, k=3) -> bn(in=16)\n}\n")
    yml = _error(tmp_path, "in.yaml", "model: m\ninput: [3, 32, 32]\nlayers:\n  - conv: {out: 8, k: 3}\n"
                 "  - bn: {in: 16}\n")
    assert (dsl.code, dsl.hint) == ("E302", "set in=8, or fix the layer that feeds it")
    assert (yml.code, yml.hint) == ("E302", "set in: 8, or fix the layer that feeds it")


@pytest.mark.parametrize("name,text", [
    ("typo.cnn", "model m(width=1)\ninput [3, 32, 32]\nlayers {\n  conv(widht * 32, k=3)\n}\n"),
    ("typo.yaml", "model: m\nparams: {width: 1}\ninput: [3, 32, 32]\nlayers:\n  - conv: {out: widht * 32, k: 3}\n"),
])
def test_a_misspelt_parameter_in_an_expression_gets_a_did_you_mean(tmp_path: Any, name: str, text: str) -> None:
    d = _error(tmp_path, name, text)
    assert (d.code, d.message, d.hint) == ("E320", "cannot evaluate 'widht * 32': unknown parameter 'widht'",
                                           "did you mean 'width'?")
    # a word with a hyphen is still a word, not arithmetic on a misspelt name
    ok = "model: m\nparams: {neares: 1}\ninput: [3, 8, 8]\nlayers:\n  - upsample: {scale: 2, mode: nearest-exact}\n"
    assert specdsl.load(ok).shape("[0]") == (3, 16, 16)


@pytest.mark.parametrize("section,shown", [("layers", "layers { conv(64, k=3) -> relu }"),
                                           ("input", "input [3, 224, 224]")])
def test_a_yaml_section_in_a_cnn_file(tmp_path: Any, section: str, shown: str) -> None:
    text = "model m\ninput [3, 32, 32]\nlayers {\n  relu\n}\n"
    text = text.replace("layers {\n  relu\n}", "layers:\n  relu") if section == "layers" else \
        text.replace("input [", "input: [")
    d = _error(tmp_path, "s.cnn", text)
    assert (d.code, d.message) == ("E401", f"unexpected ':' after '{section}'")
    assert d.hint == f"a .cnn file writes `{shown}`, without ':' (`{section}:` is YAML, for a .yaml file)"


# ================================================ every zoo model passes every command at its defaults (item 8)


LARGEST = ("segmentation_resnet", "fcn_resnet101", "deeplabv3_resnet101", "efficientnet_b7", "efficientnet_v2_l",
           "regnet_y_128gf", "vgg19_bn", "lenet5")


def test_every_zoo_model_fits_every_command_or_runs_smaller(capsys: Any) -> None:
    import argparse
    from dataclasses import replace

    from specdsl.budgets import DEFAULT, defaults_for
    from specdsl.cli.report import load_runnable

    huge = replace(DEFAULT, max_params=10**15, max_activations=10**15)
    shrunk = []
    # The largest of the zoo (a scan of all 95 names found no others over a budget), and two small ones.
    for name in LARGEST:
        totals = specdsl.load(name, warn=False, budgets=huge).totals
        for command in ("check", "build", "export", "diagram", "run", "diff"):
            b = defaults_for(command)
            assert totals.params <= b.max_params, (name, command)
            if command in ("run", "diff") and totals.activation_elements > b.max_activations:
                shrunk.append((name, command))
            else:
                assert totals.activation_elements <= b.max_activations, (name, command)
    assert ("segmentation_resnet", "diff") in shrunk and ("efficientnet_b7", "run") in shrunk
    args = argparse.Namespace(command="diff", quiet=True)
    model = load_runnable(args, "segmentation_resnet", None)
    assert model.graph.input_shape[0] == 3 and model.graph.input_shape[1] < 520
    assert model.totals.activation_elements <= defaults_for("diff").max_activations
    err = capsys.readouterr().err
    assert "specdsl diff: at its input [3, 520, 520] the model holds 495,193,941 activation elements, over " \
           "the max_activations budget (200,000,000); running at [3, " in err
    with pytest.raises(SpecError):  # the user's own --input is taken as given
        load_runnable(args, "segmentation_resnet", (3, 520, 520))


def test_diff_says_which_smaller_input_it_ran(tmp_path: Any, capsys: Any) -> None:
    pytest.importorskip("torch")
    from specdsl.cli.main import main

    spec = tmp_path / "big.yaml"
    spec.write_text("model: big\ninput: [3, 2000, 2000]\nlayers:\n  - conv: {out: 16, k: 3, pad: 1}\n  - relu\n"
                    "  - conv: {out: 16, k: 3, pad: 1}\n  - relu\n  - gap\n")
    assert main(["diff", str(spec)]) == 0
    captured = capsys.readouterr()
    assert "over the max_activations budget (200,000,000); running at [3, " in captured.err
    assert "all 6 nodes agree" in captured.out or "nodes agree" in captured.out


# ================================================ build: one class per user-defined block (item 5)

SE_BLOCK = """\
model m
input [3, 32, 32]
block basic(c: int, stride=1) = residual(shortcut=auto, post=relu) {
    conv(c, k=3, stride=stride, pad=1, bias=false) -> bn -> relu
    -> conv(c, k=3, pad=1, bias=false) -> bn
    -> se(channels=c, SE_ARGS)
}
layers {
    conv(16, k=3, pad=1) -> basic(16) -> basic(32, stride=2) -> basic(32) -> basic(64, stride=2) -> gap
}
"""


@pytest.mark.parametrize("se_args", ["reduction=4", "squeeze=c // 4", "squeeze=8"])
def test_build_keeps_a_class_per_block_whatever_it_holds(tmp_path: Any, se_args: str) -> None:
    torch = pytest.importorskip("torch")
    from specdsl.backends.torch.emit import emit

    (tmp_path / "m.cnn").write_text(SE_BLOCK.replace("SE_ARGS", se_args))
    model = specdsl.load(tmp_path / "m.cnn")
    source = emit(model)
    assert "class Basic(nn.Module):" in source and "class BasicWithDownsample(nn.Module):" in source
    assert source.count("Basic(in_channels=") == 1 + 1  # basic(16) and basic(32): the stride-1 calls
    if se_args == "reduction=4":  # the squeeze no parameter expression gives is the class's argument
        assert "fc1_out_channels=4)" in source and "fc1_out_channels=8)" in source
    namespace: dict[str, Any] = {}
    exec(compile(source, "m.py", "exec"), namespace)  # our own emitted source, as build --verify loads it
    built = namespace["M"]()
    assert sum(p.numel() for p in built.parameters()) == model.totals.params
    assert built(torch.zeros(2, 3, 32, 32)).shape == (2, 64)


# ================================================ the notebook's HTML: styled, folded, totals once (item 6)


def test_notebook_html_folds_blocks_and_shows_totals_once() -> None:
    import re

    html = specdsl.load("resnet50")._repr_html_()
    assert html.startswith('<div class="specdsl-summary"><style>') and "prefers-color-scheme:dark" in html
    assert 'data-jp-theme-light="false"' in html  # JupyterLab's dark theme
    assert html.count("<dt>Params</dt>") == 1 and html.count("<dl>") == 1
    folded = re.findall(r"<details><summary><table>.*?<td class=\"mono\" title=\"([^\"]+)\">", html)
    assert folded == ["layer1", "layer2", "layer3", "layer4"]
    assert html.count("<th class=") == 6  # one header for every table: the columns share their widths
    assert all(row.count("<td") == 6 for row in re.findall(r"<tr(?: class=\"failed\")?>.*?</tr>", html)
               if "<th" not in row)
    assert "layer1[0].downsample[0]" in html and ">25,557,032 (trainable" in html
    from specdsl.render.graphviz import find_dot

    assert ('<details class="diagram"><summary>Diagram</summary><svg' in html) == (find_dot() is not None)


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGBA or RGB bytes) of an 8-bit, non-interlaced PNG (Chromium's screenshots)."""
    import struct
    import zlib

    pos, idat, width, height, channels = 8, b"", 0, 0, 4
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, _, color = struct.unpack(">IIBB", body[:10])
            channels = 4 if color == 6 else 3
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, out, prev = zlib.decompress(idat), width * channels, [], bytearray(width * channels)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            pred = (0, a, b, (a + b) // 2, a + b - c)[f] if f < 4 else 0
            if f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
            line[i] = (line[i] + pred) & 0xFF
        out.append(bytes(line))
        prev = line
    return width, height, out


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_notebook_html_in_headless_chromium(tmp_path: Any, scheme: str) -> None:
    import shutil
    import subprocess

    browser = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    if browser is None:
        pytest.skip("no Chromium (apt-get install chromium)")
    html = specdsl.load("resnet50")._repr_html_().replace("<details>", "<details open>", 1)
    page = tmp_path / "m.html"
    page.write_text(f"<!doctype html><meta charset=utf-8><body style='margin:0'>{html}</body>")
    shot = tmp_path / "m.png"
    subprocess.run([browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--blink-settings=preferredColorScheme={0 if scheme == 'dark' else 1}",
                    "--window-size=1100,700", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    width, height, pixels = _png_pixels(shot.read_bytes())
    assert (width, height) == (1100, 700)
    row = pixels[height // 2]  # mid-page, inside layer1's unfolded rows
    step = len(row) // width
    brightness = sorted(sum(row[x * step:x * step + 3]) / 3 for x in range(10, width // 2))
    background = brightness[len(brightness) // 2]
    assert background > 200 if scheme == "light" else background < 60, background
    text = [b for b in brightness if abs(b - background) > 100]  # glyphs in a contrasting colour
    assert text

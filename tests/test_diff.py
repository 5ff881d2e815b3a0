"""`specdsl diff`: every zoo model agrees node by node between PyTorch and the
NumPy reference, and a wrong lowering is caught and located."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from zoo_inputs import runtime_zoo  # noqa: E402

from specdsl.backends.numpy import LOWERINGS, Lowering, unary  # noqa: E402
from specdsl.backends.numpy import interpreter as nb  # noqa: E402
from specdsl.cli.main import EXIT_OK, EXIT_SPEC, EXIT_USAGE, main  # noqa: E402

# Small inputs keep the suite quick; inception_v3 needs at least 75x75.
ZOO_INPUTS: dict[str, str | None] = {
    "inception_v3": "3,75,75", "inception_resnet_v2": "3,75,75", "r3d_18": "3,4,32,32", "video_resnet": "3,4,32,32",
    "unet": "1,32,32", "timeseries_cnn": "12,128",
    "alexnet": "3,63,63", "lenet5": None, "fractalnet_cifar10": None,
}


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.mark.parametrize("name", runtime_zoo())
def test_zoo_model_passes_diff(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    shape = ZOO_INPUTS.get(name, "3,32,32")
    argv = ["diff", name, "--batch", "1"] + (["--input", shape] if shape else [])
    rc = main(argv)
    out = capsys.readouterr().out
    assert rc == EXIT_OK, out[-3000:]
    assert "nodes agree" in out


SPEC = """\
model: small
input: [3, 8, 8]
layers:
  - conv: {out: 4, k: 3, pad: 1}
  - bn
  - relu
  - maxpool: 2
  - residual:
      body:
        - conv: {out: 4, k: 3, pad: 1}
        - bn
  - gap
  - linear: 5
"""


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SPEC)
    return path


def test_diff_prints_every_node(spec_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", str(spec_file), "--dtype", "float64", "--seed", "3"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "PyTorch float64 vs NumPy float64, batch 2, seed 3" in out
    for label in ("input", "[0]", "[4].add", "[6]"):
        assert f" {label} " in out
    assert "all 10 nodes agree" in out


def test_diff_names_the_first_wrong_node_and_its_line(spec_file: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    # A deliberately wrong NumPy relu (threshold 0.5): the first relu must be blamed, at line 6.
    monkeypatch.setitem(LOWERINGS, "relu", Lowering(unary(lambda x, a: np.clip(x, 0.5, None))))
    assert main(["diff", str(spec_file), "--failures"]) == EXIT_SPEC
    captured = capsys.readouterr()
    last = captured.out.strip().splitlines()[-1]
    assert "the first is node 3 [2] (relu)" in last
    assert f"{spec_file}:6:5" in last
    assert "(this node's lowering)" in last
    assert " layers[0] " not in captured.out  # --failures lists only differing nodes
    assert "differs" in captured.err


def test_diff_in_training_mode_and_with_a_weights_file(spec_file: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    net = nb.to_numpy(str(spec_file), seed=5)
    weights = tmp_path / "w.npz"
    net.save(weights)
    assert main(["diff", str(spec_file), "--train-bn", "--batch", "3", "--weights", str(weights),
                 "--rtol", "1e-5", "--atol", "1e-5"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "batch statistics" in out and "rtol 1e-05" in out


def test_diff_input_override_and_usage_errors(spec_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", str(spec_file), "--input", "3,16,16"]) == EXIT_OK
    assert "[3, 16, 16]" in capsys.readouterr().out
    assert main(["diff", str(spec_file), "--rtol", "-1"]) == EXIT_USAGE
    assert main(["diff", str(spec_file), "--dtype", "float16"]) == EXIT_USAGE
    assert main(["diff", "no_such_model"]) == EXIT_SPEC


def test_diff_reports_a_backend_that_refuses_to_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bn.yaml"
    path.write_text("model: bn\ninput: [8]\nlayers:\n  - bn: {track_running_stats: false}\n")
    assert main(["diff", str(path), "--batch", "1"]) == EXIT_SPEC
    assert "more than 1 value per channel" in capsys.readouterr().err
    assert main(["diff", str(path), "--batch", "2"]) == EXIT_OK


def test_diff_table_rows_are_well_formed(spec_file: Path) -> None:
    import specdsl
    from specdsl.cli.diff import diff_model

    model = specdsl.load(str(spec_file))
    rows = diff_model(model, dtype="float64", rtol=1e-12, atol=1e-12)
    assert [r.index for r in rows] == list(range(len(model.graph.nodes)))
    assert all(r.ok and r.abs_err < 1e-12 for r in rows)
    assert all(r.local_err is not None for r in rows[1:])
    assert np.isfinite([r.ref_max for r in rows]).all()

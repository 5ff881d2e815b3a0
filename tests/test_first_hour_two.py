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

"""One check the op oracle files share: the NumPy backend and the emitted PyTorch source compute what
``to_torch`` computes, in float64, with the same weights."""

from __future__ import annotations

from typing import Any

import numpy as np


def assert_backends_agree(model: Any, x: np.ndarray, *, weights: dict[str, np.ndarray] | None = None,
                          rtol: float = 1e-12, atol: float = 1e-12) -> None:
    """NumPy within ``rtol``/``atol`` of ``to_torch``; the emitted module bit for bit. ``weights`` replace the
    NumPy backend's seeded ones (where those would hide a misplaced scale: a norm's weight at 1, its bias at 0)."""
    import torch

    import specdsl.backends.numpy as nb
    from specdsl.backends.torch.emit import check_emitted, emit, load_emitted
    from specdsl.backends.torch.fx import to_torch

    net = nb.to_numpy(model) if weights is None else nb.NumpyModel(model, weights, "float64")
    module = to_torch(model).double().eval()
    module.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in net.weights.items()})
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net(x), expected, rtol=rtol, atol=atol)
    source = emit(model)
    assert check_emitted(model, source) == []
    emitted = load_emitted(source)().double().eval()
    emitted.load_state_dict(module.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(emitted(torch.from_numpy(x)), module(torch.from_numpy(x)), rtol=0, atol=0)


def assert_layer_is_the_module(layer: Any, theirs: Any, inp: tuple[int, ...]) -> Any:
    """One spec layer lowers to ``theirs`` (a library's module, e.g. timm's): the same state_dict keys and
    shapes under the layer's path, the same outputs with ``theirs``'s weights drawn away from ones and zeros
    (which would hide a misplaced weight or bias), and ``theirs`` imports back round-trip exact. Returns
    the import, for what a caller checks of it."""
    import torch
    from conftest import spec_text
    from torch import nn

    import specdsl
    from specdsl.backends.torch.capture_import import from_torch
    from specdsl.backends.torch.fx import to_torch

    for p in theirs.parameters():
        nn.init.uniform_(p, -1.5, 1.5)
    ours = to_torch(specdsl.load(spec_text(layer, input=inp))).eval()
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [
        ("0." + k, v.shape) for k, v in theirs.state_dict().items()]
    ours.load_state_dict({"0." + k: v for k, v in theirs.state_dict().items()})
    x = torch.randn(3, *inp) * 3
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-6)
    imported = from_torch(nn.Sequential(theirs), inp)
    assert imported.round_trip.ok and imported.round_trip.max_rel_error <= 1e-5, imported.round_trip.problems
    return imported

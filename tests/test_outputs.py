"""Several model outputs: a tuple or a dict, with auxiliary heads a family parameter switches on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import specdsl  # noqa: E402
from specdsl.backends.torch.emit import check_emitted, emit  # noqa: E402
from specdsl.backends.torch.fx import to_torch  # noqa: E402
from specdsl.backends.torch.verify import verify  # noqa: E402
from specdsl.errors import SpecError  # noqa: E402
from specdsl.render.dot import to_dot  # noqa: E402

AUX = """\
model aux(aux=false)
variant aux_train(aux=true)
input [3, 16, 16]
layers {
    conv(8, k=3, pad=1) -> relu as mid
    @mid -> gap if aux -> linear(5) if aux as aux_head
    @mid -> conv(8, k=3, stride=2, pad=1) -> relu -> gap -> linear(10) as logits
}
outputs [@logits, @aux_head]
"""

SEGMENT = """\
model seg
input [3, 16, 16]
layers {
    conv(8, k=3, stride=2, pad=1) -> relu as features
    @features -> conv(4, k=1) as head
    [@head, @input] -> upsample(mode=bilinear) as out
    @features -> conv(4, k=1) as aux_head
    [@aux_head, @input] -> upsample(mode=bilinear) as aux
}
outputs(out=@out, aux=@aux)
"""


def test_an_aux_head_switched_off_leaves_one_output() -> None:
    model = specdsl.load(AUX)
    assert model.graph.outputs == () and model.rows()[-1][1].shape == (10,)
    assert not any(n.op == "linear" and n.name == "aux_head" for n in model.graph.nodes)
    assert to_torch(model)(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_a_tuple_of_outputs_in_every_backend() -> None:
    model = specdsl.load(AUX, variant="aux_train")
    assert [key for key, _ in model.graph.outputs] == [None, None]
    x = torch.randn(2, 3, 16, 16)
    logits, aux = to_torch(model, seed=0).eval()(x)
    assert logits.shape == (2, 10) and aux.shape == (2, 5)
    assert check_emitted(model, emit(model)) == []
    assert verify(model).ok
    net = specdsl.to_numpy(model)
    got = net(x.numpy().astype(np.float64))
    assert isinstance(got, tuple) and [g.shape for g in got] == [(2, 10), (2, 5)]


def test_a_dict_of_outputs_like_torchvisions_segmentation_models() -> None:
    model = specdsl.load(SEGMENT)
    out = to_torch(model)(torch.randn(1, 3, 16, 16))
    assert list(out) == ["out", "aux"] and out["out"].shape == (1, 4, 16, 16)
    assert "return {'out': out, 'aux': aux}" in emit(model)
    assert check_emitted(model, emit(model)) == []
    assert model.to_json()["returns"] == "dict"
    assert [o["key"] for o in model.to_json()["outputs"]] == ["out", "aux"]
    assert "output aux" in to_dot(model)


def test_outputs_follow_the_input_size() -> None:
    model = specdsl.load(SEGMENT, input=(3, 32, 24))
    assert [model.analysis.figures[i].shape for _, i in model.graph.outputs] == [(4, 32, 24), (4, 32, 24)]


def test_every_output_stays_alive_in_the_memory_figures() -> None:
    # The aux head first: as an output it stays alive while the main head is computed.
    main_head = "    @features -> conv(4, k=1) as head\n    [@head, @input] -> upsample(mode=bilinear) as out\n"
    aux_first = SEGMENT.replace(main_head, "")
    aux_first = aux_first.replace("as aux\n", "as aux\n    @features -> conv(4, k=1) as head\n"
                                  "    [@head, @input] -> upsample(mode=bilinear) as out\n")
    one = specdsl.load(aux_first.replace("outputs(out=@out, aux=@aux)", "outputs [@out]"), warn=False)  # W351
    two = specdsl.load(aux_first)
    assert two.totals.peak_bytes > one.totals.peak_bytes


def test_unknown_output_is_a_located_error() -> None:
    with pytest.raises(SpecError) as info:
        specdsl.load(AUX.replace("outputs [@logits, @aux_head]", "outputs [@logit]"))
    error = info.value.errors[0]
    assert error.code == "E368" and "did you mean 'logits'" in error.hint and error.loc is not None


def test_yaml_outputs(tmp_path: Path) -> None:
    text = "\n".join([
        "model: y", "input: [3, 8, 8]", "layers:",
        "  - {conv: {out: 4, k: 1}, name: a}",
        "  - {conv: {out: 2, k: 1}, name: b, inputs: [input]}",
        "outputs: {first: a, second: b}",
    ])
    out = to_torch(specdsl.load(text))(torch.randn(1, 3, 8, 8))
    assert {k: tuple(v.shape) for k, v in out.items()} == {"first": (1, 4, 8, 8), "second": (1, 2, 8, 8)}

"""Issue 26, items 6, 7, 8 and 11: conditions on several layers (`if c { ... } else { ... }`), merges
that drop switched-off inputs, richer expressions (`a if c else b`, `**`, lists, `let`), and the two bugs
found on the way, each pinned by its minimal spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from specdsl.cli.main import EXIT_OK, main
from specdsl.frontend.dsl import load_dsl
from specdsl.frontend.yaml import load_yaml
from specdsl.render.printer import to_dsl, to_yaml
from specdsl.render.reformat import _difference, format_text


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- item 11: the two bugs ----------------------------------------------------------------------

ALL_OFF_CALL = """model m
input [3, 8, 8]
block maybe(on=false) {
    conv(4, k=1) if on
}
block one() {
    maybe() as t0
    [@t0, @input] -> add
}
layers {
    one()
}
"""


def test_build_a_named_call_whose_layers_are_all_switched_off_feeding_a_merge(capsys, tmp_path: Path) -> None:
    """Was exit 3, KeyError ('call', 't0') in emit_plan: the call passes its input through."""
    spec = tmp_path / "m.cnn"
    spec.write_text(ALL_OFF_CALL)
    code, _, err = _run(capsys, "build", str(spec), "-o", str(tmp_path / "m.py"))
    assert code == EXIT_OK, err
    torch = pytest.importorskip("torch")
    import specdsl

    model = specdsl.load(str(spec))
    module = specdsl.to_torch(model).eval()
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(module(x), x + x)  # add(t0 = input, input)


EMPTY_CALL_NAMED = """model m(on=true)
input [3, 8, 8]
block act() {
    relu
}
layers {
    conv(4, k=1) -> act() as x
    act() if on
}
"""


def test_fmt_keeps_the_brackets_of_a_parameterless_call_with_as_or_if() -> None:
    """Was E420: `act() as x` printed as `act as x`, which reads back as `act: null`."""
    out = format_text(EMPTY_CALL_NAMED, "m.cnn")
    assert "act() as x" in out and "act() if on" in out
    assert _difference(load_dsl(EMPTY_CALL_NAMED)[0], load_dsl(out)[0], ()) is None


def test_convert_round_trips_a_parameterless_named_call() -> None:
    """`b() as x` became YAML `b: {}` beside `name: x`, which did not convert back."""
    data = load_dsl(EMPTY_CALL_NAMED)[0]
    yaml_text = to_yaml(data)
    back = load_yaml(yaml_text)[0]
    assert _difference(data, back, ()) is None
    dsl_again = to_dsl(back)
    assert _difference(data, load_dsl(dsl_again)[0], ()) is None

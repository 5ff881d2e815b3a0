"""Saved-for-backward bytes: the static prediction against autograd itself, exactly.

PyTorch calls ``saved_tensors_hooks``' pack hook once for every tensor an autograd node keeps
for backward. Running the generated module under that hook (CPU, training mode, the input
without grad) and counting unique storages, parameters and buffers excluded, gives the bytes a
training forward leaves for backward, per spec node; ``specdsl.passes.memory.saved_tensors``
must give the same, for every zoo model and for random specs.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from hypothesis import HealthCheck, assume, event, given, settings  # noqa: E402
from strategies import spec_text, specs  # noqa: E402
from torch import fx  # noqa: E402
from zoo_inputs import SMALL, runtime_zoo  # noqa: E402

import specdsl  # noqa: E402
from specdsl.backends.torch.fx import example_input, to_torch  # noqa: E402
from specdsl.errors import SpecError  # noqa: E402
from specdsl.ops.saved import SAVED  # noqa: E402
from specdsl.passes.inplace import inplace_activations  # noqa: E402
from specdsl.passes.memory import saved_tensors  # noqa: E402

BATCH = 2


@pytest.fixture(autouse=True)
def _threads() -> None:
    torch.set_num_threads(1)


def measured(model: specdsl.Model, batch: int = BATCH) -> tuple[dict[int, dict[int, int]], int]:
    """Per spec node, the storages (data pointer -> bytes) its autograd keeps; and their unique total."""
    module = to_torch(model, seed=0).train()
    module.meta["specdsl_fractal_sampling"] = None  # no random global drop-path: every join averages
    for sub in module.modules():
        if hasattr(sub, "drop_local"):
            sub.drop_local = 0.0
    weights = {t.untyped_storage().data_ptr() for t in (*module.parameters(), *module.buffers())}
    index = {n.path: n.index for n in model.graph.nodes}
    current = [0]
    per_node: dict[int, dict[int, int]] = {}
    alive: list[Any] = []  # keeps every saved tensor, so no storage address is reused meanwhile

    def pack(t: Any) -> Any:
        alive.append(t)
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:
            per_node.setdefault(current[0], {})[storage.data_ptr()] = storage.nbytes()
        return t

    class Attributed(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            where = n.meta.get("specdsl_index", index.get(n.meta.get("specdsl_path", ""), current[0]))
            current[0] = where
            return super().run_node(n)

    x = example_input(model, batch)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        Attributed(module).run(x)
    unique: dict[int, int] = {}
    for storages in per_node.values():
        unique.update(storages)
    return per_node, sum(unique.values())


def predicted(model: specdsl.Model, batch: int = BATCH) -> Any:
    return saved_tensors(model.graph, model.analysis.figures, batch, SAVED,
                         inplace=inplace_activations(model.graph), device="cpu")


def assert_exact(model: specdsl.Model) -> None:
    per_node, total = measured(model)
    report = predicted(model)
    for node in model.graph.nodes:
        got = sorted(per_node.get(node.index, {}).values())
        want = sorted({t.key: t.nbytes for t in report.per_node[node.index]}.values())
        assert got == want, f"{node.path} ({node.op}): autograd keeps {got} bytes, predicted {want}"
    assert report.total == total


def small(name: str) -> specdsl.Model:
    return specdsl.load(name, input=SMALL.get(name, (3, 64, 64)), warn=False)  # small inputs drop edge rows (W301)


@pytest.mark.parametrize("name", runtime_zoo())
def test_saved_bytes_equal_autograd_on_the_zoo(name: str) -> None:
    assert_exact(small(name))


def test_saved_bytes_equal_autograd_on_crop_and_mean() -> None:
    """The merges the random specs do not draw."""
    assert_exact(specdsl.load("""
model: merges
input: [3, 9, 9]
layers:
  - {conv: {out: 4, k: 1}, name: a}
  - {conv: {out: 4, k: 3}, name: b}
  - {crop: null, inputs: [a, b], name: c}
  - {mean: null, inputs: [c, b]}
  - relu
""", warn=False))


def test_saved_bytes_equal_autograd_on_stack_and_sum() -> None:
    """A selective kernel's fusion (stack of two branches, sum, softmax over the branch axis, weighted sum):
    a stack's backward hands on slices of its gradient, a sum's an expanded view of it."""
    assert_exact(specdsl.load("""model sk
input [4, 6, 6]
layers {
    conv(4, k=3, pad=1) as p0
    @input -> conv(4, k=3, pad=2, dilation=2) as p1
    [@p0, @p1] -> stack(1) as x
    sum(1) -> gap(keepdims=true) -> conv(8, k=1) -> reshape([2, 4, 1, 1]) -> softmax(1) as w
    [@x, @w] -> mul -> sum(1) -> relu
}
""", warn=False))


def _checked(data: dict[str, Any]) -> specdsl.Model | None:
    try:
        return specdsl.load(spec_text(data), warn=False)
    except SpecError:
        return None


# The acceptance: 300 random specs (SPECDSL_ORACLE_SCALE=20 searches twenty times deeper).
RANDOM = settings(max_examples=300 * int(os.environ.get("SPECDSL_ORACLE_SCALE", "1")), deadline=None,
                  derandomize=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@RANDOM
@given(data=specs())
def test_saved_bytes_equal_autograd_on_random_specs(data: dict[str, Any]) -> None:
    model = _checked(data)
    assume(model is not None)
    assert model is not None
    event(", ".join(sorted({n.op for n in model.graph.nodes if not n.is_input})))
    assert_exact(model)

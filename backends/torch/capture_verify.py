"""The round trip of an import: the recovered spec, built by ``to_torch``, must be the original module.

Checked in the order a reader would want the first difference: state_dict keys (in order, so the
original's checkpoints load by name), parameter and buffer counts (the module's own against specdsl's
static figures and the rebuilt module's), MACs (specdsl's conv + linear figure against
``torch.utils.flop_counter`` on the original), then outputs on a random input after loading the
original's weights by name, strictly. Where the outputs differ, both modules run again with a hook
on every module and the first module (in the original's call order) whose output differs is named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from specdsl.api import Model
from specdsl.backends.torch.modules import reset_computed_buffers

RTOL = 1e-5


@dataclass
class RoundTrip:
    """What the round trip compared, and the differences (none: exact)."""

    params: int = 0
    buffers: int = 0
    macs: int = 0
    max_rel_error: float = 0.0
    problems: list[str] = field(default_factory=list)
    # Where the keys are the same but registered in another order (with key_order=False): the first that differs.
    order: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _count(tensors: Any) -> int:
    return sum(t.numel() for t in tensors)


def _tensors(x: Any) -> list[torch.Tensor]:
    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, dict):
        return [t for v in x.values() for t in _tensors(v)]
    if isinstance(x, (tuple, list)):
        return [t for v in x for t in _tensors(v)]
    return []


def _unused(want: list[str], got: list[str]) -> str:
    """Where the model holds modules its forward never calls (googlenet's aux heads in eval), say so: a
    spec holds what runs, so the model is to be built without them."""
    extra = sorted({k.split(".")[0] for k in set(want) - set(got)})
    if not extra or set(got) - set(want):
        return ""
    return (f"; the model's forward (in eval mode) never calls {', '.join(extra)}: build the model without "
            f"them (torchvision's googlenet and inception_v3: --args '{{\"aux_logits\": false}}')")


def _persistent_buffers(module: nn.Module) -> list[torch.Tensor]:
    """The buffers a checkpoint holds (a non-persistent one, timm's BlurPool2d filter, is rebuilt)."""
    params = {k for k, _ in module.named_parameters()}
    return [v for k, v in module.state_dict().items() if k not in params]


def macs_of(module: nn.Module, example: torch.Tensor) -> int:
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(example)
    return int(counter.get_total_flops()) // 2


def rel_error(got: torch.Tensor, want: torch.Tensor) -> float:
    scale = float(want.abs().max()) if want.numel() else 0.0
    diff = float((got.double() - want.double()).abs().max()) if want.numel() else 0.0
    return diff / scale if scale > 0 else diff


def verify_round_trip(original: nn.Module, model: Model, *, seed: int = 0, batch: int = 1,
                      macs: bool = True, key_order: bool = True) -> RoundTrip:
    """Compare ``original`` with the spec ``model`` (already loaded) built by ``to_torch``. With ``key_order``
    (the default) the state_dict keys must come in the same order; without, the same keys in another order
    (a model that registers a shortcut before the body it calls first) are noted in ``order``: loading by
    name does not mind."""
    from specdsl.backends.torch.fx import to_torch

    original.eval()
    with torch.device("meta"):  # built without initialising: every tensor comes from the original
        built = to_torch(model, seed=seed).eval()
    result = RoundTrip()
    want_keys, got_keys = list(original.state_dict()), list(built.state_dict())
    if want_keys != got_keys and not key_order and sorted(want_keys) == sorted(got_keys):
        first = next(i for i, (a, b) in enumerate(zip(want_keys, got_keys, strict=True)) if a != b)
        result.order = f"key {first}: the model has '{want_keys[first]}', the spec '{got_keys[first]}'"
    elif want_keys != got_keys:
        first = next((i for i, (a, b) in enumerate(zip(want_keys, got_keys, strict=False)) if a != b),
                     min(len(want_keys), len(got_keys)))
        theirs = want_keys[first] if first < len(want_keys) else "(none)"
        ours = got_keys[first] if first < len(got_keys) else "(none)"
        result.problems.append(f"state_dict key {first}: the model has '{theirs}', the spec '{ours}' "
                               f"({len(want_keys)} keys against {len(got_keys)})" + _unused(want_keys, got_keys))
        return result
    result.params = _count(original.parameters())
    result.buffers = _count(_persistent_buffers(original))
    for what, want, static, got in (
            ("parameters", result.params, model.totals.params, _count(built.parameters())),
            ("buffer elements", result.buffers, None, _count(_persistent_buffers(built)))):
        if got != want or (static is not None and static != want):
            result.problems.append(f"{what}: the model has {want:,}, the spec's module {got:,}"
                                   + (f", the spec's figure {static:,}" if static is not None else ""))
    built.load_state_dict(original.state_dict(), strict=True, assign=True)
    reset_computed_buffers(built)  # non-persistent buffers (blurpool's filter) are in no state_dict
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn((batch, *model.graph.input_shape), generator=generator)
    counter = FlopCounterMode(display=False)
    with torch.no_grad():
        with counter:  # the original's run counts its MACs and gives the outputs to compare
            want_out = _tensors(original(x))
        got_out = _tensors(built(x))
    result.macs = int(counter.get_total_flops()) // 2 // batch
    if macs and model.totals.macs != result.macs:
        result.problems.append(f"MACs (conv + linear): the model does {result.macs:,}, "
                               f"the spec's figure is {model.totals.macs:,}")
    if len(want_out) != len(got_out):
        result.problems.append(f"outputs: the model gives {len(want_out)} tensors, the spec {len(got_out)}")
        return result
    for k, (a, b) in enumerate(zip(got_out, want_out, strict=True)):
        if a.shape != b.shape:
            result.problems.append(f"output {k}: the model's shape is {list(b.shape)}, the spec's {list(a.shape)}")
            return result
        result.max_rel_error = max(result.max_rel_error, rel_error(a, b))
    if result.max_rel_error > RTOL:
        where = first_differing_module(original, built, x)
        result.problems.append(f"outputs differ (max. relative error {result.max_rel_error:.2e} > {RTOL:g})"
                               + (f"; the first module that differs is '{where}'" if where else ""))
    return result


def first_differing_module(original: nn.Module, built: nn.Module, x: torch.Tensor) -> str | None:
    """The first module (in the original's call order) whose output differs in the rebuilt module."""
    order: list[str] = []
    def record(into: dict[str, Any], track: bool) -> Any:
        def hook(name: str) -> Any:
            def fn(module: nn.Module, args: Any, out: Any) -> None:
                if track:
                    order.append(name)
                into.setdefault(name, [t.detach().clone() for t in _tensors(out)])
            return fn
        return hook

    want: dict[str, Any] = {}
    got: dict[str, Any] = {}
    handles = [m.register_forward_hook(record(want, True)(n)) for n, m in original.named_modules() if n]
    handles += [m.register_forward_hook(record(got, False)(n)) for n, m in built.named_modules() if n]
    try:
        with torch.no_grad():
            original(x)
            built(x)
    finally:
        for h in handles:
            h.remove()
    for name in order:
        if name not in got:
            continue
        pairs = list(zip(got[name], want[name], strict=False))
        if any(a.shape != b.shape or rel_error(a, b) > RTOL for a, b in pairs):
            return name
    return None

"""``specdsl.from_torch``: an ``nn.Module`` becomes a spec, checked to be the same model.

    module --capture (capture.py, capture_lift.py)--> LiftedGraph --recover (specdsl.lift.structure)-->
    spec data --to_dsl--> text --specdsl.load--> Model --verify (capture_verify.py)--> the round trip

Nothing is half-done: a node no op maps raises E510 listing every such node (unless ``partial``), and a
spec whose module is not the original (keys, counts, MACs or outputs) raises E511 naming the first
difference. The spec string never becomes code: it is data printed by the printer and read back by the
front end like any other spec.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from specdsl.lift.imported import Imported, not_the_model, spec_of, unmapped_error


def from_torch(module: nn.Module, input_shape: Sequence[int], *, name: str | None = None, verify: bool = True,
               partial: bool = False, seed: int = 0, key_order: bool = True) -> Imported:
    """Import ``module`` traced at ``input_shape`` (without the batch, ``(3, 224, 224)``).

    With ``verify`` (the default) the spec is built with ``to_torch``, the module's weights loaded into it
    by name (strictly, keys in the same order), and its parameter, buffer and MAC counts and its outputs on
    a random input compared with the module's (1e-5 relative). ``partial`` returns a spec even where
    nodes have no op: they become '# TODO' comments, and checking that spec fails on them. Without
    ``key_order`` the same keys in another order pass (noted in ``round_trip.order``)."""
    from specdsl.backends.torch.capture_lift import CaptureFailed, lift_module

    try:
        graph = lift_module(module, tuple(int(d) for d in input_shape), name=name, seed=seed)
    except CaptureFailed as exc:
        raise unmapped_error(exc.unmapped, "a traced") from None
    result = spec_of(graph, partial=partial, what="a traced", where="traced")
    if result.model is None:
        return result
    if verify:
        from specdsl.backends.torch.capture_verify import verify_round_trip

        result.round_trip = verify_round_trip(module, result.model, seed=seed, key_order=key_order)
        if not result.round_trip.ok:
            raise not_the_model("; ".join(result.round_trip.problems), "traced")
    return result

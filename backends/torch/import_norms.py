"""Readers of the import table (imports.py) for the norms and the layer scale that are more than a
module's fields: a per-channel scale parameter in either of its layouts.

Like every reader, each is the inverse of its op's lowering (lowerings.py): it returns ``None`` when the
call is not its op and raises ``Refuse`` for a call of its op that no spec can say.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from specdsl.backends.torch.import_types import Lift, Site


def _scaled_operand(site: Site) -> Any:
    """The tensor the input is multiplied by, as the call saw it (``gamma.reshape(1, -1, 1, 1)``): the
    tensor among the arguments that no lifted node makes."""
    made = [id(v) for v in site.inputs]
    return next((a for a in site.args if hasattr(a, "shape") and id(a) not in made), None)


def layer_scale(site: Site) -> Lift | None:
    """``x * self.layer_scale`` with a [C, 1, ..., 1] parameter (torchvision's CNBlock), or
    ``x.mul(self.gamma.reshape(1, -1, 1, 1))`` with a [C] one (timm's ConvNeXtBlock, MetaNeXtBlock):
    one scale per channel of the calling module, broadcast over the batch and the spatial axes."""
    if len(site.params) != 1 or len(site.inputs) != 1:
        return None
    name, p = site.params[0]
    x = site.inputs[0]
    channels, nd = int(x.shape[1]), int(x.ndim)
    # What forward multiplied by, after any view of the parameter: it must scale the channel axis alone
    # (a [C] gamma on a channels-last tensor scales its last axis: another op).
    seen = _scaled_operand(site)
    used = tuple(int(d) for d in (seen.shape if seen is not None else p.shape))
    if len(used) > nd or (1,) * (nd - len(used)) + used != (1, channels) + (1,) * (nd - 2):
        return None
    if tuple(p.shape) == (channels,) + (1,) * (nd - 2):
        flat = False
    elif tuple(p.shape) == (channels,):
        flat = True
    else:
        return None
    values = p.detach().reshape(-1)
    # The init as written (1e-06), not as its float32 (9.99999997475e-07); a trained scale keeps the default.
    init = float(np.format_float_positional(values[:1].numpy()[0], unique=True, trim="-")) \
        if bool((values == values[0]).all()) else 1e-6
    return Lift({"init": init, "flat": flat}, path=name)


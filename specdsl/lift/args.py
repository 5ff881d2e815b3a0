"""Op arguments in the forms recovery needs: canonical (every field, for comparing) and as written.

Both go through the op's own argument model (``OPS[op].args``), so a capture may hand over a sparse
dict ("as a spec would write them") or a full one and compare equal, and the written form leaves
out exactly what the op's defaults fill in.
"""

from __future__ import annotations

from typing import Any

from specdsl.ops import OPS
from specdsl.ops.rule import no_weights

# The op of a split's part (`@s.k`): written as a reference, never as a layer.
PART = "part"


def full_args(op: str, args: dict[str, Any] | None) -> dict[str, Any]:
    """Every argument of the op, by its spec name (``in``, not ``in_``), defaults filled in."""
    model = OPS[op].args.model_validate(dict(args or {}))
    return model.model_dump(by_alias=True)


def defaults(op: str) -> dict[str, Any]:
    """The op's default for each argument that has one."""
    out: dict[str, Any] = {}
    for name, field in OPS[op].args.model_fields.items():
        if not field.is_required():
            out[field.alias or name] = field.get_default(call_default_factory=True)
    return out


def same_value(a: Any, b: Any) -> bool:
    """Equal and of the same kind: 1, 1.0 and True are three different spec values."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def canonical(op: str, args: dict[str, Any] | None) -> dict[str, Any]:
    """For comparing: lists and tuples alike, floats to 10 significant digits (a recovered
    `0.1 + 0.0125 * j` need not round as the model's own arithmetic did)."""
    def norm(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return tuple(norm(x) for x in v)
        if isinstance(v, float):
            return float(f"{v:.10g}")
        return v
    return {k: norm(v) for k, v in full_args(op, args).items()}


def owns_tensors(op: str, args: dict[str, Any] | None) -> bool:
    """Whether the op's module may hold parameters or buffers (its name is then in the state_dict)."""
    return OPS[op].weights is not no_weights

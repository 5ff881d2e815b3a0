"""What every op rule is made of, and helpers the rules share.

An op rule is a row in a table and the one place that knows the op: its
argument model (strict, declared as a pydantic model is: specdsl.ops.model), the positions of unnamed arguments, pure
functions for output shape, weights, MACs, extra ops, receptive field and
labels, and the traits other stages ask about. The shape rule resolves the
arguments against the input into a typed, frozen record (the op's attrs) that
every other rule and every backend reads.
Rules raise :class:`RuleViolation`; the analysis pass turns it into a located
diagnostic. No rule knows about files, YAML or the graph.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Annotated, Any, Literal, NamedTuple

from specdsl.ops.model import Field, Model

Shape = tuple[int, ...]
Number = int | Fraction

PositiveInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]
IntPerAxis = PositiveInt | Annotated[list[PositiveInt], Field(min_length=1, max_length=3)]
NonNegPerAxis = NonNegInt | Annotated[list[NonNegInt], Field(min_length=1, max_length=3)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]


class Args(Model):
    """Base of every op's argument model: strict types, unknown keys rejected, frozen, no inf/nan (no
    layer needs them, and they have no spelling in the DSL or in emitted code). ``Field`` comes from
    here (or specdsl.ops.model), not from pydantic: see specdsl/ops/model.py."""


class NoArgs(Args):
    pass


class RuleViolation(Exception):
    """An op's invariant broken; ``field`` names the argument at fault, if any."""

    def __init__(self, code: str, message: str, hint: str | None = None, field: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        self.field = field


@dataclass
class RuleContext:
    """Lets a shape rule report warnings without stopping."""

    warnings: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)
    # Per input: the shapes of its parts where it is a multi-output node (split, chunk), else None.
    input_parts: Sequence[tuple[Shape, ...] | None] = ()

    def warn(self, code: str, message: str, hint: str | None = None, field: str | None = None) -> None:
        self.warnings.append((code, message, hint, field))


@dataclass(frozen=True, slots=True)
class AxisRF:
    """Receptive field on one spatial axis: size r, effective stride j, effective padding P."""

    size: Number
    stride: Number
    pad: Number

    @property
    def centre(self) -> Number:
        return Fraction(self.size - 1, 2) - self.pad

    def __str__(self) -> str:
        return f"{_decimal(self.size)}/{_decimal(self.stride)}/{_decimal(self.pad)}"


def _decimal(x: Number) -> str:
    """Fractions (after transposed convs) as decimals, so '5/0.5/1' stays readable."""
    if isinstance(x, Fraction):
        return str(x.numerator) if x.denominator == 1 else f"{float(x):g}"
    return str(x)


# None: not spatial any more (after flatten / linear / global pooling).
RF = tuple[AxisRF, ...] | None


@dataclass(frozen=True, slots=True)
class Window:
    """One spatial axis of a sliding-window op, for the receptive-field rule."""

    kernel: int  # effective kernel, d(k-1)+1
    stride: int
    pad: int  # padding before the first element


class Trait(enum.Enum):
    """Properties of an op that stages other than its own rule ask about."""

    # May overwrite its input (`nn.ReLU(inplace=True)`) when nothing else reads it.
    INPLACE = "inplace"
    # Its backward does not need its own output, so an in-place op may overwrite it (views excluded).
    OVERWRITABLE_OUTPUT = "overwritable_output"
    # Combines several inputs into one tensor of their common shape (or along a dim).
    MERGE = "merge"
    # The element-wise sum of a residual connection.
    SUM = "sum"
    # Output channels equal input channels (activations, norms, pooling, dropout, ...).
    KEEPS_CHANNELS = "keeps_channels"
    # Its output(s) share the input's storage (split, chunk and their parts): no new memory,
    # but the input stays alive while the view is.
    VIEW = "view"
    # Acts element-wise or on the last axis alone, so a channels-last tensor (after `permute`)
    # stays channels-last through it (W302 looks through such ops for a permute).
    KEEPS_LAYOUT = "keeps_layout"
    # May resize to a size written in its arguments rather than one that follows the input
    # (W321 compares that size with the model input's).
    FIXED_SIZE = "fixed_size"
    # Its `p` is a drop rate: no figure depends on it but for whether it is 0, 1 or in between (the
    # sweep's block-call memo keys such an argument by that alone).
    DROP_RATE = "drop_rate"
    # Acts on the last axis alone (nn.Linear): on a channels-first [C, H, W] input it mixes W, not the
    # features (W302), unless the axes were reordered first.
    LAST_AXIS = "last_axis"
    # Reorders the axes (permute): what follows may see a channels-last tensor.
    REORDERS_AXES = "reorders_axes"


# TensorSpec.name of an op's one tensor that is a parameter of its container named by the node itself
# (torchvision's CNBlock.layer_scale is an nn.Parameter of the block, not a submodule): its key is the
# node's module path (`features.1.0.layer_scale`, no `.weight`). A container's own parameters come
# before its submodules' in a state_dict, so such a node's tensor is first among its siblings'.
NODE_ITSELF = ""


class TensorSpec(NamedTuple):
    """One parameter or buffer an op owns, in PyTorch's order and naming (NODE_ITSELF: see above)."""

    name: str
    shape: Shape
    role: Literal["parameter", "buffer"] = "parameter"
    # Default initialisation when the spec gives none (torchvision's conventions):
    # "kaiming_fan_out" (Kaiming-normal, fan-out, relu), "ones", "zeros", or "torch" (PyTorch's own).
    init: Literal["kaiming_fan_out", "ones", "zeros", "torch"] = "torch"
    dtype: Literal["model", "int64"] = "model"
    # Inputs each output element sums over, for weights drawn on the fan-in (None: not a weight matrix).
    fan_in: float | None = None
    # False: a buffer registered with persistent=False (timm's BlurPool2d filter): a constant its op
    # computes from its attrs, counted among the buffers but in no state_dict, checkpoint or weight file.
    persistent: bool = True

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def of_container(self) -> bool:
        """Whether the tensor is the node itself: a parameter of its container under the node's name."""
        return self.name == NODE_ITSELF


class Inferred(NamedTuple):
    shape: Shape
    # The op's arguments resolved against its input: an immutable record of the op's own
    # (ConvAttrs, ...) or, where nothing needs resolving, the validated Args themselves.
    attrs: Any
    # A multi-output op's outputs (split, chunk), each referred to as `@name.k`; `shape` is then
    # the whole they partition. None for the usual single output.
    parts: tuple[Shape, ...] | None = None


InferFn = Callable[[Any, Sequence[Shape], RuleContext], Inferred]
CountFn = Callable[[Any, Sequence[Shape], Shape], int]
WeightsFn = Callable[[Any], tuple[TensorSpec, ...]]
RFFn = Callable[[Any, Sequence[RF]], RF]
LabelFn = Callable[[str, Any], str]


def _zero_count(attrs: Any, ins: Sequence[Shape], out: Shape) -> int:
    return 0


def no_weights(attrs: Any) -> tuple[TensorSpec, ...]:
    return ()


def label_name(op: str, attrs: Any) -> str:
    return op


def label_none(op: str, attrs: Any) -> str:
    return ""


def rf_pointwise(attrs: Any, ins: Sequence[RF]) -> RF:
    return ins[0]


def rf_flat(attrs: Any, ins: Sequence[RF]) -> RF:
    return None


def rf_window(attrs: Any, ins: Sequence[RF]) -> RF:
    """Araujo et al. 2019: r += (k_eff-1)·j; P += p·j; j *= s, per axis."""
    rf = ins[0]
    if rf is None:
        return None
    return tuple(
        AxisRF(a.size + (w.kernel - 1) * a.stride, a.stride * w.stride, a.pad + w.pad * a.stride)
        for a, w in zip(rf, attrs.windows, strict=True)
    )


@dataclass(frozen=True)
class OpRule:
    name: str
    family: str
    args: type[Args]
    infer: InferFn
    weights: WeightsFn = no_weights
    macs: CountFn = _zero_count
    # Extra operations for the "full" convention: bias, norms, activations, pooling.
    extra: CountFn = _zero_count
    rf: RFFn = rf_pointwise
    # Arguments given without names, in order (YAML shorthand `linear: 1000`, DSL `conv(64, 3)`).
    positional: tuple[str, ...] = ()
    # A short description for tables (`conv 3×3 s2 p1`) and the key figure for diagrams (`64 ch`).
    summary: LabelFn = label_name
    detail: LabelFn = label_none
    traits: frozenset[Trait] = frozenset()
    min_inputs: int = 1
    max_inputs: int | None = 1
    # Spatial ranks the op exists for in PyTorch; None = any rank.
    ranks: frozenset[int] | None = None
    doc: str = ""
    aliases: tuple[str, ...] = ()

    def has(self, trait: Trait) -> bool:
        return trait in self.traits


def axes_text(values: Sequence[object]) -> str:
    """``(3, 3)`` -> ``3``, ``(1, 3)`` -> ``1×3``: one number when every axis agrees."""
    return str(values[0]) if len(set(values)) == 1 else "×".join(map(str, values))


def numel(shape: Iterable[int]) -> int:
    return math.prod(shape)


def spatial_rank(shape: Shape) -> int:
    return len(shape) - 1


def per_axis(value: int | Sequence[int], rank: int, what: str, field_name: str) -> tuple[int, ...]:
    """Broadcast an int, or check a list has one value per spatial axis."""
    if isinstance(value, int):
        return (value,) * rank
    if len(value) != rank:
        raise RuleViolation(
            "E305",
            f"{what} needs one value per spatial axis ({rank}); received {list(value)} "
            f"({len(value)} values)",
            hint=f"write a single number or a list of {rank}",
            field=field_name,
        )
    return tuple(value)


def fmt_shape(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


AXIS_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def axis_name(rank: int, i: int) -> str:
    return AXIS_NAMES.get(rank, tuple(f"axis{k}" for k in range(rank)))[i]


def require_rank(shape: Shape, ranks: Sequence[int], op: str) -> int:
    rank = spatial_rank(shape)
    if rank not in ranks:
        wanted = " or ".join(
            {0: "[F]", 1: "[C, L]", 2: "[C, H, W]", 3: "[C, D, H, W]"}[r] for r in ranks
        )
        raise RuleViolation(
            "E306",
            f"{op} needs an input of shape {wanted}; received {fmt_shape(shape)}",
            hint="check the layer before it; a flatten or global pool removes spatial axes"
            if rank == 0 else None,
        )
    return rank


def check_in(expected: int | None, actual: int, what: str) -> None:
    if expected is not None and expected != actual:
        raise RuleViolation(
            "E302",
            f"{what} mismatch: the layer declares in={expected} but receives {actual}",
            hint=f"set in={actual}, or fix the layer that feeds it",  # voice: `in: N` in YAML
            field="in",
        )


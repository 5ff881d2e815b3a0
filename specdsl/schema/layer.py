"""One layer of a spec: its meta keys, and parsing it into a validated op or block call.

Layers are dispatched on their op key by hand (not a pydantic union) so that an unknown
op gets a "did you mean" and every error keeps the user's path.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from specdsl.errors import Diagnostic, SourceLoc, did_you_mean
from specdsl.ops import ALIASES, OPS, POSITIONAL, lookup
from specdsl.ops.model import Field, validation_error
from specdsl.ops.rule import Args, PositiveFloat
from specdsl.schema.names import NAME_PATTERN
from specdsl.schema.validation import diagnostics_from, kind_of, show_value
from specdsl.source import PathKey, SourceMap, format_path

NodeName = Annotated[str, Field(pattern=NAME_PATTERN)]
# A node, or one output of a split/chunk: `s.0` (`@s.0` in the DSL).
# `s.0`: a part of s (or layer 0 of the stage s); `backbone.layer3`: the layer named layer3 in the stage backbone.
# `fuse_layers.0.1`: member 1 of member 0 of the list fuse_layers; `stage2.0.1`: output 1 of the list member
# stage2.0, a block call with several outputs. At most four segments after the name.
REF_PATTERN = "^(?:" + NAME_PATTERN[1:-1] + r")(?:\.(?:0|[1-9][0-9]{0,3}|[A-Za-z_][A-Za-z0-9_]{0,63})){0,4}$"
NodeRef = Annotated[str, Field(pattern=REF_PATTERN)]

InitScheme = Literal[
    "default", "kaiming", "kaiming_normal", "kaiming_uniform", "xavier", "xavier_normal",
    "xavier_uniform", "normal", "uniform", "trunc_normal", "orthogonal", "zeros", "ones",
]


class InitSpec(Args):
    """Weight initialisation with its parameters; ``init: kaiming`` is the short form."""

    scheme: InitScheme
    mode: Literal["fan_in", "fan_out"] = "fan_in"
    nonlinearity: Literal["relu", "leaky_relu", "linear", "tanh", "sigmoid"] = "relu"
    mean: float = 0.0
    std: PositiveFloat | None = None
    gain: PositiveFloat = 1.0
    bias: Literal["zeros", "default"] = "zeros"


class LayerMeta(Args):
    """Keys every layer may carry beside its op."""

    # Checked by the expander (E380, specdsl.blocks.names): a module name, or a copy-name template.
    name: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        default=None, description="the layer's module name, and a name to refer to its output by")
    frozen: bool = Field(default=False, description="parameters get requires_grad=False")
    init: InitScheme | InitSpec | None = Field(default=None, description="weight initialisation")
    inputs: Annotated[list[NodeRef], Field(min_length=1)] | None = Field(
        default=None, description="names of the nodes feeding this one (default: the previous layer); "
        "`s.0` is the first output of a split or chunk named s"
    )
    repeat: Annotated[int, Field(ge=0)] = Field(default=1, description="stack this many copies in sequence "
                                                "(0: none, the layer is left out)")
    index: NodeName | None = Field(default=None, description="with repeat: a name for the copy's number (0, 1, "
                                   "...) that the copy's arguments and `if` may use, e.g. `p: 0.1 * j`")
    if_: bool = Field(default=True, alias="if", description="build the layer only when true (a parameter or a "
                      "condition such as `depth > 1`)")


META_KEYS = tuple(f.alias or n for n, f in LayerMeta.model_fields.items())


@dataclass
class LayerSpec:
    """One validated layer: an op, its arguments, and where it was written.

    For blocks (built-in or user-defined) ``args`` is None and ``raw_args``
    holds the unvalidated arguments for the expander.
    """

    op: str
    args: Args | None
    meta: LayerMeta
    path: PathKey
    loc: SourceLoc | None
    arg_locs: dict[str, SourceLoc] = field(default_factory=dict)
    raw_args: Any = None


def split_layer(raw: Any) -> tuple[str | None, Any, dict[str, Any], str | None]:
    """(op name, raw args, meta keys, problem) of one layer entry."""
    if isinstance(raw, str):
        return raw, None, {}, None
    if not isinstance(raw, dict):
        return None, None, {}, f"a layer is an op name or a mapping; received {show_value(raw)} ({kind_of(raw)})"
    ops = [k for k in raw if k not in META_KEYS]
    meta = {k: v for k, v in raw.items() if k in META_KEYS}
    if not ops:
        return None, None, meta, "this layer names no op"
    if len(ops) > 1:
        return None, None, meta, (
            f"a layer holds exactly one op; received {', '.join(repr(o) for o in ops)}"
        )
    return ops[0], raw[ops[0]], meta, None


def misspelt_meta_keys(raw: Any, blocks: Collection[str]) -> list[str]:
    """Keys of a layer mapping that are neither ops nor meta keys but look like meta keys."""
    if not isinstance(raw, dict):
        return []
    candidates = [k for k in raw if k not in META_KEYS]
    known = [k for k in candidates if lookup(k) is not None or k in blocks]
    if len(known) != 1:
        return []
    return [k for k in candidates if k not in known and did_you_mean(k, META_KEYS)]


def _positional(op: str) -> str | None:
    """The argument a scalar shorthand (``linear: 1000``) fills."""
    return POSITIONAL.get(op, (None,))[0]


def parse_layer(
    raw: Any,
    path: PathKey,
    smap: SourceMap | None,
    diags: list[Diagnostic],
    blocks: Collection[str] = (),
) -> LayerSpec | None:
    loc = smap.value_loc(path) if smap else None
    misspelt = misspelt_meta_keys(raw, blocks)
    if misspelt:
        for key in misspelt:
            diags.append(Diagnostic(
                "error", "E201", f"unknown key '{key}' in a layer",
                smap.key_loc((*path, key)) if smap else loc, path=format_path(path),
                hint=f"did you mean '{did_you_mean(key, META_KEYS)}'?"))
        return None
    op, raw_args, raw_meta, problem = split_layer(raw)
    if problem is not None:
        diags.append(Diagnostic(
            "error", "E204", problem, loc, path=format_path(path),
            hint="write `- relu`, or `- conv: {out: 64, k: 3}`; put each op in its own list item"))
        return None
    assert op is not None
    rule = lookup(op)
    op_path = path if isinstance(raw, str) else (*path, op)
    if rule is None and op in blocks:
        try:
            meta = LayerMeta.model_validate(raw_meta)
        except validation_error() as exc:
            diags.extend(diagnostics_from(exc, raw_meta, path, smap, LayerMeta, "a layer"))
            return None
        return LayerSpec(op, None, meta, path, loc, _meta_locs(smap, path, meta), raw_args)
    if rule is None:
        guess = did_you_mean(op, [*OPS, *ALIASES, *blocks])
        diags.append(Diagnostic(
            "error", "E204", f"unknown layer '{op}'",
            (smap.key_loc(op_path) if smap else None) or loc, path=format_path(path),
            hint=f"did you mean '{guess}'?" if guess else "run `specdsl ops` to list the layers"))
        return None
    ok = True
    try:
        meta = LayerMeta.model_validate(raw_meta)
    except validation_error() as exc:
        diags.extend(diagnostics_from(exc, raw_meta, path, smap, LayerMeta, "a layer"))
        meta, ok = LayerMeta(), False
    args_data: Any = {} if raw_args is None else raw_args
    written_at: dict[PathKey, PathKey] | None = None
    if not isinstance(args_data, dict):
        first = _positional(rule.name)
        if first is None:
            diags.append(Diagnostic(
                "error", "E202",
                f"'{op}' takes named arguments; received {show_value(args_data)} ({kind_of(args_data)})",
                smap.value_loc(op_path) if smap else loc, path=format_path(op_path),
                hint=f"write `{op}: {{...}}` or just `{op}`"))
            return None
        # The shorthand's value stands for the argument `first`: its text is the argument's.
        args_data = {first: args_data}
        written_at = {(*op_path, first): op_path}
    try:
        args = rule.args.model_validate(args_data)
    except validation_error() as exc:
        diags.extend(diagnostics_from(exc, args_data, op_path, smap, rule.args, f"'{rule.name}'", written_at))
        return None
    if not ok:
        return None
    arg_locs = _meta_locs(smap, path, meta)
    if smap is not None:
        for key in args_data:
            key_loc = smap.value_loc(op_path) if written_at else smap.values.get((*op_path, key))
            if key_loc is not None:
                arg_locs[key] = key_loc
    return LayerSpec(rule.name, args, meta, path, loc, arg_locs)


def _meta_locs(smap: SourceMap | None, path: PathKey, meta: LayerMeta) -> dict[str, SourceLoc]:
    locs: dict[str, SourceLoc] = {}
    if smap is None:
        return locs
    for i in range(len(meta.inputs or ())):
        ref_loc = smap.values.get((*path, "inputs", i))
        if ref_loc is not None:
            locs[f"inputs[{i}]"] = ref_loc
    for key in ("name", "repeat"):
        key_loc = smap.values.get((*path, key))
        if key_loc is not None:
            locs[key] = key_loc
    return locs

"""The spec schema: the document and user-defined blocks (layers: schema/layer.py).

Both front ends hand this module plain data plus a SourceMap; it returns a Spec
or raises a SpecError listing every problem found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from specdsl.blocks.registry import BLOCKS, BODY_BLOCKS
from specdsl.errors import Diagnostic
from specdsl.ops import ALIASES, OPS
from specdsl.ops.model import Field, validation_error
from specdsl.ops.rule import Args, PositiveInt
from specdsl.schema.layer import NodeName, NodeRef
from specdsl.schema.names import MODEL_NAME_PATTERN, NAME_PATTERN
from specdsl.schema.params import ParamChoice, Resolved, resolve
from specdsl.schema.validation import diagnostics_from, kind_of, show_value
from specdsl.source import PathKey, SourceMap


class SpecDocument(Args):
    """The top level of a spec file."""

    model: Annotated[str, Field(pattern=MODEL_NAME_PATTERN)] = Field(description="the model's name")
    input: Annotated[list[PositiveInt], Field(min_length=1, max_length=4)] = Field(
        description="input shape without the batch: [C, L], [C, H, W] or [C, D, H, W]"
    )
    dtype: Literal["float32", "float16", "bfloat16", "float64"] = "float32"
    description: str | None = None
    params: dict[Annotated[str, Field(pattern=NAME_PATTERN)], Any] = Field(
        default_factory=dict, description="the model's parameters: name: default value (or type, if required)"
    )
    variants: dict[Annotated[str, Field(pattern=MODEL_NAME_PATTERN)], dict[str, Any]] = Field(
        default_factory=dict, description="named members of the family: variant name: {parameter: value}"
    )
    blocks: dict[Annotated[str, Field(pattern=NAME_PATTERN)], Any] = Field(
        default_factory=dict, description="user-defined blocks, called by name from layers"
    )
    layers: Annotated[list[Any], Field(min_length=1)]
    outputs: (Annotated[list[NodeRef], Field(min_length=1, max_length=64)]
              | Annotated[dict[Annotated[str, Field(pattern=NAME_PATTERN)], NodeRef], Field(min_length=1,
                                                                                            max_length=64)]
              | None) = Field(default=None, description="several model outputs: a list (the module returns "
                              "a tuple) or name: node (a dict), e.g. {out: head, aux: aux_head}")


class _BlockParts(Args):
    """What every user-defined block has besides its body."""

    params: dict[Annotated[str, Field(pattern=NAME_PATTERN)], Any] = Field(
        default_factory=dict, description="name: type (int, float, bool, str) for required, or a default value"
    )
    inputs: Annotated[list[NodeName], Field(min_length=1, max_length=16)] = Field(
        default_factory=lambda: ["input"], description="names the block's inputs are known by inside it"
    )
    layers: Annotated[list[Any], Field(min_length=1)] | None = None
    outputs: Annotated[list[NodeRef], Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="several outputs, in order: the call returns them as a tuple, read by the "
        "caller as `name.0`, `name.1`, ... (`@name.0` in the DSL)")


# The body is `layers` or one built-in block (`residual: {...}`): a field for each in the block table.
if TYPE_CHECKING:
    # Those fields exist only at run time (read by name: blocks/user.py body_of); statically a
    # block is its fixed parts.
    BlockDef = _BlockParts
else:
    BlockDef = type("BlockDef", (_BlockParts,), {
        "__module__": __name__, "__doc__": "A user-defined block: typed parameters and a body.",
        "__annotations__": dict.fromkeys(BODY_BLOCKS, Any), **dict.fromkeys(BODY_BLOCKS)})


@dataclass
class Spec:
    model: str
    input: tuple[int, ...]
    dtype: str
    description: str | None
    layers: list[Any]
    blocks: dict[str, BlockDef]
    smap: SourceMap | None
    # The model parameters' values for this load (in scope in layers and blocks), where each came
    # from, the variant chosen and the variants declared.
    # Declared outputs: node references in order, each with its key (None in a list), or None.
    outputs: tuple[tuple[str | None, str], ...] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    param_origin: dict[str, str] = field(default_factory=dict)
    variant: str | None = None
    variants: tuple[str, ...] = ()


def validate_document(data: Any, smap: SourceMap | None, choice: ParamChoice | None = None) -> Spec:
    """Validate a whole document for one member of its family (``choice``: a variant and parameter
    values; by default the spec's defaults); raise SpecError with every problem found."""
    from specdsl.errors import SpecError

    sources = {smap.file: smap.text} if smap else {}
    diags: list[Diagnostic] = []
    if not isinstance(data, dict):
        loc = smap.value_loc(()) if smap else None
        raise SpecError([Diagnostic(
            "error", "E202", f"a spec is a mapping with model, input and layers; received {kind_of(data)}",
            loc, hint="start the file with `model: name`")], sources)
    resolved = resolve(data, smap, choice or ParamChoice(), diags)
    if resolved is None:
        raise SpecError(diags, sources)
    header_data = {**data, "layers": [None] * len(data["layers"])} if isinstance(data.get("layers"), list) else data
    if resolved.env and isinstance(data.get("input"), list):
        header_data = {**header_data, "input": _input_with(data["input"], resolved, smap, diags)}
    try:
        doc = SpecDocument.model_validate(header_data)
    except validation_error() as exc:
        diags.extend(diagnostics_from(exc, data, (), smap, SpecDocument, "the spec"))
        doc = None
    blocks: dict[str, BlockDef] = {}
    if doc is not None:
        for name, raw in doc.blocks.items():
            block = _validate_block(name, raw, smap, diags)
            if block is not None:
                blocks[name] = block
    if diags or doc is None:
        raise SpecError(diags, sources)
    outputs = None if doc.outputs is None else tuple(doc.outputs.items()) if isinstance(doc.outputs, dict) \
        else tuple((None, ref) for ref in doc.outputs)
    # A variant is a model of its own name (resnet50 from the resnet family file).
    return Spec(resolved.variant or doc.model, tuple(doc.input), doc.dtype, doc.description, list(data["layers"]),
                blocks, smap, outputs, resolved.env, resolved.origin, resolved.variant, tuple(doc.variants))


def _input_with(shape: list[Any], resolved: Resolved, smap: SourceMap | None, diags: list[Diagnostic]) -> list[Any]:
    """The input shape with parameters in it evaluated (`input [3, resolution, resolution]`)."""
    from specdsl.blocks.expr import ExprError, evaluate, is_expression

    out = []
    for i, item in enumerate(shape):
        if isinstance(item, str) and (item in resolved.env or is_expression(item, resolved.env)):
            try:
                item = evaluate(item, resolved.env)
            except ExprError as exc:
                diags.append(Diagnostic("error", "E320", f"cannot evaluate '{item}': {exc}",
                                        smap.value_loc(("input", i)) if smap else None))
        out.append(item)
    return out


BUILTIN_BLOCKS = tuple(BLOCKS)
_BLOCK_BODIES = ("layers", *BODY_BLOCKS)


def _validate_block(name: str, raw: Any, smap: SourceMap | None, diags: list[Diagnostic]) -> BlockDef | None:
    path: PathKey = ("blocks", name)
    where = smap.key_loc(path) if smap else None
    if name in OPS or name in ALIASES or name in BUILTIN_BLOCKS:
        diags.append(Diagnostic(
            "error", "E315", f"block name '{name}' is already a built-in layer", where,
            hint="pick another name"))
        return None
    if isinstance(raw, list):
        raw = {"layers": raw}
    try:
        block = BlockDef.model_validate(raw)
    except validation_error() as exc:
        diags.extend(diagnostics_from(exc, raw, path, smap, BlockDef, f"block '{name}'"))
        return None
    bodies = [b for b in _BLOCK_BODIES if getattr(block, b) is not None]
    if len(bodies) != 1:
        diags.append(Diagnostic(
            "error", "E317",
            f"block '{name}' needs exactly one body ({', '.join(_BLOCK_BODIES[:-1])} or {_BLOCK_BODIES[-1]}); "
            f"received {', '.join(bodies) if bodies else 'none'}",
            where, hint="write `layers: [...]` for a plain sequence"))
        return None
    for i, iname in enumerate(block.inputs):
        if iname in block.inputs[:i]:
            diags.append(Diagnostic(
                "error", "E102", f"input '{iname}' of block '{name}' is declared twice",
                smap.value_loc((*path, "inputs", i)) if smap else where,
                hint="give each input its own name: `inputs(x, skip)`"))
            return None
    for pname, decl in block.params.items():
        if pname in ("input", *block.inputs):
            diags.append(Diagnostic(
                "error", "E315", f"parameter '{pname}' of block '{name}' clashes with an input name",
                smap.key_loc((*path, "params", pname)) if smap else where))
            return None
        if decl is None or isinstance(decl, (list, dict)):
            diags.append(Diagnostic(
                "error", "E202",
                f"parameter '{pname}' of block '{name}' needs a type (int, float, bool, str) or a default "
                f"value; received {show_value(decl)}",
                smap.value_loc((*path, "params", pname)) if smap else where))
            return None
    return block

"""The JSON Schema of spec files, built from the same models that validate them.

Every op, alias and built-in block comes from its rule's argument model (specdsl.ops.OPS,
specdsl.blocks.registry.BLOCKS), so an op added to the table appears here with no edit. The
schema rejects what `check` rejects about one layer taken alone: unknown layer names (in a spec
without user blocks, where no other name can be a call), argument types, ranges and enum values,
also in the shorthand `dropout: 0.5`. Each layer and argument carries a title and a description,
which editors show on hover.
"""

from __future__ import annotations

from typing import Any

from specdsl.blocks.registry import BLOCKS
from specdsl.ops import ALIASES, OPS, POSITIONAL
from specdsl.ops.rule import Args
from specdsl.schema.document import BlockDef, SpecDocument
from specdsl.schema.layer import META_KEYS, LayerMeta
from specdsl.schema.names import NAME_PATTERN

_REF = "#/$defs/{model}"


def _arg_models() -> dict[str, tuple[type[Args], str]]:
    """Every name a layer may start with -> (its argument model, its description)."""
    models: dict[str, tuple[type[Args], str]] = {}
    for name, rule in OPS.items():
        models[name] = (rule.args, rule.doc)
        for alias in rule.aliases:
            models[alias] = (rule.args, f"alias of {name}: {rule.doc}")
    for name, block in BLOCKS.items():
        models[name] = (block.args, f"built-in block: {block.doc}")
    return models


def _describe(args: dict[str, Any]) -> None:
    """Give each argument a description that says its default (or that it is required)."""
    required = set(args.get("required", ()))
    for key, prop in args.get("properties", {}).items():
        said = prop.get("description")
        if key in required:
            tail = "required"
        elif "default" in prop and prop["default"] is not None:
            tail = f"default {_show(prop['default'])}"
        else:
            tail = "optional"
        prop["description"] = f"{said} ({tail})" if said else f"{key} ({tail})"
        prop["title"] = key


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _shorthand(op: str, args: dict[str, Any]) -> dict[str, Any] | None:
    """The schema of `op: VALUE`, the value filling the op's first positional argument."""
    names = POSITIONAL.get(op)
    if not names:
        return None
    prop = dict(args.get("properties", {}).get(names[0], {}))
    prop.pop("default", None)
    prop["description"] = f"shorthand for `{op}: {{{names[0]}: ...}}`: " + prop.get("description", names[0])
    return prop


def json_schema() -> dict[str, Any]:
    """A JSON Schema for spec files.

    A layer that names a known op (or alias, or built-in block) must match that op's arguments
    exactly. In a spec with user blocks, any other single-key mapping may be a call of one, whose
    parameters only the spec itself defines; in a spec without, an unknown name is an error.
    """
    doc_schema = SpecDocument.model_json_schema(ref_template=_REF)
    defs: dict[str, Any] = doc_schema.setdefault("$defs", {})
    meta = LayerMeta.model_json_schema(ref_template=_REF)
    defs.update(meta.pop("$defs", {}))
    models = _arg_models()
    rules = [_layer_rule(op, model, doc, defs, meta["properties"]) for op, (model, doc) in sorted(models.items())]
    _layer_defs(defs, rules, sorted(models))
    _document_properties(doc_schema, defs)
    doc_schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc_schema["title"] = "specdsl model spec"
    return doc_schema


def _layer_rule(op: str, model: type[Args], doc: str, defs: dict[str, Any],
                meta_properties: dict[str, Any]) -> dict[str, Any]:
    """The rule a layer naming ``op`` follows (its argument model joins ``defs``)."""
    args = model.model_json_schema(ref_template=_REF)
    defs.update(args.pop("$defs", {}))
    if model.__name__ not in defs:
        _describe(args)
        defs[model.__name__] = args
    target = OPS.get(ALIASES.get(op, op))
    # The value is a mapping of arguments, null (`relu:`), or a shorthand; chosen by its type
    # (if/then/else), so a validator names the argument at fault.
    other = (_shorthand(target.name, defs[model.__name__]) if target else None) \
        or {"type": "object", "description": f"the arguments of {op}"}
    if op in BLOCKS and BLOCKS[op].list_form:
        other = {"type": "array", "description": f"the layers of the {op}"}
    value = {"if": {"type": "object"}, "then": {"$ref": f"#/$defs/{model.__name__}"},
             "else": {"if": {"type": "null"}, "else": other}}
    properties = {op: {"title": op, "description": doc, **value}, **meta_properties}
    return {
        "if": {"type": "object", "required": [op]},
        "then": {"type": "object", "properties": properties, "additionalProperties": False},
    }


def _layer_defs(defs: dict[str, Any], rules: list[dict[str, Any]], known: list[str]) -> None:
    """``Layer`` (any op or call) and ``KnownLayer`` (a spec without user blocks: known names only)."""
    defs["Layer"] = {
        "if": {"type": "string"},
        "then": {"pattern": NAME_PATTERN, "description": "an op or block with no arguments"},
        "else": {"type": "object", "minProperties": 1, "allOf": [*rules, *_statement_rules("Layer")],
                 "description": "an op, a built-in block or a user block call, with name/frozen/init/inputs/repeat; "
                 "or a let, or a conditional group"},
    }
    # Without user blocks every layer must name a known op: an editor then flags `maxpol: 2`
    # ("'maxpol' is not one of ...") as `check` does. if/then/else rather than anyOf, so a
    # validator reports the failing rule instead of "not valid under any of the given schemas".
    defs["KnownLayer"] = {
        "if": {"type": "string"},
        "then": {"enum": known, "description": "an op or built-in block with no arguments"},
        "else": {"type": "object", "propertyNames": {"enum": [*known, *META_KEYS, "let", "then", "else"]},
                 "allOf": _statement_rules("KnownLayer"),
                 "description": "one op or built-in block, with name/frozen/init/inputs/repeat; or a let, or a "
                 "conditional group"},
    }


def _statement_rules(layer: str) -> list[dict[str, Any]]:
    """Rules for a list item that is a `let` or a conditional group (specdsl.blocks.control), chosen by their
    keys as a layer's rule is by its op; a group's lists hold ``layer`` items."""
    items = {"type": "array", "items": {"$ref": f"#/$defs/{layer}"}}
    let = {"type": "object", "required": ["let"], "additionalProperties": False, "properties": {"let": {
        "type": "object", "minProperties": 1, "propertyNames": {"pattern": NAME_PATTERN},
        "description": "names bound to values (numbers, lists, expressions) for the items after this one "
        "(DSL `let mid = c * expand`)"}}}
    group = {"type": "object", "required": ["if"], "additionalProperties": False, "properties": {
        "if": {"description": "the condition: true, false, a bool parameter or an expression such as `depth > 1`"},
        "then": {**items, "description": "the layers built when the condition holds"},
        "else": {**items, "description": "the layers built when it does not (DSL `if c { ... } else { ... }`)"}}}
    return [{"if": {"required": ["let"]}, "then": let}, {"if": {"required": ["then"]}, "then": group},
            {"if": {"required": ["else"]}, "then": group}]


def _document_properties(doc_schema: dict[str, Any], defs: dict[str, Any]) -> None:
    """The document's ``layers``, ``input`` and ``blocks``, which depend on whether it is a family."""
    # Inside a block, or anywhere in a family (a spec with `params`), values may be expressions of
    # parameters (`out: c * 4`, `out: make_divisible(32 * width, 8)`), which only expansion can
    # check: the schema asks for the shape of a layer there, not its argument types.
    template = {"anyOf": [{"type": "string"}, {"type": "object", "minProperties": 1}]}
    doc_schema["properties"]["layers"] = {
        "type": "array", "minItems": 1, "title": "layers", "description": "the model's layers, in order",
    }
    positive = {"type": "integer", "exclusiveMinimum": 0}
    doc_schema["properties"]["input"] = {
        "type": "array", "minItems": 1, "maxItems": 4, "items": {"anyOf": [positive, {"type": "string"}]},
        "title": "input", "description": "input shape without the batch: [C, L], [C, H, W] or [C, D, H, W] "
        "(in a family, expressions of its parameters: [3, resolution, resolution])",
    }
    doc_schema["allOf"] = [
        {"if": {"required": ["params"]},
         "then": {"properties": {"layers": {"items": template}}},
         "else": {"properties": {"layers": {"items": {"$ref": "#/$defs/Layer"}},
                                 "input": {"items": positive}}}},
        {"if": {"not": {"required": ["blocks"]}},
         "then": {"properties": {"layers": {"items": {"$ref": "#/$defs/KnownLayer"}}}}},
    ]
    block = BlockDef.model_json_schema(ref_template=_REF)
    defs.update(block.pop("$defs", {}))
    block["properties"]["layers"] = {"anyOf": [{"type": "array", "items": template}, {"type": "null"}]}
    defs["BlockDef"] = block
    doc_schema["properties"]["blocks"] = {
        "type": "object", "propertyNames": {"pattern": NAME_PATTERN},
        "additionalProperties": {"anyOf": [{"$ref": "#/$defs/BlockDef"}, {"type": "array", "items": template}]},
        "title": "blocks", "description": "user-defined blocks, called by name from layers",
    }

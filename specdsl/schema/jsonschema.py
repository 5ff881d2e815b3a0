"""The JSON Schema of spec files, built from the same models that validate them."""

from __future__ import annotations

from typing import Any

from specdsl.blocks.registry import BLOCKS
from specdsl.ops import ALIASES, OPS, POSITIONAL
from specdsl.ops.rule import Args
from specdsl.schema.document import BlockDef, SpecDocument
from specdsl.schema.layer import LayerMeta
from specdsl.schema.names import NAME_PATTERN


def json_schema() -> dict[str, Any]:
    """A JSON Schema for spec files.

    A layer that names a known op (or alias, or built-in block) must match that op's
    arguments exactly; any other single-key mapping is taken for a call of a user
    block, whose parameters only the spec itself defines.
    """
    doc_schema = SpecDocument.model_json_schema(ref_template="#/$defs/{model}")
    defs: dict[str, Any] = doc_schema.setdefault("$defs", {})
    arg_models: dict[str, tuple[type[Args], str]] = {}
    for name, rule in OPS.items():
        arg_models[name] = (rule.args, rule.doc)
        for alias in rule.aliases:
            arg_models[alias] = (rule.args, f"alias of {name}: {rule.doc}")
    for name, block in BLOCKS.items():
        arg_models[name] = (block.args, block.doc)
    meta = LayerMeta.model_json_schema(ref_template="#/$defs/{model}")
    defs.update(meta.pop("$defs", {}))
    rules: list[dict[str, Any]] = []
    for op, (model, doc) in sorted(arg_models.items()):
        args = model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(args.pop("$defs", {}))
        defs.setdefault(model.__name__, args)
        target = OPS.get(ALIASES.get(op, op))
        options: list[dict[str, Any]] = [{"$ref": f"#/$defs/{model.__name__}"}, {"type": "null"}]
        if target is not None and target.name in POSITIONAL:
            # `linear: 1000`, `layernorm: [768]`, `upsample: 2`: the first positional argument.
            options.append({"type": ["number", "integer", "string", "array"]})
        if op in BLOCKS and BLOCKS[op].list_form:
            options.append({"type": "array"})
        properties = {op: {"anyOf": options, "description": doc}, **meta["properties"]}
        rules.append({
            "if": {"type": "object", "required": [op]},
            "then": {"type": "object", "properties": properties, "additionalProperties": False},
        })
    layer = {
        "anyOf": [
            {"type": "string", "pattern": NAME_PATTERN, "description": "an op or block with no arguments"},
            {"type": "object", "minProperties": 1, "allOf": rules,
             "description": "an op, a built-in block or a user block call, with name/frozen/init/inputs/repeat"},
        ]
    }
    defs["Layer"] = layer
    doc_schema["properties"]["layers"] = {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/Layer"}}
    block = BlockDef.model_json_schema(ref_template="#/$defs/{model}")
    defs.update(block.pop("$defs", {}))
    # Inside a block, values may be expressions of its parameters (`out: c * 4`), which only
    # expansion can check: the schema asks for the shape of a layer, not its argument types.
    template = {"anyOf": [{"type": "string"}, {"type": "object", "minProperties": 1}]}
    block["properties"]["layers"] = {"anyOf": [{"type": "array", "items": template}, {"type": "null"}]}
    defs["BlockDef"] = block
    doc_schema["properties"]["blocks"] = {
        "type": "object", "propertyNames": {"pattern": NAME_PATTERN},
        "additionalProperties": {"anyOf": [{"$ref": "#/$defs/BlockDef"}, {"type": "array", "items": template}]},
        "description": "user-defined blocks, called by name from layers",
    }
    doc_schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc_schema["title"] = "specdsl model spec"
    return doc_schema

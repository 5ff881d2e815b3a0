"""The spec schema: strict validation with located, human messages, and the JSON Schema export."""

from __future__ import annotations

import json
from importlib import resources

import pytest

import specdsl
from specdsl.api import read_data
from specdsl.errors import SpecError
from specdsl.frontend.yaml import load_yaml
from specdsl.ops import ALIASES, OPS, POSITIONAL, lookup
from specdsl.schema.jsonschema import json_schema


def diags(text: str):
    with pytest.raises(SpecError) as info:
        specdsl.load(text)
    return info.value.diagnostics


def one(text: str):
    (d,) = diags(text)
    return d


def layer_spec(layer: str, input: str = "[3, 8, 8]") -> str:
    return f"model: m\ninput: {input}\nlayers:\n  - {layer}\n"


# ---------------------------------------------------------------- document level


def test_minimal_spec() -> None:
    m = specdsl.load("model: m\ninput: [4]\nlayers:\n  - relu\n")
    assert (m.name, m.graph.input_shape, m.graph.dtype) == ("m", (4,), "float32")


def test_description_and_dtype() -> None:
    m = specdsl.load("model: m\ninput: [4]\ndtype: float16\ndescription: tiny\nlayers:\n  - linear: 2\n")
    assert m.graph.description == "tiny"
    assert m.totals.param_bytes == 10 * 2
    assert m.totals.input_bytes == 4 * 2


@pytest.mark.parametrize(("key", "missing"), [("model", "model"), ("input", "input"), ("layers", "layers")])
def test_required_top_level_keys(key: str, missing: str) -> None:
    text = "\n".join(line for line in ["model: m", "input: [4]", "layers:", "  - relu"]
                     if not line.startswith(key) and not (key == "layers" and line.startswith("  -")))
    codes = {(d.code, d.message) for d in diags(text + "\n")}
    assert ("E203", f"the spec is missing the required key '{missing}'") in codes


def test_unknown_top_level_key_suggests() -> None:
    d = diags("model: m\ninput: [4]\nlayers: [relu]\ndtpye: float16\n")[0]
    assert (d.code, d.message, d.hint) == ("E201", "unknown key 'dtpye' in the spec", "did you mean 'dtype'?")
    assert (d.loc.line, d.loc.col) == (4, 1)


@pytest.mark.parametrize(("input", "code"), [
    ("[]", "E205"), ("[3, 8, 8, 8, 8]", "E205"), ("[3, -1]", "E205"), ("3", "E202"), ("[3, 8.0]", "E202"),
    ("[3, true]", "E202"), ("['3']", "E202"),
])
def test_input_shape_rules(input: str, code: str) -> None:
    assert [d.code for d in diags(f"model: m\ninput: {input}\nlayers: [relu]\n")] == [code]


def test_model_name_pattern() -> None:
    assert one("model: 'two words'\ninput: [4]\nlayers: [relu]\n").code == "E205"
    assert specdsl.load("model: resnet-50.v1\ninput: [4]\nlayers: [relu]\n").name == "resnet-50.v1"


def test_dtype_literal_suggests() -> None:
    d = one("model: m\ninput: [4]\ndtype: float23\nlayers: [relu]\n")
    assert d.code == "E202"
    assert d.message.startswith("'dtype' expects one of 'float32', 'float16', 'bfloat16' or 'float64'")
    assert d.hint == "did you mean 'float32'?"


def test_document_must_be_a_mapping() -> None:
    d = one("[1, 2]\n")
    assert (d.code, d.message) == ("E202", "a spec is a mapping with model, input and layers; received a list")


def test_layers_must_be_a_non_empty_list() -> None:
    assert one("model: m\ninput: [4]\nlayers: relu\n").code == "E202"
    assert one("model: m\ninput: [4]\nlayers: []\n").code == "E205"


# ---------------------------------------------------------------- layer entries


def test_unknown_layer_suggests() -> None:
    d = one(layer_spec("convv: {out: 4, k: 3}"))
    assert (d.code, d.message, d.hint) == ("E204", "unknown layer 'convv'", "did you mean 'conv'?")
    assert (d.loc.line, d.loc.col, d.loc.end_col) == (4, 5, 10)


def test_unknown_layer_without_a_close_match_points_to_the_list() -> None:
    assert one(layer_spec("xyzzy")).hint == "run `specdsl ops` to list the layers"


def test_two_ops_in_one_layer() -> None:
    d = one(layer_spec("conv: {out: 4, k: 3}\n    relu:"))
    assert (d.code, d.message) == ("E204", "a layer holds exactly one op; received 'conv', 'relu'")


@pytest.mark.parametrize(("layer", "message"), [
    ("5", "a layer is an op name or a mapping; received 5 (an integer)"),
    ("[relu]", "a layer is an op name or a mapping; received ['relu'] (a list)"),
    ("{name: x}", "this layer names no op"),
])
def test_malformed_layer_entries(layer: str, message: str) -> None:
    d = one(layer_spec(layer))
    assert (d.code, d.message) == ("E204", message)


def test_op_without_positional_argument_rejects_a_scalar() -> None:
    d = one(layer_spec("relu: 3"))
    assert (d.code, d.message, d.hint) == ("E202", "'relu' takes named arguments; received 3 (an integer)",
                                           "write `relu: {...}` or just `relu`")


def test_unknown_argument_suggests() -> None:
    d = one(layer_spec("conv: {out: 4, k: 3, strides: 2}"))
    assert (d.code, d.message, d.hint) == ("E201", "unknown key 'strides' in 'conv'", "did you mean 'stride'?")
    assert d.path == "layers[0].conv.strides"


def test_unknown_argument_without_close_match_lists_the_keys() -> None:
    d = diags(layer_spec("linear: {out: 4, zzz: 1}"))[0]
    assert d.hint == "allowed keys: out, bias, in"


def test_missing_argument() -> None:
    d = one(layer_spec("conv: {out: 4}"))
    assert (d.code, d.message) == ("E203", "'conv' is missing the required key 'k'")
    assert "'k'" in d.hint
    assert (d.loc.line, d.loc.col) == (4, 5)


@pytest.mark.parametrize(("layer", "message", "hint"), [
    ("conv: {out: 4, k: 3.0}", "'k' expects an integer or a list; received 3.0 (a number)",
     "write 3 without a decimal point"),
    ("conv: {out: 4, k: '3'}", "'k' expects an integer or a list; received '3' (a string)", None),
    ("conv: {out: 4, k: true}", "'k' expects an integer or a list; received true (a boolean)", None),
    ("conv: {out: 4, k: 3, bias: 1}", "'bias' expects true or false; received 1 (an integer)", None),
    ("linear: {out: ten}", "'out' expects an integer; received ten (a string)", None),
    ("softmax: 1.5", "'dim' expects an integer; received 1.5 (a number)", None),
    ("leaky_relu: true", "'slope' expects a number; received true (a boolean)", None),
])
def test_strict_types(layer: str, message: str, hint: str | None) -> None:
    d = one(layer_spec(layer))
    assert (d.code, d.message, d.hint) == ("E202", message, hint)


@pytest.mark.parametrize(("layer", "message"), [
    ("conv: {out: 0, k: 3}", "'out' must be greater than 0; received 0"),
    ("conv: {out: 4, k: 3, stride: 0}", "'stride' must be greater than 0; received 0"),
    ("conv: {out: 4, k: 3, pad: -1}", "'pad' must be at least 0; received -1"),
    ("conv: {out: 4, k: [3, 3, 3, 3]}", "'k' takes at most 3 item(s); received [3, 3, 3, 3]"),
    ("conv: {out: 4, k: []}", "'k' needs at least 1 item(s); received []"),
    ("dropout: 1.5", "'p' must be at most 1.0; received 1.5"),
    ("bn: {eps: 0}", "'eps' must be greater than 0.0; received 0"),
])
def test_ranges(layer: str, message: str) -> None:
    d = one(layer_spec(layer))
    assert (d.code, d.message) == ("E205", message)


def test_literal_suggests() -> None:
    d = one(layer_spec("conv: {out: 4, k: 3, pad: sam}"))
    assert d.code == "E202"
    assert d.hint == "did you mean 'same'?"
    assert one(layer_spec("upsample: {scale: 2, mode: bilinar}")).hint == "did you mean 'bilinear'?"


def test_list_item_errors_name_the_list() -> None:
    d = one("model: m\ninput: [3, 0]\nlayers: [relu]\n")
    assert d.message == "'input[1]' must be greater than 0; received 0"


def test_error_inside_a_list_argument_is_reported_once() -> None:
    found = diags(layer_spec("conv: {out: 4, k: 3, pad: [1, -1]}"))
    assert [d.code for d in found] == ["E205"]
    assert found[0].path == "layers[0].conv.pad[1]"


def test_misspelt_layer_key_suggests_the_meta_key() -> None:
    d = one(layer_spec("conv: {out: 4, k: 3}\n    frozne: true"))
    assert d.code == "E201"
    assert d.hint == "did you mean 'frozen'?"


# ---------------------------------------------------------------- layer meta keys


def test_meta_keys() -> None:
    m = specdsl.load(layer_spec("conv: {out: 4, k: 3}\n    name: stem\n    frozen: true\n    init: kaiming"))
    node, fig = m.node("stem")
    assert (node.name, node.frozen, node.init, fig.frozen) == ("stem", True, "kaiming", 4 * 27 + 4)


def test_init_mapping_form() -> None:
    m = specdsl.load(layer_spec("conv: {out: 4, k: 3}\n    init: {scheme: kaiming_normal, mode: fan_out}"))
    init = m.rows()[-1][0].init
    assert (init.scheme, init.mode) == ("kaiming_normal", "fan_out")


@pytest.mark.parametrize(("meta", "code"), [
    ("name: '12'", "E380"), ("name: a b", "E380"), ("frozen: 1", "E202"), ("init: kaiming_normall", "E202"),
    ("inputs: []", "E205"), ("inputs: input", "E202"), ("repeat: -1", "E205"), ("if: 3", "E365"),
])
def test_meta_key_rules(meta: str, code: str) -> None:
    assert [d.code for d in diags(layer_spec(f"relu:\n    {meta}"))] == [code]


def test_init_literal_suggests() -> None:
    assert one(layer_spec("relu:\n    init: kaiming_normall")).hint == "did you mean 'kaiming_normal'?"


def test_repeat_stacks_copies() -> None:
    a = specdsl.load(layer_spec("conv: {out: 3, k: 3, pad: 1}\n    repeat: 3"))
    b = specdsl.load(layer_spec("conv: {out: 3, k: 3, pad: 1}\n  - conv: {out: 3, k: 3, pad: 1}\n"
                                "  - conv: {out: 3, k: 3, pad: 1}"))
    assert a.totals == b.totals
    assert len(a.rows()) == len(b.rows()) == 4


# ---------------------------------------------------------------- shorthand


@pytest.mark.parametrize(("op", "value", "input"), [
    ("linear", "10", "[5]"), ("conv", "4", None), ("maxpool", "2", "[3, 8, 8]"), ("avgpool", "2", "[3, 8, 8]"),
    ("adaptive_avgpool", "2", "[3, 8, 8]"), ("adaptive_maxpool", "[2, 4]", "[3, 8, 8]"), ("dropout", "0.2", "[5]"),
    ("dropout2d", "0.2", "[3, 8, 8]"), ("groupnorm", "3", "[6, 4, 4]"), ("lrn", "3", "[6, 4, 4]"),
    ("upsample", "2", "[3, 4, 4]"), ("leaky_relu", "0.2", "[5]"), ("softmax", "-1", "[5]"),
    ("log_softmax", "1", "[5]"), ("layernorm", "[4]", "[3, 4]"), ("elu", "0.5", "[5]"),
])
def test_scalar_shorthand_fills_the_first_positional_argument(op: str, value: str, input: str | None) -> None:
    first = POSITIONAL[op][0]
    if input is None:  # conv also needs k: only the mapping form works
        d = one(layer_spec(f"{op}: {value}"))
        assert (d.code, d.message) == ("E203", f"'{op}' is missing the required key 'k'")
        return
    short = specdsl.load(layer_spec(f"{op}: {value}", input))
    full = specdsl.load(layer_spec(f"{op}: {{{first}: {value}}}", input))
    assert short.totals == full.totals
    assert short.rows()[-1][1].shape == full.rows()[-1][1].shape
    assert short.rows()[-1][0].args == full.rows()[-1][0].args


def test_shorthand_error_points_at_the_value() -> None:
    d = one(layer_spec("linear: 0", "[5]"))
    assert (d.code, d.message, d.path) == ("E205", "'out' must be greater than 0; received 0", "layers[0].linear.out")
    assert (d.loc.line, d.loc.col) == (4, 13)


def test_positional_table_names_real_arguments() -> None:
    for op, names in POSITIONAL.items():
        rule = lookup(op)
        assert rule is not None, op
        fields = {f.alias or n for n, f in rule.args.model_fields.items()}
        assert set(names) <= fields, op


# ---------------------------------------------------------------- all problems at once


def test_every_problem_is_reported_in_one_run() -> None:
    text = ("model: m\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3}\n  - rleu\n"
            "  - maxpool: {k: 2, stride: 0}\n  - linear: {out: -1}\n")
    # No E203 for the missing 'k': the did-you-mean of E201 ('kernel') explains it.
    assert [d.code for d in diags(text)] == ["E201", "E204", "E205", "E205"]


# ---------------------------------------------------------------- JSON Schema export


@pytest.fixture(scope="module")
def schema() -> dict:
    return json_schema()


def test_json_schema_is_json(schema: dict) -> None:
    assert json.loads(json.dumps(schema)) == schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "specdsl model spec"
    assert schema["type"] == "object"
    assert set(schema["required"]) == {"model", "input", "layers"}
    assert schema["additionalProperties"] is False


def test_json_schema_input_rules(schema: dict) -> None:
    inp = schema["properties"]["input"]
    assert (inp["type"], inp["minItems"], inp["maxItems"]) == ("array", 1, 4)
    positive = {"exclusiveMinimum": 0, "type": "integer"}
    assert inp["items"] == {"anyOf": [positive, {"type": "string"}]}  # expressions, in a family
    family, plain = schema["allOf"][0]["then"], schema["allOf"][0]["else"]
    assert plain["properties"]["input"]["items"] == positive and "input" not in family["properties"]


def _schema_rules(schema: dict) -> list[dict]:
    return schema["$defs"]["Layer"]["else"]["allOf"]


def _schema_ops(schema: dict) -> set[str]:
    rules = _schema_rules(schema)
    return {r["if"]["required"][0] for r in rules}


def test_json_schema_lists_every_op(schema: dict) -> None:
    assert set(OPS) <= _schema_ops(schema)


def test_json_schema_refs_resolve(schema: dict) -> None:
    refs = set()

    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                refs.add(node["$ref"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    assert refs
    for ref in refs:
        assert ref.startswith("#/$defs/")
        assert ref.removeprefix("#/$defs/") in schema["$defs"]


def test_json_schema_conv_arguments(schema: dict) -> None:
    conv = schema["$defs"]["ConvArgs"]
    assert {"out", "k", "stride", "pad", "dilation", "groups", "bias", "padding_mode", "in", "ws", "gain", "gamma",
            "eps"} == set(conv["properties"])
    assert set(conv["required"]) == {"out", "k"}
    assert conv["additionalProperties"] is False


def test_json_schema_accepts_aliases(schema: dict) -> None:
    assert set(ALIASES) <= _schema_ops(schema)


def test_json_schema_allows_list_shorthand(schema: dict) -> None:
    entries = {r["if"]["required"][0]: r["then"] for r in _schema_rules(schema)}
    for op in ("layernorm", "adaptive_avgpool"):
        short = entries[op]["properties"][op]["else"]["else"]
        assert any(o.get("type") == "array" for o in short["anyOf"]), op


def _zoo_yaml(suffixes: tuple[str, ...] = (".yaml", ".yml")) -> dict[str, str]:
    folder = resources.files("specdsl.specs")
    return {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir() if p.name.endswith(suffixes)}


def _plain(data: dict) -> bool:
    """A spec written with ops only (no blocks), which the JSON Schema can describe today."""
    if data.get("blocks"):
        return False
    for layer in data["layers"]:
        keys = [layer] if isinstance(layer, str) else list(layer)
        if not any(k in OPS for k in keys):
            return False
    return True


def test_zoo_yaml_validates_against_the_json_schema(schema: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    checked = 0
    for name, text in sorted(_zoo_yaml((".yaml", ".yml", ".cnn")).items()):
        data, _ = read_data(text, name)  # a DSL file as the data its YAML form holds
        if not _plain(data):
            continue
        errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(data)]
        assert errors == [], name
        checked += 1
    assert checked >= 1  # lenet5 (alexnet's stages, named as torchvision's modules, are blocks)
    bad, _ = load_yaml(layer_spec("conv: {out: 4, k: 3, strides: 2}"))
    assert list(validator.iter_errors(bad))


def test_zoo_yaml_with_blocks_validates_against_the_json_schema(schema: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(schema)
    for name, text in sorted(_zoo_yaml().items()):
        data, _ = load_yaml(text, name)
        assert list(validator.iter_errors(data)) == [], name


# ---------------------------------------------------------------- the JSON Schema rejects what check rejects


@pytest.fixture(scope="module")
def validator(schema: dict):
    jsonschema = pytest.importorskip("jsonschema")
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize(("layer", "message"), [
    ("maxpol: 2", "'maxpol' is not one of"),
    ("rleu", "'rleu' is not one of"),
    ("dropout: 1.5", "1.5 is greater than the maximum of 1.0"),
    ("dropout: {p: -0.5}", "-0.5 is less than the minimum of 0"),
    ("linear: 0", "0 is less than or equal to the minimum of 0"),
    ("conv: {out: 0, k: 3}", "0 is less than or equal to the minimum of 0"),
    ("conv: {out: 4, k: 3, strides: 2}", "'strides' was unexpected"),
    ("conv: {out: 4, k: 3, padding_mode: mirror}", "'mirror' is not one of"),
    ("upsample: {scale: 2, mode: bilinar}", "'bilinar' is not one of"),
    ("relu: 3", "3 is not of type 'object'"),
    ("conv: {out: 4, k: 3, bias: 1}", "1 is not of type 'boolean'"),
])
def test_json_schema_rejects_one_bad_layer_as_check_does(validator, layer: str, message: str) -> None:
    text = layer_spec(layer)
    with pytest.raises(SpecError):
        specdsl.load(text)
    data, _ = load_yaml(text)
    errors = [e.message for e in validator.iter_errors(data)]
    assert any(message in e for e in errors), errors
    # The message names the rule broken, not "... is not valid under any of the given schemas".
    assert not any("any of the given schemas" in e for e in errors), errors


@pytest.mark.parametrize("layer", ["relu", "dropout: 0.5", "linear: 10", "layernorm: [4]", "maxpool: 2",
                                   "conv: {out: 4, k: 3, pad: same}", "stage: [relu, bn]"])
def test_json_schema_accepts_good_layers(validator, layer: str) -> None:
    data, _ = load_yaml(layer_spec(layer, "[4, 8, 8]"))
    assert [e.message for e in validator.iter_errors(data)] == []


def test_json_schema_allows_user_block_calls_only_with_blocks(validator) -> None:
    text = ("model: m\ninput: [3, 8, 8]\nblocks:\n  unit:\n    params: {c: int}\n"
            "    layers: [{conv: {out: c, k: 3}}]\nlayers:\n  - unit: 4\n")
    specdsl.load(text)
    data, _ = load_yaml(text)
    assert list(validator.iter_errors(data)) == []
    del data["blocks"]
    assert any("'unit' is not one of" in e.message for e in validator.iter_errors(data))


def test_json_schema_is_generated_from_the_op_table(schema: dict) -> None:
    """Every op and alias of specdsl.ops.OPS, with its arguments, defaults and description (no list to update)."""
    entries = {r["if"]["required"][0]: r["then"]["properties"] for r in _schema_rules(schema)}
    for name, rule in OPS.items():
        assert entries[name][name]["description"] == rule.doc
        args = schema["$defs"][rule.args.__name__]
        fields = {f.alias or n: f for n, f in rule.args.model_fields.items()}
        assert set(args.get("properties", {})) == set(fields), name
        for key, prop in args.get("properties", {}).items():
            assert prop["title"] == key
            assert prop["description"], (name, key)
            if not fields[key].is_required() and fields[key].default is not None:
                assert "default" in prop["description"], (name, key)
    assert set(schema["$defs"]["KnownLayer"]["then"]["enum"]) >= set(OPS) | set(ALIASES)


def test_families_validate_against_the_json_schema() -> None:
    """A family's layers hold expressions of its parameters: the schema takes them, as check does."""
    import jsonschema
    import yaml

    from specdsl import zoo
    from specdsl.api import read_data, read_source
    from specdsl.render.printer import to_yaml
    from specdsl.schema.jsonschema import json_schema

    validator = jsonschema.Draft202012Validator(json_schema())
    families = [n for n in zoo.names() if "variant " in read_source(n)[1]]
    assert families
    for name in families:
        file, text = read_source(name)
        data, _ = read_data(text, file)
        assert list(validator.iter_errors(yaml.safe_load(to_yaml(data)))) == [], name

"""Turn pydantic's validation errors into located, human diagnostics.

Pydantic reports one error per union member and uses internal names for
them; users want one sentence per mistake, at the right line, in the
language of the spec.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from specdsl.errors import Diagnostic, SourceLoc, did_you_mean
from specdsl.ops.model import Model
from specdsl.source import PathKey, SourceMap, format_path

if TYPE_CHECKING:  # the errors come from a model's pydantic twin, imported only when one was raised
    from pydantic import ValidationError
    from pydantic_core import ErrorDetails

_CONSTRAINTS = {
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "too_short": "needs at least {min_length} item(s)",
    "too_long": "takes at most {max_length} item(s)",
    "string_pattern_mismatch": "must match {pattern}",
    "finite_number": "must be a finite number",
}
_EXPECTED = {
    "int_type": "an integer",
    "int_from_float": "an integer",
    "int_parsing": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "none_required": "nothing (null)",
}


# PyTorch and Keras spellings people bring with them.
SYNONYMS = {
    "kernel": "k", "kernel_size": "k", "ksize": "k", "padding": "pad", "out_channels": "out",
    "out_features": "out", "channels": "out", "filters": "out", "units": "out", "features": "out",
    "in_channels": "in", "in_features": "in", "strides": "stride", "dilation_rate": "dilation",
    "negative_slope": "slope", "scale_factor": "scale", "num_groups": "groups", "rate": "p",
    "normalized_shape": "shape", "output_size": "out", "use_bias": "bias",
}


def show_value(value: Any, raw: str | None = None) -> str:
    """A value the way the user wrote it, for 'received ...'."""
    if raw is not None:
        return raw
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, list):
        return "[" + ", ".join(show_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {show_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "null" if value is None else type(value).__name__


def _data_path(data: Any, loc: Sequence[Any], err_type: str) -> tuple[PathKey, bool]:
    """Keep the loc segments that index real data; drop pydantic's union tags.

    Returns the path and whether its last segment is a key that is absent
    (a 'missing' error) and so has no location of its own.
    """
    out: list[Any] = []
    cur = data
    for i, seg in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(cur, Mapping) and isinstance(seg, str) and seg in cur:
            out.append(seg)
            cur = cur[seg]
        elif isinstance(cur, list) and isinstance(seg, int) and 0 <= seg < len(cur):
            out.append(seg)
            cur = cur[seg]
        elif last and err_type == "missing" and isinstance(seg, str):
            out.append(seg)
            return tuple(out), True
    return tuple(out), False


def _field_names(model: type[Model]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def diagnostics_from(
    exc: ValidationError,
    data: Any,
    base: PathKey,
    smap: SourceMap | None,
    model: type[Model],
    what: str,
    written_at: Mapping[PathKey, PathKey] | None = None,
) -> list[Diagnostic]:
    """One diagnostic per offending path (union members folded together).

    ``written_at``: paths of ``data`` whose text is at another path of the source
    (a shorthand such as ``linear: 1000`` standing for ``out``).
    """
    groups, missing = _grouped(exc, data)
    diags = []
    for path, errs in groups.items():
        full = (*base, *path)
        types = [e["type"] for e in errs]
        if "extra_forbidden" in types:
            diags.append(_unknown_key(path, full, smap, model, what))
        elif missing.get(path):
            diags.append(_missing_key(path, full, smap, what))
        else:
            raw = smap.raw.get(written_at.get(full, full) if written_at else full) if smap else None
            diags.append(_wrong_value(path, full, errs, smap, raw, what))
    return diags


def _grouped(exc: ValidationError, data: Any) -> tuple[dict[PathKey, list[ErrorDetails]], dict[PathKey, bool]]:
    """Pydantic's errors by the data path they concern, and which paths are absent keys."""
    groups: dict[PathKey, list[ErrorDetails]] = {}
    missing: dict[PathKey, bool] = {}
    for err in exc.errors(include_url=False):
        path, is_missing = _data_path(data, err["loc"], err["type"])
        groups.setdefault(path, []).append(err)
        missing[path] = is_missing
    # A union member that got deeper (into a list item) explains the mistake; the other
    # members' "wrong type" errors at the parent are noise.
    deeper = {p[:i] for p in groups for i in range(len(p))}
    for path in list(groups):
        if path in deeper and all(e["type"] in _EXPECTED or e["type"] == "literal_error" for e in groups[path]):
            del groups[path]
    return groups, missing


def _unknown_key(path: PathKey, full: PathKey, smap: SourceMap | None, model: type[Model],
                 what: str) -> Diagnostic:
    key = str(path[-1])
    parent_model = _model_at(model, path[:-1])
    fields = _field_names(parent_model) if parent_model else []
    guess = SYNONYMS.get(key) if SYNONYMS.get(key) in fields else did_you_mean(key, fields)
    hint = f"did you mean '{guess}'?" if guess else (
        "allowed keys: " + ", ".join(fields) if fields else None)
    return Diagnostic("error", "E201", f"unknown key '{key}' in {what}",
                      smap.key_loc(full) if smap else None, hint=hint, path=format_path(full))


def _missing_key(path: PathKey, full: PathKey, smap: SourceMap | None, what: str) -> Diagnostic:
    key = str(path[-1])
    parent = full[:-1]
    value_loc = smap.value_loc(full) if smap else None
    return Diagnostic("error", "E203", f"{what} is missing the required key '{key}'",
                      smap.key_loc(parent) if smap and parent else value_loc, path=format_path(parent),
                      hint=f"add the key '{key}'")


def _wrong_value(path: PathKey, full: PathKey, errs: list[ErrorDetails], smap: SourceMap | None,
                 raw: str | None, what: str) -> Diagnostic:
    """A value out of range (E205) or of the wrong type or spelling (E202)."""
    shown = format_path(full)
    value_loc = smap.value_loc(full) if smap else None
    value = errs[0].get("input")
    constraint = next((e for e in errs if e["type"] in _CONSTRAINTS), None)
    label = _label(path) if path else what
    if constraint is not None:
        rule = _CONSTRAINTS[constraint["type"]].format(**(constraint.get("ctx") or {}))
        return Diagnostic("error", "E205", f"'{label}' {rule}; received {show_value(constraint['input'], raw)}",
                          value_loc, path=shown)
    expected = []
    for e in errs:
        if e["type"] == "literal_error":
            expected.append("one of " + e["ctx"]["expected"])
        elif e["type"] in _EXPECTED and _EXPECTED[e["type"]] not in expected:
            expected.append(_EXPECTED[e["type"]])
    if not expected:
        expected = [errs[0]["msg"].lower()]
    hint = _wrong_value_hint(value, expected, errs, raw, smap, value_loc)
    return Diagnostic(
        "error", "E202",
        f"'{label}' expects {' or '.join(expected)}; received {show_value(value, raw)} ({kind_of(value)})",
        value_loc, hint=hint, path=shown)


def _wrong_value_hint(value: Any, expected: list[str], errs: list[ErrorDetails], raw: str | None,
                      smap: SourceMap | None, value_loc: SourceLoc | None) -> str | None:
    """The likely fix: the option meant, quotes around text, or an integer where a float was written."""
    hint = None
    literals = [e for e in errs if e["type"] == "literal_error"]
    if literals and isinstance(value, str):
        options = [o.strip().strip("'") for o in literals[0]["ctx"]["expected"].replace(" or ", ",").split(",")]
        guess = did_you_mean(value, options)
        hint = f"did you mean '{guess}'?" if guess else None
    if "a string" in expected and raw is not None and not isinstance(value, str):
        hint = f'quote it to keep it as text: "{raw}"'
    if isinstance(value, float) and "an integer" in expected:
        written = str(raw).strip() if raw is not None else _text_at(smap, value_loc)
        literal = written.lstrip("-").replace(".", "", 1).replace("e", "", 1).replace("-", "").isdigit()
        if literal and value.is_integer():
            hint = f"write {int(value)} without a decimal point"
        elif not literal:  # computed: `c / 2`, `c * 1.5`
            hint = "'/' and float parameters give numbers: use '//' or round(), floor(), ceil() or " \
                   "make_divisible(x, 8) for an integer"
    return hint


def _text_at(smap: SourceMap | None, loc: SourceLoc | None) -> str:
    """The source text of a one-line span (what a value was written as), or ''."""
    if smap is None or loc is None or loc.end_line != loc.line or loc.end_col is None:
        return ""
    lines = smap.text.splitlines()
    return lines[loc.line - 1][loc.col - 1:loc.end_col - 1].strip() if 0 < loc.line <= len(lines) else ""


def _label(path: PathKey) -> str:
    """The name of the offending value: `pad`, or `input[1]` for a list item."""
    start = max((i for i, seg in enumerate(path) if isinstance(seg, str)), default=0)
    return format_path(path[start:])


def _model_at(model: type[Model], path: PathKey) -> type[Model] | None:
    """The nested model at ``path`` inside ``model`` (for did-you-mean on keys)."""
    import typing

    current: Any = model
    for seg in path:
        if isinstance(seg, int):
            continue
        if not (isinstance(current, type) and issubclass(current, Model)):
            return None
        field = next((f for n, f in current.model_fields.items() if (f.alias or n) == seg), None)
        if field is None:
            return None
        candidates = [field.annotation]
        found = None
        while candidates:
            t = candidates.pop()
            if isinstance(t, type) and issubclass(t, Model):
                found = t
                break
            candidates.extend(typing.get_args(t))
        current = found
    return current if isinstance(current, type) and issubclass(current, Model) else None

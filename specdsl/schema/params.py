"""Model parameters and variants: one spec file, a family of models.

A spec declares parameters with defaults (``model efficientnet(width=1.0, depth=1.0)``, YAML
``params: {width: 1.0}``) and named variants that set some of them (``variant
efficientnet_b3(width=1.2, depth=1.4)``, YAML ``variants: {efficientnet_b3: {width: 1.2}}``).
Loading picks a variant (or none: the defaults) and may set any parameter (the CLI's
``--param width=1.2``, the API's ``params={"width": 1.2}``), in that order of precedence. The
resulting values are in scope everywhere in the spec: the input shape, layers and blocks.
Every value remembers where it came from, for messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from specdsl.errors import Diagnostic, did_you_mean, listing
from specdsl.schema.names import NAME_PATTERN
from specdsl.schema.validation import show_value
from specdsl.source import SourceMap

TYPES = ("int", "float", "bool", "str")
KIND_TEXT = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}


class TextValue(str):
    """A parameter value as typed on the command line, converted to the parameter's kind."""


@dataclass(frozen=True)
class ParamChoice:
    """What the caller chose: a variant and parameter values (``from_text``: CLI strings to convert)."""

    variant: str | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    from_text: bool = False

    @property
    def empty(self) -> bool:
        return self.variant is None and not self.values


@dataclass(frozen=True)
class Resolved:
    env: dict[str, Any]
    origin: dict[str, str]
    variant: str | None


def kind_of_decl(decl: Any) -> str | None:
    """The declared kind: a type name (required parameter) or the type of its default."""
    if isinstance(decl, str) and decl in TYPES:
        return decl
    if isinstance(decl, bool):
        return "bool"
    if isinstance(decl, int):
        return "int"
    if isinstance(decl, float):
        return "float"
    if isinstance(decl, str):
        return "str"
    return None


def fits(value: Any, kind: str) -> bool:
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    return isinstance(value, str)


def from_text(text: str, kind: str) -> Any:
    """A command-line value as the parameter's kind (None where it does not convert)."""
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
    except ValueError:
        return None
    if kind == "bool":
        return {"true": True, "false": False}.get(text.lower())
    return text


def resolve(data: dict[str, Any], smap: SourceMap | None, choice: ParamChoice,
            diags: list[Diagnostic]) -> Resolved | None:
    """The parameters' values for this load; diagnostics for every problem (then None)."""
    declared = data.get("params") or {}
    variants = data.get("variants") or {}
    n_before = len(diags)
    if not isinstance(declared, dict):
        diags.append(Diagnostic("error", "E202", f"params is a mapping of name to default value; received "
                                f"{show_value(declared)}", smap.value_loc(("params",)) if smap else None,
                                hint="write `params: {width: 1.0, depth: 2}`"))
        return None
    if not isinstance(variants, dict) or not all(isinstance(v, dict) for v in variants.values()):
        diags.append(Diagnostic("error", "E202", "variants is a mapping of variant name to parameter values",
                                smap.value_loc(("variants",)) if smap else None,
                                hint="write `variants: {small: {width: 0.5}}`"))
        return None
    kinds: dict[str, str] = {}
    env: dict[str, Any] = {}
    origin: dict[str, str] = {}
    # Defaults written as expressions (`a=2 * 8`, `b=a // 2`), evaluated again once the variant and the
    # caller have set the parameters before them.
    exprs: dict[str, str] = {}
    for name, decl in declared.items():
        if _is_default_expression(decl, env):
            value = _evaluated(name, decl, env, smap, diags)
            if value is None:
                continue
            exprs[name], decl = decl, value
        kind = kind_of_decl(decl)
        where = smap.key_loc(("params", name)) if smap else None
        if not isinstance(name, str) or not re.match(NAME_PATTERN, name) or kind is None:
            diags.append(Diagnostic("error", "E202", f"parameter '{name}' needs a default value (a number, "
                                    f"true/false or a string) or a type ({', '.join(TYPES)}); received "
                                    f"{show_value(decl)}", where))
            continue
        kinds[name] = kind
        if decl not in TYPES:
            env[name], origin[name] = decl, "the spec's default"
    for vname, values in variants.items():
        for pname in values:
            if pname not in kinds:
                diags.append(_unknown(pname, kinds, f"variant '{vname}'",
                                      smap.key_loc(("variants", vname, pname)) if smap else None))
    if choice.variant is not None:
        if choice.variant not in variants:
            guess = did_you_mean(choice.variant, variants)
            listed = listing(variants) if variants else "none"
            diags.append(Diagnostic("error", "E360", f"the spec has no variant '{choice.variant}' "
                                    f"(its variants: {listed})", None,
                                    hint=f"did you mean '{guess}'?" if guess else None))
        else:
            for pname, value in variants[choice.variant].items():
                source = f"variant '{choice.variant}'"
                if pname in kinds and _check(pname, value, kinds[pname], source, smap and smap.value_loc(
                        ("variants", choice.variant, pname)), diags):
                    env[pname], origin[pname] = value, source
    for pname, value in choice.values.items():
        if pname not in kinds:
            typed = choice.from_text or isinstance(value, TextValue)
            diags.append(_unknown(pname, kinds, "--param" if typed else "load(params=...)", None))
            continue
        typed = choice.from_text or isinstance(value, TextValue)
        source = "--param" if typed else "load(params=...)"
        if typed and isinstance(value, str):
            converted = from_text(value, kinds[pname])
            value = value if converted is None else converted
        if _check(pname, value, kinds[pname], source, None, diags):
            env[pname], origin[pname] = value, source
    _defaults_again(exprs, env, origin, kinds, smap, diags, n_before)
    for pname, kind in kinds.items():
        if pname not in env:
            diags.append(Diagnostic("error", "E363", f"parameter '{pname}' ({kind}) has no value: the spec "
                                    "declares it without a default", smap.key_loc(("params", pname)) if smap else None,
                                    hint=f"pick a variant that sets it, or set it: --param {pname}=..."))
    if len(diags) > n_before:
        return None
    return Resolved(env, origin, choice.variant)


def _defaults_again(exprs: Mapping[str, str], env: dict[str, Any], origin: Mapping[str, str],
                    kinds: Mapping[str, str], smap: SourceMap | None, diags: list[Diagnostic], n_before: int) -> None:
    """Defaults written as expressions, evaluated again over the parameters as chosen (a variant's `a=32`
    makes `b=a // 2` 16), where the variant and the caller left them."""
    for pname, text in exprs.items():
        if origin.get(pname) == "the spec's default" and len(diags) == n_before:
            value = _evaluated(pname, text, env, smap, diags)
            if value is not None and _check(pname, value, kinds[pname], "its default, " + text, None, diags):
                env[pname] = value


def _is_default_expression(decl: Any, env: Mapping[str, Any]) -> bool:
    from specdsl.blocks.expr import is_expression

    return isinstance(decl, str) and decl not in TYPES and is_expression(decl, env)


def _evaluated(pname: str, text: str, env: Mapping[str, Any], smap: SourceMap | None,
               diags: list[Diagnostic]) -> Any:
    """A default written as an expression, over the parameters before it; None after a diagnostic."""
    from specdsl.blocks.expr import ExprError, evaluate

    try:
        return evaluate(text, env)
    except ExprError as exc:
        diags.append(Diagnostic("error", "E320", f"cannot evaluate the default of parameter '{pname}', '{text}': "
                                f"{exc}", smap.value_loc(("params", pname)) if smap else None,
                                hint="a default may use numbers and the parameters declared before it"))
        return None


def _unknown(pname: str, kinds: Mapping[str, str], where: str, loc: Any) -> Diagnostic:
    guess = did_you_mean(pname, kinds)
    return Diagnostic("error", "E361", f"{where} sets '{pname}', which is not a parameter of the model", loc,
                      hint=f"did you mean '{guess}'?" if guess else
                      ("its parameters: " + listing(kinds)) if kinds else "the model declares no parameters")


def _check(pname: str, value: Any, kind: str, source: str, loc: Any, diags: list[Diagnostic]) -> bool:
    if fits(value, kind):
        return True
    diags.append(Diagnostic("error", "E362", f"parameter '{pname}' expects {KIND_TEXT[kind]}; received "
                            f"{show_value(value)} (from {source})", loc,
                            hint=f"give '{pname}' {KIND_TEXT[kind]}"))
    return False

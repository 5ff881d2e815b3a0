"""Hints in the user's syntax: a hint quoting a layer is rewritten into the syntax of the file it points at.

Rules and blocks write their hints once, in whichever syntax reads best; a diagnostic located in a
`.cnn` file gets DSL spellings (`pad=(k - 1) // 2`, `upsample(scale=2)`, `as NAME`), one located in
YAML gets YAML spellings (`pad: (k - 1) // 2`, `upsample: {scale: 2}`, `name:`). Only layer-shaped
fragments are rewritten: an op call or an op mapping, `key: value` after "e.g.", and the few
meta keys (`name`, `inputs`) whose spelling differs between the two.
"""

from __future__ import annotations

import re

__all__ = ["to_dsl", "to_yaml"]

# "`a: {x: ...}` in YAML, `a(x=...)` in the DSL": the hint already knows both spellings.
_BOTH = re.compile(r"`([^`]*)` in YAML, `([^`]*)` in the DSL")
_YAML_MAP = re.compile(r"\b([a-z][a-z0-9_]*): \{([^{}]*)\}")
_YAML_EG = re.compile(r"\be\.g\. ([a-z_]+): ")
_YAML_INPUTS = re.compile(r"`inputs: \[([^\]`]*)\]`")
_DSL_CALL = re.compile(r"\b([a-z][a-z0-9_]*)\(([^()]*(?:\([^()]*\)[^()]*)*)\)")
# A lone `pad=1` (not inside a call, which _DSL_CALL rewrote): after a space or an opening bracket.
_DSL_KW = re.compile(r"(?<![\w.])(?<=[\s(`])([a-z_]+)=(?!=)")


def _ops() -> tuple[dict[str, tuple[str, ...]], set[str]]:
    """Each op's positional arguments, and every argument name an op has."""
    from specdsl.ops import OPS

    keys = {f.alias or name for rule in OPS.values() for name, f in rule.args.model_fields.items()}
    return {name: rule.positional for name, rule in OPS.items()}, keys


def to_dsl(hint: str) -> str:
    hint = _BOTH.sub(lambda m: f"`{m.group(2)}`", hint)
    hint = _YAML_MAP.sub(lambda m: f"{m.group(1)}({m.group(2).replace(': ', '=')})", hint)
    hint = _YAML_EG.sub(lambda m: f"e.g. {m.group(1)}=", hint)

    def refs(m: re.Match[str]) -> str:
        names = [n.strip() for n in m.group(1).split(",") if n.strip()]
        return "`[" + ", ".join(n if n == "..." else f"@{n}" for n in names) + "] -> ...`"

    hint = _YAML_INPUTS.sub(refs, hint)
    return hint.replace("`name:`", "`as NAME`").replace("`model: name`", "`model name`") \
        .replace("`layers: [...]`", "`layers { ... }`")


def _yaml_args(op: str, text: str, positional: tuple[str, ...]) -> str:
    parts = [p.strip() for p in re.split(r",\s*(?![^\[]*\])", text) if p.strip()]
    out = []
    for i, part in enumerate(parts):
        key, eq, value = part.partition("=")
        if eq:
            out.append(f"{key.strip()}: {value.strip()}")
        elif i < len(positional):
            out.append(f"{positional[i]}: {part}")
        else:
            return ""
    return f"{op}: {{{', '.join(out)}}}" if out else op


def to_yaml(hint: str) -> str:
    hint = _BOTH.sub(lambda m: f"`{m.group(1)}`", hint)
    positional, keys = _ops()

    def call(m: re.Match[str]) -> str:
        if m.group(1) not in positional:
            return m.group(0)
        return _yaml_args(m.group(1), m.group(2), positional[m.group(1)]) or m.group(0)

    hint = _DSL_CALL.sub(call, hint)
    hint = _DSL_KW.sub(lambda m: f"{m.group(1)}: " if m.group(1) in keys else m.group(0), hint)
    return hint.replace("`as NAME`", "`name:`")

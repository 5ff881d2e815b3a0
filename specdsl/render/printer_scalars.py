"""How a value is spelled in each syntax, and the refusal when it cannot be.

The layout modules (``printer.py`` for the DSL, ``printer_yaml.py`` for YAML) place lines;
this one writes the values on them: numbers, strings, expressions, lists and mappings.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from specdsl.source import PathKey

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Words a bare DSL name may not be: the reader takes them for syntax.
KEYWORDS = {"true", "false", "null", "model", "input", "dtype", "description", "block", "layers",
            "branch", "inputs", "as", "variant", "if", "and", "or", "not", "else", "let"}
# Characters a DSL string cannot hold, raw or escaped (it has escapes for \\ " newline and tab only).
_UNSPELLABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_YAML_SPECIAL_START = set("-?:,[]{}#&*!|>'\"%@`")


class CannotPrint(Exception):
    """The data holds something the target syntax cannot write (the command refuses, naming it)."""

    def __init__(self, message: str, path: PathKey = ()) -> None:
        super().__init__(message)
        self.path = path


def constant(value: Any) -> str | None:
    """`true`, `false` and `null` are spelled alike in both syntaxes."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "null" if value is None else None


# -- DSL -----------------------------------------------------------------------


def dsl_string(text: str) -> str:
    """A DSL string literal that reads back as ``text``; CannotPrint where none does."""
    bad = _UNSPELLABLE.search(text)
    if bad:
        raise CannotPrint(f"the DSL cannot write the character U+{ord(bad.group()):04X} in the string "
                          f"{json.dumps(text[:40])}; keep this spec in YAML or remove the character")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'


def dsl_scalar(value: Any) -> str:
    spelled = constant(value)
    if spelled is not None:
        return spelled
    if isinstance(value, float) and not math.isfinite(value):
        if math.isnan(value):
            raise CannotPrint("the DSL has no way to write NaN")
        return "1e999" if value > 0 else "-1e999"  # what the reader turns into infinity
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(dsl_scalar(v) for v in value) + "]"
    if isinstance(value, str):
        if NAME.match(value) and value not in KEYWORDS:
            return value
        if _is_expression(value) and _round_trips_as_expression(value):
            return value
        return dsl_string(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {dsl_scalar(v)}" for k, v in value.items()) + "}"
    raise CannotPrint(f"the DSL has no way to write a {type(value).__name__}")


def _is_expression(text: str) -> bool:
    from specdsl.blocks.expr import ExprError, tokenize

    if not text or len(text) > 200:
        return False
    try:
        toks = tokenize(text)
    except ExprError:
        return False
    # Numbers alone (`2 ** 3`) too: the round trip below refuses what reads back as a number (`-1`).
    return any(k in ("name", "real", "num") for k, _ in toks) and any(k in ("op", "kw") for k, _ in toks) \
        and not text[0].isspace()


def _round_trips_as_expression(text: str) -> bool:
    """An expression prints bare only if the DSL reads it back as the same string."""
    from specdsl.frontend.dsl import load_dsl

    try:
        data, _ = load_dsl(f"layers {{\n    x(k={text})\n}}\n")
    except Exception:
        return False
    return data["layers"][0]["x"]["k"] == text


# -- YAML ----------------------------------------------------------------------


def yaml_scalar(value: Any) -> str:
    from specdsl.errors import SourceLoc
    from specdsl.frontend.yaml import resolve_plain

    spelled = constant(value)
    if spelled is not None:
        return spelled
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else ".inf" if value > 0 else "-.inf"
    if isinstance(value, (int, float)):
        text = repr(value)
        return text if "e" not in text or "." in text else text.replace("e", ".0e", 1)
    if isinstance(value, str):
        plain_ok = (value and value[0] not in _YAML_SPECIAL_START and value == value.strip()
                    and ": " not in value and " #" not in value and "\n" not in value
                    and not any(c in value for c in ",[]{}")  # flow indicators: `{out: max(a, b)}`
                    and resolve_plain(value, SourceLoc("", 1, 1)) == (value, None))
        return value if plain_ok else json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(yaml_scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {yaml_scalar(v)}" for k, v in value.items()) + "}"
    raise CannotPrint(f"YAML has no way to write a {type(value).__name__}")

"""Module names: what a layer's `as NAME` may be, and how paths are spelled.

A node's path is its module name (issue 24): named segments joined by ``.``, positional
ones written ``[i]``, the model itself the root (``layer1[0].conv1`` is the module
``layer1.0.conv1``). See /tmp/team/NAMING.md and the README's "Names" section.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from specdsl.blocks.expr import ExprError, evaluate
from specdsl.schema.names import RESERVED_NAMES, reserved_segment

# A module name: letters, digits, `_` and `-` (RegNet's `block1-0`), not all digits (those are the
# positional names) and not starting with `__` (Python's own attributes).
MODULE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]{0,63}")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# `{expr}` in a copy-name template of an indexed repeat: `"denselayer{j + 1}"`.
TEMPLATE_FIELD = re.compile(r"\{([^{}]*)\}")


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a module, or None when it can."""
    if not MODULE_NAME.fullmatch(name):
        return "a layer name is a module name: letters, digits, `_` and `-`, at most 64 characters"
    if name.isdigit():
        return "a layer name cannot be all digits: those are the positional names of unnamed layers"
    if name.startswith("__"):
        return "a layer name cannot start with `__` (Python's own attributes)"
    if name in RESERVED_NAMES or reserved_segment(name):
        return "this name is taken by PyTorch's nn.Module (or means the model input)"
    return None


def is_template(name: str) -> bool:
    return "{" in name or "}" in name


def fill_template(name: str, env: Mapping[str, object]) -> str:
    """A copy's name from its template; ExprError when a field does not evaluate to an integer."""
    def field(m: re.Match[str]) -> str:
        value = evaluate(m.group(1).strip(), env)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ExprError(f"'{{{m.group(1)}}}' gives {value!r}, not a whole number")
        return str(value)

    if TEMPLATE_FIELD.sub("", name).count("{") or TEMPLATE_FIELD.sub("", name).count("}"):
        raise ExprError("unbalanced braces")
    return TEMPLATE_FIELD.sub(field, name)


def child(container: str, segment: str | int) -> str:
    """The path of a container's child: a name, or a position."""
    if isinstance(segment, int):
        return f"{container}[{segment}]"
    return f"{container}.{segment}" if container else segment

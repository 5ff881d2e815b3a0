"""Small text pieces of the emitted file: identifiers, module access, nested ModuleDicts, init calls."""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from specdsl.backends.naming import class_name, init_calls
from specdsl.backends.torch.helper_source import helper_names

if TYPE_CHECKING:
    from specdsl.ir import Node
    from specdsl.ops.rule import TensorSpec

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Names the emitted code itself uses, which no spec name may take.
RESERVED = {"self", "torch", "nn", "x", "super", "print", "input"}

# A module tree: attribute name -> constructor source, or a nested tree (an nn.ModuleDict).
ModuleTree = dict[str, Any]


def emitted_class_name(name: str) -> str:
    """A class name for a model or block that cannot shadow a helper class (``GlobalPool``, ``Join``)."""
    text = class_name(name)
    return f"{text}Model" if text in helper_names() else text


def safe_ident(name: str) -> bool:
    """Whether a spec name can be used as it is for a variable or parameter of the emitted code."""
    return bool(IDENT.match(name)) and name.isascii() and not keyword.iskeyword(name) \
        and name not in RESERVED and not name.startswith("_") and name not in ("in_channels", "fractal_path")


def inside(path: str, prefix: str) -> bool:
    """Whether spec path ``path`` lies strictly inside ``prefix`` (``layers[4].body[0]`` in ``layers[4]``)."""
    return path.startswith(prefix) and len(path) > len(prefix) and path[len(prefix)] in ".["


def access(path: str) -> str:
    """``layers.4.body.0`` -> ``self.layers['4']['body']['0']``."""
    first, *rest = path.split(".")
    return f"self.{first}" + "".join(f"[{part!r}]" for part in rest)


def shape_comment(shape: Sequence[int] | None) -> str:
    return "# N x " + " x ".join(str(d) for d in shape) if shape else ""


def place(tree: ModuleTree, rel: str, source: str) -> None:
    """Put a constructor's source at dotted path ``rel`` of a module tree."""
    parts = rel.split(".")
    cursor = tree
    for part in parts[:-1]:
        cursor = cursor.setdefault(part, {})
    cursor[parts[-1]] = source


def tree_source(tree: ModuleTree, indent: int) -> list[str]:
    """The entries of an ``nn.ModuleDict({...})`` literal."""
    pad = "    " * indent
    lines = []
    for key, value in tree.items():
        if isinstance(value, dict):
            lines.append(f"{pad}{key!r}: nn.ModuleDict({{")
            lines += tree_source(value, indent + 1)
            lines.append(f"{pad}}}),")
        else:
            lines.append(f"{pad}{key!r}: {value},")
    return lines


def attribute_lines(tree: ModuleTree) -> list[str]:
    """`self.<name> = ...` lines of an __init__: a module, or nested ModuleDicts."""
    lines = []
    for key, value in tree.items():
        if isinstance(value, dict):
            lines.append(f"        self.{key} = nn.ModuleDict({{")
            lines += tree_source(value, 3)
            lines.append("        })")
        else:
            lines.append(f"        self.{key} = {value}")
    return lines


def init_lines(node: Node, weights: Sequence[TensorSpec], module: str) -> list[str]:
    """The same initialisation as to_torch, written out as `nn.init` calls on ``module``."""
    lines = []
    for function, tensor, kwargs in init_calls(node, weights):
        extra = "".join(f", {key}={value!r}" for key, value in kwargs.items())
        lines.append(f"nn.init.{function}({module}.{tensor}{extra})")
    return lines

"""Small text pieces of the emitted file: identifiers, module access, nested ModuleDicts, init calls."""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from specdsl.backends.naming import InitCall, class_name, init_calls
from specdsl.backends.torch.helper_source import helper_names
from specdsl.backends.torch.safety import DENIED_ATTRS
from specdsl.ops.rule import NODE_ITSELF

if TYPE_CHECKING:
    from specdsl.ir import Node
    from specdsl.ops.rule import TensorSpec

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Names the emitted code itself uses, which no spec name may take.
RESERVED = {"self", "torch", "nn", "x", "super", "print", "input"}

# A module tree: attribute name -> constructor source, or a nested tree (an nn.ModuleDict).
ModuleTree = dict[str, Any]


class ParameterSource(str):
    """The source of a node's own parameter (TensorSpec.of_container, ``nn.Parameter(...)``) in a module
    tree: registered on its container after the container literals (a Parameter is no module), and,
    as a container's own parameters are, first in the state_dict whenever it is registered."""


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


def is_attribute(key: str) -> bool:
    """Whether a module name can be written as ``self.<key>``; others (``0``, ``block1-0``, a keyword)
    are registered with ``add_module`` and reached with ``get_submodule``, as are names the safety
    allowlist refuses as attributes (a layer named ``exec``)."""
    return bool(IDENT.match(key)) and not keyword.iskeyword(key) and key not in DENIED_ATTRS \
        and not key.startswith("__")


def access(path: str) -> str:
    """``layers.4.body.0`` -> ``self.layers['4']['body']['0']``; ``3.conv`` -> ``self.get_submodule('3')['conv']``."""
    first, *rest = path.split(".")
    head = f"self.{first}" if is_attribute(first) else f"self.get_submodule({first!r})"
    return head + "".join(f"[{part!r}]" for part in rest)


def shape_comment(shape: Sequence[int] | None) -> str:
    return "# N x " + " x ".join(str(d) for d in shape) if shape else ""


def parameter_access(path: str) -> str:
    """A node's own parameter: ``self.layer_scale``, or ``self.get_parameter('features.1.0.layer_scale')``."""
    return f"self.{path}" if "." not in path and is_attribute(path) else f"self.get_parameter({path!r})"


def place(tree: ModuleTree, rel: str, source: str) -> None:
    """Put a constructor's source (or a ParameterSource) at dotted path ``rel`` of a module tree."""
    parts = rel.split(".")
    cursor = tree
    for part in parts[:-1]:
        cursor = cursor.setdefault(part, {})
    cursor[parts[-1]] = source


def is_sequence(tree: ModuleTree) -> bool:
    """Children keyed '0', '1', ... in order, all modules: an ``nn.Sequential`` (the same state_dict keys,
    and it reads like torchvision's); anything else stays an ``nn.ModuleDict``."""
    return bool(tree) and list(tree) == [str(i) for i in range(len(tree))] \
        and not any(isinstance(v, ParameterSource) for v in tree.values())


def _container(value: ModuleTree, indent: int) -> tuple[str, list[str], str]:
    """Opening text, entry lines and closing text of a container literal."""
    if is_sequence(value):
        return "nn.Sequential(", tree_source(value, indent + 1), ")"
    return "nn.ModuleDict({", tree_source(value, indent + 1), "})"


def tree_source(tree: ModuleTree, indent: int) -> list[str]:
    """The entries of a container literal: ``'key': module,`` in a ModuleDict, ``module,`` in a Sequential."""
    pad = "    " * indent
    positional = is_sequence(tree)
    lines = []
    for key, value in tree.items():
        lead = pad if positional else f"{pad}{key!r}: "
        if isinstance(value, ParameterSource):
            continue  # registered after the literal (parameter_lines)
        if isinstance(value, dict):
            opening, entries, closing = _container(value, indent)
            lines += [f"{lead}{opening}", *entries, f"{pad}{closing},"]
        else:
            lines.append(f"{lead}{value},")
    return lines


def attribute_lines(tree: ModuleTree) -> list[str]:
    """`self.<name> = ...` lines of an __init__ (`self.add_module('0', ...)` where the name is no
    attribute): a module, or nested containers, then the parameters of nested containers
    (`self.features[1][0].register_parameter('layer_scale', nn.Parameter(...))`).
    Names reach the text only through repr()."""
    lines = []
    for key, value in tree.items():
        lead, close = (f"self.{key} = ", "") if is_attribute(key) else (f"self.add_module({key!r}, ", ")")
        if isinstance(value, ParameterSource):
            lead, close = (lead, close) if is_attribute(key) else (f"self.register_parameter({key!r}, ", ")")
            lines.append(f"        {lead}{value}{close}")
        elif isinstance(value, dict):
            opening, entries, closing = _container(value, 2)
            lines += [f"        {lead}{opening}", *entries, f"        {closing}{close}"]
        else:
            lines.append(f"        {lead}{value}{close}")
    return lines + [f"        {access(parent)}.register_parameter({name!r}, {source})"
                    for parent, name, source in _nested_parameters(tree, ())]


def _nested_parameters(tree: ModuleTree, prefix: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(container path, name, source) of every parameter below the top level of ``tree``."""
    out = []
    for key, value in tree.items():
        if isinstance(value, dict):
            out += _nested_parameters(value, (*prefix, key))
        elif prefix and isinstance(value, ParameterSource):
            out.append((".".join(prefix), key, str(value)))
    return out


def sequences(tree: ModuleTree, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Paths (attribute, key, ...) of the containers that are written as ``nn.Sequential``."""
    found: set[tuple[str, ...]] = set()
    for key, value in tree.items():
        if isinstance(value, dict):
            path = (*prefix, key)
            if is_sequence(value):
                found.add(path)
            found |= sequences(value, path)
    return found


_ACCESS = re.compile(r"self\.(?:([A-Za-z_]\w*)|get_submodule\('([A-Za-z0-9_\-]*)'\))((?:\['[A-Za-z0-9_\-]*'\])+)")
_KEY = re.compile(r"\['([A-Za-z0-9_\-]*)'\]")


def with_indices(text: str, sequential: set[tuple[str, ...]]) -> str:
    """``self.layers['4']`` -> ``self.layers[4]`` where ``layers`` is an ``nn.Sequential``."""
    def index(m: re.Match[str]) -> str:
        first = m.group(1) or m.group(2)
        path: tuple[str, ...] = (first,)
        parts = []
        for key in _KEY.findall(m.group(3)):
            parts.append(f"[{int(key)}]" if path in sequential else f"[{key!r}]")
            path = (*path, key)
        return m.group(0)[:m.start(3) - m.start(0)] + "".join(parts)

    return _ACCESS.sub(index, text)


def init_lines(node: Node, weights: Sequence[TensorSpec], module: str) -> list[str]:
    """The same initialisation as to_torch, written out as `nn.init` calls on ``module``."""
    return [_init_call(call, module) for call in init_calls(node, weights)]


def _init_call(call: InitCall, module: str) -> str:
    function, tensor, kwargs = call
    extra = "".join(f", {key}={value!r}" for key, value in kwargs.items())
    target = f"{module}.{tensor}" if tensor != NODE_ITSELF else module  # a node's own parameter: `module` is it
    return f"nn.init.{function}({target}{extra})"


def registration_order(paths: Sequence[str]) -> list[str]:
    """Module paths in the order ``named_modules()`` yields them, for modules placed in the order given:
    each container (a ModuleDict or block) is registered where its first module comes."""
    tree: ModuleTree = {}
    for path in paths:
        place(tree, path, path)

    def walk(t: ModuleTree) -> list[str]:
        return [p for value in t.values() for p in (walk(value) if isinstance(value, dict) else [value])]

    return walk(tree)


def init_loop(entries: Sequence[tuple[str, str, list[InitCall]]], registered: Sequence[str],
              helper_text: str) -> list[str] | None:
    """reset_parameters as one loop over the modules that initialises each by its class (torchvision's
    style), or None where that would not do exactly what the calls in graph order do.

    ``entries``: (module path, constructor class, its init calls) of every module, in graph order;
    ``registered``: their paths in the order the loop meets them. The loop is the same work only if
    every module of a class gets the same calls, no helper class holds or extends such a module, and
    the initialised modules come in graph order (their random draws come in the same order)."""
    by_class: dict[str, list[InitCall]] = {}
    for _, cls, calls in entries:
        if by_class.setdefault(cls, calls) != calls:
            return None
    classes = [cls for cls, calls in by_class.items() if calls]
    if not classes or any(cls in helper_text for cls in classes if cls.startswith("nn.")):
        return None
    initialised = [path for path, _, calls in entries if calls]
    chosen = set(initialised)
    if [p for p in registered if p in chosen] != initialised:
        return None
    # named_modules, not modules: the safety allowlist refuses the attribute name `modules` (sys.modules).
    lines = ["for _, m in self.named_modules():"]
    for i, cls in enumerate(classes):
        lines.append(f"    {'elif' if i else 'if'} isinstance(m, {cls}):")
        lines += [f"        {_init_call(call, 'm')}" for call in by_class[cls]]
    return lines


_TEMP = re.compile(r"(?:x|h)\d+\Z")


def reuse_dead_names(lines: list[str], inputs: tuple[str, ...]) -> list[str]:
    """A forward's temporaries renamed so a value reuses the name of an input it was the last to read
    (``x = self.layers[0](x)``), as torchvision's forwards read, and so Python frees each tensor when
    nothing reads it any more instead of when forward returns. ``lines``: one assignment (or the
    return) each; names the spec gave and the forward's inputs other than ``x`` are kept."""
    import ast

    parsed: list[tuple[str | None, list[str]]] = []
    for line in lines:
        body = ast.parse(line.strip()).body
        if not body:  # a comment line
            parsed.append((None, []))
            continue
        stmt = body[0]
        target = stmt.targets[0].id if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name) \
            else None
        value = stmt.value if isinstance(stmt, (ast.Assign, ast.Return)) else None
        reads = [n.id for n in ast.walk(value) if isinstance(n, ast.Name)] if value is not None else []
        parsed.append((target, reads))
    last_read: dict[str, int] = {}
    for i, (_, reads) in enumerate(parsed):
        for name in reads:
            last_read[name] = i

    def reusable(name: str) -> bool:
        return bool(_TEMP.match(name)) or (name == "x" and "x" in inputs)

    rename: dict[str, str] = {}
    for i, (target, reads) in enumerate(parsed):
        if target is None or not _TEMP.match(target):
            continue
        dead = [r for r in reads if last_read.get(r) == i and reusable(r) and r != target]
        if dead:
            rename[target] = rename.get(dead[0], dead[0])
    renamed = [_renamed(line, rename) for line in lines] if rename else lines
    # A value the spec named keeps its name, so it is let go (`stem = None`, as torch.fx's forwards do)
    # after its last reader: held to the end of forward it would keep a feature map alive that the
    # allocator could reuse (ConvNeXt's stem output costs its forward about 2 % on CPU).
    named = {t for t, _ in parsed if t is not None and not reusable(t) and t not in inputs}
    out: list[str] = []
    for i, line in enumerate(renamed):
        out.append(line)
        target, _ = parsed[i]
        done = [name for name in named if last_read.get(name) == i and not _is_return(line)]
        if target in named and target not in last_read:
            done.append(target)  # named and never read
        indent = line[:len(line) - len(line.lstrip())]
        out += [f"{indent}{name} = None" for name in sorted(set(done))]
    return out


def _is_return(line: str) -> bool:
    return line.lstrip().startswith("return")


def _renamed(line: str, rename: dict[str, str]) -> str:
    """``line`` with its name tokens renamed (never text inside strings: a module key may be `'h1'`)."""
    import io
    import tokenize

    tokens = list(tokenize.generate_tokens(io.StringIO(line).readline))
    out, col = [], 0
    for tok in tokens:
        if tok.type == tokenize.NAME and tok.string in rename and tok.start[0] == 1:
            out.append(line[col:tok.start[1]] + rename[tok.string])
            col = tok.end[1]
    return "".join(out) + line[col:]

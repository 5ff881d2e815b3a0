"""Lists of modules: a layer named `convs.1` is member 1 of the list `convs` (issue 26, item 10).

PyTorch registers a module where its constructor assigns it, which need not be where forward uses
it: Res2Net's bottleneck registers `convs.0-2`, then `bns.0-2`, while conv i + 1 reads bn i's
output. A spec builds its modules in data-flow order, so it says where each belongs instead: `as
convs.0` makes the layer member 0 of the list `convs`, a container registered among its siblings
where its first member is built, as an `nn.ModuleList` is where it is assigned. Members keep the
index written (an `nn.Identity` left out leaves a gap: HRNet's `transition2.2`), lists nest
(`fuse_layers.0.1`), and `@convs.1` refers to member 1's output.

Functions of the expander (specdsl.blocks.engine.Expander, passed as ``ex``).
"""

from __future__ import annotations

from typing import Any

from specdsl.blocks.base import Frame
from specdsl.blocks.names import child, name_problem
from specdsl.errors import Diagnostic, SourceLoc
from specdsl.schema.names import RESERVED_NAMES

# Member indices as written: 0, 1, ..., at most four digits, no leading zero (one spelling per member).
MAX_INDEX_DIGITS = 4


def is_member(name: str) -> bool:
    """Whether a layer name puts the layer in a list (`convs.1`) rather than naming it."""
    return "." in name


def _index_ok(text: str) -> bool:
    return text.isdigit() and len(text) <= MAX_INDEX_DIGITS and (text == "0" or not text.startswith("0"))


def claim(ex: Any, container: str, name: str, loc: SourceLoc | None, frame: Frame) -> str | None:
    """The path of the child ``name`` of ``container`` (a named layer, or a list member), or None after
    reporting a bad or repeated name."""
    if is_member(name):
        return _claim_member(ex, container, name, loc, frame)
    problem = name_problem(name)
    if problem is not None:
        ex.error("E380", f"{problem}; received '{name}'", loc, frame, path=container or None,
                 hint="name it like a Python attribute (`as conv1`), or quote a name with `-` (`as \"block1-0\"`)")
        return None
    taken = ex.siblings.setdefault(container, {})
    if name in taken:
        first = taken[name]
        ex.diags.append(Diagnostic(
            "error", "E315", f"layer name '{name}' is already used in this "
            + (f"container ({container})" if container else "model"), loc,
            hint="names are module attributes: siblings need different names",
            notes=((f"first defined at {first}",) if first else ()) + frame.notes, path=container or None))
        return None
    taken[name] = loc
    ex.counts[container] = ex.counts.get(container, 0) + 1  # a named layer takes a place too
    return child(container, name)


def _claim_member(ex: Any, container: str, name: str, loc: SourceLoc | None, frame: Frame) -> str | None:
    """The path of list member ``name`` (`convs.1`) in ``container``, or None after reporting a malformed
    name, a list name another layer already has, or a member given twice."""
    head, *indices = name.split(".")
    problem = name_problem(head)
    if problem is None and not all(_index_ok(k) for k in indices):
        problem = "a list member is written NAME.k with k = 0, 1, ... (`convs.1`, nested `fuse_layers.0.1`)"
    if problem is not None:
        ex.error("E380", f"{problem}; received '{name}'", loc, frame, path=container or None,
                 hint="`as convs.0` puts the layer in the list `convs` at index 0")
        return None
    path = child(container, head)
    if path not in ex.lists:
        taken = ex.siblings.setdefault(container, {})
        if head in taken:
            _taken(ex, f"'{head}' already names a layer in this " + (f"container ({container})" if container
                                                                     else "model") + ", so it cannot be a list",
                   loc, taken[head], frame, container)
            return None
        taken[head] = loc
        ex.counts[container] = ex.counts.get(container, 0) + 1  # the list takes one place, as a named layer
        ex.lists.add(path)
    for depth, k in enumerate(indices):
        path = child(path, int(k))
        shown = ".".join([head, *indices[:depth + 1]])
        if depth < len(indices) - 1:  # a list inside the list (`fuse_layers.0` of `fuse_layers.0.1`)
            if path in ex.members and path not in ex.lists:
                _taken(ex, f"list member '{shown}' is a layer, so it holds no members", loc, ex.members[path], frame,
                       container)
                return None
            ex.lists.add(path)
            ex.members.setdefault(path, loc)
        elif path in ex.members:
            _taken(ex, f"'{shown}' is already a list of its own (it has members)" if path in ex.lists
                   else f"list member '{shown}' is already defined", loc, ex.members[path], frame, container)
            return None
        else:
            ex.members[path] = loc
    return path


def _taken(ex: Any, message: str, loc: SourceLoc | None, first: SourceLoc | None, frame: Frame,
           container: str) -> None:
    ex.diags.append(Diagnostic(
        "error", "E315", message, loc, hint="names are module attributes: each member of a list is built once",
        notes=((f"first defined at {first}",) if first else ()) + frame.notes, path=container or None))


def bind_name(ex: Any, name: str, y: int | None, scope: dict[str, int], frame: Frame, loc: SourceLoc | None,
              out: str) -> None:
    """`as name` (or a list member's `as convs.1`): the layer's output is known by that name in its scope."""
    if name in scope or name in RESERVED_NAMES:
        ex.error("E315", f"node name '{name}' is " + ("reserved" if name in RESERVED_NAMES
                                                       else "already used in this scope"),
                 loc, frame, hint="pick a unique name", path=out)
    elif y is not None:
        scope[name] = y
        if not frame.calls:
            ex.nodes[y].name = name
    else:  # its error is reported: a later reference to the name would only repeat it
        ex.failed.add((id(scope), name))

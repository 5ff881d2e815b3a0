"""The source text of the helper classes (``modules.py``, ``modules_modern.py``), for the emitted
file, without importing torch.

Both files are read as text and parsed with ``ast``; each class's exact source segment
is what the emitted file carries, so ``to_torch`` and ``specdsl build`` run the same code.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable
from importlib import resources

# In the order the emitted file lists the classes it needs.
HELPER_FILES = ("modules.py", "modules_modern.py", "modules_conv.py", "modules_evo.py")


@functools.cache
def _classes() -> dict[str, tuple[str, frozenset[str]]]:
    """Class name -> (source segment, the other helper classes it refers to), in file order."""
    defs = []
    for file in HELPER_FILES:
        text = resources.files(__package__).joinpath(file).read_text(encoding="utf-8")
        defs += [(text, node) for node in ast.parse(text).body if isinstance(node, ast.ClassDef)]
    names = {node.name for _, node in defs}
    out = {}
    for text, node in defs:
        source = ast.get_source_segment(text, node)
        assert source is not None
        uses = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} & (names - {node.name})
        out[node.name] = (source, frozenset(uses))
    return out


def helper_names() -> frozenset[str]:
    """Names of the helper classes, which an emitted file's own classes must not take."""
    return frozenset(_classes())


def helper_sources(needed: Iterable[str]) -> list[str]:
    """Source of the classes ``needed`` and of those they use, in the order the helper files define them."""
    classes = _classes()
    wanted: set[str] = set()
    todo = list(needed)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo += classes[name][1]
    return [source for name, (source, _) in classes.items() if name in wanted]

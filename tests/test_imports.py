"""The package's imports point one way, and backends/ resolves as specdsl.backends everywhere.

The graph is read from the source (every import statement: module level, inside functions and
under TYPE_CHECKING), so a cycle hidden by a late or a type-only import still counts.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Layers from the top: a package may import its own layer's packages (without a cycle between
# modules) and any layer below, never one above. The pipeline reads bottom-up: op facts and the
# IR; per-node and whole-graph passes over them; the language (schema, blocks, front ends);
# rendering; the API; the backends, the editor and the sweep; the command line.
LAYERS: list[set[str]] = [
    {"specdsl", "specdsl.__main__"},
    {"specdsl.cli"},
    {"specdsl.backends.torch", "specdsl.backends.numpy", "specdsl.backends.onnx", "specdsl.backends", "specdsl.lsp",
     "specdsl.sweep", "specdsl.search"},
    {"specdsl.api", "specdsl.lift"},
    {"specdsl.render"},
    {"specdsl.blocks", "specdsl.frontend", "specdsl.schema"},
    {"specdsl.passes"},
    {"specdsl.ir", "specdsl.ops", "specdsl.backends.naming", "specdsl.backends.weights_match",
     "specdsl.backends.weights_file", "specdsl.errors",
     "specdsl.source", "specdsl.budgets", "specdsl.atomic", "specdsl.catalog", "specdsl.zoo", "specdsl.version"},
]
LAYER_OF = {package: i for i, layer in enumerate(LAYERS) for package in layer}


def modules() -> dict[str, Path]:
    """Every module by its import name; backends/ is specdsl.backends (as installed)."""
    found: dict[str, Path] = {}
    for folder, prefix in ((ROOT / "specdsl", "specdsl"), (ROOT / "backends", "specdsl.backends")):
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if prefix == "specdsl" and parts[0] == "backends":
                continue  # the checkout's pointer to backends/, not code of its own
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([prefix, *parts])] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The specdsl modules ``name`` imports, anywhere in its file."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = name.split(".") if is_package else name.split(".")[:-1]
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            subs = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known]
            targets = subs if len(subs) == len(node.names) else [*subs, base]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target.startswith("specdsl") and target != name:
                out.add(target)
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def package(module: str) -> str:
    """``specdsl.blocks.engine`` -> ``specdsl.blocks``; a backend's own package for backends."""
    parts = module.split(".")
    depth = 3 if parts[:2] == ["specdsl", "backends"] and len(parts) > 2 else 2
    return ".".join(parts[:depth])


def test_no_module_imports_itself_through_others() -> None:
    found = cycles(graph())
    assert not found, "import cycles (type-hint and function-level imports count): " + "; ".join(
        " <-> ".join(c) for c in found)


def test_every_package_has_a_layer() -> None:
    missing = sorted({package(m) for m in graph()} - set(LAYER_OF))
    assert not missing, f"packages with no layer in tests/test_imports.py LAYERS: {missing}"


def test_imports_point_down_the_layers() -> None:
    upward = defaultdict(set)
    for module, targets in graph().items():
        here = LAYER_OF.get(package(module))
        for target in targets:
            there = LAYER_OF.get(package(target))
            if here is not None and there is not None and there < here:
                upward[f"{package(module)} -> {package(target)}"].add(f"{module} imports {target}")
    assert not upward, "imports against the layering:\n" + "\n".join(
        f"  {edge}: {sorted(examples)[:3]}" for edge, examples in sorted(upward.items()))


def test_no_static_pass_imports_a_backend() -> None:
    for module, targets in graph().items():
        if package(module) == "specdsl.passes":
            assert not {t for t in targets if t.startswith("specdsl.backends")}, module


def test_a_plain_checkout_resolves_the_backends(tmp_path: Path) -> None:
    """`PYTHONPATH=.` in a checkout, no specdsl installed: specdsl.backends is the top-level folder."""
    probe = (
        "import sys\n"
        # Hide any installed specdsl (an editable install's finder, a wheel in site-packages).
        "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "import specdsl.backends.torch.lowerings, specdsl.backends.numpy\n"
        "import specdsl\n"
        "print(specdsl.__file__)\n"
        "print(specdsl.backends.torch.lowerings.__file__)\n"
        "print(specdsl.backends.numpy.__file__)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    package_file, torch_file, numpy_file = proc.stdout.split()
    assert Path(package_file) == ROOT / "specdsl" / "__init__.py"
    assert Path(torch_file) == ROOT / "backends" / "torch" / "lowerings.py"
    assert Path(numpy_file) == ROOT / "backends" / "numpy" / "__init__.py"

"""The bundled model zoo (specs/, shipped inside the wheel as specdsl.specs)."""

from __future__ import annotations

import functools
import re
from importlib import resources

SPEC_SUFFIXES = (".yaml", ".yml", ".cnn")


def _folder():
    return resources.files("specdsl.specs")


def names() -> list[str]:
    return sorted(
        entry.name.rsplit(".", 1)[0]
        for entry in _folder().iterdir()
        if entry.name.endswith(SPEC_SUFFIXES)
    )


def find(name: str) -> tuple[str, str] | None:
    """(display path, text) of a zoo model, or None."""
    for suffix in SPEC_SUFFIXES:
        entry = _folder() / f"{name}{suffix}"
        if entry.is_file():
            return f"<zoo>/{name}{suffix}", entry.read_text(encoding="utf-8")
    return None


# `variant efficientnet_b3(...)` in a DSL family file, or a key under `variants:` in YAML.
_DSL_VARIANT = re.compile(r"^variant[ \t]+([A-Za-z0-9_][A-Za-z0-9_.\-]*)", re.MULTILINE)
_YAML_VARIANT = re.compile(r"^  ([A-Za-z0-9_][A-Za-z0-9_.\-]*):", re.MULTILINE)


@functools.lru_cache(maxsize=1)
def variants() -> dict[str, tuple[str, str]]:
    """Every zoo variant name -> (family file stem, variant), found without parsing the files."""
    found: dict[str, tuple[str, str]] = {}
    for entry in sorted(_folder().iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(SPEC_SUFFIXES):
            continue
        stem = entry.name.rsplit(".", 1)[0]
        text = entry.read_text(encoding="utf-8")
        if entry.name.endswith(".cnn"):
            names = _DSL_VARIANT.findall(text)
        else:
            block = re.search(r"^variants:\n((?:  .*\n|\s*\n)*)", text, re.MULTILINE)
            names = _YAML_VARIANT.findall(block.group(1)) if block else []
        for name in names:
            found.setdefault(name, (stem, name))
    return found


def find_variant(name: str) -> tuple[str, str, str] | None:
    """(display path, text, variant) of a zoo variant name such as ``efficientnet_b3``, or None."""
    hit = variants().get(name)
    if hit is None:
        return None
    family = find(hit[0])
    return None if family is None else (*family, hit[1])


def all_names() -> list[str]:
    """Zoo names: family files and their variants."""
    return sorted({*names(), *variants()})

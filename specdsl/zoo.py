"""The bundled model zoo (specs/, shipped inside the wheel as specdsl.specs)."""

from __future__ import annotations

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

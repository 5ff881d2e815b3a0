"""Values of the DSL's data with the spans that produced them (shared by the builder and its parts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from specdsl.errors import SourceLoc


@dataclass
class Located:
    """A value with the span that produced it (and, for mappings, each key's span)."""

    value: Any
    loc: SourceLoc
    key_locs: dict[str, SourceLoc] = field(default_factory=dict)


class Positional:
    """Arguments written without names; mapped to parameter names after parsing."""

    def __init__(self, values: list[Located]):
        self.values = values


def token_loc(file: str, tok: Any) -> SourceLoc:
    return SourceLoc(file, tok.line, tok.column, tok.end_line, tok.end_column)


def span(file: str, tokens: Any) -> SourceLoc:
    """From the first token's start to the last one's end (`s.0` in `@s.0`)."""
    first, last = tokens[0], tokens[-1]
    return SourceLoc(file, first.line, first.column, last.end_line, last.end_column)

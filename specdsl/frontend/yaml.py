"""YAML front end: safe, strict, and location-preserving.

Built from libyaml's event stream rather than ``yaml.load`` so that nothing
can construct Python objects, aliases are refused before they expand, and
plain scalars follow a small, explicit set of rules (YAML 1.2 core, minus the
YAML 1.1 surprises that bite spec authors).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from specdsl.budgets import MAX_DEPTH, raise_hint
from specdsl.errors import Diagnostic, SourceLoc, SpecError
from specdsl.source import PathKey, SourceMap

try:  # the C parser is ~10x faster; fall back when libyaml is absent
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Loader = yaml.SafeLoader

__all__ = ["MAX_DEPTH", "load_yaml"]

# Integers are int64, as in PyTorch; longer literals are refused before int() sees them
# (str -> int is quadratic, and CPython refuses more than 4,300 digits outright).
INT_MAX = 2**63 - 1
_NULLS = {"", "~", "null", "Null", "NULL"}
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
# y/n are YAML 1.1 booleans too, but PyYAML and most tools read them as strings, and
# single letters are common parameter names (`n`): only the wordy forms are refused.
_YAML11_BOOLS = {"yes", "no", "on", "off"}
_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)\Z")
_LEADING_ZERO = re.compile(r"[-+]?0[0-9_]+\Z")
_UNDERSCORE_NUM = re.compile(r"[-+]?[0-9][0-9_]*_[0-9_]*(\.[0-9_]*)?\Z")
_HEX = re.compile(r"0x[0-9a-fA-F]+\Z")
_OCT = re.compile(r"0o[0-7]+\Z")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_SPECIAL_FLOATS = {
    ".inf": float("inf"), "+.inf": float("inf"), "-.inf": float("-inf"),
    ".Inf": float("inf"), "+.Inf": float("inf"), "-.Inf": float("-inf"),
    ".nan": float("nan"), ".NaN": float("nan"),
}


def _loc(file: str, start: Any, end: Any) -> SourceLoc:
    return SourceLoc(file, start.line + 1, start.column + 1, end.line + 1, end.column + 1)


def _out_of_range(text: str, loc: SourceLoc) -> tuple[Any, Diagnostic]:
    shown = text if len(text) <= 24 else f"{text[:10]}...{text[-4:]} ({len(text)} characters)"
    return text, Diagnostic(
        "error", "E112", f"integer out of range: {shown}; integers in a spec are at most 2^63-1", loc,
        hint="sizes and counts this large cannot be built")


def _bounded_int(text: str, base: int, loc: SourceLoc) -> tuple[Any, Diagnostic | None]:
    digits = text.lstrip("+-")
    digits = digits[2:] if base != 10 else digits
    if len(digits.lstrip("0")) > 64:
        return _out_of_range(text, loc)
    value = int(text, base) if base == 10 else int(digits, base)
    if abs(value) > INT_MAX:
        return _out_of_range(text, loc)
    return value, None


def resolve_plain(text: str, loc: SourceLoc) -> tuple[Any, Diagnostic | None]:
    """Type of an unquoted scalar, or a diagnostic when YAML 1.1 would surprise."""
    if text in _NULLS:
        return None, None
    if text in _BOOLS:
        return _BOOLS[text], None
    if text.lower() in _YAML11_BOOLS:
        return text, Diagnostic(
            "error", "E105",
            f"ambiguous YAML value '{text}': YAML 1.1 reads it as a boolean, YAML 1.2 as a string",
            loc, hint=f"write true/false for a flag, or quote it (\"{text}\") for a name",
        )
    if _INT.match(text):
        return _bounded_int(text, 10, loc)
    if _LEADING_ZERO.match(text):
        if len(text) > 64:
            return _out_of_range(text, loc)
        return text, Diagnostic(
            "error", "E106",
            f"ambiguous number '{text}': a leading zero means octal in YAML 1.1",
            loc, hint=f"write {int(text.replace('_', '')) } for the number, or quote it for a string",
        )
    if _UNDERSCORE_NUM.match(text):
        return text, Diagnostic(
            "error", "E106",
            f"ambiguous number '{text}': YAML 1.1 reads digit separators, YAML 1.2 does not",
            loc, hint=f"write {text.replace('_', '')} without underscores, or quote it",
        )
    if _HEX.match(text):
        return _bounded_int(text, 16, loc)
    if _OCT.match(text):
        return _bounded_int(text, 8, loc)
    if _FLOAT.match(text):
        return float(text), None
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text], None
    return text, None


def _syntax_loc(file: str, text: str, mark: Any) -> SourceLoc:
    """A parser mark, moved back onto the last real line when it points past the end."""
    lines = text.splitlines() or [""]
    line = min(mark.line, len(lines) - 1)
    col = mark.column if line == mark.line else len(lines[line])
    return SourceLoc(file, line + 1, col + 1, line + 1, col + 2)


class _Frame:
    __slots__ = ("container", "key_loc", "path", "pending_key", "seen", "start_loc")

    def __init__(self, container: Any, path: PathKey, start_loc: SourceLoc) -> None:
        self.container = container
        self.path = path
        self.pending_key: str | None = None
        self.key_loc: SourceLoc | None = None
        self.seen: dict[str, SourceLoc] = {}
        self.start_loc = start_loc


class _Reader:
    """Builds plain data and its SourceMap from libyaml's events, refusing what a spec may not hold."""

    def __init__(self, text: str, file: str, max_depth: int) -> None:
        self.text = text
        self.file = file
        self.max_depth = max_depth
        # The SourceMap's contents, frozen into one when the document is complete.
        self.values: dict[PathKey, SourceLoc] = {}
        self.keys: dict[PathKey, SourceLoc] = {}
        self.raws: dict[PathKey, str] = {}
        self.diags: list[Diagnostic] = []
        self.root: Any = None
        self.documents = 0
        self.stack: list[_Frame] = []

    def fail(self, code: str, message: str, loc: SourceLoc | None, hint: str | None = None) -> SpecError:
        self.diags.append(Diagnostic("error", code, message, loc, hint=hint))
        return SpecError(self.diags, {self.file: self.text})

    def feed(self, event: Any) -> None:
        kind = type(event)
        if kind in (yaml.StreamStartEvent, yaml.StreamEndEvent, yaml.DocumentEndEvent):
            return
        loc = _loc(self.file, event.start_mark, event.end_mark)
        if kind is yaml.DocumentStartEvent:
            self._document(event, loc)
            return
        self._refuse_references(event, loc)
        if kind is yaml.ScalarEvent:
            self._scalar(event, loc)
        elif kind in (yaml.MappingStartEvent, yaml.SequenceStartEvent):
            self._open({} if kind is yaml.MappingStartEvent else [], loc)
        elif kind in (yaml.MappingEndEvent, yaml.SequenceEndEvent):
            frame = self.stack.pop()
            # Widen the container's span to its real end.
            start = frame.start_loc
            self.values[frame.path] = SourceLoc(self.file, start.line, start.col, loc.end_line, loc.end_col)

    def _document(self, event: Any, loc: SourceLoc) -> None:
        self.documents += 1
        if self.documents > 1:
            raise self.fail("E108", "a spec file holds one YAML document; found a second", loc,
                            hint="remove the `---` separator or split the file")
        version = getattr(event, "version", None)
        if version is not None and tuple(version) != (1, 2):
            # Under 1.1 rules `yes`, `off` or `0o17` read otherwise: a spec is read as YAML 1.2 only.
            raise self.fail("E113", f"specs are YAML 1.2; the file asks for %YAML {'.'.join(map(str, version))}",
                            SourceLoc(self.file, 1, 1, 1, 6) if self.text.startswith("%YAML") else loc,
                            hint="remove the `%YAML` line (or write `%YAML 1.2`)")

    def _refuse_references(self, event: Any, loc: SourceLoc) -> None:
        """Aliases, anchors and tags: a spec holds plain values only."""
        if type(event) is yaml.AliasEvent:
            raise self.fail("E103", f"YAML aliases are not allowed (received *{event.anchor})", loc,
                            hint="write the value out, or define a block and call it twice")
        if getattr(event, "anchor", None):
            raise self.fail("E103", f"YAML anchors are not allowed (received &{event.anchor})", loc,
                            hint="write the value out, or define a block and call it twice")
        tag = getattr(event, "tag", None)
        if tag is not None:
            # Explicit tags (!!python/object, !!binary, !custom) never construct anything here.
            shown = tag.replace("tag:yaml.org,2002:", "!!")
            raise self.fail("E104", f"YAML tags are not allowed (received {shown})", loc,
                            hint="remove the tag; a spec holds plain names, numbers, lists and mappings")

    def _scalar(self, event: Any, loc: SourceLoc) -> None:
        raw = event.value
        stack = self.stack
        is_key = bool(stack) and isinstance(stack[-1].container, dict) and stack[-1].pending_key is None
        plain = not event.style  # libyaml reports '' for plain, CPython None
        if plain and not is_key:
            value, problem = resolve_plain(raw, loc)
            if problem is not None:
                self.diags.append(problem)
        else:
            value = raw
        path = self._place(value, loc, raw if (plain or is_key) else None)
        if path is not None and plain:
            self.raws[path] = raw

    def _open(self, container: Any, loc: SourceLoc) -> None:
        if len(self.stack) >= self.max_depth:
            raise self.fail("E109", f"nesting deeper than {self.max_depth} levels (the max_depth budget)", loc,
                            hint="specs are shallow; use blocks instead of deep nesting; " + raise_hint("max_depth"))
        if self.stack and isinstance(self.stack[-1].container, dict) and self.stack[-1].pending_key is None:
            raise self.fail("E107", "mapping keys must be plain names", loc,
                            hint="write `name: value`; complex keys are not part of the language")
        path = self._place(container, loc, None)
        assert path is not None
        self.stack.append(_Frame(container, path, loc))

    def _place(self, value: Any, loc: SourceLoc, raw: str | None) -> PathKey | None:
        """Attach a finished value to its parent; returns its path (None for a key)."""
        if not self.stack:
            self.root = value
            self.values[()] = loc
            return ()
        top = self.stack[-1]
        if isinstance(top.container, list):
            path = (*top.path, len(top.container))
            top.container.append(value)
        elif top.pending_key is None:
            self._key(top, value, loc, raw)
            return None
        else:
            key = top.pending_key
            path = (*top.path, key)
            top.container[key] = value
            assert top.key_loc is not None
            self.keys[path] = top.key_loc
            top.pending_key = None
        self.values[path] = loc
        return path

    def _key(self, top: _Frame, value: Any, loc: SourceLoc, raw: str | None) -> None:
        """This scalar is a mapping key."""
        if not isinstance(value, str) or raw is None:
            raise self.fail("E107", "mapping keys must be plain names", loc,
                            hint="write `name: value`; complex keys are not part of the language")
        if value in top.seen:
            first = top.seen[value]
            raise self.fail("E102", f"duplicate key '{value}' (first defined at line {first.line})", loc,
                            hint="YAML keeps only the last value silently; remove or rename one")
        top.seen[value] = loc
        top.pending_key = value
        top.key_loc = loc

    def result(self) -> tuple[Any, SourceMap]:
        if self.diags:
            raise SpecError(self.diags, {self.file: self.text})
        if () not in self.values:  # an empty document: errors about it point at the top of the file
            self.values[()] = SourceLoc(self.file, 1, 1)
        return self.root, SourceMap(self.file, self.text, self.values, self.keys, self.raws)


def load_yaml(text: str, file: str = "<string>", max_depth: int = MAX_DEPTH) -> tuple[Any, SourceMap]:
    """Parse YAML text into plain data and a SourceMap; raise SpecError on any problem."""
    reader = _Reader(text, file, max_depth)
    try:
        for event in yaml.parse(text, Loader=_Loader):
            reader.feed(event)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, reader) from None
    except yaml.reader.ReaderError as exc:
        raise _bad_character(exc, reader) from None
    except yaml.YAMLError as exc:
        raise SpecError([*reader.diags, Diagnostic("error", "E101", f"YAML error: {exc}", SourceLoc(file, 1, 1))],
                        {file: text}) from None
    return reader.result()


def _syntax_error(exc: yaml.MarkedYAMLError, reader: _Reader) -> SpecError:
    """libyaml's syntax error, at the line it means, with what it was parsing and a likely fix."""
    file, text, max_depth = reader.file, reader.text, reader.max_depth
    mark = exc.problem_mark or exc.context_mark
    loc = _syntax_loc(file, text, mark) if mark else None
    problem = (exc.problem or "invalid YAML").strip()
    if problem.startswith("exceeded maximum nesting depth"):
        # libyaml (PyYAML 6.0.4's wheels) refuses nesting deeper than 1000 levels, and on one line
        # its scanner reads up to 1024 characters ahead before it hands over the first bracket, so
        # it can stop before the depth check above has seen an event. 1000 levels is beyond every
        # max_depth (at most MAX_DEPTH_CEILING = 128): it is that budget which is exceeded.
        return reader.fail("E109", f"nesting deeper than {max_depth} levels (the max_depth budget)", loc,
                           hint="specs are shallow; use blocks instead of deep nesting; " + raise_hint("max_depth"))
    context = f" ({exc.context.strip()})" if exc.context else ""
    notes: tuple[str, ...] = ()
    start = exc.context_mark
    if start is not None and exc.problem_mark is not None and start.line != exc.problem_mark.line:
        construct = exc.context.strip().removeprefix("while parsing ").removeprefix("a ") if exc.context else ""
        notes = (f"the {construct} began at line {start.line + 1}, column {start.column + 1}",) \
            if construct else ()
    if "flow" in (exc.context or ""):
        hint = "check for a missing ',' or closing bracket"
    elif "mapping values are not allowed" in problem:
        hint = ("a layer with no arguments that carries keys needs a colon: write `- bn:` "
                "before `name: ...`, and put a space after every `key:`")
    else:
        hint = "check indentation and that every `key:` is followed by a space"
    return SpecError(
        [*reader.diags, Diagnostic("error", "E101", f"YAML syntax error: {problem}{context}", loc,
                                   hint=hint, notes=notes)],
        {file: text},
    )


def _bad_character(exc: yaml.reader.ReaderError, reader: _Reader) -> SpecError:
    """A character YAML refuses (control characters, U+FFFE, ...): point at it."""
    text = reader.text
    pos = exc.position if isinstance(exc.position, int) else 0
    if _Loader is not yaml.SafeLoader:  # libyaml counts UTF-8 bytes, not characters
        pos = len(text.encode("utf-8", "surrogatepass")[:pos].decode("utf-8", "ignore"))
    # Lines as YAML (and the snippet renderer) count them: every line break, not only '\n'.
    lines = (text[:max(0, min(pos, len(text)))] + "x").splitlines()
    line, col = len(lines), len(lines[-1])
    char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
    return SpecError([*reader.diags, Diagnostic(
        "error", "E101", f"YAML syntax error: character {char} is not allowed in YAML ({exc.reason})",
        SourceLoc(reader.file, line, col, line, col + 1),
        hint="remove the control character; YAML text is printable Unicode")], {reader.file: text})

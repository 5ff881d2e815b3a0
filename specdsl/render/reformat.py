"""`specdsl fmt` and `specdsl convert`: rewrite a spec, then prove the rewrite means the same.

Both need a parseable file only (not a valid model: an unknown layer name is reformatted as
written). After printing, the output is read back with the target syntax's own front end; it
must give the same data (up to the one shorthand each syntax spells differently) and keep
every comment, in the same ``{ }`` body. Otherwise the command refuses with a located
diagnostic (E420) and writes nothing: a formatter that changes meaning loses a user's work.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from specdsl.budgets import DEFAULT, Budgets
from specdsl.errors import Diagnostic, SourceLoc, SpecError
from specdsl.render.printer import CannotPrint, to_dsl, to_yaml
from specdsl.source import PathKey, SourceMap

__all__ = ["convert_text", "format_text", "yaml_comments"]

Comment = tuple[int, int, str]


def format_text(text: str, file: str, budgets: Budgets = DEFAULT) -> str:
    """The canonical layout of DSL text, or SpecError: a parse error, or E420 when fmt cannot keep the meaning."""
    from specdsl.frontend.dsl import parse_dsl

    parsed = parse_dsl(text, file, budgets=budgets)
    out = _print(lambda: to_dsl(parsed.data, parsed.smap, parsed.comments), parsed.smap, "fmt", "format this spec")
    _verify(parsed.data, parsed.smap, [c[2] for c in parsed.comments], _depths(text, parsed.comments),
            out, "dsl", "fmt", budgets)
    return out


def convert_text(text: str, file: str, to: str, dsl_source: bool, budgets: Budgets = DEFAULT) -> str:
    """The spec in the other syntax (``to`` is "yaml" or "dsl"), comments included; SpecError as format_text."""
    if dsl_source:
        from specdsl.frontend.dsl import parse_dsl

        parsed = parse_dsl(text, file, budgets=budgets)
        data, smap, comments = parsed.data, parsed.smap, list(parsed.comments)
    else:
        from specdsl.frontend.yaml import load_yaml

        data, smap = load_yaml(text, file, max_depth=budgets.max_depth)
        comments = yaml_comments(text)
    if to == "dsl":
        out = _print(lambda: to_dsl(data, smap, comments), smap, "convert", "write this spec as DSL")
    else:
        out = _print(lambda: to_yaml(data, smap, comments), smap, "convert", "write this spec as YAML")
    _verify(data, smap, [c[2] for c in comments], None, out, to, "convert", budgets)
    return out


def _print(fn: Any, smap: SourceMap, command: str, what: str) -> str:
    try:
        return str(fn())
    except CannotPrint as exc:
        raise _refuse(smap, exc.path, f"{command} cannot {what}: {exc}") from None
    except RecursionError:
        raise _refuse(smap, (), f"{command} cannot {what} this spec: it nests too deeply") from None


def _refuse(smap: SourceMap, path: PathKey, message: str, hint: str | None = None) -> SpecError:
    loc = smap.value_loc(path) or SourceLoc(smap.file, 1, 1)
    return SpecError([Diagnostic("error", "E420", message, loc, hint=hint or "nothing was written")],
                     {smap.file: smap.text})


def _verify(data: Any, smap: SourceMap, comments: list[str], depths: list[tuple[int, str]] | None, out: str,
            syntax: str, command: str, budgets: Budgets) -> None:
    """Read ``out`` back: same data, the same comments (in the same body when ``depths`` is given)."""
    big = Budgets(max_file_bytes=budgets.max_file_bytes * 4, max_depth=budgets.max_depth,
                  max_tokens=budgets.max_tokens * 4)
    try:
        if syntax == "dsl":
            from specdsl.frontend.dsl import parse_dsl

            back = parse_dsl(out, smap.file, budgets=big)
            data2, comments2 = back.data, list(back.comments)
            depths2 = _depths(out, back.comments)
        else:
            from specdsl.frontend.yaml import load_yaml

            data2, _ = load_yaml(out, smap.file, max_depth=big.max_depth)
            comments2, depths2 = yaml_comments(out), None
    except SpecError as exc:
        first = exc.errors[0] if exc.errors else None
        raise _refuse(smap, (), f"{command} would write text that does not read back"
                      + (f" ({first.code}: {first.message})" if first else ""),
                      hint="nothing was written; please report this spec") from None
    where = _difference(_normal(data), _normal(data2), ())
    if where is not None:
        raise _refuse(smap, where, f"{command} would change the meaning of this spec at {_shown(where)}",
                      hint="nothing was written; please report this spec")
    lost = Counter(comments) - Counter(c[2] for c in comments2)
    if lost:
        raise _refuse(smap, (), f"{command} would drop the comment {next(iter(lost))!r}",
                      hint="nothing was written; move the comment to a line of its own")
    if depths is not None and depths2 is not None and Counter(depths) != Counter(depths2):
        moved = next(iter(Counter(depths) - Counter(depths2)))
        raise _refuse(smap, (), f"{command} would move the comment {moved[1]!r} out of its body",
                      hint="nothing was written; move the comment to a line of its own")


def _normal(value: Any) -> Any:
    """Data with each syntax's shorthands spelled out: `b: [layers]` and `stage: [layers]` as mappings."""
    if isinstance(value, dict):
        out = {k: _normal(v) for k, v in value.items()}
        if isinstance(out.get("blocks"), dict):
            out["blocks"] = {k: {"layers": v} if isinstance(v, list) else v for k, v in out["blocks"].items()}
        if isinstance(out.get("stage"), list):
            out["stage"] = {"layers": out["stage"]}
        return out
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value


# Dicts whose order means something: branches are concatenated in order, parameters bind positionally.
_ORDERED = ("branches", "params")


def _first_argument(op: str, data: Any) -> str | None:
    """The argument a scalar written for ``op`` stands for (`linear: 10` is `linear: {out: 10}`)."""
    from specdsl.ops import POSITIONAL

    blocks = data.get("blocks") if isinstance(data, dict) else None
    block = blocks.get(op) if isinstance(blocks, dict) else None
    if isinstance(block, dict) and isinstance(block.get("params"), dict):
        return next(iter(block["params"]), None)
    names = POSITIONAL.get(op, ())
    return names[0] if names else None


def _difference(a: Any, b: Any, path: PathKey, root: Any = None) -> PathKey | None:
    """The first path where two data trees differ (types included: 1 is not 1.0 nor True); a scalar
    written for an op and the same value under the op's first argument are alike."""
    root = a if root is None else root
    if isinstance(a, str) and isinstance(b, dict) and list(b) == [a] and b[a] in (None, {}):
        return None  # a layer without arguments: `relu`, `relu: null`, `relu()`
    if isinstance(b, str) and isinstance(a, dict) and list(a) == [b] and a[b] in (None, {}):
        return None
    if type(a) is not type(b):
        if path and isinstance(path[-1], str) and isinstance(b, dict) and len(b) == 1 and not isinstance(a, dict):
            key = next(iter(b))
            if key == _first_argument(path[-1], root) and _difference(a, b[key], (*path, key), root) is None:
                return None
        return path
    if isinstance(a, dict):
        ordered = bool(path) and path[-1] in _ORDERED
        if (list(a) != list(b)) if ordered else (set(a) != set(b)):
            return path
        for k in a:
            found = _difference(a[k], b[k], (*path, k), root)
            if found is not None:
                return found
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return path
        for i, (x, y) in enumerate(zip(a, b)):
            found = _difference(x, y, (*path, i), root)
            if found is not None:
                return found
        return None
    return None if a == b else path


def _shown(path: PathKey) -> str:
    from specdsl.source import format_path

    return format_path(path) or "the top level"


def _depths(text: str, comments: Any) -> list[tuple[int, str]]:
    """How many `{` bodies enclose each comment, with its text (strings and comments skipped). A brace
    earlier on the comment's line does not count (`block b() {  # note` and `}  # note` are outside)."""
    wanted = {(line, col) for line, col, _ in comments}
    found: list[tuple[int, str]] = []
    depth, line, col, i, n = 0, 1, 1, 0, len(text)
    line_start = 0
    while i < n:
        ch = text[i]
        if ch == '"':
            j = i + 1
            while j < n and text[j] not in '"\n':
                j += 2 if text[j] == "\\" else 1
            col += j + 1 - i
            i = j + 1
            continue
        if ch == "#":
            end = text.find("\n", i)
            end = n if end < 0 else end
            if (line, col) in wanted:
                found.append((min(depth, line_start), text[i:end].rstrip()))
            col += end - i
            i = end
            continue
        if ch == "\n":
            line, col, line_start = line + 1, 1, depth
        else:
            depth += (ch == "{") - (ch == "}")
            col += 1
        i += 1
    return found




def yaml_comments(text: str) -> list[Comment]:
    """The comments of YAML text: whole-line ones, and those after a value outside quotes."""
    found: list[Comment] = []
    for number, line in enumerate(text.split("\n"), 1):
        quote = None
        for j, ch in enumerate(line):
            if quote:
                if ch == quote:
                    quote = None
            elif ch in "'\"" and (j == 0 or line[j - 1] in " \t[{,:-"):
                quote = ch
            elif ch == "#" and (j == 0 or line[j - 1] in " \t"):
                found.append((number, j + 1, line[j:].rstrip()))
                break
    return found

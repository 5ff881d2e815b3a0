"""Spec mutators shared by the in-suite fuzz test (tests/test_untrusted.py), the atheris
targets beside this file, and the long-run driver:

    .venv/bin/python tests/fuzz/mutate.py 10000 [SEED [DIR]]   # N mutated specs; breaches saved to DIR
    .venv/bin/python tests/fuzz/mutate.py --corpus DIR [--only .yaml|.cnn]   # atheris seed corpus

Every mutator takes a ``random.Random`` (hypothesis hands one in via ``st.randoms()``,
so failures shrink) and returns spec text or bytes. Seeds are the zoo, in both syntaxes.

* structural: parse a zoo spec to plain data, then delete / duplicate / swap layers,
  change values to wrong types, huge, negative or hostile numbers and strings, rename,
  drop or add keys; print it back as YAML or DSL.
* byte-level: flip, insert or delete bytes, duplicate a slice, truncate.
* token-level (DSL): delete, duplicate or swap tokens and lines.

The oracle (``check``) is the error contract: a spec either loads, or raises
``SpecError`` whose every error carries a location (except the few file-level codes
in ``UNLOCATED``); any other exception is a bug. Successful loads also go through the
report, JSON, ``convert`` and (for DSL) ``fmt`` code paths.
"""

from __future__ import annotations

import copy
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

# Error codes that legitimately have no location: the file itself could not be read.
#   E100  no such file / unreadable file / unknown zoo name (there is no text to point into)
#   E110  the file is over max_file_bytes (refused before it is read)
UNLOCATED = {"E100", "E110"}

HOSTILE_VALUES: list[Any] = [
    None, True, False, 0, -1, -7, 1, 2, 3, 7, 64, 2**31 - 1, 2**31, 2**32, 10**12, 2**62, 2**63 - 1, 2**63,
    -(2**63), 10**30, 10**400, 0.0, -0.0, 0.5, 1.5, -2.5, 1e-300, 1e308, float("inf"), float("-inf"),
    float("nan"), "", "x", "relu", "same", "valid", "c", "c * 4", "c // 0", "c * c * c * c * c * c",
    "(((((((((c)))))))))", "__import__('os').system('touch PWNED')", "a\nb", "'; drop", "\"", "\\",
    "\u212a", "é", "\x00", "𝐜𝐨𝐧𝐯", "input", "self", "class", "None", "__init__", [], {}, [1], [1, 2, 3],
    [0, -1], [2**63], ["a", None], {"a": 1}, {"relu": None}, {"conv": {"out": 3}}, [[[[1]]]],
]
HOSTILE_KEYS = ["out", "k", "stride", "pad", "repeat", "name", "inputs", "frozen", "init", "body",
                "shortcut", "branches", "columns", "base", "n", "growth", "theta", "params", "layers",
                "bogus", "", "__class__", "model", "input", "blocks", "dim", "p", "groups", "<<", "if", "then",
                "else", "let"]
POOL_LAYERS: list[Any] = [
    "relu", "bn", "gap", "flatten", "identity", "add", "concat", "mean", "dropout", "nosuchop",
    {"conv": {"out": 8, "k": 3}}, {"linear": 10}, {"maxpool": 2}, {"upsample": {"scale": 1000000}},
    {"residual": {"body": ["relu"]}}, {"dense": {"n": 2, "growth": 4}}, {"transition": {"theta": 0.5}},
    {"inception": {"branches": {"a": ["relu"], "b": ["bn"]}}}, {"fractal": {"columns": 3, "base": ["relu"]}},
    {"stage": ["relu"]}, {"relu": None, "repeat": 5000}, {"let": {"c": "2 ** 40"}}, {"let": {"w": [1, 2]}},
    {"if": "c > 1", "then": ["relu"], "else": [{"conv": {"out": "w[5]", "k": 1}}]}, {"if": True, "then": "relu"},
    {"if": "true", "else": [{"add": None, "inputs": ["nowhere", "input"]}]},
    {"conv": {"out": 8, "k": 1}, "repeat": 100000},
    {"dense": {"n": 100000, "growth": 1}}, {"fractal": {"columns": 40, "base": ["relu"]}},
    {"conv": {"out": 2**40, "k": 1}}, {"linear": {"out": 2**40}}, {"relu": None, "inputs": ["nowhere"]},
    {"add": None, "inputs": ["input", "input"]}, {"relu": None, "name": "input"},
]


# ---------------------------------------------------------------- the corpus


@lru_cache(maxsize=1)
def seeds() -> list[tuple[str, str, Any]]:
    """(suffix, text, data) for every zoo model in both syntaxes."""
    from specdsl import zoo
    from specdsl.api import read_data
    from specdsl.render.printer import to_dsl, to_yaml

    out = []
    for name in zoo.names():
        file, text = zoo.find(name)  # type: ignore[misc]
        data, _ = read_data(text, file)
        if file.endswith(".cnn"):
            out += [(".cnn", text, data), (".yaml", to_yaml(data), data)]
        else:
            out += [(".yaml", text, data), (".cnn", to_dsl(data), data)]
    return out


# ---------------------------------------------------------------- structural


def _walk(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    found = [(path, data)]
    if isinstance(data, dict):
        for k, v in data.items():
            found += _walk(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            found += _walk(v, (*path, i))
    return found


def _set(root: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = root
    for p in path[:-1]:
        parent = parent[p]
    parent[path[-1]] = value
    return root


def mutate_data(data: Any, rnd: random.Random, rounds: int | None = None) -> Any:
    data = copy.deepcopy(data)
    for _ in range(rounds or rnd.randint(1, 4)):
        nodes = _walk(data)
        lists = [(p, v) for p, v in nodes if isinstance(v, list)]
        dicts = [(p, v) for p, v in nodes if isinstance(v, dict)]
        kind = rnd.choice(["list", "list", "leaf", "leaf", "leaf", "dict", "dict", "op", "root"])
        if kind == "list" and lists:
            _, lst = rnd.choice(lists)
            action = rnd.choice(["delete", "duplicate", "swap", "insert", "clear", "repeat"])
            if action == "delete" and lst:
                del lst[rnd.randrange(len(lst))]
            elif action == "duplicate" and lst:
                i = rnd.randrange(len(lst))
                lst.insert(i, copy.deepcopy(lst[i]))
            elif action == "swap" and len(lst) > 1:
                i, j = rnd.randrange(len(lst)), rnd.randrange(len(lst))
                lst[i], lst[j] = lst[j], lst[i]
            elif action == "insert":
                lst.insert(rnd.randint(0, len(lst)), copy.deepcopy(rnd.choice(POOL_LAYERS)))
            elif action == "clear":
                lst.clear()
            elif action == "repeat" and lst:
                i = rnd.randrange(len(lst))
                item = lst[i]
                lst[i] = {item: None, "repeat": rnd.choice(HOSTILE_VALUES)} if isinstance(item, str) else item
                if isinstance(lst[i], dict):
                    lst[i]["repeat"] = rnd.choice(HOSTILE_VALUES)
        elif kind == "leaf":
            path, _ = rnd.choice(nodes)
            data = _set(data, path, copy.deepcopy(rnd.choice(HOSTILE_VALUES)))
        elif kind == "dict" and dicts:
            _, d = rnd.choice(dicts)
            action = rnd.choice(["drop", "rename", "add"])
            if action == "drop" and d:
                del d[rnd.choice(list(d))]
            elif action == "rename" and d:
                old = rnd.choice(list(d))
                d[rnd.choice([*HOSTILE_KEYS, old + "_", old.upper()])] = d.pop(old)
            else:
                d[rnd.choice(HOSTILE_KEYS)] = copy.deepcopy(rnd.choice(HOSTILE_VALUES))
        elif kind == "op" and dicts:
            # Swap an op name for another op, a block or nonsense, keeping the arguments.
            _, d = rnd.choice(dicts)
            if d:
                old = rnd.choice(list(d))
                new = rnd.choice(["conv", "linear", "residual", "dense", "fractal", "inception", "stage",
                                  "transition", "bn", "maxpool", "concat", "add", "layernorm", "upsample",
                                  "join", "input", "basic", "bottleneck", "nosuch"])
                d[new] = d.pop(old)
        elif kind == "root" and isinstance(data, dict):
            key = rnd.choice(["input", "model", "dtype", "description", "blocks", "layers"])
            data[key] = copy.deepcopy(rnd.choice([*HOSTILE_VALUES, [3, 2**40, 2**40], [1] * 5, "m" * 100]))
    return data


def to_text(data: Any, suffix: str) -> str | None:
    """Print mutated data in a syntax; None when that syntax cannot express it."""
    if suffix == ".yaml":
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    from specdsl.render.printer import to_dsl

    try:
        return to_dsl(data)
    except Exception:  # the printer expects a valid spec; nonsense data has no DSL form
        return None


# ---------------------------------------------------------------- byte and token level

_INSERTS = [b"\x00", b"\xff", b"\xc3", b"\r", b"\t", b"\n", b"[", b"]", b"{", b"}", b"(", b")", b":", b"-", b",",
            b"&a ", b"*a", b"!!python/object:os.system ", b"!x ", b"<<: ", b"---\n", b"%YAML 1.1\n", b"x99999999",
            b"99999999999999999999999", b"\xe2\x80\xae", b"\xef\xbb\xbf", b"'", b'"', b"#", b"->", b"@", b"\\"]


def mutate_bytes(raw: bytes, rnd: random.Random) -> bytes:
    data = bytearray(raw)
    for _ in range(rnd.randint(1, 6)):
        action = rnd.choice(["flip", "insert", "delete", "truncate", "duplicate", "replace"])
        pos = rnd.randint(0, max(0, len(data) - 1)) if data else 0
        if action == "flip" and data:
            data[pos] ^= 1 << rnd.randrange(8)
        elif action == "insert":
            data[pos:pos] = rnd.choice(_INSERTS) if rnd.random() < 0.7 else bytes([rnd.randrange(256)])
        elif action == "delete" and data:
            del data[pos:pos + rnd.randint(1, 16)]
        elif action == "truncate":
            del data[pos:]
        elif action == "duplicate" and data:
            end = min(len(data), pos + rnd.randint(1, 200))
            data[end:end] = data[pos:end] * rnd.randint(1, 3)
        elif action == "replace" and data:
            data[pos] = rnd.randrange(256)
    return bytes(data)


_TOKEN = re.compile(r"\s+|[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d*)?|->|//|\"[^\"\n]*\"|#[^\n]*|.", re.S)


def mutate_tokens(text: str, rnd: random.Random) -> str:
    if rnd.random() < 0.3:
        lines = text.split("\n")
        for _ in range(rnd.randint(1, 3)):
            i, j = rnd.randrange(len(lines)), rnd.randrange(len(lines))
            action = rnd.choice(["delete", "duplicate", "swap"])
            if action == "delete" and len(lines) > 1:
                del lines[i]
            elif action == "duplicate":
                lines.insert(i, lines[j])
            else:
                lines[i], lines[j] = lines[j], lines[i]
        return "\n".join(lines)
    toks = _TOKEN.findall(text)
    for _ in range(rnd.randint(1, 4)):
        if not toks:
            break
        i, j = rnd.randrange(len(toks)), rnd.randrange(len(toks))
        action = rnd.choice(["delete", "duplicate", "swap", "number", "name"])
        if action == "delete":
            del toks[i]
        elif action == "duplicate":
            toks.insert(i, toks[j])
        elif action == "swap":
            toks[i], toks[j] = toks[j], toks[i]
        elif action == "number":
            toks[i] = rnd.choice(["0", "-1", "99999999999999999999", "9223372036854775807", "1e999", "x0",
                                  "x1000000", "0.5", "-0", "1" * 5000])
        else:
            toks[i] = rnd.choice(["relu", "conv", "residual", "branch", "block", "model", "input", "layers",
                                  "as", "null", "true", "__import__", "class", "x", "@input", "->", "{", "}",
                                  "if", "else", "let", "**", "[", "]"])
    return "".join(toks)


# ---------------------------------------------------------------- one example


def make_case(rnd: random.Random) -> tuple[str, bytes, str]:
    """(suffix, spec bytes, kind) for one fuzz example."""
    suffix, text, data = rnd.choice(seeds())
    kind = rnd.choice(["structural", "structural", "bytes", "tokens"])
    if kind == "structural":
        out = to_text(mutate_data(data, rnd), suffix)
        if out is None:
            suffix, out = ".yaml", to_text(mutate_data(data, rnd), ".yaml")
        return suffix, (out or "").encode("utf-8"), kind
    if kind == "tokens":
        return suffix, mutate_tokens(text, rnd).encode("utf-8"), kind
    return suffix, mutate_bytes(text.encode("utf-8"), rnd), kind


def check(path: Path, budgets: Any = None, printers: bool = True) -> str:
    """Run the whole pipeline on a spec file; raise AssertionError (or the bug) on a contract breach.

    ``printers``: also run what `specdsl convert` (both syntaxes, after a successful load) and
    `specdsl fmt` (DSL files, unvalidated) run. Returns 'ok' or the first error code.
    """
    import specdsl
    from specdsl.api import read_data, read_source
    from specdsl.errors import SpecError

    try:
        model = specdsl.load(path, budgets=budgets, warn=False)  # mutants warn; the contract is on errors
    except SpecError as exc:
        errors = exc.errors
        assert errors, f"SpecError without an error diagnostic: {exc.diagnostics}"
        for d in errors:
            assert d.loc is not None or d.code in UNLOCATED, f"unlocated error {d.code}: {d.message}"
            if d.loc is not None:
                assert d.loc.line >= 1 and d.loc.col >= 1, d
        exc.render(full=True)
        str(exc)
        if printers:
            _fmt_path(path)
        return errors[0].code
    from specdsl.render.printer import to_dsl, to_yaml
    from specdsl.render.table import table

    table(model)
    model.to_json()
    repr(model)
    if printers:
        file, text = read_source(path)
        data, _ = read_data(text, file)
        to_yaml(data)
        to_dsl(data)
        _fmt_path(path)
    return "ok"


def _fmt_path(path: Path) -> None:
    """`specdsl fmt` runs the DSL front end and the printer on unvalidated data."""
    if path.suffix != ".cnn":
        return
    from specdsl.api import read_source
    from specdsl.errors import SpecError
    from specdsl.frontend.dsl import parse_dsl
    from specdsl.render.printer import to_dsl

    try:
        file, text = read_source(path)
        parsed = parse_dsl(text, file)
    except SpecError:
        return
    to_dsl(parsed.data, parsed.smap, parsed.comments)


# ---------------------------------------------------------------- the long run


def long_run(n: int, seed: int = 0, budgets: Any = None,
             log: Callable[[str], None] = print) -> dict[str, Any]:
    """n mutated specs; returns statistics and every contract breach found (not raising)."""
    import tempfile
    import traceback

    rnd = random.Random(seed)
    stats: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    failures: dict[str, tuple[str, bytes]] = {}
    slowest = (0.0, "")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            suffix, raw, kind = make_case(rnd)
            path = Path(tmp) / f"case{suffix}"
            path.write_bytes(raw)
            t0 = time.perf_counter()
            try:
                stats[check(path, budgets)] += 1
            except BaseException as exc:  # every breach is recorded
                if isinstance(exc, KeyboardInterrupt):
                    raise
                sig = f"{type(exc).__name__}: {str(exc)[:120]} @ {traceback.extract_tb(exc.__traceback__)[-1][:3]}"
                stats["BREACH"] += 1
                failures.setdefault(sig, (suffix, raw))
            took = time.perf_counter() - t0
            if took > slowest[0]:
                slowest = (took, f"case {i} ({kind}{suffix})")
            kinds[kind] += 1
            if (i + 1) % 1000 == 0:
                log(f"{i + 1}/{n} specs, {stats['BREACH']} breaches, {time.perf_counter() - start:.0f} s")
    return {"n": n, "seconds": time.perf_counter() - start, "outcomes": stats, "kinds": kinds,
            "failures": failures, "slowest": slowest}


def write_corpus(folder: Path, only: str | None = None) -> int:
    """The zoo in both syntaxes as seed files for the atheris targets (fuzz_pipeline.py gets
    a leading byte that picks the syntax, as it expects)."""
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for i, (suffix, text, _) in enumerate(seeds()):
        if only and suffix != only:
            continue
        raw = text.encode("utf-8")
        if only is None:
            raw = (b"\x01" if suffix == ".cnn" else b"\x00") + raw
        (folder / f"seed{i}{suffix}").write_bytes(raw)
        n += 1
    return n


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from specdsl.budgets import Budgets

    if len(sys.argv) > 2 and sys.argv[1] == "--corpus":
        only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
        print(f"wrote {write_corpus(Path(sys.argv[2]), only)} seeds to {sys.argv[2]}")
        sys.exit(0)

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    result = long_run(count, seed=int(sys.argv[2]) if len(sys.argv) > 2 else 0, budgets=Budgets(max_nodes=50_000))
    print(f"{result['n']} mutated specs in {result['seconds']:.1f} s; kinds {dict(result['kinds'])}")
    print(f"slowest: {result['slowest'][0]:.3f} s ({result['slowest'][1]})")
    print("outcomes:", ", ".join(f"{k} {v}" for k, v in result["outcomes"].most_common()))
    out_dir = Path(sys.argv[3]) if len(sys.argv) > 3 else None
    for i, (sig, (suffix, raw)) in enumerate(result["failures"].items()):
        print(f"\nBREACH {sig}\n  reproducer ({suffix}): {raw[:300]!r}")
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / f"breach{i}{suffix}").write_bytes(raw)
    sys.exit(1 if result["failures"] else 0)

"""How fast are hostile specs refused? The time budgets that the unit tests no longer assert.

tests/test_untrusted.py and tests/test_dsl.py check what happens to each hostile input (a clean,
located error; no crash; bounded memory) but assert no wall-clock time, since a loaded machine
would fail them at random. This script times the same inputs in process (`specdsl.load`, after
a warm-up load) and prints each against its budget:

    .venv/bin/python benchmarks/bench_hostile_inputs.py [--runs 5] [--check] [-k SUBSTRING]
    .venv/bin/python benchmarks/bench_hostile_inputs.py --commands [--check]   # worst case per command
    .venv/bin/python benchmarks/bench_hostile_inputs.py --surfaces [--check]   # issue 30: weights, LSP, ...

The figure compared with the budget is the best (minimum) of --runs runs, as the alias-bomb test
used to do; the median is printed beside it. Each run's outcome is checked too (the error code the
tests expect), so a fast wrong answer is reported as WRONG, not OK. ``--check`` exits 1 when a case
is over its budget or wrong; ``-k`` runs the cases whose name contains SUBSTRING. A full run takes
well under a minute.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import specdsl
from specdsl.budgets import Budgets
from specdsl.errors import SpecError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from yaml_bombs import alias_bomb


@dataclass
class Case:
    name: str
    budget_s: float
    codes: tuple[str, ...]  # the first error's code must be one of these; () = any located error
    run: Callable[[], Any]
    source: str  # the test that checks the outcome
    located: bool = True  # the file-size error is about the whole file: it has no line


def outcome(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except SpecError as exc:
        return exc


def load(text: Any, **kw: Any) -> Callable[[], Any]:
    return lambda: specdsl.load(text, **kw)


# The inputs of 100,000 brackets (200 KB and more) are past max_file_bytes, which would refuse them before
# the guards they are here for: as the tests do, they are read with a larger file budget.
BIG_FILES = Budgets(max_file_bytes=10**7)


def cases(tmp: Path) -> list[Case]:
    out: list[Case] = []
    untrusted = "tests/test_untrusted.py"

    big = tmp / "big.yaml"
    big.write_bytes(b"#" * (64 * 1024 * 1024))  # 64 MiB, refused after reading 1 KiB + 1 byte
    out.append(Case("file size budget, 64 MiB file", 0.5, ("E110",),
                    load(big, budgets=Budgets(max_file_bytes=1024)),
                    f"{untrusted}::test_file_size_budget_reads_no_more_than_the_budget", located=False))

    head = "model: m\ninput: [3, 8, 8]\nblocks:\n  b: [{relu: null, repeat: 1000}]\nlayers:\n"
    for label, layer in [
        ("repeat 10^9", "  - relu:\n    repeat: 1000000000\n"),
        ("fractal 40 columns", "  - fractal: {columns: 40, base: [relu]}\n"),
        ("dense n=10^9", "  - dense: {n: 1000000000, growth: 32}\n"),
        ("dense 1.1M concat inputs", "  - dense: {n: 1500, growth: 1, bottleneck: null}\n"),
        ("block repeats 10^6", "  - b:\n    repeat: 1000\n"),
        ("nested repeats 10^9", "  - stage: [{b: null, repeat: 1000}]\n    repeat: 1000\n"),
    ]:
        out.append(Case(f"node budget, {label}", 0.25, ("E330", "E205"), load(head + layer),
                        f"{untrusted}::test_node_budget_is_checked_before_expanding"))

    bomb = alias_bomb(9)
    late = "model: m\ninput: [3]\nlayers: [relu]\nbombs:\n" + "".join(f"  {line}\n" for line in bomb.splitlines())
    inline = "model: m\ninput: [3]\nlayers: [relu, " + ", ".join(["*a"] * 100_000) + "]\n"
    for label, text, budget in [("plain", bomb, 0.05), ("late", late, 0.05), ("inline", inline, 0.5)]:
        out.append(Case(f"alias bomb, {label}", budget, ("E103",), load(text, budgets=BIG_FILES),
                        f"{untrusted}::test_alias_bomb_is_refused_fast"))

    n = 100_000
    for label, text in [
        ("[ ]", "model: m\ninput: [3]\nlayers: " + "[" * n + "]" * n + "\n"),
        ("[ unclosed", "model: m\ninput: [3]\nlayers: " + "[" * n + "\n"),
        ("{a:", "model: m\ninput: [3]\nlayers:\n  - conv: " + "{a: " * n + "\n"),
        ("- - -", "model: m\ninput: [3]\nlayers:\n" + "- " * n + "relu\n"),
    ]:
        out.append(Case(f"100k nested YAML {label}", 1.0, ("E109", "E101"), load(text, budgets=BIG_FILES),
                        f"{untrusted}::test_100k_nested_yaml_collections"))

    for label, text, budget in [
        ("conv((((", "model m\ninput [3]\nlayers {\n    conv(" + "(" * n + "\n}\n", 1.0),
        ("conv([[ ]])", "model m\ninput [3]\nlayers {\n    conv(" + "[" * n + "]" * n + ")\n}\n", 1.0),
        ("residual {", "model m\ninput [3]\nlayers {\n" + "residual {" * n + "\n}\n", 1.0),
        ("input [[[", "model m\ninput " + "[" * n + "\n", 1.0),
        ("linear(----1)", "model m\ninput [3]\nlayers {\n    linear(" + "-" * n + "1)\n}\n", 1.0),
        ("linear(((1)))", "model m\ninput [3]\nlayers {\n    linear(" + "(" * (n // 2) + "1" + ")" * (n // 2)
         + ")\n}\n", 1.0),
        ("linear(1+1+...)", "model m\ninput [3]\nlayers {\n    linear(" + "1+" * n + "1)\n}\n", 3.0),  # 200k tokens
    ]:
        out.append(Case(f"100k nested DSL {label}", budget, ("E409", "E401"), load(text, budgets=BIG_FILES),
                        f"{untrusted}::test_100k_nested_dsl_brackets_and_operators"))

    rest = "".join(f"  b{i}: [relu]\n" for i in range(100_000))
    dup = "model: m\ninput: [3]\nlayers: [relu]\nblocks:\n  b0: [relu]\n  b0: [bn]\n" + rest
    out.append(Case("duplicate key, then 100k more lines", 0.2, ("E102",),
                    load(dup, budgets=Budgets(max_file_bytes=10**8)),
                    f"{untrusted}::test_a_duplicate_key_stops_the_parse_at_once"))

    for label, text in [
        ("YAML 5000 digits", "model: m\ninput: [3, " + "9" * 5000 + "]\nlayers: [relu]\n"),
        ("YAML 0x + 10k digits", "model: m\ninput: [3, 0x" + "f" * 10_000 + "]\nlayers: [relu]\n"),
        ("YAML 0o + 10k digits", "model: m\ninput: [3, 0o" + "7" * 10_000 + "]\nlayers: [relu]\n"),
        ("YAML -30 digits", "model: m\ninput: [3, -" + "9" * 30 + "]\nlayers: [relu]\n"),
        ("YAML 0 + 5000 digits", "model: m\ninput: [3, 0" + "1" * 5000 + "]\nlayers: [relu]\n"),
        ("YAML 2^63", "model: m\ninput: [3, 9223372036854775808]\nlayers: [relu]\n"),
        ("DSL 5000 digits", "model m\ninput [3, " + "9" * 5000 + "]\nlayers {\n    relu\n}\n"),
        ("DSL x5000 digits", "model m\ninput [3]\nlayers {\n    relu x" + "9" * 5000 + "\n}\n"),
        ("DSL -25 digits", "model m\ninput [3]\nlayers {\n    linear(-" + "9" * 25 + ")\n}\n"),
    ]:
        out.append(Case(f"huge integer, {label}", 0.5, ("E112",), load(text),
                        f"{untrusted}::test_huge_integers_are_located_errors"))

    for opener in "([{":
        text = "model m\ninput [3, 8, 8]\nlayers {\n    conv" + opener * n + "\n"
        out.append(Case(f"DSL conv{opener * 3} x100k", 1.0, (), load(text),
                        "tests/test_dsl.py::test_deep_nesting_is_a_clean_error"))
    out.append(Case("YAML input: [[[ x100k, one line", 1.0, ("E109", "E101"),
                    load("model: m\ninput: " + "[" * n + "\n"),
                    "tests/test_dsl.py::test_nested_yaml_brackets_clean_error"))
    return out


def verdict(case: Case, result: Any) -> str | None:
    """None when the outcome is what the tests expect, else what was wrong."""
    if not isinstance(result, SpecError):
        return f"no SpecError ({type(result).__name__})"
    first = result.errors[0] if result.errors else None
    if first is None or (case.located and first.loc is None):
        return "unlocated error"
    if case.codes and first.code not in case.codes:
        return f"{first.code}, expected {'/'.join(case.codes)}"
    return None


# -- worst cases per command at the default budgets (issue 18), each a whole `specdsl` process ----------


def _worst_inputs(tmp: Path) -> dict[str, Path]:
    """The inputs that cost each command most at its default budgets: the largest graph the node budget
    admits, the largest file and token count the text budgets admit, 16 blocks calling each other 4x,
    as many errors as the node budget admits."""
    from specdsl.budgets import DEFAULT, defaults_for

    files: dict[str, Path] = {}

    def write(name: str, text: str) -> None:
        files[name] = tmp / name
        files[name].write_text(text)

    for command in ("check", "build", "diagram"):
        n = defaults_for(command).max_nodes - 2
        write(f"nodes-{command}.yaml", "model: m\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 4, k: 3, pad: 1}\n"
              f"    repeat: {n}\n")
    nested = ["model m", "input [3, 8, 8]", "", "block b16() {\n    relu\n}"]
    nested += [f"block b{k}() {{\n    " + " -> ".join([f"b{k + 1}"] * 4) + "\n}" for k in range(15, 0, -1)]
    write("nested16.cnn", "\n".join([*nested, "layers {\n    b1\n}"]) + "\n")
    tokens = DEFAULT.max_tokens // 2 - 40
    write("tokens.cnn", "model m\ninput [3]\nlayers {\n    linear(" + "1+" * tokens + "1)\n}\n")
    body = "".join(f"  - conv: {{out: 4, k: 3, pad: 1, name: c{i}}}\n" for i in range(100_000))
    head = "model: m\ninput: [3, 8, 8]\nlayers:\n"
    write("bytes.yaml", (head + body)[:DEFAULT.max_file_bytes - 1].rsplit("\n", 1)[0] + "\n")
    write("errors.yaml", head + "".join(f"  - bogus{i}\n" for i in range(DEFAULT.max_nodes - 10)))
    return files


COMMAND_CASES = [  # (command, its arguments with {file} from _worst_inputs and {out} a scratch folder)
    ("check", "check {nodes-check.yaml}"),
    ("check", "check {nested16.cnn}"),
    ("check", "check {tokens.cnn}"),
    ("check", "check {bytes.yaml}"),
    ("check", "check {errors.yaml}"),
    ("build", "build {nodes-build.yaml} -o {out}/m.py"),
    ("diagram", "diagram {nodes-diagram.yaml} -o {out}/m.svg"),
    ("run", "run {nodes-build.yaml} --steps 1 --batch 1"),
    ("diff", "diff {nodes-build.yaml} --batch 1"),
    ("convert", "convert {bytes.yaml} --to dsl -o {out}/m.cnn"),
    ("fmt", "fmt --check {tokens.cnn}"),
]


def command_table(only: str = "") -> list[tuple[str, str, float, float, int]]:
    """(command, input, wall seconds, peak RSS MiB, exit status) per case: a child `python -m specdsl`,
    its peak memory from os.wait4, its output discarded."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = _worst_inputs(Path(tmp))
        for command, line in COMMAND_CASES:
            if only not in line:
                continue
            filled = line.replace("{out}", tmp)
            for name, path in files.items():
                filled = filled.replace("{" + name + "}", str(path))
            argv = filled.split()
            label = line.split("{")[1].split("}")[0]
            start = time.perf_counter()
            with open(os.devnull, "wb") as null:
                child = subprocess.Popen([sys.executable, "-m", "specdsl", *argv], stdout=null, stderr=null)
                _, status, usage = os.wait4(child.pid, 0)
            wall = time.perf_counter() - start
            rows.append((command, label, wall, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)))
    return rows


def command_main(only: str, check: bool) -> int:
    load_avg = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"{os.cpu_count()} cores; load average {', '.join(f'{x:.2f}' for x in load_avg) if load_avg else 'n/a'}; "
          "whole `specdsl` processes at the default budgets")
    print(f"{'command':<8} {'worst input':<20} {'wall':>7} {'peak RSS':>10}  exit")
    bad = 0
    for command, label, wall, rss, code in command_table(only):
        over = command == "check" and (wall > 2.0 or rss > 1024)
        bad += over or code not in (0, 1)
        print(f"{command:<8} {label:<20} {wall:6.2f}s {rss:7.0f}MiB  {code}" + ("  OVER" if over else ""))
    return 1 if (check and bad) else 0


# -- issue 30: the new surfaces (weights, expressions, ONNX, sweeps, diagrams), whole processes ------------

SURFACE_BUDGETS = {"check": (2.0, 300), "lsp": (2.0, 300), "diff": (15.0, 600), "export": (15.0, 600),
                   "build": (15.0, 600), "sweep": (5.0, 300), "diagram": (10.0, 300)}  # (s, MiB)


def _surface_inputs(tmp: Path) -> dict[str, str]:
    import io
    import zipfile

    import numpy as np

    (tmp / "round.cnn").write_text("model m\ninput [3, 8, 8]\nlayers {\n  conv(round(4, -1000000000000), k=1)\n}\n")
    (tmp / "digits.yaml").write_text("model: m\ninput: [3, 8, 8]\nblocks:\n  b:\n    params: {c: int}\n    layers:\n"
                                     f"      - conv: {{out: \"c + {'9' * 5001}\", k: 1}}\nlayers:\n  - relu\n")
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "<f4", "fortran_order": False, "shape": (3 * 10**8,)})
    with zipfile.ZipFile(tmp / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as z, \
            z.open("c1.weight.npy", "w", force_zip64=True) as f:
        f.write(head.getvalue())
        for _ in range(72):
            f.write(bytes(1 << 24))
    # In a child: the parent's peak memory would be inherited by every case's process (fork, then exec).
    subprocess.run([sys.executable, "-c", "import numpy as np, sys; from safetensors.numpy import save_file; "
                    "save_file({f't{i}': np.zeros((0,), np.float32) for i in range(300_000)}, sys.argv[1])",
                    str(tmp / "empties.safetensors")], check=True)
    os.mkfifo(tmp / "fifo")
    (tmp / "two.cnn").write_text("model two\ninput [3, 8, 8]\nlayers {\n  conv(4, k=1) as a\n  relu as b\n}\n"
                                 "outputs(input=@a, relu=@b)\n")
    (tmp / "big.cnn").write_text("model big(n=9000)\ninput [4, 8, 8]\nlayers {\n  conv(4, k=1) x(n)\n}\n")
    (tmp / "flat.cnn").write_text("model flat\ninput [3, 8, 8]\nlayers {\n" + "".join(
        "  conv(4, k=1)\n" if i % 2 == 0 else "  relu\n" for i in range(2_990)) + "}\n")
    return {"tmp": str(tmp)}


SURFACE_CASES = [  # (command, label, arguments; {tmp} is the scratch folder), expected exit status
    ("check", "round(4, -10**12)", "check {tmp}/round.cnn", 1),
    ("check", "5,001-digit literal", "check {tmp}/digits.yaml", 0),
    ("diff", "1 MB deflate bomb", "diff lenet5 --weights {tmp}/bomb.npz", 1),
    ("diff", "FIFO as --weights", "diff lenet5 --weights {tmp}/fifo", 1),
    ("diff", "300,000 empty tensors", "diff lenet5 --weights {tmp}/empties.safetensors", 1),
    ("build", "300,000 empty tensors", "build lenet5 --weights {tmp}/empties.safetensors -o {tmp}/e.py", 1),
    ("diff", "/dev/zero --weights", "diff lenet5 --weights /dev/zero", 1),
    ("export", "FIFO as --weights", "export lenet5 --weights {tmp}/fifo -o {tmp}/m.onnx", 1),
    ("export", "--batch 10**12", "export lenet5 --batch 1000000000000 --verify -o {tmp}/m.onnx", 2),
    ("export", "--opset 1", "export lenet5 --opset 1 -o {tmp}/m.onnx", 2),
    ("export", "outputs(input=, relu=)", "export {tmp}/two.cnn -o {tmp}/two.onnx", 0),
    ("build", "-o its own spec (link)", "build {tmp}/two.cnn -o {tmp}/link.py", 2),
    ("sweep", "1,000 points x 9,000 nodes", "sweep {tmp}/big.cnn --param n=9000..9999", 1),
    ("diagram", "2,990 boxes, svg", "diagram {tmp}/flat.cnn -o {tmp}/flat.svg", 0),
]


def _lsp_cases(tmp: Path) -> list[tuple[str, float, int | None]]:
    """(label, seconds, error code or None) per request to one `specdsl lsp` process; then its peak RSS."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from test_lsp_untrusted import Raw, _pos

    client = Raw()
    rows: list[tuple[str, float, int | None]] = []

    def timed(label: str, method: str, params: Any) -> None:
        start = time.perf_counter()
        answer = client.request(method, params, 30) or {}
        rows.append((label, time.perf_counter() - start, answer.get("error", {}).get("code")))

    try:
        timed("before initialize (+ start)", "textDocument/hover", _pos(0, 0))
        client.initialize()
        line = "  " + "a" * 30_000 + "!("
        client.open("file:///w/a.cnn", f"model m\ninput [3, 8, 8]\nlayers {{\n{line}\n}}\n")
        timed("completion, 30 KB line", "textDocument/completion", _pos(3, len(line)))
        timed("hover, line -1", "textDocument/hover", _pos(-1, 0))
        timed("definition file:///dev/zero", "textDocument/definition", _pos(0, 0, "file:///dev/zero"))
        os.mkfifo(tmp / "lsp-fifo.cnn")
        timed("completion on a FIFO's URI", "textDocument/completion", _pos(0, 0, f"file://{tmp}/lsp-fifo.cnn"))
        start = time.perf_counter()
        client.open("file:///w/big.cnn", "model m\ninput [4, 8, 8]\nlayers {\n  conv(4, k=1) x100000\n}\n")
        client.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics"
                    and m["params"]["uri"] == "file:///w/big.cnn", 30)
        rows.append(("100,000-node document", time.perf_counter() - start, None))
        with open(f"/proc/{client.proc.pid}/status") as fh:
            peak = next(int(x.split()[1]) / 1024 for x in fh if x.startswith("VmHWM"))
        rows.append(("server peak RSS (MiB)", peak, None))
    finally:
        client.close()
    return rows


def surfaces_main(check: bool) -> int:
    load_avg = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"{os.cpu_count()} cores; load average {', '.join(f'{x:.2f}' for x in load_avg) if load_avg else 'n/a'}; "
          "issue 30's surfaces, whole `specdsl` processes")
    print(f"{'command':<8} {'input':<28} {'wall':>7} {'peak RSS':>9}  exit  budget")
    bad = 0
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        _surface_inputs(tmp)
        os.symlink(tmp / "two.cnn", tmp / "link.py")
        for command, label, line, expected in SURFACE_CASES:
            argv = line.replace("{tmp}", folder).split()
            start = time.perf_counter()
            with open(os.devnull, "wb") as null:
                child = subprocess.Popen([sys.executable, "-m", "specdsl", *argv], stdout=null, stderr=null)
                _, status, usage = os.wait4(child.pid, 0)
            wall, rss, code = time.perf_counter() - start, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)
            limit_s, limit_mib = SURFACE_BUDGETS[command]
            over = wall > limit_s or rss > limit_mib or code != expected
            bad += over
            print(f"{command:<8} {label:<28} {wall:6.2f}s {rss:6.0f}MiB  {code:>4}  {limit_s:g} s, {limit_mib} MiB"
                  + ("  OVER/WRONG" if over else ""))
        for label, value, err in _lsp_cases(tmp):
            peak = label.startswith("server peak")
            over = value > (300 if peak else 2.0)
            bad += over
            shown = f"{value:6.0f}MiB" if peak else f"{value:6.2f}s" + (f"  error {err}" if err else "")
            print(f"{'lsp':<8} {label:<28} {shown}" + ("  OVER" if over else ""))
    return 1 if (check and bad) else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="runs per case (the best is compared; default 5)")
    ap.add_argument("--check", action="store_true", help="exit 1 when a case is over budget or wrong")
    ap.add_argument("-k", dest="only", default="", help="only the cases whose name contains this")
    ap.add_argument("--commands", action="store_true",
                    help="instead: the worst case of each command at its default budgets (whole processes, "
                         "time and peak memory; `check` must stay within 2 s and 1 GiB)")
    ap.add_argument("--surfaces", action="store_true",
                    help="instead: issue 30's surfaces (weights, expressions, ONNX, sweeps, diagrams, the language "
                         "server), whole processes, time and peak memory against each command's budget")
    args = ap.parse_args(argv)
    if args.surfaces:
        return surfaces_main(args.check)
    if args.commands:
        return command_main(args.only, args.check)

    load_avg = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"specdsl {specdsl.__version__} from {Path(specdsl.__file__).parent}; Python {platform.python_version()}; "
          f"{os.cpu_count()} cores; load average {', '.join(f'{x:.2f}' for x in load_avg) if load_avg else 'n/a'}")
    specdsl.load("model: m\ninput: [3, 8, 8]\nlayers: [relu]\n")  # warm imports
    specdsl.load("model m\ninput [3, 8, 8]\nlayers {\n    relu\n}\n")

    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        selected = [c for c in cases(Path(tmp)) if args.only in c.name]
        width = max((len(c.name) for c in selected), default=10)
        print(f"{'case':<{width}}  {'outcome':<8} {'best':>9} {'median':>9} {'budget':>8}  status")
        for case in selected:
            times, result = [], None
            for _ in range(args.runs):
                start = time.perf_counter()
                result = outcome(case.run)
                times.append(time.perf_counter() - start)
            best, median = min(times), statistics.median(times)
            wrong = verdict(case, result)
            status = "WRONG: " + wrong if wrong else ("OK" if best <= case.budget_s else "OVER BUDGET")
            bad += status != "OK"
            code = result.errors[0].code if isinstance(result, SpecError) and result.errors else "-"
            print(f"{case.name:<{width}}  {code:<8} {best * 1e3:7.1f}ms {median * 1e3:7.1f}ms "
                  f"{case.budget_s * 1e3:6.0f}ms  {status}")
    print(f"\n{len(selected)} cases, {bad} over budget or wrong; best of {args.runs} runs each, in process")
    return 1 if (args.check and bad) else 0


if __name__ == "__main__":
    sys.exit(main())

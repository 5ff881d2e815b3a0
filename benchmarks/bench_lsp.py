"""`specdsl lsp` latency and memory: diagnostics after an edit of the resnet152 spec, over 1,000 edits.

Starts the real server (`python -m specdsl lsp`, stdio) with a pytest-lsp client, opens the zoo's
resnet152.yaml, then makes --edits incremental edits, each the change of one number (`repeat: 35`
<-> `repeat: 36` in layer3, so every edit re-runs the whole pipeline: 515 and 518 nodes) after a
pause longer than the server's debounce, as a user makes an edit and looks. For each edit it
times from sending didChange to receiving that version's publishDiagnostics, and reads the
server's resident memory (VmRSS, /proc) after the warm-up, at the middle and at the end.
A burst of 20 edits sent back to back checks the debounce (fewer analyses than edits; the last
version's diagnostics still arrive). Also prints the in-process cost of one analysis.

Targets: median and p95 latency <= 100 ms; RSS growth from edit 100 to the last edit <= 10 MiB.
`--check` exits 1 when a target is missed.

    .venv/bin/python benchmarks/bench_lsp.py [--edits 1000] [--check]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from lsprotocol import types as T
from pytest_lsp import ClientServerConfig

# ResNet-152 written out as one YAML spec (the zoo holds it as a variant of the resnet family).
SPEC = Path(__file__).with_name("resnet152.yaml")
TARGET_MS = 100.0
TARGET_GROWTH_MIB = 10.0
PAUSE_S = 0.08  # longer than the server's debounce (specdsl.lsp.server.DEBOUNCE_S)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def wait_version(client, uri: str, version: int) -> list[T.Diagnostic]:
    while True:
        params = await client.wait_for_notification(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        if params.uri == uri and params.version == version:
            return list(params.diagnostics)


async def run(edits: int) -> dict[str, float]:
    config = ClientServerConfig(server_command=[sys.executable, "-m", "specdsl", "lsp"])
    client = await config.start()
    await client.initialize_session(T.InitializeParams(capabilities=T.ClientCapabilities()))
    pid = client._server.pid
    text = SPEC.read_text()
    lines = text.split("\n")
    row = next(i for i, line in enumerate(lines) if line.strip() == "repeat: 35")
    col = lines[row].index("35")
    uri = "file:///bench/resnet152.yaml"
    client.text_document_did_open(T.DidOpenTextDocumentParams(T.TextDocumentItem(uri, "yaml", 1, text)))
    await wait_version(client, uri, 1)

    def change(version: int, value: str) -> None:
        client.text_document_did_change(T.DidChangeTextDocumentParams(
            T.VersionedTextDocumentIdentifier(uri=uri, version=version),
            [T.TextDocumentContentChangePartial(range=T.Range(T.Position(row, col), T.Position(row, col + 2)),
                                                text=value)]))

    latencies: list[float] = []
    rss: dict[str, float] = {"open": rss_mib(pid)}
    version = 1
    for i in range(edits):
        version += 1
        await asyncio.sleep(PAUSE_S)
        start = time.perf_counter()
        change(version, "36" if i % 2 == 0 else "35")
        diagnostics = await wait_version(client, uri, version)
        latencies.append((time.perf_counter() - start) * 1000)
        assert diagnostics == [], diagnostics
        if i + 1 == min(100, edits):
            rss["after 100 edits"] = rss_mib(pid)
        if i + 1 == edits // 2:
            rss["middle"] = rss_mib(pid)
    rss["end"] = rss_mib(pid)

    # A burst: 20 edits back to back, then the last one's diagnostics.
    await asyncio.sleep(PAUSE_S)
    start = time.perf_counter()
    for i in range(20):
        version += 1
        change(version, "36" if i % 2 == 0 else "35")
    await wait_version(client, uri, version)
    burst_ms = (time.perf_counter() - start) * 1000

    await client.shutdown_session()
    await client.stop()
    latencies.sort()
    return {
        "median": statistics.median(latencies), "p95": latencies[int(0.95 * (len(latencies) - 1))],
        "max": latencies[-1], "burst": burst_ms, **{f"rss {k}": v for k, v in rss.items()},
    }


def in_process_ms(runs: int = 20) -> float:
    from specdsl.lsp.analysis import analyse

    text = SPEC.read_text()
    analyse(text, "resnet152.yaml")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        analyse(text, "resnet152.yaml")
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--edits", type=int, default=1000)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"in-process analysis of resnet152.yaml (median of 20): {in_process_ms():.1f} ms")
    r = asyncio.run(run(args.edits))
    growth = r["rss end"] - r.get("rss after 100 edits", r["rss end"])
    ok_latency = r["median"] <= TARGET_MS and r["p95"] <= TARGET_MS
    ok_memory = growth <= TARGET_GROWTH_MIB
    print(f"edit -> diagnostics over {args.edits} edits: median {r['median']:.1f} ms, p95 {r['p95']:.1f} ms, "
          f"max {r['max']:.1f} ms  [{'ok' if ok_latency else 'MISSED'}: target <= {TARGET_MS:.0f} ms]")
    print(f"burst of 20 edits back to back -> last version's diagnostics: {r['burst']:.1f} ms")
    print("server RSS: " + ", ".join(f"{k.removeprefix('rss ')} {v:.1f} MiB" for k, v in r.items()
                                     if k.startswith("rss ")))
    print(f"RSS growth from edit 100 to edit {args.edits}: {growth:+.1f} MiB  "
          f"[{'ok' if ok_memory else 'MISSED'}: target <= {TARGET_GROWTH_MIB:.0f} MiB]")
    return 1 if args.check and not (ok_latency and ok_memory) else 0


if __name__ == "__main__":
    sys.exit(main())

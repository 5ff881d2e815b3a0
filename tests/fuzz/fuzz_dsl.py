"""atheris target: the DSL front end (specdsl.frontend.dsl.load_dsl) on arbitrary bytes.

Not collected by pytest (no ``test_`` prefix). Long run, from the repository root:

    .venv/bin/python -m pip install atheris
    .venv/bin/python tests/fuzz/mutate.py --corpus /tmp/corpus_dsl --only .cnn
    .venv/bin/python tests/fuzz/fuzz_dsl.py /tmp/corpus_dsl -max_total_time=3600 -rss_limit_mb=2048

A crash is any exception other than SpecError, or a SpecError with an unlocated error;
the formatter (`specdsl fmt`) runs on every text the front end accepts.
"""

from __future__ import annotations

import os
import sys

import atheris

with atheris.instrument_imports(include=["specdsl"]):
    from specdsl.errors import SpecError
    from specdsl.frontend.dsl import parse_dsl
    from specdsl.render.printer import to_dsl

# `specdsl fmt` prints unvalidated data and is known to raise on some (reported); set
# SPECDSL_FUZZ_FMT=0 to fuzz the front end alone.
FMT = os.environ.get("SPECDSL_FUZZ_FMT", "1") != "0"


def TestOneInput(data: bytes) -> None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    try:
        parsed = parse_dsl(text, "fuzz.cnn")
    except SpecError as exc:
        for d in exc.errors:
            if d.loc is None:
                raise AssertionError(f"unlocated {d.code}: {d.message}") from None
        exc.render(full=True)
        return
    if FMT:
        to_dsl(parsed.data, parsed.smap, parsed.comments)


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()

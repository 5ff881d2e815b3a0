"""atheris target: the YAML front end (specdsl.frontend.yaml.load_yaml) on arbitrary bytes.

Not collected by pytest (no ``test_`` prefix). Long run, from the repository root:

    .venv/bin/python -m pip install atheris
    .venv/bin/python tests/fuzz/mutate.py --corpus /tmp/corpus_yaml --only .yaml
    .venv/bin/python tests/fuzz/fuzz_yaml.py /tmp/corpus_yaml -max_total_time=3600 -rss_limit_mb=2048

A crash is any exception other than SpecError, or a SpecError with an unlocated error.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["specdsl"]):
    from specdsl.errors import SpecError
    from specdsl.frontend.yaml import load_yaml


def TestOneInput(data: bytes) -> None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return  # files are decoded (and refused, located) before the front end sees them
    try:
        load_yaml(text, "fuzz.yaml")
    except SpecError as exc:
        for d in exc.errors:
            if d.loc is None:
                raise AssertionError(f"unlocated {d.code}: {d.message}") from None
        exc.render(full=True)


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()

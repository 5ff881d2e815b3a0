"""Run mypy over specdsl/ and backends/, checking backends/ as the package it installs as.

    python scripts/typecheck.py [MYPY ARGS...]     (scripts/test.sh runs it; config: [tool.mypy])

Why not plain `mypy`: the top-level backends/ folder is installed as `specdsl.backends` (a
package-dir mapping in pyproject.toml), and a checkout resolves it at run time through
`__path__`. mypy names a file's module after its folders, so it would check backends/torch/fx.py
as `backends.torch.fx` and fail to find `specdsl.backends.torch.fx` wherever it is imported. This
runs mypy's own option parsing and build, renaming those sources to `specdsl.backends.*` first, so
every import resolves to the checked file and errors still name the real paths. It uses
`mypy.main.process_options` and `run_build`, which are not a documented API: mypy is pinned in
constraints.txt, and the pin decides which version this is tested with.
"""

from __future__ import annotations

import sys
import time

from mypy import util
from mypy.fscache import FileSystemCache
from mypy.main import process_options, run_build
from mypy.modulefinder import BuildSource

PACKAGE = "specdsl.backends"  # what the top-level folder below installs as
FOLDER = "backends"


def installed_names(sources: list[BuildSource]) -> list[BuildSource]:
    """Sources with backends.* renamed to specdsl.backends.*.

    A checkout's own `specdsl.backends` (the `__path__` redirect in specdsl/backends/) wins over
    the top-level folder's __init__.py, as it does at run time: both cannot be one module."""
    have_redirect = any(s.module == PACKAGE for s in sources)
    out = []
    for source in sources:
        if source.module == FOLDER or source.module.startswith(FOLDER + "."):
            if source.module == FOLDER and have_redirect:
                continue
            source.module = f"specdsl.{source.module}"
        out.append(source)
    return out


def main(argv: list[str]) -> int:
    start = time.time()
    fscache = FileSystemCache()
    sources, options = process_options(argv, stdout=sys.stdout, stderr=sys.stderr, fscache=fscache)
    sources = installed_names(sources)
    _, messages, blockers = run_build(sources, options, fscache, start, sys.stdout, sys.stderr)
    n_errors, _, n_files = util.count_stats(messages)
    formatter = util.FancyFormatter(sys.stdout, sys.stderr, options.hide_error_codes)
    if n_errors:
        color = options.color_output
        print(formatter.format_error(n_errors, n_files, len(sources), blockers=blockers, use_color=color))
        return 2 if blockers else 1
    print(formatter.format_success(len(sources), options.color_output))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

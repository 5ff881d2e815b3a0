"""The language server (`specdsl lsp`): live diagnostics, shapes, hover and completion in editors.

Modules: analysis (the check pipeline, keeping each stage's result), index (layers as written
-> graph nodes), features (hover, inlay hints, definitions, symbols), complete, names (tokens
at the cursor), convert (to protocol types and the position encodings), fmt, upstream (figures
before the first error), jobs (analyses in threads), server (the pygls server and its scheduling),
handlers (the protocol's features). Importing this package imports none of them: `register`
adds the subcommand, and pygls is imported only when the server starts.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    try:
        import pygls  # noqa: F401
    except ImportError:
        import sys

        print("specdsl lsp: the language server needs pygls: pip install 'specdsl[lsp]'", file=sys.stderr)
        return 2
    from specdsl.lsp.handlers import main

    return main()


def register(sub: Any) -> None:
    lsp = sub.add_parser("lsp", help="run the language server over stdio (for editors)",
                         description="A Language Server Protocol server over stdio for .cnn and spec .yaml files.")
    lsp.add_argument("--stdio", action="store_true", help="accepted for editors that pass it; stdio is the default")
    lsp.set_defaults(func=_run)

"""The error catalogue: every diagnostic code specdsl raises, with what it means and how to fix it.

One table, one place: ``specdsl explain CODE`` prints an entry, as ``rustc --explain`` does, and
tests/test_catalog.py checks the table against the source both ways (every raised code has an
entry, every entry is raised) and runs each example spec through :func:`specdsl.load` to see
that it really produces its code. Pure data: importing this package imports nothing else of
specdsl, and never torch.

Ranges: E0xx internal, E1xx reading a file (YAML, sizes, encodings), E2xx the schema (keys and
value types), E3xx building and checking the graph (op rules, blocks, names, budgets, model
parameters), E4xx the DSL's syntax and tools that rewrite text, E5xx checkpoints and the torch
backend; Wxxx are warnings, numbered after the stage that finds them.
"""

from __future__ import annotations

from specdsl.catalog.entry import Entry


def _collect() -> dict[str, Entry]:
    from specdsl.catalog import e000, e200, e300_graph, e300_ops, e390, e400, e500, warnings

    table: dict[str, Entry] = {}
    for module in (e000, e200, e300_ops, e300_graph, e390, e400, e500, warnings):
        for entry in module.ENTRIES:
            if entry.code in table:
                raise AssertionError(f"{entry.code} is catalogued twice")  # a data bug, caught by the tests
            table[entry.code] = entry
    return dict(sorted(table.items()))


_TABLE: dict[str, Entry] | None = None


def entries() -> dict[str, Entry]:
    """Every catalogued code, in order (E before W, then by number)."""
    global _TABLE
    if _TABLE is None:
        _TABLE = _collect()
    return _TABLE


def lookup(code: str) -> Entry | None:
    """The entry for a code, written in either case (``e303`` finds E303); None when there is none."""
    return entries().get(code.strip().upper())


def closest(code: str) -> str | None:
    """The catalogued code nearest to a mistyped one (``E3O3`` -> E303, ``303`` -> E303), or None."""
    import difflib

    # Letters typed for the digits they look like, then one character off at most.
    wanted = code.strip().upper()
    wanted = wanted[:1] + wanted[1:].translate(str.maketrans("OILS", "0115"))
    if wanted in entries():
        return wanted
    found = difflib.get_close_matches(wanted, list(entries()), n=1, cutoff=0.75)
    return found[0] if found else None

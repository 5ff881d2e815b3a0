"""Write grammars/specdsl.tables.json, the DSL's LALR tables, from grammars/specdsl.lark.

Run it after changing the grammar or upgrading lark (tests/test_dsl.py fails until you do):

    .venv/bin/python scripts/build_parser_tables.py

lark numbers the parser states in the order of sets of objects, so two runs write different files
that parse alike (tests/test_dsl.py compares the parses). Without fresh tables specdsl still works:
it builds the parser from the grammar on every start, about 0.1 s slower.
"""

from __future__ import annotations

from pathlib import Path

from specdsl.atomic import replace_file
from specdsl.frontend.dsl_parser import TABLES_FILE, build_parser, serialize_tables

TARGET = Path(__file__).resolve().parents[1] / "grammars" / TABLES_FILE


def main() -> None:
    replace_file(TARGET, serialize_tables(build_parser()).encode("utf-8"))
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()

from specdsl.cli import entry

entry()

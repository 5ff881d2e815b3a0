from specdsl.cli.main import entry

entry()

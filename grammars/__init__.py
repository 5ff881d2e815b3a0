"""Grammar files for the text DSL (installed as specdsl.grammars)."""

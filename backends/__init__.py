"""Lowerings of the graph IR to runnable code (installed as specdsl.backends)."""

"""Expansion: built-in and user-defined blocks become primitive ops in the graph."""

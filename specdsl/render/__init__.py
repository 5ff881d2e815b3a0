"""Renderers: the table, JSON, DOT diagrams and the spec printers."""

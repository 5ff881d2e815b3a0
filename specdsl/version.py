"""The package version, in a module of its own so that any layer can read it without importing the
package facade (specdsl/__init__.py imports the API and, lazily, the backends)."""

__version__ = "0.1.0"

"""``specdsl.backends`` in a plain checkout: the lowerings live in the top-level ``backends/`` folder.

An installed specdsl (wheel or editable) maps ``specdsl.backends`` onto that folder with
setuptools' package-dir, and this file is not part of the wheel. From a checkout with only
``PYTHONPATH=.``, Python finds this package first; pointing its ``__path__`` at ``backends/``
makes ``specdsl.backends.torch`` and friends resolve to the very same files, so tracebacks,
tools and the tables' missing-entry errors all name real paths.
"""

from pathlib import Path

__path__ = [str(Path(__file__).resolve().parents[2] / "backends")]

"""The bundled model zoo: spec files, shipped as package data."""

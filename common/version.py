"""Frelon's version: the one place it is written (pyproject.toml reads it from here; `frelon info`,
model.json and the package's `frelon.__version__` show it)."""
__version__ = "0.1.0"

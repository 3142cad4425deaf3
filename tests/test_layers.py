"""The layers of docs/ARCHITECTURE.md, read from every import in the source: common/ (stdlib only)
at the bottom, engine/ and gui/ on it and never on each other, frelon/ (the command line) on top;
no module imports another module's private name."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# folder → (its import name, the Frelon layers it may import)
LAYERS = {"common": ("frelon.common", {"frelon.common"}),
          "engine": ("frelon.engine", {"frelon.common", "frelon.engine"}),
          "gui": ("frelon.gui", {"frelon.common", "frelon.gui"}),
          "frelon": ("frelon", {"frelon.common", "frelon.engine", "frelon.gui", "frelon"})}
THIRD_PARTY = {"common": set(), "gui": {"PySide6", "pyqtgraph", "numpy", "psutil"}}   # besides the stdlib


def _module_name(path: Path, folder: str) -> str:
    parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([LAYERS[folder][0], *parts])


def _imports(path: Path, folder: str):
    """(line, absolute module imported, names taken from it) for every import in the file."""
    here = _module_name(path, folder).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            yield node.lineno, base, [a.name for a in node.names]


def _layer(module: str) -> str | None:
    """The layer a Frelon module belongs to (the package `frelon` itself is the top layer: its
    version lives in common/version.py); None for modules outside Frelon."""
    for name in ("frelon.common", "frelon.engine", "frelon.gui"):
        if module == name or module.startswith(name + "."):
            return name
    return "frelon" if module == "frelon" or module.startswith("frelon.") else None


def _sources(folder: str):
    return [p for p in sorted((REPO / folder).rglob("*.py")) if "assets" not in p.parts]


@pytest.mark.parametrize("folder", sorted(LAYERS))
def test_each_layer_imports_only_its_own_and_those_below(folder):
    allowed = LAYERS[folder][1]
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    wrong = []
    for path in _sources(folder):
        for line, module, names in _imports(path, folder):
            where = f"{path.relative_to(REPO)}:{line} imports {module}"
            layer = _layer(module)
            if layer is not None and layer not in allowed:
                wrong.append(where)
            elif layer is None and folder in THIRD_PARTY:
                top = module.split(".")[0]
                if top not in stdlib and top not in THIRD_PARTY[folder]:
                    wrong.append(where)
            if layer is not None and module != _module_name(path, folder):
                wrong += [f"{where}: private name {n}" for n in names if n.startswith("_") and n != "__version__"]
    assert not wrong, "\n".join(wrong)

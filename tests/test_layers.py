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


def _source_of(module: str) -> Path | None:
    """The file of a Frelon module (`frelon.engine.x` → engine/x.py or engine/x/__init__.py)."""
    for folder, (name, _) in LAYERS.items():
        if module == name or module.startswith(name + "."):
            rel = module[len(name):].lstrip(".").replace(".", "/")
            base = REPO / folder / rel if rel else REPO / folder
            for candidate in (base.with_suffix(".py") if rel else None, base / "__init__.py"):
                if candidate is not None and candidate.is_file():
                    return candidate
    return None


def _top_level_names(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    if "__getattr__" in names:            # a lazy name (PEP 562) is declared in __all__
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
                names |= {e.value for e in node.value.elts if isinstance(e, ast.Constant)}
    return names


def test_every_frelon_import_names_a_module_or_name_that_exists():
    """Lazy imports too (inside functions): a module moved or a name renamed leaves none behind that
    only fails when a user reaches that code."""
    wrong = []
    for folder in LAYERS:
        for path in _sources(folder):
            for line, module, names in _imports(path, folder):
                if _layer(module) is None:
                    continue
                source = _source_of(module)
                where = f"{path.relative_to(REPO)}:{line}"
                if source is None:
                    wrong.append(f"{where}: no module {module}")
                    continue
                defined = _top_level_names(source)
                wrong += [f"{where}: {module} has no {n}" for n in names
                          if n != "*" and n not in defined and _source_of(f"{module}.{n}") is None]
    assert not wrong, "\n".join(wrong)

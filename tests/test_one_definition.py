"""The run folder is a contract with one module (common/run_folder.py): its file names are spelled
there and nowhere else in Frelon's code (docstrings, comments and messages may name them)."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NAMES = ("config.json", "events.jsonl", "model.json", "last.safetensors", "best.safetensors", "timelapse.json",
         "pr_curves.json", "data_fixes.json", "val.json")
HOME = REPO / "common" / "run_folder.py"


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def spelled(path: Path) -> list[tuple[int, str]]:
    """(line, name) of every run-folder file name in a string of the module's code."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip \
                and " " not in node.value:           # a path, not a sentence that names the file
            found += [(node.lineno, n) for n in NAMES if n in node.value]
    return found


def test_the_run_folder_s_file_names_are_spelled_once():
    assert spelled(HOME), "the run folder's names moved: update this test"
    elsewhere = {}
    for folder in ("common", "engine", "gui", "frelon"):
        for path in (REPO / folder).rglob("*.py"):
            if path != HOME and "assets" not in path.parts:
                hits = spelled(path)
                if hits:
                    elsewhere[str(path.relative_to(REPO))] = hits
    assert not elsewhere, f"run folder file names spelled outside common/run_folder.py: {elsewhere}"


def test_the_check_finds_a_name_spelled_in_code(tmp_path):
    """The oracle works: a name in code is found, the same name in a docstring is not."""
    p = tmp_path / "m.py"
    p.write_text('"""writes model.json"""\nPATH = "run/model.json"\nSAY = "no model.json here"\n')
    assert spelled(p) == [(2, "model.json")]

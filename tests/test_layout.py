"""Only the store knows the index directory's file names: every other module asks `layout`.

The scan reads string literals (f-string parts included) through `ast`; comments and docstrings
may name files for people, so they are not scanned.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from indexer.store import layout

ROOT = Path(__file__).resolve().parent.parent
STORE = ROOT / "indexer" / "store"
# Built from the layout itself, so this file holds none of the names it looks for.
_VECTOR = layout.vector_file(".", 0).name.replace("0", "{}")
_PREFIX, _SUFFIX = _VECTOR.split("{}")
FORBIDDEN = re.compile("|".join(
    [re.escape(name) for name in (layout.DB_FILE, layout.MANIFEST_FILE, layout.LOCK_FILE, layout.LEXICAL_STATE_FILE)]
    + [re.escape(_PREFIX) + r"\S*" + re.escape(_SUFFIX), re.escape(_SUFFIX) + r"\b"]))


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _strings(tree: ast.AST):
    """(line, text) of each string literal; an f-string as its literal parts with {} between."""
    skip = _docstrings(tree)
    inner = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = []
            for value in node.values:
                if isinstance(value, ast.Constant):
                    inner.add(id(value))
                    parts.append(str(value.value))
                else:
                    parts.append("{}")
            yield node.lineno, "".join(parts)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip | inner:
            yield node.lineno, node.value


def literal_file_names(path: Path, root: Path = ROOT) -> list[str]:
    """'file:line: text' for each string literal in `path` that spells an index file name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [f"{path.relative_to(root)}:{line}: {text!r}" for line, text in _strings(tree) if FORBIDDEN.search(text)]


def test_no_module_outside_the_store_spells_an_index_file_name():
    sources = [p for p in ROOT.rglob("*.py") if STORE not in p.parents
               and not any(part.startswith(".") or part in ("build", "dist") for part in p.relative_to(ROOT).parts)]
    assert len(sources) > 30  # the scan really found the project
    found = [hit for path in sources for hit in literal_file_names(path)]
    assert found == [], "ask indexer.store.layout instead of spelling these:\n" + "\n".join(found)


def test_the_scan_catches_each_way_of_spelling_a_name(tmp_path):
    sample = tmp_path / "sample.py"
    vector_name = layout.vector_file(".", 3).name
    lines = [f"A = {layout.DB_FILE!r}", f"B = {layout.LOCK_FILE!r}", f"C = {layout.MANIFEST_FILE!r}",
             "D = f'" + _PREFIX + "{generation}" + _SUFFIX + "'", f"E = {'*'.join([_PREFIX, _SUFFIX])!r}",
             f"F = {vector_name!r}", f"def f():\n    x = 1\n    return {layout.DB_FILE!r}"]
    sample.write_text("\n".join(lines) + "\n")
    found = [hit.split(":")[1] for hit in literal_file_names(sample, tmp_path)]
    assert found == ["1", "2", "3", "4", "5", "6", "9"]


def test_a_docstring_or_comment_may_name_a_file(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(f'"""Reads {layout.DB_FILE}."""\n# and {layout.MANIFEST_FILE}\n'
                      f'def f():\n    """Writes {layout.LOCK_FILE}."""\n')
    assert literal_file_names(sample, tmp_path) == []


def test_the_complete_layout_lives_in_the_index_directory(tmp_path):
    parts = layout.complete_layout(tmp_path, generation=4, fingerprint="abc")
    assert {"database", "vectors", "lexical index", "manifest", "write lock", "onnx export"} <= set(parts)
    assert all(tmp_path in path.parents for path in parts.values())
    assert len({str(p) for p in parts.values()}) == len(parts)  # no two roles share a name
    assert layout.is_vector_file(parts["vectors"]) and not layout.is_vector_file(parts["database"])

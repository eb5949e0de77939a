"""The docs name the tests that prove each claim (``file.py::test_name``, and ``::other``
for another test of the same file): every one of them must exist, or the claim is
unproven."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = sorted((REPO / "docs").glob("*.md")) + [REPO / "README.md"]
#: ``file.py::name``, ``::name`` (same file as before), ``name_*`` (every test so named),
#: ``file.py::…[id]`` (a parametrized case named elsewhere in the row: sets the file).
REFERENCE = re.compile(r"`((?:[\w/]+\.py)?)::(\w+\*?|…)")


def defined_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def references(doc: Path) -> list[tuple[str, str]]:
    found, current = [], ""
    for file, name in REFERENCE.findall(doc.read_text()):
        current = file or current
        if name != "…":
            found.append((current, name))
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_test_a_doc_names_exists(doc: Path) -> None:
    missing = []
    for file, name in references(doc):
        path = REPO / "tests" / file
        if not file or not path.is_file() or not any(
                defined == name or name.endswith("*") and defined.startswith(name[:-1])
                for defined in defined_functions(path)):
            missing.append(f"{file}::{name}")
    assert not missing, f"{doc.name} names tests that do not exist: {missing}"


def test_the_reliability_doc_names_tests_at_all() -> None:
    assert len(references(REPO / "docs" / "reliability.md")) > 40

"""Test modules share through helper modules (tests/<noun>.py) and conftest.py, never by importing each other."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def is_test_module(name: str) -> bool:
    return any(part.startswith("test_") for part in name.split("."))


def imported_test_modules(source: str) -> list[str]:
    """The test modules (``test_*``) a source imports, as ``from tests.test_x import ...`` or ``import tests.test_x``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            if is_test_module(node.module):
                found.append(node.module)
            else:
                found += [f"{node.module}.{a.name}" for a in node.names if is_test_module(f"{node.module}.{a.name}")]
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if is_test_module(alias.name)]
    return found


def test_the_check_sees_both_ways_of_importing():
    source = (
        "import tests.test_a\nfrom tests.test_b import x\nfrom tests import test_c\nfrom tests.checkouts import post\n"
    )
    assert imported_test_modules(source) == ["tests.test_a", "tests.test_b", "tests.test_c"]


def test_no_test_module_imports_another():
    found = {
        path.name: imported
        for path in sorted(TESTS.rglob("*.py"))
        if (imported := imported_test_modules(path.read_text()))
    }
    assert found == {}

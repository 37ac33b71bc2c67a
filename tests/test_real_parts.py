"""The rule for a missing real part (tests/real_parts.py): skip locally, fail under CI=true; and no test skips
any other way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.real_parts import require_or_skip

TESTS = Path(__file__).resolve().parent


@pytest.mark.parametrize("value", ["true", "TRUE", "True"])
def test_under_ci_a_missing_part_fails(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception) as failed:
        require_or_skip("mosquitto is not installed")
    assert str(failed.value) == "mosquitto is not installed (CI=true: a missing real part fails, it never skips)"


@pytest.mark.parametrize("value", [None, "", "false", "1"])
def test_without_ci_a_missing_part_skips(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.skip.Exception) as skipped:
        require_or_skip("mosquitto is not installed")
    assert str(skipped.value) == "mosquitto is not installed"


def direct_skips(source: str) -> list[str]:
    """Calls of ``pytest.skip`` and ``pytest.importorskip``, and any ``pytest.mark.skip``/``skipif``, in the source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        called = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        if called and node.func.attr in ("skip", "importorskip") and ast.unparse(node.func.value) == "pytest":
            found.append(f"line {node.lineno}: {ast.unparse(node.func)}")
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ("skip", "skipif")
            and ast.unparse(node.value).endswith("mark")
        ):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_the_check_sees_every_way_of_skipping():
    source = (
        "import pytest\n"
        "pytest.skip('x')\n"
        "pytest.importorskip('m')\n"
        "with pytest.raises(pytest.skip.Exception): ...\n"
        "@pytest.mark.skipif(True)\n"
        "def f(): ...\n"
    )
    assert sorted(direct_skips(source)) == [
        "line 2: pytest.skip",
        "line 3: pytest.importorskip",
        "line 5: pytest.mark.skipif",
    ]


def test_no_test_skips_but_through_the_rule():
    found = {
        path.name: skips
        for path in sorted(TESTS.rglob("*.py"))
        if path.name != "real_parts.py" and (skips := direct_skips(path.read_text()))
    }
    assert found == {}

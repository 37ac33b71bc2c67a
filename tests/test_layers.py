"""The layers as a reader should find them: import-linter's contracts (.importlinter) hold, and handlers reach the
database only through the repositories of their unit of work."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_import_contracts_hold() -> None:
    linter = Path(sys.executable).parent / "lint-imports"
    run = subprocess.run(
        [str(linter), "--no-cache", "--config", ".importlinter"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert "0 broken" in run.stdout and "5 kept" in run.stdout


def test_handlers_never_touch_the_session_itself() -> None:
    offenders = []
    for path in sorted((REPO / "handlers").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "session":
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == [], "use a repository of the unit of work (storage/uow.py) instead"

"""The one rule for tests that need a real part (PostgreSQL, mosquitto, Chromium and Playwright, a sample photo):
without it they skip on a developer's machine, but under ``CI=true`` they fail, so CI never passes by skipping.

Tests and fixtures never call ``pytest.skip`` or ``pytest.importorskip`` themselves (tests/test_real_parts.py
checks): they call ``require_or_skip``.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def under_ci() -> bool:
    """``CI=true`` (any case) in the environment now, as .ci/run sets it."""
    return os.environ.get("CI", "").lower() == "true"


def require_or_skip(reason: str) -> NoReturn:
    """The part named by ``reason`` is missing: skip, or fail under CI=true."""
    if under_ci():
        pytest.fail(f"{reason} (CI=true: a missing real part fails, it never skips)")
    pytest.skip(reason)

"""Time comes from a clock passed in, never from datetime.now() in handlers, so tests control it."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(timezone.utc)

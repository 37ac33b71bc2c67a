"""Helpers of the scheduled-card tests (daily digest, weekly pattern report): tick the sweep by hand, run the
steps, and pair each card sent with the chart threaded under it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.runner import Runner
from bot.steps import STEPS
from storage.models import WorkItem
from storage.uow import UnitOfWork
from tests.fakes import FakeMessenger

TICK = timedelta(minutes=10)


def run(services: Any, clock: Any) -> None:
    Runner(db=services.db, steps=STEPS, dependencies=services.dependencies(), clock=clock).run_until_idle()


def items(services: Any, kind: str) -> dict[str, datetime]:
    """Each work item of ``kind``: its key and when it was first enqueued."""
    with UnitOfWork(services.db) as uow:
        found = uow.session.query(WorkItem).filter(WorkItem.kind == kind)
        return {w.dedupe_key: w.created_at.astimezone(UTC) for w in found}


def tick_until(services: Any, clock: Any, end: datetime, enqueue: Callable[..., None]) -> None:
    """Call the sweep's ``enqueue(db, clock, config)`` every TICK until ``end``."""
    while clock() < end:
        enqueue(services.db, clock, services.config)
        clock.advance(TICK.total_seconds())


def cards_with_charts(messenger: FakeMessenger, room: str) -> list[tuple[Any, Any]]:
    """(card message, threaded chart message) pairs, in order; each card has exactly one chart under it."""
    pairs = []
    for index, message in enumerate(messenger.sent):
        if message.card is not None:
            charts = [m for m in messenger.sent if m.parent_id == f"M-{index + 1}"]
            assert len(charts) == 1 and charts[0].attachment is not None and charts[0].room_id == room
            pairs.append((message, charts[0]))
    return pairs

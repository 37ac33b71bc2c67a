"""Periodic sweeps (watchlist expiry, retention purge, work archival): a database row first and a job second.

APScheduler only enqueues one work item per sweep and period (``purge:2026-11-25T15`` for the
hour from 15:00 UTC) and wakes the runner; the runner does the work like any other step. The key
makes the enqueue idempotent, so any number of processes may fire it, a restart neither skips
nor repeats an hour, and a sweep that fails is retried by the queue, not by the scheduler.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from core.clock import Clock
from core.config import Config
from core.steps import StepKind
from handlers.routine.digest import enqueue_digests
from handlers.routine.weekly_report import enqueue_pattern_reports
from storage.db import Database
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)
SWEEPS = (StepKind.EXPIRE_WATCHLIST, StepKind.PURGE)  # each once an hour
CHECK_EVERY_S = 300  # how often the scheduler makes sure this hour's items exist


def period_key(now: datetime) -> str:
    """The UTC hour a moment falls in, as the sweep's key: '2026-11-25T15'."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H")


def slot_key(now: datetime) -> str:
    """The scheduler tick's 5-minute UTC slot a moment falls in: '2026-11-25T15:05'."""
    moment = now.astimezone(UTC)
    return moment.replace(minute=moment.minute - moment.minute % (CHECK_EVERY_S // 60)).strftime("%Y-%m-%dT%H:%M")


def enqueue_sweeps(db: Database, clock: Clock) -> None:
    """This hour's sweep items, unless they were ever enqueued (by this process or another)."""
    now = clock()
    with UnitOfWork(db, write=True) as work:
        for kind in SWEEPS:
            work.work.enqueue(kind=kind, key=period_key(now), run_at=now, now=now)
        # Finished steps leave the work table within minutes of their keep time (docs/decisions.md).
        work.work.enqueue(kind=StepKind.ARCHIVE_WORK, key=slot_key(now), run_at=now, now=now)
        work.commit()


def enqueue_daily(db: Database, clock: Clock, config: Config) -> None:
    """Each store's digest once its local time has come: one item per store and local date (``daily_digest``)."""
    now = clock()
    with UnitOfWork(db, write=True) as work:
        enqueue_digests(work, config, now)
        work.commit()


def enqueue_weekly(db: Database, clock: Clock, config: Config) -> None:
    """Each store's pattern report once its local weekday and time have come: one item per store and ISO week."""
    now = clock()
    with UnitOfWork(db, write=True) as work:
        enqueue_pattern_reports(work, config, now)
        work.commit()


def schedule_sweeps(scheduler: Any, services: Any) -> None:
    """Add the interval job to an APScheduler 3 scheduler (``BackgroundScheduler``) of the process that runs steps."""

    def fire() -> None:
        try:
            enqueue_sweeps(services.db, services.clock)
            # The same tick checks the digests: every 5 minutes is close enough to a store's HH:MM.
            enqueue_daily(services.db, services.clock, services.config)
            enqueue_weekly(services.db, services.clock, services.config)
        except Exception:  # the database may be down: the next tick tries again, nothing is lost
            log.exception("could not enqueue this hour's sweeps")
            return
        services.wake_runner()

    scheduler.add_job(
        fire,
        "interval",
        seconds=CHECK_EVERY_S,
        id="sweeps",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),
    )

"""Keeping the work table small (a periodic sweep, every few minutes): done steps move to the history after
``runner.finished_keep_hours``, and history rows go after retention's ``transactions_days``.

A chain posting 50 payments a second makes about 250 finished steps a second (900,000 an hour): each run
moves batches until none is left or its time budget is spent; what a run leaves, the next one takes. Each
batch is its own short transaction (5,000 rows on PostgreSQL, 1,000 on SQLite), so the SQLite writer lock is
never held for long.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

from core.clock import Clock
from core.config import Config
from storage.uow import UnitOfWork
from storage.work_queue import ClaimedItem

log = logging.getLogger(__name__)
BUDGET_S = 60.0  # of each run: at the 5-minute period, at most a fifth of one routine worker


def job_archive_work(
    item: ClaimedItem,
    *,
    write_uow: Callable[[], UnitOfWork],
    config: Config,
    clock: Clock,
) -> None:
    now = clock()
    keep = timedelta(hours=config.business.runner.finished_keep_hours)
    stop_at = time.monotonic() + BUDGET_S
    moved = _in_batches(write_uow, lambda work, n: work.work.archive_finished(before=now - keep, limit=n), stop_at)
    window = timedelta(days=config.business.retention.transactions_days)
    purged = _in_batches(write_uow, lambda work, n: work.work.purge_history(before=now - window, limit=n), stop_at)
    if moved or purged:
        log.info("work history: %d finished steps moved, %d past retention deleted", moved, purged)


def _in_batches(write_uow: Callable[[], UnitOfWork], batch: Callable[[UnitOfWork, int], int], stop_at: float) -> int:
    """Full batches (of the database's size: ``archive_batch``) until one comes back short or the budget is spent."""
    total = 0
    while True:
        with write_uow() as work:
            size = work.work.archive_batch
            n = batch(work, size)
            work.commit()
        total += n
        if n < size or time.monotonic() >= stop_at:
            return total

"""The weekly pattern report: per store, once a local week at ``patterns.report_weekday`` and
``report_local_time``, the pattern report card of the 7 completed days before, and its chart threaded under it.

The digest's mechanism (``handlers/routine/digest.py``): the sweep tick enqueues one ``pattern_report`` item per store
and ISO week, due at the first UTC moment the store's clock reads the time on that weekday (a repeated time
counts once, a skipped one is read with the offset before the change), late by at most CATCH_UP.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from cards.patterns import pattern_card
from core.clock import Clock
from core.config import Config
from core.messenger import Messenger
from core.steps import StepKind
from handlers.routine.digest import dates_due
from handlers.routine.pattern_report import chart_of, pattern_report, summary, week_before
from storage.evidence import EvidenceStore
from storage.uow import UnitOfWork
from storage.work_queue import ClaimedItem

log = logging.getLogger(__name__)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class DueReport:
    store_id: str
    report_date: date  # the store-local day it is due; it covers the 7 days before

    @property
    def week(self) -> str:
        year, week, _ = self.report_date.isocalendar()
        return f"{year}-W{week:02d}"

    @property
    def key(self) -> str:
        """One per store and ISO week, so even a changed weekday cannot give a week two reports."""
        return f"{self.store_id}:{self.week}"


def enqueue_pattern_reports(work: UnitOfWork, config: Config, now: datetime) -> None:
    """Enqueue the due reports of stores with a space; the key (store and ISO week) makes a repeat a no-op."""
    patterns = config.business.patterns
    if not patterns.report_enabled:
        return
    weekday = WEEKDAYS.index(patterns.report_weekday)
    for store in config.business.stores:
        if not store.webex_room_id:
            continue  # nowhere to post: `patterns` answers on demand
        for local_date in dates_due(ZoneInfo(store.timezone), patterns.report_local_time, now):
            if local_date.weekday() == weekday:
                due = DueReport(store.id, local_date)
                work.work.enqueue(
                    kind=StepKind.PATTERN_REPORT,
                    key=due.key,
                    ref_id=f"{store.id}:{local_date.isoformat()}",
                    run_at=now,
                    now=now,
                )


def job_pattern_report(
    item: ClaimedItem,
    *,
    read_uow: Callable[[], UnitOfWork],
    uow: Callable[[], UnitOfWork],
    messenger: Messenger | None,
    evidence: EvidenceStore,
    config: Config,
    clock: Clock,
) -> None:
    store_id, _, day = (item.ref_id or "").rpartition(":")
    store = config.business.store(store_id)
    if messenger is None or store is None or not store.webex_room_id:
        return  # Webex off, or the store lost its space since: `patterns` has the same figures
    due = DueReport(store_id, date.fromisoformat(day))
    key = f"patterns:{due.key}"
    with read_uow() as work:
        if work.outbox.by_key(f"{key}:card") is not None:
            return
        view = pattern_report(work, config, store, week_before(store, due.report_date))
    png, name, caption = chart_of(view)
    chart = evidence.put(png, "image/png")
    now = clock()
    with uow() as work:
        work.snapshots.record_file(chart, kind="chart", content_type="image/png", size_bytes=len(png), now=now)
        root = work.outbox.add(
            key=f"{key}:card", room_id=store.webex_room_id, now=now, card=pattern_card(view), markdown=summary(view)
        )
        work.outbox.add(
            key=f"{key}:chart",
            room_id=store.webex_room_id,
            now=now,
            parent=root,
            markdown=caption,
            file={"sha256": chart, "content_type": "image/png", "name": name},
        )
        work.commit()
    log.info("weekly pattern report queued for store %s, %s", store_id, due.week)

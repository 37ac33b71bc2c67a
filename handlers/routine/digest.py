"""The daily digest (docs/product.md flow 8): per store, once a local day at ``digest.local_time``, a stats card
for that day in the store's space and, threaded under it, a chart of the day's alerts and decisions.

The sweep (``bot/sweeps.py``) enqueues one ``daily_digest`` item per store and local date; this
module says which are due and runs them. Times are computed with zoneinfo in the store's zone, so
the digest keeps to the local clock across daylight-saving changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from cards.stats import stats_card
from cards.views import StatsView
from core.clock import Clock
from core.config import Config, StoreConfig
from core.messenger import Messenger
from core.steps import StepKind
from handlers.chat.stats_views import rule_rows, stats_row
from handlers.routine.charts import digest_chart
from storage import stats as stats_queries
from storage.evidence import EvidenceStore
from storage.uow import UnitOfWork
from storage.work_queue import ClaimedItem

log = logging.getLogger(__name__)
# A process that was down at digest time sends it late if it is back within this; later than that a
# digest is stale news (``stats`` answers on demand), and a first start never sends yesterday's.
CATCH_UP = timedelta(hours=6)


@dataclass(frozen=True)
class DueDigest:
    store_id: str
    local_date: date

    @property
    def key(self) -> str:
        return f"{self.store_id}:{self.local_date.isoformat()}"


def occurrence(local_date: date, local_time: str, zone: ZoneInfo) -> datetime:
    """The UTC moment the store's clock reads ``local_time`` on ``local_date``.

    A repeated time (clocks go back) is its first occurrence; a skipped time (clocks go forward)
    is read with the offset before the change, i.e. as long after the jump as it was meant to be
    after the hour before it, so that day still has its digest, on the same local date.
    """
    hour, minute = (int(part) for part in local_time.split(":"))
    return datetime.combine(local_date, time(hour, minute), tzinfo=zone).replace(fold=0).astimezone(UTC)


def dates_due(zone: ZoneInfo, local_time: str, now: datetime) -> list[date]:
    """The local today or yesterday whose ``local_time`` has passed, within CATCH_UP (the weekly report's too)."""
    today = now.astimezone(zone).date()
    return [
        local_date
        for local_date in (today - timedelta(days=1), today)
        if (at := occurrence(local_date, local_time, zone)) <= now < at + CATCH_UP
    ]


def due_digests(stores: tuple[StoreConfig, ...], local_time: str, now: datetime) -> list[DueDigest]:
    """Stores whose digest time has passed (within CATCH_UP) on their local today or yesterday."""
    return [
        DueDigest(store.id, local_date)
        for store in stores
        for local_date in dates_due(ZoneInfo(store.timezone), local_time, now)
    ]


def enqueue_digests(work: UnitOfWork, config: Config, now: datetime) -> None:
    """Enqueue the due digests; the key (store and local date) makes a repeat a no-op."""
    digest = config.business.digest
    if not digest.enabled:
        return
    for due in due_digests(tuple(config.business.stores), digest.local_time, now):
        work.work.enqueue(kind=StepKind.DAILY_DIGEST, key=due.key, ref_id=due.key, run_at=now, now=now)


def job_daily_digest(
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
        return  # Webex off, or no space for this store: `stats` and the console have the same figures
    card_key = f"digest:{store_id}:{day}:card"
    local_date = date.fromisoformat(day)
    # The 24 local hours up to this digest's time, from the last one's: nothing falls between two digests.
    zone, local_time = ZoneInfo(store.timezone), config.business.digest.local_time
    since, until = (
        occurrence(local_date - timedelta(days=1), local_time, zone),
        occurrence(local_date, local_time, zone),
    )
    now = clock()
    with read_uow() as work:
        if work.outbox.by_key(card_key) is not None:
            return
        (counts,) = work.stats.store_stats((store_id,), since, now, until=until)
        precision = work.stats.rule_precision((store_id,), since, until)
    period = f"{local_date:%a %d %b %Y}, the 24 h to {local_time}"
    card = stats_card(StatsView(period=period, stores=(stats_row(counts, config),), rules=rule_rows(precision)))
    chart = digest_chart(f"{store.name}, {period}", counts.alerts_by_rule, counts.confirmed, counts.dismissed)
    digest = evidence.put(chart, "image/png")
    with uow() as work:
        work.snapshots.record_file(digest, kind="chart", content_type="image/png", size_bytes=len(chart), now=now)
        root = work.outbox.add(
            key=card_key,
            room_id=store.webex_room_id,
            now=now,
            card=card,
            markdown=f"**Daily digest, {store.name}, {period}**: {_summary(counts)}",
        )
        work.outbox.add(
            key=f"digest:{store_id}:{day}:chart",
            room_id=store.webex_room_id,
            now=now,
            parent=root,
            markdown=f"Alerts and decisions at {store.name}, {period}.",
            file={"sha256": digest, "content_type": "image/png", "name": f"digest-{store_id}-{day}.png"},
        )
        work.commit()
    log.info("daily digest queued for store %s, %s", store_id, day)


def _summary(counts: stats_queries.StoreStats) -> str:
    """The card's figures as text, for clients that show no cards (and for notifications)."""
    return (
        f"{counts.transactions} transactions checked, {sum(counts.alerts_by_rule.values())} alerts, "
        f"{counts.confirmed} confirmed, {counts.dismissed} dismissed"
    )

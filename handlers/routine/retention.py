"""The retention purge (a periodic sweep): every kind of data deleted after its window, files included.

Windows come from ``retention`` in the config. Pictures and crops go after ``snapshots_days``,
except those of a transaction with a fraud report or an open or confirmed alert, which stay for
``alerts_days`` (as does the transaction they hang on). Ended watchlist entries are erased
``alerts_days`` after their end. Work goes in batches, each its own short transaction, so the
writer lock is never held for long; what a run leaves is found by the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from core.clock import Clock
from core.config import Config, RetentionConfig
from handlers.learning.erasure import drop_files, erase
from storage.evidence import EvidenceStore
from storage.retention import Purged
from storage.uow import UnitOfWork
from storage.work_queue import ClaimedItem

log = logging.getLogger(__name__)
BATCH = 500
MAX_ROUNDS = 50  # at most this many batches per run; the next hour's run goes on


def job_purge(
    item: ClaimedItem, *, write_uow: Callable[[], UnitOfWork], evidence: EvidenceStore, config: Config, clock: Clock
) -> None:
    now = clock()
    totals: dict[str, int] = {}
    for _ in range(MAX_ROUNDS):
        with write_uow() as work:
            counts = purge_round(work, evidence, config.business.retention, now)
            work.commit()
        for kind, n in counts.items():
            totals[kind] = totals.get(kind, 0) + n
        if max(counts.values(), default=0) < BATCH:
            break
    if any(totals.values()):
        log.info("purge: %s", ", ".join(f"{n} {kind}" for kind, n in sorted(totals.items()) if n))


def purge_round(work: UnitOfWork, evidence: EvidenceStore, windows: RetentionConfig, now: datetime) -> dict[str, int]:
    """One batch of every kind, in an order that never breaks a reference, then the files nothing needs."""
    purge, cut = work.retention, _cutoffs(windows, now)
    done: dict[str, Purged] = {
        "outbox messages": purge.outbox(plain_before=cut["snapshots"], any_before=cut["alerts"], limit=BATCH),
        "alerts": purge.alerts(before=cut["alerts"], limit=BATCH),
        "transactions": purge.transactions(
            plain_before=cut["transactions"], kept_before=min(cut["transactions"], cut["alerts"]), limit=BATCH
        ),
        "pictures": purge.snapshots(
            plain_before=cut["snapshots"], kept_before=min(cut["snapshots"], cut["alerts"]), limit=BATCH
        ),
        "audit entries": purge.audit(before=cut["audit"], limit=BATCH),
        "inbound events": purge.events(before=cut["events"], limit=BATCH),
        "pattern counts": purge.pattern_counts(before=cut["transactions"].date()),
    }
    files: set[str] = set()
    for purged in done.values():
        files |= purged.files
    counts = {kind: purged.rows for kind, purged in done.items()}
    counts["watchlist entries"] = _ended_entries(work, evidence, cut["alerts"], now)
    counts["files"] = drop_files(work, evidence, files)
    return counts


def _ended_entries(work: UnitOfWork, evidence: EvidenceStore, before: datetime, now: datetime) -> int:
    """Expired or removed entries erased for good once their templates are gone from the backend."""
    erased = 0
    for person in work.watchlist.ended_before(before, limit=BATCH):
        if any(f.descriptor is not None or f.backend_face_id is not None for f in person.faces):
            continue  # its forget step has not run yet; the next purge takes it
        person_id = person.id
        erase(work, evidence, person_id)
        work.audit.record(
            at=now,
            actor="system",
            action="erasure",
            subject_type="watchlist",
            subject_id=person_id,
            reason_code="retention",
        )
        erased += 1
    return erased


def _cutoffs(windows: RetentionConfig, now: datetime) -> dict[str, datetime]:
    return {
        "snapshots": now - timedelta(days=windows.snapshots_days),
        "transactions": now - timedelta(days=windows.transactions_days),
        "alerts": now - timedelta(days=windows.alerts_days),
        "audit": now - timedelta(days=windows.audit_days),
        "events": now - timedelta(days=windows.events_days),
    }

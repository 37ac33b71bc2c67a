"""The durable queue of background steps (``work_items``): enqueue, claim with a lease, finish.

Claiming increments ``attempts``, so a step that crashes its process every time is still
dead-lettered after ``max_attempts`` instead of looping forever. Each claim writes a fresh
lease token; finishing checks it, so a worker whose lease expired cannot complete a step that
another worker has since taken over.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, TextClause, and_, delete, exists, func, literal, or_, select, text, update
from sqlalchemy.orm import Session

from core.steps import CATALOGUE, StepKind
from storage.db import upsert_insert
from storage.models import CLAIMABLE, WorkHistory, WorkItem
from storage.rows import rows_affected
from storage.work_history import POSTGRES_BATCH, SQLITE_BATCH, finished_count, move_finished, purge_history

WorkRecord = WorkItem | WorkHistory  # a step still in the queue, or one moved to the history when done


@dataclass(frozen=True)
class ClaimedItem:
    id: int
    kind: str
    transaction_id: str | None
    ref_id: str | None
    attempts: int
    lease_token: str
    lease_until: datetime | None = None


class WorkQueue:
    def __init__(self, session: Session, *, skip_locked: bool):
        self._session = session
        self._skip_locked = skip_locked
        self.enqueued: set[str] = set()  # kinds this unit of work enqueued: whom to wake after its commit

    def enqueue(
        self,
        *,
        kind: str,
        key: str,
        run_at: datetime,
        now: datetime,
        transaction_id: str | None = None,
        ref_id: str | None = None,
        store_id: str | None = None,
        priority: int | None = None,
    ) -> None:
        """Add a step unless the same ``kind:key`` was ever enqueued (a no-op then, even if done).

        ``store_id``: the store the step is for (claims go round the stores); ``priority``: lower first within its
        lane, by default its kind's (core/steps.py)."""
        dedupe_key = f"{kind}:{key}"
        values = {
            "kind": kind,
            "dedupe_key": dedupe_key,
            "transaction_id": transaction_id,
            "ref_id": ref_id,
            "store_id": store_id,
            "priority": default_priority(kind) if priority is None else priority,
            "status": "pending",
            "next_run_at": run_at,
            "attempts": 0,
            "created_at": now,
        }
        columns = WorkItem.__table__.c
        row = select(*(literal(value, columns[name].type) for name, value in values.items())).where(
            ~exists().where(WorkHistory.dedupe_key == dedupe_key)
        )
        statement = (
            upsert_insert(self._session, WorkItem)
            .from_select(list(values), row)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(WorkItem.id)
        )
        inserted = self._session.execute(statement).first() is not None
        if inserted and self._skip_locked:
            # PostgreSQL, where an archiver may move this key meanwhile: the insert then waited for the
            # archiver's DELETE to commit and went in, though the history (unseen by its snapshot) has the key.
            # A new statement sees that commit (docs/decisions.md, "The work table stays small").
            self._session.execute(
                delete(WorkItem).where(
                    WorkItem.dedupe_key == dedupe_key, exists().where(WorkHistory.dedupe_key == dedupe_key)
                )
            )
        self.enqueued.add(kind)

    def hurry(self, *, kind: str, key: str, now: datetime) -> None:
        """Make a waiting step due now (e.g. a thread reply once its root has been sent)."""
        self._session.execute(
            update(WorkItem)
            .where(WorkItem.dedupe_key == f"{kind}:{key}", WorkItem.status == "pending", WorkItem.next_run_at > now)
            .values(next_run_at=now)
        )

    def claim_due(self, *, kinds: set[str], now: datetime, lease_s: float, limit: int) -> list[ClaimedItem]:
        """Take up to ``limit`` due steps (or ones whose lease ran out) of the kinds this process can run.

        By priority first (a live picture before an exact-time one), then round the stores: each store's oldest due
        step of that priority, then each store's second... so one store's burst of 800 captures cannot make
        another store's one capture wait behind all of them. Steps of no store take turns as one store."""
        if not kinds:
            return []
        due = and_(
            # Implied by what follows, but SQLite uses a partial index only for a term that matches its WHERE.
            claimable(),
            or_(
                and_(WorkItem.status == "pending", WorkItem.next_run_at <= now),
                and_(WorkItem.status == "running", WorkItem.lease_until < now),
            ),
        )
        turn = (
            func.row_number()
            .over(
                partition_by=(func.coalesce(WorkItem.store_id, ""), WorkItem.priority),
                order_by=(WorkItem.next_run_at, WorkItem.id),
            )
            .label("turn")
        )
        ranked = (
            select(WorkItem.id, WorkItem.priority, WorkItem.next_run_at, turn)
            .where(WorkItem.kind.in_(kinds), due)
            .subquery()
        )
        query = (
            select(WorkItem)
            .join(ranked, ranked.c.id == WorkItem.id)
            # Again on the locked rows themselves: PostgreSQL re-checks only these against a row another claimer
            # has just committed (the window's copy still says "due"), so without them it would be claimed twice.
            .where(WorkItem.kind.in_(kinds), due)
            .order_by(ranked.c.priority, ranked.c.turn, ranked.c.next_run_at, ranked.c.id)
            .limit(limit)
        )
        if self._skip_locked:
            # FOR UPDATE cannot lock a window function's rows: only the work items themselves are locked.
            query = query.with_for_update(skip_locked=True, of=WorkItem)
        claimed = []
        for item in self._session.scalars(query):
            item.status = "running"
            item.attempts += 1
            item.lease_token = secrets.token_hex(8)
            item.lease_until = now + timedelta(seconds=lease_s)
            claimed.append(
                ClaimedItem(
                    item.id,
                    item.kind,
                    item.transaction_id,
                    item.ref_id,
                    item.attempts,
                    item.lease_token,
                    item.lease_until,
                )
            )
        return claimed

    def renew(self, item: ClaimedItem, *, now: datetime, lease_s: float) -> bool:
        """Extend a lease still held (a step late in a batch starts with a full lease); False if lost."""
        result = self._session.execute(
            update(WorkItem)
            .where(WorkItem.id == item.id, WorkItem.status == "running", WorkItem.lease_token == item.lease_token)
            .values(lease_until=now + timedelta(seconds=lease_s))
        )
        return rows_affected(result) == 1

    def complete(self, item: ClaimedItem, *, now: datetime) -> bool:
        """Mark done; False when the lease was lost (the caller must then roll back its effects)."""
        return self._finish(item, status="done", completed_at=now, last_error=None)

    def reschedule(self, item: ClaimedItem, *, run_at: datetime, error: str, counts: bool = True) -> bool:
        """Run again at ``run_at``. A wait that is not a failure (``counts=False``: footage not indexed yet, a
        thread's first message not sent yet, a 429) gives its attempt back, so waiting never dead-letters a step."""
        attempts = {} if counts else {"attempts": WorkItem.attempts - 1}
        return self._finish(item, status="pending", next_run_at=run_at, last_error=error[:1000], **attempts)

    def bury(self, item: ClaimedItem, *, now: datetime, error: str) -> bool:
        """Dead-letter: kept for an operator, never run again by itself."""
        return self._finish(item, status="dead", completed_at=now, last_error=error[:1000])

    def release(self, item: ClaimedItem) -> bool:
        """Give a claimed step back unrun (shutdown): the attempt it took is returned too."""
        return self._finish(item, status="pending", attempts=WorkItem.attempts - 1)

    def counts(self) -> dict[str, int]:
        """Steps by status: pending, running and dead counted exactly over their partial indexes; done ones (in
        either table, millions of rows) estimated on PostgreSQL (storage/work_history.py: finished_count)."""
        waiting = select(WorkItem.status, func.count()).where(claimable()).group_by(WorkItem.status)
        counts: dict[str, int] = dict(self._session.execute(waiting).all())
        dead = select(func.count()).select_from(WorkItem).where(WorkItem.status == "dead")
        counts["dead"] = int(self._session.scalar(dead) or 0)
        counts["done"] = finished_count(self._session, unfinished=sum(counts.values()))
        return {status: n for status, n in counts.items() if n}

    @property
    def archive_batch(self) -> int:
        """Rows per transaction of ``archive_finished`` and ``purge_history`` on this database."""
        return POSTGRES_BATCH if self._skip_locked else SQLITE_BATCH

    def archive_finished(self, *, before: datetime, limit: int) -> int:
        """Move up to ``limit`` steps done before ``before`` to the history; how many moved."""
        return move_finished(self._session, before=before, limit=limit, skip_locked=self._skip_locked)

    def purge_history(self, *, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` history rows completed before ``before``; how many went."""
        return purge_history(self._session, before=before, limit=limit)

    def oldest_due(self, *, now: datetime) -> datetime | None:
        query = select(func.min(WorkItem.next_run_at)).where(
            claimable(), WorkItem.status == "pending", WorkItem.next_run_at <= now
        )
        return self._session.scalar(query)

    def first(self, *, kind: str, ref_id: str) -> WorkRecord | None:
        """The earliest work item of this kind for this id (a step that a press asked for), if any."""
        queued = self._session.scalar(
            select(WorkItem).where(WorkItem.kind == kind, WorkItem.ref_id == ref_id).order_by(WorkItem.id)
        )
        moved = self._session.scalar(
            select(WorkHistory)
            .where(WorkHistory.kind == kind, WorkHistory.ref_id == ref_id)
            .order_by(WorkHistory.created_at, WorkHistory.item_id)
        )
        return min((r for r in (queued, moved) if r is not None), key=_enqueue_order, default=None)

    def count(self, *, kind: str, ref_id: str) -> int:
        """How many work items of this kind were ever enqueued for this id (a retried erasure's runs)."""
        queued = select(func.count()).select_from(WorkItem).where(WorkItem.kind == kind, WorkItem.ref_id == ref_id)
        moved = (
            select(func.count()).select_from(WorkHistory).where(WorkHistory.kind == kind, WorkHistory.ref_id == ref_id)
        )
        return int(self._session.scalar(queued) or 0) + int(self._session.scalar(moved) or 0)

    def dead(self, *, limit: int = 100) -> list[WorkItem]:
        """Dead-lettered steps, newest first (for an operator: ``python -m bot work list``)."""
        query = select(WorkItem).where(WorkItem.status == "dead").order_by(WorkItem.completed_at.desc()).limit(limit)
        return list(self._session.scalars(query))

    def revive(self, item_id: int, *, now: datetime) -> bool:
        """A dead step runs again from its first attempt; False when the id is not a dead step."""
        result = self._session.execute(
            update(WorkItem)
            .where(WorkItem.id == item_id, WorkItem.status == "dead")
            .values(
                status="pending", attempts=0, next_run_at=now, completed_at=None, lease_token=None, lease_until=None
            )
        )
        return rows_affected(result) == 1

    def drop(self, item_id: int) -> bool:
        """Delete a dead step (its subject was settled when it died); False when the id is not a dead step."""
        result = self._session.execute(delete(WorkItem).where(WorkItem.id == item_id, WorkItem.status == "dead"))
        return rows_affected(result) == 1

    def for_kind(self, kind: str) -> list[WorkRecord]:
        """Every work item of one kind, oldest first, moved ones included (operators and tests)."""
        return self._both(WorkItem.kind == kind, WorkHistory.kind == kind)

    def for_transaction(self, transaction_id: str) -> list[WorkRecord]:
        """A transaction's steps, oldest first, moved ones included (the read API shows them all)."""
        return self._both(WorkItem.transaction_id == transaction_id, WorkHistory.transaction_id == transaction_id)

    def queued_for_transaction(self, transaction_id: str) -> list[WorkItem]:
        """A transaction's steps still in the queue (any not yet moved to the history), oldest first."""
        query = select(WorkItem).where(WorkItem.transaction_id == transaction_id).order_by(WorkItem.id)
        return list(self._session.scalars(query))

    def _both(self, queued: ColumnElement[bool], moved: ColumnElement[bool]) -> list[WorkRecord]:
        rows: list[WorkRecord] = [*self._session.scalars(select(WorkItem).where(queued))]
        rows.extend(self._session.scalars(select(WorkHistory).where(moved)))
        return sorted(rows, key=_enqueue_order)

    def _finish(self, item: ClaimedItem, **values: object) -> bool:
        result = self._session.execute(
            update(WorkItem)
            .where(WorkItem.id == item.id, WorkItem.status == "running", WorkItem.lease_token == item.lease_token)
            .values(lease_token=None, lease_until=None, **values)
        )
        return rows_affected(result) == 1


def claimable() -> TextClause:
    """The predicate of ``ix_work_items_claimable``, as a term of its own (storage/models.py: CLAIMABLE)."""
    return text(CLAIMABLE)


def _enqueue_order(row: WorkRecord) -> tuple[datetime, int]:
    return (row.created_at, row.id if isinstance(row, WorkItem) else row.item_id)


def default_priority(kind: str) -> int:
    """The kind's priority in the step catalogue; the middle one for kinds it does not know (tests' own)."""
    try:
        return CATALOGUE[StepKind(kind)].priority
    except ValueError:
        return 5

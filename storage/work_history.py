"""Finished steps leave the claimable table: moved in batches to ``work_history``, purged from there by age.

``work_items`` then holds only what can still run (pending, running), dead steps for an operator, and the
last ``runner.finished_keep_hours`` of done ones; the history keeps every done step's key (a second
enqueue stays a no-op) and what readers show, until retention's window.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, select, text
from sqlalchemy.orm import Session

from storage.db import upsert_insert
from storage.models import WorkHistory, WorkItem
from storage.rows import rows_affected

# Rows per transaction of the archive and the history purge: on PostgreSQL ~0.3 s to move 5,000; on SQLite the
# one writer lock (which the POS intake waits for) is held ~0.1 s by 1,000 (benchmarks/work_table.py, README).
POSTGRES_BATCH = 5000
SQLITE_BATCH = 1000

MOVED_COLUMNS = (
    "dedupe_key",
    "kind",
    "transaction_id",
    "ref_id",
    "store_id",
    "attempts",
    "last_error",
    "created_at",
    "completed_at",
)


def move_finished(session: Session, *, before: datetime, limit: int, skip_locked: bool) -> int:
    """Move up to ``limit`` steps done before ``before`` into the history; how many moved.

    In the caller's transaction, so a step is in one table or the other, never neither. PostgreSQL (where locked
    rows are skipped, so two archivers share the work): one statement, DELETE … RETURNING into INSERT, five times
    as fast as the portable ids, INSERT … SELECT and DELETE that SQLite runs (benchmarks/work_table.py)."""
    due = select(WorkItem.id).where(WorkItem.status == "done", WorkItem.completed_at < before).limit(limit)
    columns = [getattr(WorkItem, c) for c in MOVED_COLUMNS]
    if skip_locked:
        moved = (
            delete(WorkItem)
            .where(WorkItem.id.in_(due.with_for_update(skip_locked=True).scalar_subquery()))
            .returning(WorkItem.id, *columns)
            .cte("moved")
        )
        kept = _into_history(session, select(*moved.c)).cte("kept")
        return int(session.scalar(select(func.count()).select_from(moved).add_cte(kept)) or 0)
    ids = list(session.scalars(due))
    if ids:
        session.execute(_into_history(session, select(WorkItem.id, *columns).where(WorkItem.id.in_(ids))))
        session.execute(delete(WorkItem).where(WorkItem.id.in_(ids)))
    return len(ids)


def _into_history(session: Session, rows: Select[Any]) -> Any:
    """INSERT of ``rows`` (item id, then MOVED_COLUMNS); a key already in the history (only an operator's hand
    could put it in both tables) keeps its first record."""
    return (
        upsert_insert(session, WorkHistory)
        .from_select(["item_id", *MOVED_COLUMNS], rows)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
    )


def purge_history(session: Session, *, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` history rows completed before ``before`` (retention's window); how many went."""
    oldest = select(WorkHistory.dedupe_key).where(WorkHistory.completed_at < before).limit(limit)
    return rows_affected(session.execute(delete(WorkHistory).where(WorkHistory.dedupe_key.in_(oldest)))) or 0


def finished_count(session: Session, *, unfinished: int) -> int:
    """Done steps in both tables (``unfinished``: the pending, running and dead ones, counted by the caller).

    PostgreSQL: the planner's row estimates (``pg_class.reltuples``, kept by autovacuum) instead of counting
    millions of rows at every scrape; SQLite (one store's history): exact counts."""
    if session.get_bind().dialect.name != "postgresql":
        done_here = select(func.count()).select_from(WorkItem).where(WorkItem.status == "done")
        return _count(session, done_here) + _count(session, select(func.count()).select_from(WorkHistory))
    estimates = {
        name: int(rows)
        for name, rows in session.execute(
            text(
                "SELECT relname, reltuples FROM pg_class "
                "WHERE oid IN (to_regclass('work_items'), to_regclass('work_history'))"
            )
        ).all()
    }
    history, everything_here = estimates.get("work_history", -1), estimates.get("work_items", -1)
    # -1: never analysed yet, a young table, so counting it is cheap.
    if history < 0:
        history = _count(session, select(func.count()).select_from(WorkHistory))
    if everything_here < 0:
        everything_here = _count(session, select(func.count()).select_from(WorkItem))
    return history + max(0, everything_here - unfinished)


def _count(session: Session, query: Select[int]) -> int:
    return int(session.scalar(query) or 0)

"""The retained pictures a look-back re-scans: no descriptor of an unmatched face is ever stored, so
finding earlier visits of a newly enrolled person means looking at the pictures again."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from storage.models import Face, Snapshot, Transaction


def visit_key(snapshot: Snapshot) -> str:
    """One visit, one key: a checkout's pictures (live, exact) share their transaction's id."""
    return snapshot.transaction_id or snapshot.id


def pictures(
    session: Session,
    *,
    store_ids: Iterable[str],
    since: datetime,
    until: datetime,
    skip_transactions: Iterable[str],
    limit: int,
) -> tuple[list[Snapshot], datetime | None]:
    """Ready pictures of these stores whose visit (the payment's time, else the picture's) lies in
    [since, until), oldest first: whole hours of them, about ``limit``. Also where the next page
    starts (None at the end). Whole hours keep a checkout's live and exact pictures on one page."""
    moment = func.coalesce(Transaction.occurred_at, Snapshot.created_at)
    skipped = list(skip_transactions)
    query = (
        select(Snapshot, moment)
        .outerjoin(Transaction, Transaction.transaction_id == Snapshot.transaction_id)
        .where(
            Snapshot.store_id.in_(list(store_ids)),
            Snapshot.status == "ready",
            Snapshot.evidence_sha256.is_not(None),
            moment >= since,
            moment < until,
        )
        .order_by(moment, Snapshot.id)
        .options(selectinload(Snapshot.transaction))
    )
    if skipped:
        query = query.where(or_(Snapshot.transaction_id.is_(None), Snapshot.transaction_id.not_in(skipped)))
    found = session.execute(query.limit(limit + 1)).all()
    if len(found) <= limit:
        return [snapshot for snapshot, _ in found], None
    boundary = found[-1][1].replace(minute=0, second=0, microsecond=0)
    page = [snapshot for snapshot, at in found if at < boundary]
    if not page:  # one hour holds more than a page: that hour goes whole
        boundary += timedelta(hours=1)
        page = [snapshot for snapshot, _ in session.execute(query.where(moment < boundary)).all()]
    return page, boundary if boundary < until else None


def transactions_pictured_by(session: Session, crop_sha256: str) -> list[str]:
    """The transactions whose pictures this crop was cut from (the visit the enrollment is about)."""
    query = (
        select(Snapshot.transaction_id)
        .join(Face, Face.snapshot_id == Snapshot.id)
        .where(Face.crop_sha256 == crop_sha256, Snapshot.transaction_id.is_not(None))
        .distinct()
    )
    return list(session.scalars(query))


class LookbackQueries:
    """Retained pictures for the look-back and for erasure, for one unit of work (``uow.lookback``)."""

    def __init__(self, session: Session):
        self._session = session

    def pictures(
        self,
        *,
        store_ids: Iterable[str],
        since: datetime,
        until: datetime,
        skip_transactions: Iterable[str],
        limit: int,
    ) -> tuple[list[Snapshot], datetime | None]:
        return pictures(
            self._session,
            store_ids=store_ids,
            since=since,
            until=until,
            skip_transactions=skip_transactions,
            limit=limit,
        )

    def transactions_pictured_by(self, crop_sha256: str) -> list[str]:
        return transactions_pictured_by(self._session, crop_sha256)

"""Retention queries: which rows are past their kind's window, and deleting them in batches.

Each ``purge_*`` deletes at most ``limit`` rows and returns the evidence files the deleted rows
named (the caller deletes those nobody else needs) and how many rows went. Pictures of a
transaction with a fraud report or an open or confirmed alert are kept for the longer window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import and_, delete, exists, or_, select, update
from sqlalchemy.orm import Session

from core.steps import StepKind
from storage.models import (
    Alert,
    AuditEntry,
    Face,
    FaceMatch,
    FraudReport,
    InboundEvent,
    OutboxMessage,
    PatternCount,
    Snapshot,
    Transaction,
    WorkHistory,
    WorkItem,
)
from storage.rows import rows_affected

KEPT_ALERTS = ("open", "confirmed")  # a dismissed alert keeps nothing longer (e.g. "not the same person")


@dataclass
class Purged:
    rows: int = 0
    files: set[str] = field(default_factory=set)

    def add(self, other: Purged) -> Purged:
        self.rows += other.rows
        self.files |= other.files
        return self


def _transaction_kept():
    """SQL condition on Transaction: it has a fraud report or an alert still open or confirmed."""
    return or_(
        exists().where(FraudReport.transaction_id == Transaction.transaction_id),
        exists().where(Alert.transaction_id == Transaction.transaction_id, Alert.status.in_(KEPT_ALERTS)),
    )


def _snapshot_kept():
    by_transaction = and_(
        Snapshot.transaction_id.is_not(None),
        exists().where(Transaction.transaction_id == Snapshot.transaction_id, _transaction_kept()),
    )
    by_alert = exists().where(Alert.snapshot_id == Snapshot.id, Alert.status.in_(KEPT_ALERTS))  # entrance pictures
    return or_(by_transaction, by_alert)


def purge_snapshots(session: Session, *, plain_before: datetime, kept_before: datetime, limit: int) -> Purged:
    query = (
        select(Snapshot.id)
        .where(or_(and_(Snapshot.created_at < plain_before, ~_snapshot_kept()), Snapshot.created_at < kept_before))
        .limit(limit)
    )
    return delete_snapshots(session, list(session.scalars(query)))


def delete_snapshots(session: Session, snapshot_ids: list[str]) -> Purged:
    if not snapshot_ids:
        return Purged()
    files = set(session.scalars(select(Snapshot.evidence_sha256).where(Snapshot.id.in_(snapshot_ids))))
    face_ids = list(session.scalars(select(Face.id).where(Face.snapshot_id.in_(snapshot_ids))))
    files |= set(session.scalars(select(Face.crop_sha256).where(Face.id.in_(face_ids))))
    if face_ids:
        session.execute(delete(FaceMatch).where(FaceMatch.face_id.in_(face_ids)))
        session.execute(delete(Face).where(Face.id.in_(face_ids)))
    session.execute(delete(Snapshot).where(Snapshot.id.in_(snapshot_ids)))
    return Purged(len(snapshot_ids), {f for f in files if f})


def purge_transactions(session: Session, *, plain_before: datetime, kept_before: datetime, limit: int) -> Purged:
    """Transactions past their window, with their pictures (deleted here so their files go too)."""
    query = (
        select(Transaction.transaction_id)
        .where(
            or_(
                and_(Transaction.received_at < plain_before, ~_transaction_kept()),
                Transaction.received_at < kept_before,
            )
        )
        .limit(limit)
    )
    ids = list(session.scalars(query))
    if not ids:
        return Purged()
    purged = delete_snapshots(
        session, list(session.scalars(select(Snapshot.id).where(Snapshot.transaction_id.in_(ids))))
    )
    session.execute(delete(FraudReport).where(FraudReport.transaction_id.in_(ids)))
    session.execute(delete(Transaction).where(Transaction.transaction_id.in_(ids)))
    return Purged(len(ids), purged.files)


def purge_alerts(session: Session, *, before: datetime, limit: int) -> Purged:
    ids = list(session.scalars(select(Alert.id).where(Alert.created_at < before).limit(limit)))
    if ids:
        session.execute(update(OutboxMessage).where(OutboxMessage.alert_id.in_(ids)).values(alert_id=None))
        # SQLite may hand a deleted id out again: its old notify step must not make the new alert's a no-op.
        _forget_steps(session, [f"{StepKind.NOTIFY_ALERT}:{i}" for i in ids])
        session.execute(delete(Alert).where(Alert.id.in_(ids)))
    return Purged(len(ids))


def purge_outbox(session: Session, *, plain_before: datetime, any_before: datetime, limit: int) -> Purged:
    """Sent or failed messages past the picture window (their files are pictures), unless their alert is kept."""
    kept = exists().where(Alert.id == OutboxMessage.alert_id, Alert.status.in_(KEPT_ALERTS))
    finished = OutboxMessage.status.in_(("sent", "failed"))
    query = (
        select(OutboxMessage.id)
        .where(
            or_(and_(finished, OutboxMessage.created_at < plain_before, ~kept), OutboxMessage.created_at < any_before)
        )
        .limit(limit)
    )
    ids = list(session.scalars(query))
    if not ids:
        return Purged()
    files = set(session.scalars(select(OutboxMessage.file_sha256).where(OutboxMessage.id.in_(ids))))
    session.execute(update(OutboxMessage).where(OutboxMessage.parent_outbox_id.in_(ids)).values(parent_outbox_id=None))
    _forget_steps(session, [f"{StepKind.DELIVER}:{i}" for i in ids])
    session.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(ids)))
    return Purged(len(ids), {f for f in files if f})


def _forget_steps(session: Session, dedupe_keys: list[str]) -> None:
    """The steps of deleted rows, queued or moved to the history, so a reused id starts afresh."""
    session.execute(delete(WorkItem).where(WorkItem.dedupe_key.in_(dedupe_keys)))
    session.execute(delete(WorkHistory).where(WorkHistory.dedupe_key.in_(dedupe_keys)))


def purge_audit(session: Session, *, before: datetime, limit: int) -> Purged:
    ids = list(session.scalars(select(AuditEntry.id).where(AuditEntry.at < before).limit(limit)))
    if ids:
        session.execute(delete(AuditEntry).where(AuditEntry.id.in_(ids)))
    return Purged(len(ids))


def purge_events(session: Session, *, before: datetime, limit: int) -> Purged:
    ids = list(session.scalars(select(InboundEvent.id).where(InboundEvent.received_at < before).limit(limit)))
    if ids:
        session.execute(delete(InboundEvent).where(InboundEvent.id.in_(ids)))
    return Purged(len(ids))


def purge_pattern_counts(session: Session, *, before: date) -> Purged:
    """Daily counts older than the transactions behind them (a day's rows are few: one statement)."""
    return Purged(rows_affected(session.execute(delete(PatternCount).where(PatternCount.day < before))) or 0)


class Retention:
    """The purges of each kind of data, for one unit of work (``uow.retention``)."""

    def __init__(self, session: Session):
        self._session = session

    def outbox(self, *, plain_before: datetime, any_before: datetime, limit: int) -> Purged:
        return purge_outbox(self._session, plain_before=plain_before, any_before=any_before, limit=limit)

    def alerts(self, *, before: datetime, limit: int) -> Purged:
        return purge_alerts(self._session, before=before, limit=limit)

    def transactions(self, *, plain_before: datetime, kept_before: datetime, limit: int) -> Purged:
        return purge_transactions(self._session, plain_before=plain_before, kept_before=kept_before, limit=limit)

    def snapshots(self, *, plain_before: datetime, kept_before: datetime, limit: int) -> Purged:
        return purge_snapshots(self._session, plain_before=plain_before, kept_before=kept_before, limit=limit)

    def audit(self, *, before: datetime, limit: int) -> Purged:
        return purge_audit(self._session, before=before, limit=limit)

    def events(self, *, before: datetime, limit: int) -> Purged:
        return purge_events(self._session, before=before, limit=limit)

    def pattern_counts(self, *, before: date) -> Purged:
        return purge_pattern_counts(self._session, before=before)

    def delete_snapshots(self, snapshot_ids: list[str]) -> Purged:
        return delete_snapshots(self._session, snapshot_ids)

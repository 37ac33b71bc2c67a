"""Transactions, their fraud reports and snapshots/faces as stored."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from storage.models import Face, FraudReport, Snapshot, Transaction, WatchlistPerson


class TransactionRepository:
    def __init__(self, session: Session):
        self._session = session

    def get(self, transaction_id: str) -> Transaction | None:
        return self._session.get(Transaction, transaction_id)

    def get_for_update(self, transaction_id: str) -> Transaction | None:
        """The row locked until commit (PostgreSQL; SQLite's writer lock already serialises writers).

        ``FOR NO KEY UPDATE``, not ``FOR UPDATE``: a step that has already inserted a row pointing at this
        transaction (a snapshot) holds ``FOR KEY SHARE`` on it, and two such steps each upgrading to ``FOR UPDATE``
        deadlock (seen with three workers). The two still exclude each other; only the key lock is shared."""
        return self._session.get(
            Transaction, transaction_id, with_for_update={"key_share": True}, populate_existing=True
        )

    def add(self, transaction: Transaction) -> None:
        """Insert now; ``AlreadyStored`` when the id is taken (a repeat, or a concurrent post that won)."""
        self._session.add(transaction)
        # Flush now so a concurrent duplicate fails here and not at commit.
        _flush_or_already_stored(self._session)

    def with_evidence(self, transaction_id: str) -> Transaction | None:
        """The transaction with its reports, snapshots, faces and matches loaded (read API, show)."""
        query = (
            select(Transaction)
            .where(Transaction.transaction_id == transaction_id)
            .options(
                selectinload(Transaction.fraud_reports),
                selectinload(Transaction.snapshots).selectinload(Snapshot.faces).selectinload(Face.matches),
            )
        )
        return self._session.scalar(query)

    def fraud_report(self, transaction_id: str, source: str) -> FraudReport | None:
        query = select(FraudReport).where(FraudReport.transaction_id == transaction_id, FraudReport.source == source)
        return self._session.scalar(query)

    def add_fraud_report(self, report: FraudReport) -> None:
        """Insert now; ``AlreadyStored`` when this transaction already has a report of this source."""
        self._session.add(report)
        _flush_or_already_stored(self._session)

    def fingerprint_in_fraud(self, card_fingerprint: str) -> bool:
        """Was this card fingerprint on a transaction reported as fraud?"""
        query = select(
            exists().where(
                FraudReport.transaction_id == Transaction.transaction_id,
                Transaction.card_fingerprint == card_fingerprint,
            )
        )
        return bool(self._session.scalar(query))

    def fingerprint_count_before(
        self, card_fingerprint: str, transaction_id: str, *, since: datetime, until: datetime
    ) -> int:
        """Other transactions with this card fingerprint in [since, until], in any store (indexed column)."""
        query = (
            select(func.count())
            .select_from(Transaction)
            .where(
                Transaction.card_fingerprint == card_fingerprint,
                Transaction.transaction_id != transaction_id,
                Transaction.occurred_at >= since,
                Transaction.occurred_at <= until,
            )
        )
        return int(self._session.scalar(query) or 0)

    def watchlist_active(self, store_id: str, region_id: str | None, *, regional: bool) -> bool:
        """Does any active watchlist entry apply to this store?"""
        scope = WatchlistPerson.store_id == store_id
        if regional and region_id is not None:
            scope = scope | (WatchlistPerson.region_id == region_id)
        query = select(exists().where(WatchlistPerson.status == "active", scope))
        return bool(self._session.scalar(query))


class AlreadyStored(Exception):
    """The row's unique key is taken: what it records is already stored."""


def _flush_or_already_stored(session: Session) -> None:
    try:
        session.flush()
    except IntegrityError as exc:
        raise AlreadyStored(str(exc.orig) if exc.orig else "duplicate key") from exc

"""The queries behind the pattern facts: index ranges over recent transactions, daily counts for baselines.

Nothing here scans history: a rolling window is a range of one of the transactions' window
indexes (store+cashier, store+register, store+type, card, card+type), and a baseline sums the
``pattern_counts`` rows of its days, kept up to date as each transaction is triaged. Transactions
of an unknown store or register (stored, never triaged) count nowhere.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, and_, case, distinct, func, select
from sqlalchemy.orm import Session

from rules.baselines import EXCEPTION_KINDS as EXCEPTION_TYPES
from storage.db import upsert_insert
from storage.models import PatternCount, Transaction


@dataclass(frozen=True)
class CardExceptions:
    fingerprint: str
    refunds: int
    voids: int
    amount: Decimal  # of those refunds and voids


@dataclass(frozen=True)
class Window:
    since: datetime  # exclusive
    until: datetime  # inclusive: the transaction itself is in its own window

    def holds(self) -> ColumnElement[bool]:
        """Transactions of a known store and register that occurred in the window (unplaced ones count nowhere)."""
        return and_(
            Transaction.occurred_at > self.since, Transaction.occurred_at <= self.until, Transaction.placed.is_(True)
        )


class PatternRepository:
    def __init__(self, session: Session):
        self._session = session

    def count(
        self, *, store_id: str, day: date, kind: str, subjects: list[tuple[str, str]], amount: Decimal = Decimal(0)
    ) -> None:
        """Add one event of ``kind`` on ``day`` to each (dimension, subject) of the store."""
        for dimension, subject in subjects:
            statement = upsert_insert(self._session, PatternCount).values(
                store_id=store_id, dimension=dimension, subject=subject, day=day, kind=kind, count=1, amount=amount
            )
            self._session.execute(
                statement.on_conflict_do_update(
                    index_elements=["store_id", "dimension", "subject", "day", "kind"],
                    set_={"count": PatternCount.count + 1, "amount": PatternCount.amount + statement.excluded.amount},
                )
            )

    def cashier_types(self, store_id: str, cashier_id: str, window: Window) -> dict[str, int]:
        """This cashier's transactions in the window by type."""
        query = (
            select(Transaction.type, func.count())
            .where(Transaction.store_id == store_id, Transaction.cashier_id == cashier_id, window.holds())
            .group_by(Transaction.type)
        )
        return {kind: int(n) for kind, n in self._session.execute(query)}

    def register_exceptions(self, store_id: str, register_id: str, window: Window) -> int:
        return self._count(
            Transaction.store_id == store_id,
            Transaction.register_id == register_id,
            Transaction.type.in_(EXCEPTION_TYPES),
            window.holds(),
        )

    def store_exceptions(self, store_id: str, window: Window) -> int:
        return self._count(Transaction.store_id == store_id, Transaction.type.in_(EXCEPTION_TYPES), window.holds())

    def card_uses(self, card_fingerprint: str, window: Window) -> tuple[int, int]:
        """(transactions, different stores) with this card in the window, in any store."""
        query = select(func.count(), func.count(distinct(Transaction.store_id))).where(
            Transaction.card_fingerprint == card_fingerprint, window.holds()
        )
        uses, stores = self._session.execute(query).one()
        return int(uses or 0), int(stores or 0)

    def card_refunds(self, card_fingerprint: str, window: Window) -> int:
        return self._count(
            Transaction.card_fingerprint == card_fingerprint, Transaction.type == "refund", window.holds()
        )

    def _count(self, *conditions: ColumnElement[bool]) -> int:
        return int(self._session.scalar(select(func.count()).select_from(Transaction).where(*conditions)) or 0)

    def daily_counts(self, store_id: str, dimension: str, first_day: date, last_day: date) -> dict[str, dict[str, int]]:
        """Counts per subject and kind over [first_day, last_day] (store-local days)."""
        query = (
            select(PatternCount.subject, PatternCount.kind, func.sum(PatternCount.count))
            .where(
                PatternCount.store_id == store_id,
                PatternCount.dimension == dimension,
                PatternCount.day >= first_day,
                PatternCount.day <= last_day,
            )
            .group_by(PatternCount.subject, PatternCount.kind)
        )
        counts: dict[str, dict[str, int]] = defaultdict(dict)
        for subject, kind, total in self._session.execute(query):
            counts[subject][kind] = int(total or 0)
        return dict(counts)

    def top_cards(self, store_id: str, first_day: date, last_day: date, limit: int) -> list[CardExceptions]:
        """The cards with most refunds and voids in the store over [first_day, last_day], most first."""
        refunds = func.sum(case((PatternCount.kind == "refund", PatternCount.count), else_=0))
        voids = func.sum(case((PatternCount.kind == "void", PatternCount.count), else_=0))
        query = (
            select(PatternCount.subject, refunds, voids, func.sum(PatternCount.amount))
            .where(
                PatternCount.store_id == store_id,
                PatternCount.dimension == "card",
                PatternCount.day >= first_day,
                PatternCount.day <= last_day,
                PatternCount.kind.in_(("refund", "void")),
            )
            .group_by(PatternCount.subject)
            .order_by((refunds + voids).desc(), PatternCount.subject)
            .limit(limit)
        )
        return [
            CardExceptions(subject, int(r or 0), int(v or 0), Decimal(str(amount or 0)))
            for subject, r, v, amount in self._session.execute(query)
        ]

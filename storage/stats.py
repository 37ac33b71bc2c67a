"""Counts for `stats`, digests and rule precision: indexed aggregate queries, never a scan in Python."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from storage.models import Alert, Snapshot, Transaction


@dataclass
class StoreStats:
    store_id: str
    transactions: int = 0
    pictures: int = 0
    alerts_by_rule: dict[str, int] = field(default_factory=dict)
    confirmed: int = 0
    dismissed: int = 0
    open: int = 0
    open_older_than_a_day: int = 0
    loss_prevented: dict[str, Decimal] = field(default_factory=dict)  # currency -> amount


def store_stats(
    session: Session, store_ids: tuple[str, ...], since: datetime, now: datetime, until: datetime | None = None
) -> list[StoreStats]:
    """Counts of [since, until) (until: now); ``open_older_than_a_day`` is as of now, whatever the period."""
    stats = {s: StoreStats(s) for s in store_ids}
    until = until or datetime(9999, 1, 1, tzinfo=UTC)  # no end: up to now and what is arriving
    transactions = session.execute(
        select(Transaction.store_id, func.count())
        .where(Transaction.store_id.in_(store_ids), Transaction.received_at >= since, Transaction.received_at < until)
        .group_by(Transaction.store_id)
    )
    for store_id, n in transactions:
        stats[store_id].transactions = n
    pictures = session.execute(
        select(Snapshot.store_id, func.count())
        .where(
            Snapshot.store_id.in_(store_ids),
            Snapshot.created_at >= since,
            Snapshot.created_at < until,
            Snapshot.status == "ready",
        )
        .group_by(Snapshot.store_id)
    )
    for store_id, n in pictures:
        stats[store_id].pictures = n
    alerts = session.execute(
        select(Alert.store_id, Alert.rule, Alert.status, func.count())
        .where(Alert.store_id.in_(store_ids), Alert.created_at >= since, Alert.created_at < until)
        .group_by(Alert.store_id, Alert.rule, Alert.status)
    )
    for store_id, rule, status, n in alerts:
        entry = stats[store_id]
        entry.alerts_by_rule[rule] = entry.alerts_by_rule.get(rule, 0) + n
        setattr(entry, status, getattr(entry, status) + n)
    stale = session.execute(
        select(Alert.store_id, func.count())
        .where(Alert.store_id.in_(store_ids), Alert.status == "open", Alert.created_at < now - timedelta(days=1))
        .group_by(Alert.store_id)
    )
    for store_id, n in stale:
        stats[store_id].open_older_than_a_day = n
    # Loss prevented, an estimate: the totals of the transactions behind confirmed alerts, each counted once.
    confirmed = (
        select(Alert.transaction_id)
        .where(
            Alert.store_id.in_(store_ids),
            Alert.status == "confirmed",
            Alert.created_at >= since,
            Alert.created_at < until,
        )
        .distinct()
    )
    totals = session.execute(
        select(Transaction.store_id, Transaction.currency, func.sum(Transaction.total_amount))
        .where(Transaction.transaction_id.in_(confirmed))
        .group_by(Transaction.store_id, Transaction.currency)
    )
    for store_id, currency, total in totals:
        stats[store_id].loss_prevented[currency] = Decimal(str(total or 0))
    return [stats[s] for s in store_ids]


def rule_precision(
    session: Session, store_ids: tuple[str, ...], since: datetime | None = None, until: datetime | None = None
) -> dict[str, tuple[int, int]]:
    """Per rule: (confirmed, decided). Precision is confirmed / decided; open alerts are not counted."""
    query = (
        select(Alert.rule, Alert.status, func.count())
        .where(Alert.store_id.in_(store_ids), Alert.status.in_(("confirmed", "dismissed")))
        .group_by(Alert.rule, Alert.status)
    )
    if since is not None:
        query = query.where(Alert.created_at >= since)
    if until is not None:
        query = query.where(Alert.created_at < until)
    result: dict[str, tuple[int, int]] = {}
    for rule, status, n in session.execute(query):
        confirmed, decided = result.get(rule, (0, 0))
        result[rule] = (confirmed + (n if status == "confirmed" else 0), decided + n)
    return result


def alerts_by_rule(session: Session, store_id: str, since: datetime, until: datetime) -> dict[str, dict[str, int]]:
    """The store's alerts created in [since, until): per rule, how many stand open, confirmed or dismissed."""
    query = (
        select(Alert.rule, Alert.status, func.count())
        .where(Alert.store_id == store_id, Alert.created_at >= since, Alert.created_at < until)
        .group_by(Alert.rule, Alert.status)
    )
    result: dict[str, dict[str, int]] = {}
    for rule, status, n in session.execute(query):
        result.setdefault(rule, {})[status] = n
    return result


def alert_ids_by_subject(
    session: Session,
    store_id: str,
    since: datetime,
    until: datetime,
    *,
    cashiers: tuple[str, ...],
    registers: tuple[str, ...],
) -> dict[tuple[str, str], list[str]]:
    """Public ids of the store's alerts in [since, until) per ("cashier"|"register", id), newest first.

    The cashier is the alert's transaction's (an outer join: a purged transaction leaves the register)."""
    query = (
        select(Alert.id, Alert.register_id, Transaction.cashier_id)
        .outerjoin(Transaction, Transaction.transaction_id == Alert.transaction_id)
        .where(
            Alert.store_id == store_id,
            Alert.created_at >= since,
            Alert.created_at < until,
            or_(Alert.register_id.in_(registers), Transaction.cashier_id.in_(cashiers)),
        )
        .order_by(Alert.id.desc())
    )
    found: dict[tuple[str, str], list[str]] = {}
    for alert_id, register_id, cashier_id in session.execute(query):
        if register_id in registers:
            found.setdefault(("register", register_id), []).append(f"A-{alert_id}")
        if cashier_id in cashiers:
            found.setdefault(("cashier", cashier_id), []).append(f"A-{alert_id}")
    return found


class StatsQueries:
    """The counts behind ``stats``, the digest and the pattern report, for one unit of work (``uow.stats``)."""

    def __init__(self, session: Session):
        self._session = session

    def store_stats(
        self, store_ids: tuple[str, ...], since: datetime, now: datetime, until: datetime | None = None
    ) -> list[StoreStats]:
        return store_stats(self._session, store_ids, since, now, until=until)

    def rule_precision(
        self, store_ids: tuple[str, ...], since: datetime | None = None, until: datetime | None = None
    ) -> dict[str, tuple[int, int]]:
        return rule_precision(self._session, store_ids, since, until)

    def alerts_by_rule(self, store_id: str, since: datetime, until: datetime) -> dict[str, dict[str, int]]:
        return alerts_by_rule(self._session, store_id, since, until)

    def alert_ids_by_subject(
        self, store_id: str, since: datetime, until: datetime, *, cashiers: tuple[str, ...], registers: tuple[str, ...]
    ) -> dict[tuple[str, str], list[str]]:
        return alert_ids_by_subject(self._session, store_id, since, until, cashiers=cashiers, registers=registers)

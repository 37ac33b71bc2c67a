"""Alerts and the watchlist as the read API and handlers see them."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from storage.models import Alert, WatchlistPerson
from storage.watchlist_entries import LISTED


class AlertRepository:
    def __init__(self, session: Session):
        self._session = session

    def get(self, public_id: str) -> Alert | None:
        number = parse_alert_id(public_id)
        return self._session.get(Alert, number) if number is not None else None

    def list(self, *, status: str | None = None, store_ids: set[str] | None = None, since: datetime | None = None,
             limit: int = 200) -> list[Alert]:
        query = select(Alert).order_by(Alert.id.desc()).limit(limit)
        if since is not None:
            query = query.where(Alert.created_at >= since)
        if status is not None:
            query = query.where(Alert.status == status)
        if store_ids is not None:
            query = query.where(Alert.store_id.in_(store_ids))
        return list(self._session.scalars(query))

    def add(self, alert: Alert) -> None:
        self._session.add(alert)
        self._session.flush()  # the id names the alert in the notify step enqueued beside it

    def by_dedupe_key(self, key: str) -> Alert | None:
        return self._session.scalar(select(Alert).where(Alert.dedupe_key == key))

    def recent(self, *, rule: str, store_id: str, person_id: str | None, register_id: str | None,
               since: datetime) -> bool:
        """Is there an alert of this rule, for this person (or else this register), since then (cool-down)?"""
        query = exists().where(Alert.rule == rule, Alert.store_id == store_id, Alert.created_at >= since)
        if person_id is not None:
            query = query.where(Alert.person_id == person_id)
        elif register_id is not None:
            query = query.where(Alert.register_id == register_id)
        return bool(self._session.scalar(select(query)))

    def ids_for_transaction(self, transaction_id: str) -> list[str]:
        query = select(Alert.id).where(Alert.transaction_id == transaction_id).order_by(Alert.id)
        return [f"A-{n}" for n in self._session.scalars(query)]

    def watchlist(self, *, include_inactive: bool = False) -> list[WatchlistPerson]:
        query = select(WatchlistPerson).order_by(WatchlistPerson.enrolled_at)
        if not include_inactive:
            query = query.where(WatchlistPerson.status.in_(LISTED))
        return list(self._session.scalars(query))


def parse_alert_id(public_id: str) -> int | None:
    """'A-1042', 'a-1042' and '1042' all name alert 1042: people type these on phones."""
    text = public_id.strip().upper().removeprefix("A-")
    # isdigit() alone also admits superscripts such as "²", which int() refuses; ids beyond the
    # 32-bit key column make PostgreSQL raise instead of finding nothing.
    return int(text) if text.isdecimal() and len(text) <= 12 and int(text) <= MAX_ALERT_ID else None


MAX_ALERT_ID = 2**31 - 1

"""Alerts and the watchlist as the read API and handlers see them."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from storage.models import Alert, Transaction, WatchlistPerson
from storage.watchlist_entries import LISTED

# How far back an alert's card looks for the same person's other alerts in the store: one visit
# (the door, then a register) is well within an hour. Fixed rather than the rule's cool-down, so a
# card rebuilt later (the console, the read API) names the same alerts after the rules changed.
SIGHTINGS_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class Sighting:
    """An earlier alert of the same person in the same store, and the moment its own card shows."""

    alert: Alert
    at: datetime  # the payment's time at a register, the alert's at the entrance


class AlertRepository:
    def __init__(self, session: Session):
        self._session = session

    def get(self, public_id: str) -> Alert | None:
        number = parse_alert_id(public_id)
        return self._session.get(Alert, number) if number is not None else None

    def list(
        self,
        *,
        status: str | None = None,
        store_ids: set[str] | None = None,
        since: datetime | None = None,
        limit: int = 200,
    ) -> list[Alert]:
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

    def recent(
        self,
        *,
        rule: str,
        store_id: str,
        person_id: str | None,
        register_id: str | None,
        camera_serial: str | None,
        since: datetime,
    ) -> bool:
        """Is there an alert of this rule, for this person (if any), at this place, since then (cool-down)?

        The place is the register at a checkout, else the entrance camera: a person alerted at the
        door still gets a card at the register (docs/product.md, flow 6)."""
        query = exists().where(Alert.rule == rule, Alert.store_id == store_id, Alert.created_at >= since)
        if person_id is not None:
            query = query.where(Alert.person_id == person_id)
        if register_id is not None:
            query = query.where(Alert.register_id == register_id)
        else:
            query = query.where(Alert.register_id.is_(None), Alert.camera_serial == camera_serial)
        return bool(self._session.scalar(select(query)))

    # `builtins.list` from here on: in the class body, `list` is the method above.
    def sightings(
        self, alerts: builtins.list[Alert], *, window: timedelta = SIGHTINGS_WINDOW
    ) -> dict[int, builtins.list[Sighting]]:
        """For each alert of a watchlist person, that person's earlier alerts in its store within ``window``,
        newest first; those of the same checkout or entrance picture are the same moment, so left out.
        One query for any number of alerts (the read API's list)."""
        subjects = [a for a in alerts if a.person_id is not None]
        if not subjects:
            return {}
        query = (
            select(Alert, Transaction.occurred_at)
            .outerjoin(Transaction, Transaction.transaction_id == Alert.transaction_id)
            .where(
                Alert.person_id.in_({a.person_id for a in subjects}),
                Alert.store_id.in_({a.store_id for a in subjects}),
                Alert.created_at >= min(a.created_at for a in subjects) - window,
                Alert.id < max(a.id for a in subjects),
            )
            .order_by(Alert.id.desc())
        )
        found = [
            Sighting(alert, occurred_at or alert.created_at) for alert, occurred_at in self._session.execute(query)
        ]
        return {a.id: [s for s in found if _earlier_sighting(s.alert, a, window)] for a in subjects}

    def ids_for_transaction(self, transaction_id: str) -> builtins.list[str]:
        query = select(Alert.id).where(Alert.transaction_id == transaction_id).order_by(Alert.id)
        return [f"A-{n}" for n in self._session.scalars(query)]

    def watchlist(self, *, include_inactive: bool = False) -> builtins.list[WatchlistPerson]:
        query = select(WatchlistPerson).order_by(WatchlistPerson.enrolled_at)
        if not include_inactive:
            query = query.where(WatchlistPerson.status.in_(LISTED))
        return list(self._session.scalars(query))


def _earlier_sighting(other: Alert, alert: Alert, window: timedelta) -> bool:
    if other.id >= alert.id or other.person_id != alert.person_id or other.store_id != alert.store_id:
        return False
    if other.created_at < alert.created_at - window:
        return False
    if alert.transaction_id is not None:
        return other.transaction_id != alert.transaction_id
    return other.transaction_id is not None or other.snapshot_id != alert.snapshot_id


def parse_alert_id(public_id: str) -> int | None:
    """'A-1042', 'a-1042' and '1042' all name alert 1042: people type these on phones."""
    text = public_id.strip().upper().removeprefix("A-")
    # isdigit() alone also admits superscripts such as "²", which int() refuses; ids beyond the
    # 32-bit key column make PostgreSQL raise instead of finding nothing.
    return int(text) if text.isdecimal() and len(text) <= 12 and int(text) <= MAX_ALERT_ID else None


MAX_ALERT_ID = 2**31 - 1

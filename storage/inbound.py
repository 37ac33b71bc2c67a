"""Webex events as they arrive (``inbound_events``): stored before they are handled, once per id.

Both Webex transports deliver again after a reconnect or a slow answer, so the event's own id
(message id or attachment action id) is the primary key and a redelivery inserts nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage.db import upsert_insert
from storage.models import InboundEvent
from storage.rows import rows_affected


def record_event(session: Session, *, event_id: str, source: str, payload: dict[str, Any], now: datetime) -> bool:
    """Insert the event unless its id was ever stored; False for a redelivery.

    INSERT … ON CONFLICT DO NOTHING rather than check-then-insert: two deliveries racing on
    PostgreSQL would otherwise both pass the check and one would fail the whole transaction.
    """
    statement = (
        upsert_insert(session, InboundEvent)
        .values(
            id=event_id,
            source=source,
            payload=payload,
            received_at=now,
            handled_at=None,
        )
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(InboundEvent.id)
    )
    # RETURNING, not rowcount: psycopg reports no reliable rowcount for ON CONFLICT DO NOTHING.
    return session.execute(statement).scalar() is not None


def get(session: Session, event_id: str) -> InboundEvent | None:
    return session.get(InboundEvent, event_id)


def mark_handled(session: Session, event_id: str, now: datetime) -> bool:
    """Record that the event's effects are done; False if unknown or already handled (keeps the first time)."""
    result = session.execute(
        update(InboundEvent)
        .where(InboundEvent.id == event_id, InboundEvent.handled_at.is_(None))
        .values(handled_at=now)
    )
    return rows_affected(result) == 1


class InboundEvents:
    """``inbound_events`` for one unit of work (``uow.inbound``)."""

    def __init__(self, session: Session):
        self._session = session

    def record(self, *, event_id: str, source: str, payload: dict[str, Any], now: datetime) -> bool:
        return record_event(self._session, event_id=event_id, source=source, payload=payload, now=now)

    def get(self, event_id: str) -> InboundEvent | None:
        return get(self._session, event_id)

    def mark_handled(self, event_id: str, now: datetime) -> bool:
        return mark_handled(self._session, event_id, now)

    def newest_of(self, source: str, *, limit: int) -> list[InboundEvent]:
        """The latest ``limit`` events of one source, newest first (the console's threads)."""
        query = (
            select(InboundEvent)
            .where(InboundEvent.source == source)
            .order_by(InboundEvent.received_at.desc())
            .limit(limit)
        )
        return list(self._session.scalars(query))

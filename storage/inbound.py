"""Webex events as they arrive (``inbound_events``): stored before they are handled, once per id.

Both Webex transports deliver again after a reconnect or a slow answer, so the event's own id
(message id or attachment action id) is the primary key and a redelivery inserts nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
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

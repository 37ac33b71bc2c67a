"""The outbox: messages to send to Webex, written in the same transaction as what they tell."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.steps import StepKind
from storage.models import OutboxMessage


class Outbox:
    def __init__(self, session: Session, enqueue: Any):
        self._session = session
        self._enqueue = enqueue  # WorkQueue.enqueue: every message is delivered by a work item

    def add(
        self,
        *,
        key: str,
        room_id: str,
        now: datetime,
        markdown: str = "",
        card: dict | None = None,
        file: dict | None = None,
        parent: OutboxMessage | None = None,
        parent_message_id: str | None = None,
        alert_id: int | None = None,
    ) -> OutboxMessage:
        """Queue one message (idempotent by ``key``); ``parent`` threads it under a message we send first."""
        existing = self.by_key(key)
        if existing is not None:
            return existing
        message = OutboxMessage(
            dedupe_key=key,
            room_id=room_id,
            alert_id=alert_id,
            file_sha256=file["sha256"] if file else None,
            parent_outbox_id=parent.id if parent else None,
            status="pending",
            attempts=0,
            payload={"markdown": markdown, "card": card, "file": file, "parent_message_id": parent_message_id},
            next_attempt_at=now,
            created_at=now,
        )
        self._session.add(message)
        self._session.flush()
        self._enqueue(kind=StepKind.DELIVER, key=str(message.id), ref_id=str(message.id), run_at=now, now=now)
        return message

    def add_failed(
        self, *, key: str, room_id: str, now: datetime, markdown: str, error: str, alert_id: int | None = None
    ) -> OutboxMessage:
        """Record a message that could not even be built (its step died): failed at once, with no delivery step,
        so `status` and the console show it as they show a message Webex refused."""
        existing = self.by_key(key)
        if existing is not None:
            return existing
        message = OutboxMessage(
            dedupe_key=key,
            room_id=room_id,
            alert_id=alert_id,
            attempts=0,
            payload={"markdown": markdown, "card": None, "file": None, "parent_message_id": None},
            next_attempt_at=now,
            created_at=now,
        )
        message.fail(error, now)
        self._session.add(message)
        self._session.flush()
        return message

    def failures(self, *, since: datetime) -> tuple[int, OutboxMessage | None]:
        """How many messages failed since then (whenever they were queued), and the latest to fail (for `status`)."""
        failed = (OutboxMessage.status == "failed", OutboxMessage.failed_at >= since)
        count = self._session.scalar(select(func.count()).select_from(OutboxMessage).where(*failed)) or 0
        latest = select(OutboxMessage).where(*failed).order_by(OutboxMessage.failed_at.desc(), OutboxMessage.id.desc())
        newest = self._session.scalars(latest).first()
        return int(count), newest

    def get(self, message_id: int) -> OutboxMessage | None:
        return self._session.get(OutboxMessage, message_id)

    def by_key(self, key: str) -> OutboxMessage | None:
        return self._session.scalar(select(OutboxMessage).where(OutboxMessage.dedupe_key == key))

    def children(self, message_id: int) -> list[OutboxMessage]:
        return list(self._session.scalars(select(OutboxMessage).where(OutboxMessage.parent_outbox_id == message_id)))

    def for_alert(self, alert_id: int) -> list[OutboxMessage]:
        query = select(OutboxMessage).where(OutboxMessage.alert_id == alert_id).order_by(OutboxMessage.id)
        return list(self._session.scalars(query))

"""The append-only audit log: who did what to which id, with a reason code. Never free text."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import AuditEntry


class AuditLog:
    def __init__(self, session: Session):
        self._session = session

    def record(
        self,
        *,
        at: datetime,
        actor: str,
        action: str,
        subject_type: str,
        subject_id: str,
        store_id: str | None = None,
        reason_code: str | None = None,
        outcome: str = "ok",
    ) -> None:
        self._session.add(
            AuditEntry(
                at=at,
                actor=actor,
                action=action,
                subject_type=subject_type,
                subject_id=subject_id,
                store_id=store_id,
                reason_code=reason_code,
                outcome=outcome,
            )
        )

    def entries(self, *, subject_id: str | None = None, limit: int = 1000) -> list[AuditEntry]:
        query = select(AuditEntry).order_by(AuditEntry.id).limit(limit)
        if subject_id is not None:
            query = query.where(AuditEntry.subject_id == subject_id)
        return list(self._session.scalars(query))

"""Open console sessions (``console_sessions``): created at sign-in, looked up on every console request, deleted
at sign-out. The cookie carries a random id; only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from storage.models import ConsoleSession


class ConsoleSessions:
    def __init__(self, session: Session):
        self._session = session

    def open(self, email: str, *, now: datetime, lasts: timedelta) -> str:
        """A new session of ``email``: the id to put in the cookie (sessions run out are removed on the way)."""
        self._session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
        session_id = secrets.token_urlsafe(32)
        self._session.add(
            ConsoleSession(id_sha256=_digest(session_id), email=email, created_at=now, expires_at=now + lasts)
        )
        return session_id

    def is_open(self, session_id: str, email: str, *, now: datetime) -> bool:
        query = select(ConsoleSession.expires_at).where(
            ConsoleSession.id_sha256 == _digest(session_id), ConsoleSession.email == email
        )
        expires_at = self._session.scalar(query)
        return expires_at is not None and expires_at > now

    def close(self, session_id: str) -> None:
        self._session.execute(delete(ConsoleSession).where(ConsoleSession.id_sha256 == _digest(session_id)))


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()

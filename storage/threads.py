"""Webex threads as the outbox knows them: which of our messages a Webex id is, and its thread's root.

Webex threads are one level deep, so an answer to a press on a card that is itself a thread
reply (an enrollment proposal under an alert card) must name the thread's root, not the card.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import OutboxMessage


def by_webex_id(session: Session, webex_message_id: str) -> OutboxMessage | None:
    if not webex_message_id:
        return None
    return session.scalars(select(OutboxMessage).where(OutboxMessage.webex_message_id == webex_message_id)).first()


def known_root(session: Session, webex_message_id: str) -> str | None:
    """The Webex id of the thread root of one of our messages; None when the message is not (or no longer) ours."""
    ours = by_webex_id(session, webex_message_id)
    if ours is None:
        return None
    if ours.parent_outbox_id is not None:
        parent = session.get(OutboxMessage, ours.parent_outbox_id)
        if parent is not None and parent.webex_message_id:
            return parent.webex_message_id
    return (ours.payload or {}).get("parent_message_id") or webex_message_id


def detach_files(session: Session, key_prefix: str) -> set[str]:
    """Unlink the files of our messages whose key starts with ``key_prefix``; return those files.

    For erasure: a message already sent keeps its text, and one not yet sent goes without its file."""
    rows = session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.dedupe_key.startswith(key_prefix, autoescape=True), OutboxMessage.file_sha256.is_not(None)
        )
    )
    files: set[str] = set()
    for row in rows:
        if row.file_sha256 is not None:  # always, by the query; for the type checker
            files.add(row.file_sha256)
        row.file_sha256 = None
        row.payload = {**(row.payload or {}), "file": None}
    session.flush()
    return files


class Threads:
    """Webex threads as our outbox knows them, for one unit of work (``uow.threads``)."""

    def __init__(self, session: Session):
        self._session = session

    def known_root(self, webex_message_id: str) -> str | None:
        return known_root(self._session, webex_message_id)

    def detach_files(self, key_prefix: str) -> set[str]:
        return detach_files(self._session, key_prefix)

"""The answer to one chat command or card press: outbox messages in the event's thread, keyed by the event."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from storage.uow import UnitOfWork


class Answer(Protocol):
    """What a handler answers through: a Webex ``Reply``, or the console's (handlers/console/presses.py)."""

    def __call__(self, markdown: str, *, card: dict | None = None, file: dict | None = None) -> None: ...


@dataclass
class Reply:
    """Answers go where the event came from, threaded; each is an outbox message keyed by the event."""

    work: UnitOfWork
    room_id: str
    thread_id: str | None
    event_id: str
    now: Any
    sent: list[str] = field(default_factory=list)

    def __call__(self, markdown: str, *, card: dict | None = None, file: dict | None = None) -> None:
        self.work.outbox.add(
            key=f"reply:{self.event_id}:{len(self.sent)}",
            room_id=self.room_id,
            now=self.now,
            markdown=markdown,
            card=card,
            file=file,
            parent_message_id=self.thread_id,
        )
        self.sent.append(markdown)

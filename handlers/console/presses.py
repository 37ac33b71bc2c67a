"""The review console's side of the handlers: a button pressed in the browser is a ``CardAction`` like a
Webex press, dispatched through the same router with the same role checks, refusals and audit.

A press is stored first (``inbound_events``, source ``console``, keyed by the browser's own event
id, so a double submit acts once), then handled in the same transaction; the replies are kept on
the stored event and shown in the alert's thread. When the alert's card went to Webex, the replies
are threaded under it there too, through the outbox, so the space sees decisions made here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cards.actions import INPUT_NOTE, INPUT_REASON, button_title
from core.clock import Clock
from core.config import Config
from core.events import CardAction, ChatCommand, ConsoleCommand, ConsolePress
from core.router import Router, UserError, refuse_card_numbers
from handlers.chat.dispatch import dispatch_event, visible_subject
from storage.models import OutboxMessage
from storage.rows import present
from storage.uow import UnitOfWork

SOURCE = "console"
ROOM = "console"  # not a Webex space: a person's presses count in the stores where they have a role
EVENT_ID = re.compile(r"^console:[0-9a-f]{32}$")
MAX_DATA_BYTES = 8 * 1024
FREE_TEXT_INPUTS = (INPUT_REASON, INPUT_NOTE)  # what a person types on a card (the dismiss note, enrollment reason)


@dataclass
class ConsoleReply:
    """The ``reply`` handlers call: answers are kept for the thread and, when the alert is in Webex, queued there."""

    work: UnitOfWork
    event_id: str
    now: datetime
    webex_root: OutboxMessage | None = None
    replies: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, markdown: str, *, card: dict | None = None, file: dict | None = None) -> None:
        self.replies.append({"markdown": markdown, "card": card})
        if self.webex_root is not None:
            self.work.outbox.add(
                key=f"{self.event_id}:{len(self.replies) - 1}",
                room_id=self.webex_root.room_id,
                now=self.now,
                markdown=markdown,
                card=card,
                file=file,
                parent=self.webex_root,
                alert_id=self.webex_root.alert_id,
            )


@dataclass(frozen=True)
class PressResult:
    replies: list[dict[str, Any]]
    duplicate: bool = False


def thread_of(uow: UnitOfWork, config: Config, email: str, data: dict[str, Any]) -> str:
    """The thread a press belongs to: the alert it is about, else its transaction or watchlist person; none ("")
    when that is not the person's to see, so a press on another store's alert leaves no trace in its thread."""
    return visible_subject(uow, config, email, data)


def press(
    pressed: ConsolePress,
    *,
    uow: UnitOfWork,
    router: Router,
    config: Config,
    clock: Clock,
    dependencies: dict[str, Any],
) -> PressResult:
    """Store the press, run its handler as the person and keep the replies; a repeated event id acts once."""
    event_id, data, email, now = pressed.event_id, pressed.data, pressed.person_email, clock()
    try:
        # Before the press is stored: its data would keep the number in inbound_events.
        refuse_card_numbers(**{name: data.get(name) for name in FREE_TEXT_INPUTS})
    except UserError as error:
        return PressResult([{"markdown": error.reply, "card": None}])
    thread = thread_of(uow, config, email, data)
    action = str(data.get("action", ""))
    # Others read the title in the thread: it is our card's, never what the browser sent (``pressed.title``).
    payload = {"thread": thread, "person_email": email, "title": button_title(action), "data": data, "replies": []}
    if not uow.inbound.record(event_id=event_id, source=SOURCE, payload=payload, now=now):
        stored = uow.inbound.get(event_id)
        return PressResult(list(stored.payload.get("replies", [])) if stored else [], duplicate=True)
    event = CardAction(
        event_id=event_id,
        action=action,
        data=data,
        person_id=f"console:{email}",
        person_email=email,
        room_id=ROOM,
        message_id=f"console:{thread}",
    )
    reply = ConsoleReply(uow, event_id, now, webex_root=_webex_card(uow, data) if thread else None)
    dispatch_event(event, uow, reply, router, config, now, dependencies)
    stored = present(uow.inbound.get(event_id), f"console event {event_id}")  # recorded above
    stored.payload = {**payload, "replies": reply.replies}  # a new dict: JSON columns do not track changes in place
    uow.inbound.mark_handled(event_id, now)
    uow.commit()
    return PressResult(reply.replies)


def run_command(
    asked: ConsoleCommand,
    *,
    uow: UnitOfWork,
    router: Router,
    config: Config,
    clock: Clock,
    dependencies: dict[str, Any],
) -> list[dict[str, Any]]:
    """A chat command as the console's pages use it (``stats``): same handler, same role check, answers returned."""
    word, args, email, now = asked.word, asked.args, asked.person_email, clock()
    event_id = f"console-command:{now.timestamp():.6f}"
    command = ChatCommand(
        event_id=event_id,
        message_id=event_id,
        room_id=ROOM,
        room_type="direct",
        person_id=f"console:{email}",
        person_email=email,
        text=" ".join((word, *args)),
        word=word,
        args=args,
        thread_id=event_id,
    )
    reply = ConsoleReply(uow, event_id, now)
    dispatch_event(command, uow, reply, router, config, now, dependencies)
    uow.commit()  # a refusal is audited
    return reply.replies


def threads(uow: UnitOfWork, *, limit: int = 2000) -> dict[str, list[dict[str, Any]]]:
    """Console presses and their replies, oldest first, grouped by thread (alert, transaction or person id)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for event in reversed(uow.inbound.newest_of(SOURCE, limit=limit)):
        payload = event.payload or {}
        grouped.setdefault(str(payload.get("thread", "")), []).append(
            {
                "id": event.id,
                "at": event.received_at,
                "person_email": payload.get("person_email", ""),
                "title": payload.get("title") or str((payload.get("data") or {}).get("action", "")),
                "replies": payload.get("replies", []),
                "handled": event.handled_at is not None,
            }
        )
    return grouped


def _webex_card(uow: UnitOfWork, data: dict[str, Any]) -> OutboxMessage | None:
    """The alert's card message in the store's Webex space, when the notify step queued one."""
    alert = uow.alerts.get(str(data.get("alert_id") or ""))
    return uow.outbox.by_key(f"alert:{alert.id}:card") if alert is not None else None

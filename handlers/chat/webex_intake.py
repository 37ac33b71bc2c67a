"""Store a Webex message or card press once and schedule its handling: ack first, work later.

Both transports (webhook and websocket) end here, so they feed the same ``handle_event`` step.
A payload always carries ``resource`` ("messages" or "attachmentActions") and ``id``; the rest
are hints (the webhook's ``data``, or what the websocket activity said). Handlers read the
message or action itself through the Messenger, never from the payload alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeGuard

from core.clock import Clock
from core.steps import StepKind
from storage.uow import UnitOfWork

SOURCES = {"messages": "webex_message", "attachmentActions": "webex_action"}
# Webex ids are base64url ("ciscospark://<cluster>/MESSAGE/<uuid>"), about 80-110 characters;
# work_items.ref_id holds 128. The pattern also keeps ids safe to put in a REST path.
EVENT_ID = re.compile(r"^[A-Za-z0-9_=-]{1,128}$")


@dataclass(frozen=True)
class WebexEventReceived:
    event_id: str
    source: str  # webex_message | webex_action
    payload: dict[str, Any]


def valid_event_id(event_id: object) -> TypeGuard[str]:
    return isinstance(event_id, str) and EVENT_ID.fullmatch(event_id) is not None


def accept_event(uow: UnitOfWork, *, event_id: str, source: str, payload: dict[str, Any], now: datetime) -> bool:
    """Record the event and enqueue its ``handle_event`` step in the caller's transaction; False for a redelivery."""
    if not valid_event_id(event_id):
        raise ValueError("a Webex event id is 1-128 base64url characters")
    if source not in SOURCES.values():
        raise ValueError(f"unknown Webex event source {source!r}")
    if not uow.inbound.record(event_id=event_id, source=source, payload=payload, now=now):
        return False
    uow.work.enqueue(kind=StepKind.HANDLE_EVENT, key=event_id, ref_id=event_id, run_at=now, now=now)
    return True


def accept_webex_event(event: WebexEventReceived, *, uow: UnitOfWork, clock: Clock) -> bool:
    """``accept_event`` as a handler (for ``Services.handle``): stored and committed before anyone is answered."""
    accepted = accept_event(uow, event_id=event.event_id, source=event.source, payload=event.payload, now=clock())
    uow.commit()
    return accepted

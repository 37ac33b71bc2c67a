"""Webex websocket activities to stored events: the pure part of the websocket transport.

An activity (``conversation.activity`` with verb ``post`` or ``cardAction``) names a message or
card press by its conversation-service uuid; the REST id, which the handlers and the webhook
transport use, is resolved by the caller. Text and inputs arrive encrypted, so what is stored is
ids and hints: the ``handle_event`` step reads the message or action through the REST API.

Mercury frames are envelopes: ``{"id": <envelope id>, "data": {"eventType": ..., "activity": ...}}``.
The official SDK acknowledges each frame by that envelope id (its socket wraps the parsed frame as
``event.data`` and sends ``{"type": "ack", "messageId": event.data.id}``); the activity's id and the
REST message id mean nothing to Mercury as an ack.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from handlers.chat.webex_intake import SOURCES, WebexEventReceived, accept_webex_event, valid_event_id

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)

Accept = Callable[[str, str, dict[str, Any]], Any]  # (event_id, source, payload); stores, or raises
RESOURCES = {"post": "messages", "cardAction": "attachmentActions"}
RECENT_IDS = 2048
# What Mercury sends once it has accepted the authorization frame; the official SDK counts the socket
# as open only when one of these has come.
AUTHORIZATION_ACCEPTED = frozenset({"mercury.buffer_state", "mercury.registration_status"})


@dataclass(frozen=True)
class InboundActivity:
    event_id: str
    source: str
    payload: dict[str, Any]


def person_uuid(person_id: str) -> str | None:
    """The uuid inside a REST person id (base64 of ``ciscospark://<cluster>/PEOPLE/<uuid>``): what activities call actor.id."""
    try:
        decoded = base64.urlsafe_b64decode(person_id + "=" * (-len(person_id) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        return None
    return decoded.rsplit("/", 1)[-1] if decoded.startswith("ciscospark://") else None


def rest_id_like(rest_id: str, kind: str, uuid: Any) -> str | None:
    """The REST id of another object (``ROOM``, ``MESSAGE``) in the same cluster as ``rest_id``: REST ids are
    base64 of ``ciscospark://<cluster>/<KIND>/<uuid>``, and a conversation's uuid is its room's (the official JS
    SDK builds room ids from activities so: ``buildHydraRoomId``). None when either part is not of that form."""
    try:
        decoded = base64.urlsafe_b64decode(rest_id + "=" * (-len(rest_id) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        return None
    cluster, _, _rest = decoded.rpartition("/")[0].rpartition("/")
    if not decoded.startswith("ciscospark://") or not cluster or not isinstance(uuid, str) or not uuid:
        return None
    return base64.urlsafe_b64encode(f"{cluster}/{kind}/{uuid}".encode()).decode("ascii").rstrip("=")


def envelope_id(frame: dict[str, Any]) -> str | None:
    """The id to acknowledge a frame by: the envelope's own id, never the message's."""
    value = frame.get("id")
    return value if isinstance(value, str) and value else None


def authorization_accepted(frame: dict[str, Any]) -> bool:
    """Whether this frame is Mercury accepting our authorization (typed frames such as pongs are not events)."""
    data = frame.get("data")
    return "type" not in frame and isinstance(data, dict) and data.get("eventType") in AUTHORIZATION_ACCEPTED


def activity_event(activity: dict[str, Any], rest_id: str) -> InboundActivity:
    """The event to store for a ``post`` or ``cardAction`` activity whose REST id has been resolved."""
    resource = RESOURCES[activity["verb"]]
    actor, target = activity.get("actor") or {}, activity.get("target") or {}
    parent = activity.get("parent") or {}
    payload: dict[str, Any] = {
        "resource": resource,
        "id": rest_id,
        "activityId": activity.get("id"),
        "actorId": actor.get("id"),
        "personEmail": (actor.get("emailAddress") or "").lower() or None,
        "roomType": "direct" if "ONE_ON_ONE" in (target.get("tags") or []) else "group",
        "conversationId": target.get("id"),
    }
    if resource == "messages" and parent.get("type") == "reply":
        payload["parentActivityId"] = parent.get("id")
    elif resource == "attachmentActions":
        payload["messageActivityId"] = parent.get("id")
    # The REST names of its space and thread, as a webhook's event carries them: a step that dies can then still
    # answer there without asking Webex (handlers/chat/dispatch.py, settle_dead_event).
    spaces = {
        "roomId": rest_id_like(rest_id, "ROOM", target.get("id")),
        "parentId": rest_id_like(rest_id, "MESSAGE", payload.get("parentActivityId")),
        "messageId": rest_id_like(rest_id, "MESSAGE", payload.get("messageActivityId")),
    }
    payload.update({name: value for name, value in spaces.items() if value is not None})
    return InboundActivity(event_id=rest_id, source=SOURCES[resource], payload=payload)


class ActivityDispatcher:
    """Websocket message in, stored event out: the transport's "is this mine?" and "store it", without I/O of its own."""

    def __init__(self, accept: Accept, *, bot_person_id: str):
        self._accept = accept
        self._bot_uuid = person_uuid(bot_person_id) or bot_person_id
        self._recent: OrderedDict[str, str] = OrderedDict()  # event id -> "storing" | "stored"
        self._changed = threading.Condition()

    def dispatch(self, message: dict[str, Any], resolve_id: Callable[[dict[str, Any]], str | None]) -> bool:
        """Store the activity once; True when the frame may be acknowledged (stored, or nothing of ours to store)."""
        data = message.get("data") or {}
        activity = data.get("activity") or {}
        if data.get("eventType") != "conversation.activity" or activity.get("verb") not in RESOURCES:
            return True  # as the official SDK does: acknowledged, so Mercury does not send it again
        if (activity.get("actor") or {}).get("id") == self._bot_uuid:
            return True  # our own post coming back
        try:
            rest_id = resolve_id(activity)
        except Exception as exc:  # the library's lookup raises on timeouts and odd activities
            log.warning(
                "webex activity %s (%s) not acknowledged: resolving its REST id failed (%s)",
                activity.get("id"),
                activity["verb"],
                type(exc).__name__,
            )
            return False
        if not valid_event_id(rest_id):
            log.warning(
                "webex activity %s (%s) not acknowledged: its REST id could not be resolved",
                activity.get("id"),
                activity["verb"],
            )
            return False
        return self._store_once(activity_event(activity, rest_id))

    def _store_once(self, event: InboundActivity) -> bool:
        with self._changed:
            # A redelivery (its own envelope) while the first is being stored waits for that outcome.
            while self._recent.get(event.event_id) == "storing":
                self._changed.wait()
            if self._recent.get(event.event_id) == "stored":
                return True
            self._recent[event.event_id] = "storing"
            while len(self._recent) > RECENT_IDS:
                self._recent.popitem(last=False)
        stored = False
        try:
            self._accept(event.event_id, event.source, event.payload)
            stored = True
        except Exception as exc:
            # Only the type: database errors quote the payload (emails) in their message.
            log.error(
                "webex %s %s could not be stored (%s); not acknowledged",
                event.source,
                event.event_id,
                type(exc).__name__,
            )
        finally:
            with self._changed:
                if stored:
                    self._recent[event.event_id] = "stored"
                else:
                    self._recent.pop(event.event_id, None)
                self._changed.notify_all()
        return stored


def accept_into(services: Services) -> Accept:
    """The composition root's ``accept``: store and enqueue in one transaction, then wake the runner."""

    def accept(event_id: str, source: str, payload: dict[str, Any]) -> bool:
        accepted = services.handle(accept_webex_event, WebexEventReceived(event_id, source, payload), write=True)
        if accepted:
            services.wake_runner()
        return bool(accepted)

    return accept

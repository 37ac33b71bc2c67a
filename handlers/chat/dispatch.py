"""The step that handles one stored Webex event (a message or a card press) exactly once.

Webex sends only ids: the message or the action is fetched first, outside any transaction.
Then, in one transaction, the router runs the handler, the replies are queued in the outbox and
the event is marked handled, so a redelivered event (after a reconnect, or a webhook retry)
changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from core.clock import Clock
from core.config import Config
from core.events import CardAction, ChatCommand, parse_command
from core.messenger import Messenger, WebexError
from core.router import Refused, Router, UserError, entry_stores
from handlers.conversation.reply import Answer, Reply
from storage.uow import UnitOfWork
from storage.work_queue import ClaimedItem

log = logging.getLogger(__name__)


def job_handle_event(
    item: ClaimedItem,
    *,
    read_uow: Callable[[], UnitOfWork],
    uow: Callable[[], UnitOfWork],
    messenger: Messenger | None,
    router: Router,
    config: Config,
    clock: Clock,
    dependencies: dict[str, Any],
) -> None:
    event_id = item.ref_id or ""
    with read_uow() as work:
        stored = work.inbound.get(event_id)
        if stored is None or stored.handled_at is not None or messenger is None:
            return
        source = stored.source
    try:
        event = _fetch(source, event_id, messenger)
    except WebexError as exc:
        if exc.status != 404:
            raise
        # Deleted since, or a group message not meant for the bot: nothing to answer, nothing to retry.
        log.info(
            "event %s: its %s can no longer be read (404); ending it",
            event_id,
            "card action" if source == "webex_action" else "message",
        )
        event = None
    thread_root = _thread_root(event, messenger, read_uow) if event is not None else None
    with uow() as work:
        now = clock()
        if event is not None:
            reply = Reply(work, event.room_id, thread_root, event_id, now)
            dispatch_event(event, work, reply, router, config, now, dependencies)
        work.inbound.mark_handled(event_id, now)
        work.commit()


def settle_dead_event(work: UnitOfWork, item: ClaimedItem, error: str, now: datetime) -> None:
    """An event whose step died is marked handled (a redelivery changes nothing, as for any handled event),
    audited, and the person is asked to try again in its thread when the stored event names its space (a
    webhook's does; a websocket's does since it is stored with the REST ids of its space and thread).
    ``error`` stays on the work item: it may quote the person's message."""
    stored = work.inbound.get(item.ref_id or "")
    if stored is None or not work.inbound.mark_handled(stored.id, now):
        return
    payload = stored.payload or {}
    work.audit.record(
        at=now,
        actor="system",
        action="chat_event",
        subject_type="inbound_event",
        subject_id=stored.id,
        reason_code="step_failed",
    )
    room = payload.get("roomId")
    if not isinstance(room, str) or not room:
        return
    if stored.source == "webex_action":
        card = str(payload.get("messageId") or "")
        thread = (work.threads.known_root(card) or card) if card else None
    else:
        thread = payload.get("parentId") or stored.id  # a message's parentId is always a thread root
    work.outbox.add(
        key=f"event:{stored.id}:failed",
        room_id=room,
        now=now,
        markdown="⚠️ Sorry, something went wrong with that on my side. Please try again in a moment.",
        parent_message_id=thread,
    )


def _fetch(source: str, event_id: str, messenger: Messenger) -> ChatCommand | CardAction | None:
    """The event as a handler sees it; None for what is not for us (the bot's own messages)."""
    me = messenger.me()
    if source == "webex_action":
        action = messenger.attachment_action(event_id)
        if action.get("personId") == me.get("id"):
            return None
        inputs = dict(action.get("inputs") or {})
        email = messenger.person_email(action["personId"]) or ""
        return CardAction(
            event_id=event_id,
            action=str(inputs.get("action", "")),
            data=inputs,
            person_id=action["personId"],
            person_email=email.lower(),
            room_id=action["roomId"],
            message_id=action.get("messageId", ""),
        )
    message = messenger.message(event_id)
    if message.get("personId") == me.get("id"):
        return None
    word, args = parse_command(message.get("text", ""), bot_names=_names(me))
    return ChatCommand(
        event_id=event_id,
        message_id=message["id"],
        room_id=message["roomId"],
        room_type=message.get("roomType", "direct"),
        person_id=message["personId"],
        person_email=message.get("personEmail", "").lower(),
        text=message.get("text", ""),
        word=word,
        args=args,
        thread_id=message.get("parentId") or message["id"],
    )


def _names(me: dict[str, Any]) -> tuple[str, ...]:
    display = me.get("displayName", "")
    # Webex puts the display name (or its first word, for a short mention) before the command.
    return tuple(n for n in {display, display.split(" ")[0] if display else ""} if n)


def _thread_root(
    event: ChatCommand | CardAction, messenger: Messenger, read_uow: Callable[[], UnitOfWork]
) -> str | None:
    """Where every answer to this event goes: the root of its thread, never a reply (Webex threads are one level
    deep and refuse a reply to a reply with 400), refusals and input errors included.

    A message's ``parentId`` is always a root. A pressed card may itself be a reply (a proposal under an alert):
    our outbox knows its root; a card we no longer know (purged) is asked of Webex."""
    if isinstance(event, ChatCommand):
        return event.thread_id
    if not event.message_id:
        return None
    with read_uow() as work:
        known = work.threads.known_root(event.message_id)
    if known is not None:
        return known
    try:
        return messenger.message(event.message_id).get("parentId") or event.message_id
    except WebexError as exc:
        if exc.retry:
            raise  # busy or down: the step tries again, rather than answer where Webex may refuse it
        log.info("card message of action %s unreadable (%s): answering under it", event.event_id, exc.reason)
        return event.message_id


def dispatch_event(
    event: ChatCommand | CardAction,
    work: UnitOfWork,
    reply: Answer,
    router: Router,
    config: Config,
    now: Any,
    dependencies: dict[str, Any],
) -> None:
    """Route one command or press with the role checks; a refusal is answered and audited. Webex and the
    console both come through here, so they share authorisation and audit."""
    stores = stores_for_room(config, event.room_id, event.person_email)

    deps = {**dependencies, "uow": work, "reply": reply, "now": now, "stores": stores}
    try:
        router.dispatch(event, deps, business=config.business, stores_in_context=stores)
    except Refused as refusal:
        what = event.word if isinstance(event, ChatCommand) else event.action
        work.audit.record(
            at=now,
            actor=event.person_email or event.person_id,
            action=what or "unknown",
            subject_type="command" if isinstance(event, ChatCommand) else "card_action",
            # What the press names is audited only when it is the person's to see: a refusal never lands on
            # another store's alert (the same as for an id that does not exist).
            subject_id=(visible_subject(work, config, event.person_email, event.data) or event.event_id)
            if isinstance(event, CardAction)
            else event.event_id,
            reason_code="role",
            outcome="refused",
        )
        log.info("refused %s for %s: %s", what, event.person_email, refusal.detail)
        reply(refusal.reply)
    except UserError as error:
        reply(error.reply)


def stores_for_room(config: Config, room_id: str, email: str) -> tuple[str, ...]:
    """The stores a space speaks for *to this person*: of a store's own space, a region's space, else (1:1) all
    stores, those where the person has a role. A regional space's members come from many stores: each one's
    listings (`alerts`, `stats`, `rules`, `watchlist`…) show their own stores only."""
    business = config.business
    spoken_for = tuple(s.id for s in business.stores if s.webex_room_id and s.webex_room_id == room_id)
    if not spoken_for:
        regions = {r.id for r in business.regions if r.webex_room_id and r.webex_room_id == room_id}
        spoken_for = tuple(s.id for s in business.stores if s.region in regions) if regions else ()
    if not spoken_for:
        spoken_for = tuple(s.id for s in business.stores)
    return tuple(store_id for store_id in spoken_for if business.role_of(email, store_id) is not None)


SUBJECT_KEYS = ("alert_id", "transaction_id", "person_id")  # what a press is about, first found (cards/actions.py)


def visible_subject(work: UnitOfWork, config: Config, email: str, data: dict[str, Any]) -> str:
    """The id a press names (its alert, else its transaction or watchlist entry) when it exists at a store where the
    person has a role (an entry also in its region's stores), else "": what they may not see is not theirs to
    thread, post or audit under."""
    key = next((key for key in SUBJECT_KEYS if data.get(key)), None)
    if key is None:
        return ""
    subject_id = str(data[key])
    business = config.business
    if key == "alert_id":
        alert = work.alerts.get(subject_id)
        stores = {alert.store_id} if alert is not None else set()
    elif key == "transaction_id":
        transaction = work.transactions.get(subject_id)
        stores = {transaction.store_id} if transaction is not None else set()
    else:
        person = work.watchlist.get(subject_id)
        stores = set(entry_stores(business, person.store_id, person.region_id)) if person is not None else set()
    return subject_id if any(business.role_of(email, store_id) is not None for store_id in stores) else ""

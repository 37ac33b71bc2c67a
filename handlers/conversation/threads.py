"""Posting into a thread that an earlier outbox message opened (an anchor), from background steps.

A step that answers later (enrollment done, look-back found visits) has no event to reply to: the
handler that started it leaves an anchor message in the outbox under a known key, and the step
posts beside it, in the same thread. Threads are one level deep, so replies always name the root.
"""

from __future__ import annotations

import functools
from datetime import datetime

from handlers.conversation.reply import Answer, Reply
from storage.models import OutboxMessage
from storage.uow import UnitOfWork


def open_thread(
    work: UnitOfWork, reply: Answer, *, key: str, now: datetime, markdown: str, card: dict | None = None
) -> OutboxMessage | None:
    """Answer the person; a Webex answer is queued under ``key`` so later steps can post beside it.

    Another front end (the console) shows its own answers: no anchor then, and later messages go
    to the store's space on their own (``post_in_thread``'s ``fallback_room``)."""
    if not isinstance(reply, Reply):
        reply(markdown, card=card)
        return None
    return work.outbox.add(
        key=key, room_id=reply.room_id, now=now, markdown=markdown, card=card, parent_message_id=reply.thread_id
    )


def post_in_thread(
    work: UnitOfWork,
    *,
    anchor_key: str,
    key: str,
    now: datetime,
    markdown: str,
    card: dict | None = None,
    file: dict | None = None,
    fallback_room: str | None = None,
) -> OutboxMessage | None:
    """Queue a message in the anchor's thread (under the anchor itself when it is a root).

    Without an anchor it goes to ``fallback_room`` on its own, or nowhere (None)."""
    anchor = work.outbox.by_key(anchor_key)
    if anchor is None:
        if fallback_room is None:
            return None
        return work.outbox.add(key=key, room_id=fallback_room, now=now, markdown=markdown, card=card, file=file)
    return post_under(work, anchor, key=key, now=now, markdown=markdown, card=card, file=file)


def post_under(
    work: UnitOfWork,
    anchor: OutboxMessage,
    *,
    key: str,
    now: datetime,
    markdown: str,
    card: dict | None = None,
    file: dict | None = None,
) -> OutboxMessage:
    add = functools.partial(
        work.outbox.add, key=key, room_id=anchor.room_id, now=now, markdown=markdown, card=card, file=file
    )
    if anchor.parent_outbox_id is not None:
        # ``parent`` (not a Webex id) so delivery waits until the root has been sent.
        return add(parent=work.outbox.get(anchor.parent_outbox_id))
    parent_id = (anchor.payload or {}).get("parent_message_id")
    if parent_id:
        return add(parent_message_id=parent_id)
    return add(parent=anchor)

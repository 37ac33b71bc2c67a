"""Delivery step: send one outbox message to Webex, at least once and, short of a crash during that
one call, exactly once (Webex has no idempotency key, and a bot cannot list a space to check).

The message is marked ``sending`` in its own committed transaction before the call; the Webex
message id is recorded with the completion of the step. A thread reply waits until its root has
been sent, because ``parentId`` must name the root's Webex message id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from core.clock import Clock
from core.messenger import Attachment, Messenger, OutgoingMessage, WebexError
from core.steps import RetryLater, StepKind, policy
from storage.evidence import EvidenceStore
from storage.models import OutboxMessage
from storage.rows import present
from storage.uow import UnitOfWork
from storage.work_queue import ClaimedItem

log = logging.getLogger(__name__)


def job_deliver(
    item: ClaimedItem,
    *,
    read_uow: Callable[[], UnitOfWork],
    write_uow: Callable[[], UnitOfWork],
    uow: Callable[[], UnitOfWork],
    messenger: Messenger | None,
    evidence: EvidenceStore,
    clock: Clock,
) -> None:
    message_id = int(item.ref_id or 0)
    with read_uow() as work:
        row = work.outbox.get(message_id)
        if row is None or row.status in ("sent", "failed"):
            return
        parent = work.outbox.get(row.parent_outbox_id) if row.parent_outbox_id else None
    if parent is not None and parent.status != "sent":
        if parent.status == "failed":
            _finish(uow, message_id, clock, error="its thread's first message could not be sent")
            return
        raise RetryLater(f"waiting for outbox message {parent.id}, the thread's first", 5.0, waiting=True)
    if messenger is None:
        _finish(uow, message_id, clock, error="Webex is off (WEBEX_ACCESS_TOKEN is not set)")
        return
    outgoing = _outgoing(row, parent, evidence)
    _mark(write_uow, message_id, "sending")
    try:
        webex_id = messenger.send(outgoing)
    except WebexError as exc:
        # Below the runner's dead-letter limit: the reason ends up on the message.
        if exc.retry and not policy(StepKind.DELIVER).gives_up(item.attempts):
            _mark(write_uow, message_id, "pending", error=exc.reason)
            # A 429 is Webex pacing the bot, not failing: its Retry-After is waited out without spending an
            # attempt, so a long storm of them delays every message but fails none.
            delay_s = policy(StepKind.DELIVER).delay_s(item.attempts, exc.retry_after_s)
            raise RetryLater(exc.reason, delay_s, waiting=exc.status == 429) from None
        _finish(uow, message_id, clock, error=exc.reason)
        return
    _finish(uow, message_id, clock, webex_id=webex_id)
    log.info("outbox message %s sent (alert %s)", message_id, row.alert_id)


def _outgoing(row: OutboxMessage, parent: OutboxMessage | None, evidence: EvidenceStore) -> OutgoingMessage:
    payload = row.payload
    file = payload.get("file")
    attachment = None
    if file:
        content = evidence.read(file["sha256"], file["content_type"])
        attachment = Attachment(file["name"], content, file["content_type"])
    parent_id = parent.webex_message_id if parent is not None else payload.get("parent_message_id")
    return OutgoingMessage(
        room_id=row.room_id,
        markdown=payload.get("markdown", ""),
        card=payload.get("card"),
        attachment=attachment,
        parent_id=parent_id,
    )


def _mark(write_uow: Callable[[], UnitOfWork], message_id: int, status: str, *, error: str | None = None) -> None:
    with write_uow() as work:
        row = present(work.outbox.get(message_id), f"outbox message {message_id}")
        row.status = status
        if status == "sending":
            row.attempts += 1
        if error is not None:
            row.last_error = error[:1000]
        work.commit()


def _finish(
    uow: Callable[[], UnitOfWork],
    message_id: int,
    clock: Clock,
    *,
    webex_id: str | None = None,
    error: str | None = None,
) -> None:
    """Record the outcome in the step's own transaction (which also completes the work item)."""
    with uow() as work:
        row = present(work.outbox.get(message_id), f"outbox message {message_id}")
        if webex_id is not None:
            row.status, row.webex_message_id, row.sent_at = "sent", webex_id, clock()
            for child in work.outbox.children(message_id):  # replies waiting for this thread root go now
                work.work.hurry(kind=StepKind.DELIVER, key=str(child.id), now=clock())
        else:
            _fail(work, row, error or "", clock())
        work.commit()


def settle_dead_delivery(work: UnitOfWork, item: ClaimedItem, error: str, now: datetime) -> None:
    """A delivery step that died leaves its message failed (never ``pending`` for ever), and its replies settle."""
    row = work.outbox.get(int(item.ref_id or 0))
    if row is not None and row.status not in ("sent", "failed"):
        _fail(work, row, f"the delivery step failed for good after {item.attempts} attempt(s)", now)


def _fail(work: UnitOfWork, row: OutboxMessage, error: str, now: datetime) -> None:
    row.fail(error, now)
    log.warning("outbox message %s not sent: %s", row.id, error)
    for child in work.outbox.children(row.id):  # replies waiting for this thread root settle now, not in 5 s
        work.work.hurry(kind=StepKind.DELIVER, key=str(child.id), now=now)

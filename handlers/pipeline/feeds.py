"""Store what a payment-processor feed maps an event to, through the POS intake, once per event id.

The event id goes into ``inbound_events`` in the same database transaction as its effect, so a
redelivery (processors retry until they see a 2xx) finds it and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from core.clock import Clock
from core.config import Config
from core.events import FraudReported, TransactionReceived
from feeds.types import FedStatus, Inquiry
from handlers.pipeline.intake import accept_transaction, record_fraud_report
from storage.models import Transaction
from storage.uow import UnitOfWork

FeedOutcome = Literal[
    "accepted", "duplicate", "ignored", "unknown_transaction", "skipped", "inquiry", "updated", "stale"
]


@dataclass(frozen=True)
class Skip:
    """A signed event we cannot use (it fails the mapping, the schema or the card-number check): kept, answered 200."""

    reason: str
    errors: list[dict[str, str]] = field(default_factory=list)
    transaction_id: str | None = None


@dataclass(frozen=True)
class FeedEvent:
    """One processor event and what it maps to: a transaction, a fraud report or a payment already covered."""

    processor: str  # inbound_events.source
    event_id: str
    event_type: str
    transaction: TransactionReceived | None = None
    report: FraudReported | None = None
    covered_by: str | None = None
    status: FedStatus | None = None
    inquiry: Inquiry | None = None
    skipped: Skip | None = None

    @property
    def key(self) -> str:
        # Prefixed: inbound_events holds every source's ids in one key space.
        return f"{self.processor}:{self.event_id}"

    def summary(self, transaction_id: str | None) -> dict[str, Any]:
        """What is kept of the event: ids, type and our report, never the processor's payload (personal data)."""
        kept: dict[str, Any] = {"type": self.event_type, "transaction_id": transaction_id}
        if self.report is not None:
            kept["report"] = self.report.report.model_dump(mode="json")
        if self.status is not None:
            kept["payment_status"] = {
                "status": self.status.status,
                "changed_at": self.status.changed_at.isoformat(),
                "version": self.status.version,
                "reason": self.status.said,
            }
        if self.inquiry is not None:
            kept.update(outcome="inquiry", reason=self.inquiry.said)
        if self.skipped is not None:
            kept.update(outcome="skipped", reason=self.skipped.reason, errors=self.skipped.errors)
        return kept


@dataclass(frozen=True)
class FeedResult:
    outcome: FeedOutcome
    skipped_reason: str | None = None


def accept_feed_event(event: FeedEvent, *, uow: UnitOfWork, config: Config, clock: Clock) -> FeedResult:
    """Apply the event's effect once; a redelivered event id is a duplicate with no second effect."""
    now = clock()
    if event.transaction is not None:
        return _transaction(event, event.transaction, uow=uow, config=config, clock=clock, now=now)
    if event.report is not None:
        return _report(event, event.report, uow=uow, now=now)
    if event.status is not None:
        return _status(event, event.status, uow=uow, now=now)
    if event.inquiry is not None:
        return _inquiry(event, event.inquiry, uow=uow, now=now)
    if event.skipped is not None:
        if not _record_once(event, uow, now, event.skipped.transaction_id, handled=True):
            return FeedResult("duplicate")
        uow.commit()
        return FeedResult("skipped", event.skipped.reason)
    if event.covered_by is None or uow.transactions.get(event.covered_by) is None:
        return FeedResult("ignored")
    # Another event of the same payment already made its transaction.
    return _record(event, uow, now, event.covered_by, "duplicate")


def _transaction(
    event: FeedEvent, received: TransactionReceived, *, uow: UnitOfWork, config: Config, clock: Clock, now: datetime
) -> FeedResult:
    transaction_id = received.transaction.transaction_id
    if not _record_once(event, uow, now, transaction_id, handled=True):
        return FeedResult("duplicate")
    result = accept_transaction(received, uow=uow, config=config, clock=clock)  # commits the event with it
    if result.outcome == "accepted":
        return FeedResult("accepted", result.skipped_reason)
    # The payment's other event made it first; its rollback took our event row with it. A feed's body
    # differs per event (source.event_id), so a differing body is the same payment, never a conflict.
    return _record(event, uow, now, transaction_id, "duplicate")


def _report(event: FeedEvent, reported: FraudReported, *, uow: UnitOfWork, now: datetime) -> FeedResult:
    transaction_id = reported.report.transaction_id
    if not _record_once(event, uow, now, transaction_id, handled=False):
        return FeedResult("duplicate")
    result = record_fraud_report(reported, uow=uow, now=now)
    if result.outcome != "unknown_transaction":
        uow.inbound.mark_handled(event.key, now)
    # An unknown transaction keeps its event unhandled, with our report in it (no automatic replay yet: docs/api.md).
    uow.commit()
    if result.outcome == "conflict":  # only a transaction's differing repeat conflicts, never a fraud report
        raise ValueError(f"fraud report of {transaction_id}: unexpected outcome {result.outcome!r}")
    return FeedResult(result.outcome)


def _status(event: FeedEvent, change: FedStatus, *, uow: UnitOfWork, now: datetime) -> FeedResult:
    """The payment's newer status replaces the one we hold; an older or equal one (out of order) changes nothing."""
    if not _record_once(event, uow, now, change.transaction_id, handled=False):
        return FeedResult("duplicate")
    transaction = uow.transactions.get_for_update(change.transaction_id)
    if transaction is None:
        # Kept unhandled with the change in it, as a dispute of a payment never seen is (no replay yet).
        uow.commit()
        return FeedResult("unknown_transaction")
    uow.inbound.mark_handled(event.key, now)
    if not _newer(transaction, change):
        uow.commit()
        return FeedResult("stale")
    transaction.payment_status = change.status
    transaction.payment_status_at, transaction.payment_version = change.changed_at, change.version
    uow.audit.record(
        at=now,
        actor=event.processor,
        action="payment_status",
        subject_type="transaction",
        subject_id=change.transaction_id,
        store_id=transaction.store_id,
        reason_code=change.status,
    )
    uow.commit()
    return FeedResult("updated")


def _newer(transaction: Transaction, change: FedStatus) -> bool:
    """By the processor's version when both have one (it only grows), else by its updated_at."""
    if change.version is not None and transaction.payment_version is not None:
        return change.version > transaction.payment_version
    return transaction.payment_status_at is None or change.changed_at > transaction.payment_status_at


def _inquiry(event: FeedEvent, inquiry: Inquiry, *, uow: UnitOfWork, now: datetime) -> FeedResult:
    """Kept (the event, and the transaction's audit trail when we have it); never a fraud report or a proposal."""
    if not _record_once(event, uow, now, inquiry.transaction_id, handled=True):
        return FeedResult("duplicate")
    transaction = uow.transactions.get(inquiry.transaction_id)
    if transaction is not None:
        uow.audit.record(
            at=now,
            actor=event.processor,
            action="dispute_inquiry",
            subject_type="transaction",
            subject_id=inquiry.transaction_id,
            store_id=transaction.store_id,
            reason_code="inquiry",
        )
    uow.commit()
    return FeedResult("inquiry" if transaction is not None else "unknown_transaction", inquiry.said)


def _record(event: FeedEvent, uow: UnitOfWork, now: datetime, transaction_id: str, outcome: FeedOutcome) -> FeedResult:
    _record_once(event, uow, now, transaction_id, handled=True)
    uow.commit()
    return FeedResult(outcome)


def _record_once(
    event: FeedEvent, uow: UnitOfWork, now: datetime, transaction_id: str | None, *, handled: bool
) -> bool:
    """Insert the event id; False (and nothing pending) when it was already recorded."""
    if not uow.inbound.record(
        event_id=event.key, source=event.processor, payload=event.summary(transaction_id), now=now
    ):
        uow.rollback()
        return False
    if handled:
        uow.inbound.mark_handled(event.key, now)
    return True

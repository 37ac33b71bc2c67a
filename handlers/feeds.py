"""Store what a payment-processor feed maps an event to, through the POS intake, once per event id.

The event id goes into ``inbound_events`` in the same database transaction as its effect, so a
redelivery (processors retry until they see a 2xx) finds it and changes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from bot.clock import Clock
from bot.config import Config
from handlers.events import FraudReported, TransactionReceived
from handlers.intake import accept_transaction, record_fraud_report
from storage import inbound
from storage.uow import UnitOfWork

FeedOutcome = Literal["accepted", "duplicate", "ignored", "unknown_transaction"]


@dataclass(frozen=True)
class FeedEvent:
    """One processor event and what it maps to: a transaction, a fraud report or a payment already covered."""

    processor: str  # inbound_events.source
    event_id: str
    event_type: str
    transaction: TransactionReceived | None = None
    report: FraudReported | None = None
    covered_by: str | None = None

    @property
    def key(self) -> str:
        # Prefixed: inbound_events holds every source's ids in one key space.
        return f"{self.processor}:{self.event_id}"

    def summary(self, transaction_id: str | None) -> dict[str, Any]:
        """What is kept of the event: ids, type and our report, never the processor's payload (personal data)."""
        kept: dict[str, Any] = {"type": self.event_type, "transaction_id": transaction_id}
        if self.report is not None:
            kept["report"] = self.report.report.model_dump(mode="json")
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
    if event.covered_by is None or uow.transactions.get(event.covered_by) is None:
        return FeedResult("ignored")
    # Another event of the same payment already made its transaction.
    return _record(event, uow, now, event.covered_by, "duplicate")


def _transaction(event: FeedEvent, received: TransactionReceived, *, uow: UnitOfWork, config: Config,
                 clock: Clock, now: datetime) -> FeedResult:
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
        inbound.mark_handled(uow.session, event.key, now)
    # An unknown transaction keeps its event unhandled, with our report in it (no automatic replay yet: docs/api.md).
    uow.commit()
    return FeedResult(result.outcome)


def _record(event: FeedEvent, uow: UnitOfWork, now: datetime, transaction_id: str, outcome: FeedOutcome) -> FeedResult:
    _record_once(event, uow, now, transaction_id, handled=True)
    uow.commit()
    return FeedResult(outcome)


def _record_once(event: FeedEvent, uow: UnitOfWork, now: datetime, transaction_id: str, *, handled: bool) -> bool:
    """Insert the event id; False (and nothing pending) when it was already recorded."""
    if not inbound.record_event(uow.session, event_id=event.key, source=event.processor,
                                payload=event.summary(transaction_id), now=now):
        uow.session.rollback()
        return False
    if handled:
        inbound.mark_handled(uow.session, event.key, now)
    return True

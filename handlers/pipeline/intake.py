"""Store what the POS sends, durably and once; everything else happens in background steps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from core.clock import Clock
from core.config import Config
from core.correlation import CorrelationStatus
from core.events import FraudReported, TransactionReceived
from core.pos_schema import occurred_utc
from core.steps import StepKind
from storage.models import FraudReport, Transaction
from storage.transactions import AlreadyStored
from storage.uow import UnitOfWork

Outcome = Literal["accepted", "duplicate", "conflict", "unknown_transaction"]


@dataclass(frozen=True)
class IntakeResult:
    outcome: Outcome
    skipped_reason: str | None = None


def accept_transaction(event: TransactionReceived, *, uow: UnitOfWork, config: Config, clock: Clock) -> IntakeResult:
    """Store the transaction and its first step in one database transaction (202 only after commit)."""
    posted = event.transaction
    now = clock()
    skipped_reason = event.unplaced_reason or _unknown_place(config, posted.store_id, posted.register_id)
    transaction = Transaction(
        transaction_id=posted.transaction_id,
        store_id=posted.store_id,
        register_id=posted.register_id,
        type=posted.type,
        occurred_at=occurred_utc(posted),
        received_at=now,
        total_amount=posted.total.amount,
        currency=posted.total.currency,
        payment_method=posted.payment.method,
        entry_mode=posted.payment.entry_mode,
        card_fingerprint=posted.payment.card_fingerprint,
        risk_score=posted.payment.risk_score,
        cashier_id=posted.cashier_id,
        original_transaction_id=posted.original_transaction_id,
        approver_id=posted.approver_id,
        adjustment_amount=posted.adjustment(),
        payment_status_at=event.payment_status_at,
        payment_version=event.payment_version,
        body=event.raw_body,
        body_sha256=event.body_sha256,
        placed=skipped_reason is None,
        status=CorrelationStatus.SKIPPED if skipped_reason else CorrelationStatus.PENDING,
        status_reason=skipped_reason,
    )
    try:
        uow.transactions.add(transaction)
    except AlreadyStored:
        # The id is taken: a repeat (or a concurrent post that won). Inserting first and looking only
        # on a conflict saves the common, new transaction a query (repeats are rare POS retries).
        uow.rollback()
        existing = uow.transactions.get(posted.transaction_id)
        return _repeat(existing.body_sha256 if existing else "", event.body_sha256)
    if skipped_reason is None:
        uow.work.enqueue(
            kind=StepKind.TRIAGE,
            key=posted.transaction_id,
            transaction_id=posted.transaction_id,
            store_id=posted.store_id,
            run_at=now,
            now=now,
        )
    uow.commit()
    return IntakeResult("accepted", skipped_reason)


def accept_fraud_report(event: FraudReported, *, uow: UnitOfWork, clock: Clock) -> IntakeResult:
    """Record a fraud report once per transaction and source. It never changes an alert's status."""
    result = record_fraud_report(event, uow=uow, now=clock())
    if result.outcome == "accepted":
        uow.commit()
    return result


def record_fraud_report(event: FraudReported, *, uow: UnitOfWork, now: datetime) -> IntakeResult:
    """The shared part of the webhook, the `fraud` command and the Confirm button; the caller commits."""
    report = event.report
    if uow.transactions.get(report.transaction_id) is None:
        return IntakeResult("unknown_transaction")
    if uow.transactions.fraud_report(report.transaction_id, report.source) is not None:
        return IntakeResult("duplicate")
    try:
        with uow.savepoint():
            uow.transactions.add_fraud_report(
                FraudReport(
                    transaction_id=report.transaction_id,
                    source=report.source,
                    reason=report.reason,
                    reported_at=report.reported_at,
                    received_at=now,
                    reported_by=event.reported_by,
                    body_sha256=event.body_sha256,
                )
            )
    except AlreadyStored:
        return IntakeResult("duplicate")  # a concurrent report of the same source won
    uow.work.enqueue(
        kind=StepKind.FRAUD_REPORT,
        key=f"{report.transaction_id}:{report.source}",
        transaction_id=report.transaction_id,
        ref_id=report.source,
        run_at=now,
        now=now,
    )
    uow.audit.record(
        at=now,
        actor=event.reported_by or report.source,
        action="fraud_report",
        subject_type="transaction",
        subject_id=report.transaction_id,
        reason_code=report.source,
    )
    return IntakeResult("accepted")


def _repeat(stored_sha256: str, posted_sha256: str) -> IntakeResult:
    return IntakeResult("duplicate" if stored_sha256 == posted_sha256 else "conflict")


def _unknown_place(config: Config, store_id: str, register_id: str) -> str | None:
    store = config.business.store(store_id)
    if store is None:
        return f"unknown store {store_id!r}: not in the configuration"
    if store.register(register_id) is None:
        return f"unknown register {register_id!r} in store {store_id!r}: not in the configuration"
    return None

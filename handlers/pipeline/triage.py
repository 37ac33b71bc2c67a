"""Background steps of a transaction's correlation: triage (and pattern counting) first; capture and analysis follow."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from core.clock import Clock
from core.config import Config
from core.correlation import CorrelationStatus
from core.steps import StepKind
from handlers.pipeline.patterns import BaselineCache, count_transaction, local_day, pattern_facts
from rules.triage import TriageFacts, decide
from storage.models import Transaction
from storage.uow import UnitOfWork
from storage.work_queue import ClaimedItem


def job_triage(
    item: ClaimedItem, *, uow: Callable[[], UnitOfWork], config: Config, clock: Clock, baselines: BaselineCache
) -> None:
    """Decide whether this transaction gets a picture, and schedule the live and exact-time snapshots."""
    with uow() as work:
        transaction = work.transactions.get(item.transaction_id or "")
        if transaction is None or transaction.triage_decision is not None:
            work.commit()
            return
        now = clock()
        store = config.business.store(transaction.store_id)
        region = next((r for r in config.business.regions if store and r.id == store.region), None)
        facts = TriageFacts(
            payment_method=transaction.payment_method,
            transaction_type=transaction.type,
            entry_mode=transaction.entry_mode,
            risk_score=transaction.risk_score,
            amount=transaction.total_amount,
            fingerprint_in_fraud=bool(
                transaction.card_fingerprint and work.transactions.fingerprint_in_fraud(transaction.card_fingerprint)
            ),
            watchlist_active=work.transactions.watchlist_active(
                transaction.store_id, store.region if store else None, regional=bool(region and region.share_watchlist)
            ),
        )
        decision = decide(facts, config.business.triage)
        transaction.triage_decision, transaction.triage_reason = decision.decision, decision.reason
        _count_patterns(work, transaction, config, baselines)
        if decision.decision == "skip":
            transaction.move_to(CorrelationStatus.SKIPPED, f"triage: {decision.reason}")
        elif config.env.meraki_dashboard_api_key is None:
            transaction.move_to(CorrelationStatus.SKIPPED, "camera off: MERAKI_DASHBOARD_API_KEY is not set")
        else:
            transaction.move_to(CorrelationStatus.CAPTURING)
            _schedule_snapshots(
                work, item.transaction_id or "", transaction.store_id, transaction.occurred_at, now, config
            )
        if transaction.status == CorrelationStatus.SKIPPED:
            schedule_unpictured_decision(work, transaction.transaction_id, run_at=now, now=now)
        work.commit()


def schedule_unpictured_decision(work: UnitOfWork, transaction_id: str, *, run_at: datetime, now: datetime) -> None:
    """No picture of this checkout will be analysed: the rules still see the payment and its patterns,
    once (the key is the transaction's, so every way of ending without a picture schedules the same step)."""
    work.work.enqueue(
        kind=StepKind.DECIDE_UNPICTURED, key=transaction_id, transaction_id=transaction_id, run_at=run_at, now=now
    )


def _count_patterns(work: UnitOfWork, transaction: Transaction, config: Config, baselines: BaselineCache) -> None:
    """Count the transaction once and keep its pattern facts for every rule evaluation that follows."""
    original = (
        work.transactions.get(transaction.original_transaction_id) if transaction.original_transaction_id else None
    )
    day = local_day(transaction, config)
    count_transaction(work, transaction, original, day)
    transaction.pattern_facts = pattern_facts(work, transaction, original, day, config, baselines)


def _schedule_snapshots(
    work: UnitOfWork, transaction_id: str, store_id: str, occurred_at: datetime, now: datetime, config: Config
) -> None:
    camera = config.business.camera
    # A late or replayed transaction would picture the next customer: live only while fresh.
    if (now - occurred_at).total_seconds() <= camera.live_max_age_s:
        work.work.enqueue(
            kind=StepKind.CAPTURE_LIVE,
            key=transaction_id,
            transaction_id=transaction_id,
            store_id=store_id,
            run_at=now,
            now=now,
        )
    exact_at = max(now, occurred_at + timedelta(seconds=camera.exact_delay_s))
    work.work.enqueue(
        kind=StepKind.CAPTURE_EXACT,
        key=transaction_id,
        transaction_id=transaction_id,
        store_id=store_id,
        run_at=exact_at,
        now=now,
    )

"""Background steps of a transaction's correlation: triage first; capture and analysis follow."""
from __future__ import annotations

from datetime import timedelta
from typing import Callable

from bot.clock import Clock
from bot.config import Config
from rules.triage import TriageFacts, decide
from storage.uow import UnitOfWork
from storage.work_queue import ClaimedItem

CAPTURE_LIVE = "capture_live"
CAPTURE_EXACT = "capture_exact"


def job_triage(item: ClaimedItem, *, uow: Callable[[], UnitOfWork], config: Config, clock: Clock) -> None:
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
            entry_mode=transaction.entry_mode,
            risk_score=transaction.risk_score,
            amount=transaction.total_amount,
            fingerprint_in_fraud=bool(transaction.card_fingerprint)
            and work.transactions.fingerprint_in_fraud(transaction.card_fingerprint),
            watchlist_active=work.transactions.watchlist_active(
                transaction.store_id, store.region if store else None, regional=bool(region and region.share_watchlist)
            ),
        )
        decision = decide(facts, config.business.triage)
        transaction.triage_decision, transaction.triage_reason = decision.decision, decision.reason
        if decision.decision == "skip":
            transaction.status, transaction.status_reason = "skipped", f"triage: {decision.reason}"
        elif config.env.meraki_dashboard_api_key is None:
            transaction.status = "skipped"
            transaction.status_reason = "camera off: MERAKI_DASHBOARD_API_KEY is not set"
        else:
            transaction.status = "capturing"
            _schedule_snapshots(work, item.transaction_id or "", transaction.occurred_at, now, config)
        work.commit()


def _schedule_snapshots(work: UnitOfWork, transaction_id: str, occurred_at, now, config: Config) -> None:  # type: ignore[no-untyped-def]
    camera = config.business.camera
    # A late or replayed transaction would picture the next customer: live only while fresh.
    if (now - occurred_at).total_seconds() <= camera.live_max_age_s:
        work.work.enqueue(kind=CAPTURE_LIVE, key=transaction_id, transaction_id=transaction_id, run_at=now, now=now)
    exact_at = max(now, occurred_at + timedelta(seconds=camera.exact_delay_s))
    work.work.enqueue(kind=CAPTURE_EXACT, key=transaction_id, transaction_id=transaction_id, run_at=exact_at, now=now)

"""A correlation step that died (dead-lettered): the transaction must not stay "capturing" for ever.

Run by the runner in the same database transaction that buries the step (``bot/steps.py: ON_DEAD``).
"""

from __future__ import annotations

from datetime import datetime

from core.correlation import CorrelationStatus
from core.steps import CORRELATION_STEPS
from handlers.pipeline.triage import schedule_unpictured_decision
from storage.uow import UnitOfWork
from storage.work_queue import ClaimedItem


def settle_dead_step(work: UnitOfWork, item: ClaimedItem, error: str, now: datetime) -> None:
    """With no other correlation step to come, the correlation failed (saying which step), and the rules
    still see the payment and its patterns. ``error`` stays on the work item only: it may name a URL."""
    transaction = work.transactions.get_for_update(item.transaction_id or "")
    if transaction is None or not CorrelationStatus(transaction.status).in_progress:
        return
    waiting = [
        w
        for w in work.work.queued_for_transaction(transaction.transaction_id)
        if w.id != item.id and w.kind in CORRELATION_STEPS and w.status in ("pending", "running")
    ]
    if waiting:
        return  # the other picture may still come
    transaction.move_to(
        CorrelationStatus.FAILED,
        f"the {item.kind.replace('_', ' ')} step failed for good after {item.attempts} attempt(s)",
    )
    schedule_unpictured_decision(work, transaction.transaction_id, run_at=now, now=now)

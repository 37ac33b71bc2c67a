"""Decide step: facts from an analysed picture (or none), the store's rules over them, alerts for what fired.

Alerts are unique per transaction and rule (the dedupe key), so the exact-time picture firing
the same rule as the live one adds nothing; a rule's cool-down also keeps one person or one
register from raising the same alert again and again. Every evaluation is stored with the facts
it saw, fired or not, so any alert (and any silence) can be explained.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from core.clock import Clock
from core.config import Config
from core.correlation import CorrelationStatus
from core.facts import FACT_NAMES, WEEKDAYS, Facts
from handlers.pipeline.alerting import AlertPlace, raise_alert
from handlers.pipeline.patterns import count_under_rung
from rules.engine import CompiledRule, RuleResult, evaluate
from storage.models import Alert, Snapshot, Transaction
from storage.uow import UnitOfWork
from storage.work_queue import ClaimedItem

log = logging.getLogger(__name__)


def job_decide(
    item: ClaimedItem, *, uow: Callable[[], UnitOfWork], rules: list[CompiledRule], config: Config, clock: Clock
) -> None:
    with uow() as work:
        snapshot = work.snapshots.get(item.ref_id or "")
        # Locked: the live, exact-time and unpictured decisions of one transaction may run on two workers.
        transaction = (
            work.transactions.get_for_update(snapshot.transaction_id) if snapshot and snapshot.transaction_id else None
        )
        if snapshot is None or transaction is None or _decided(transaction, snapshot.id):
            work.commit()
            return
        facts = _facts(work, transaction, snapshot, config)
        if facts.surplus_count > 0:
            count_under_rung(work, transaction, config)
        created = _evaluate(work, rules, transaction, snapshot, facts, clock())
        if CorrelationStatus(transaction.status).in_progress:
            transaction.move_to(CorrelationStatus.DONE)
        work.commit()
    _log_created(created, transaction.transaction_id)


def job_decide_unpictured(
    item: ClaimedItem, *, uow: Callable[[], UnitOfWork], rules: list[CompiledRule], config: Config, clock: Clock
) -> None:
    """The rules over the payment and its patterns when no picture of the checkout will be analysed
    (triage skipped it, the camera is off, or every snapshot failed); the alert then has no photo."""
    with uow() as work:
        transaction = work.transactions.get_for_update(item.transaction_id or "")
        # Any evaluation already done (with a picture, or this one) saw the patterns: nothing to add.
        if transaction is None or transaction.rule_results:
            work.commit()
            return
        created = _evaluate(work, rules, transaction, None, _facts(work, transaction, None, config), clock())
        work.commit()
    _log_created(created, transaction.transaction_id)


def settle_dead_unpictured(work: UnitOfWork, item: ClaimedItem, error: str, now: datetime) -> None:
    """The transaction has already ended (skipped or failed); that the rules never saw its payment is added to
    its reason, which the read API, `show` and the console show. ``error`` stays on the work item."""
    transaction = work.transactions.get_for_update(item.transaction_id or "")
    if transaction is None or transaction.rule_results:
        return  # purged, or a decision with a picture saw the payment and its patterns
    missing = f"the rules could not run: the decide step failed for good after {item.attempts} attempt(s)"
    transaction.status_reason = "; ".join(r for r in (transaction.status_reason, missing) if r)[:500]


def _evaluate(
    work: UnitOfWork,
    rules: list[CompiledRule],
    transaction: Transaction,
    snapshot: Snapshot | None,
    facts: Facts,
    now: datetime,
) -> list[Alert]:
    """Evaluate, raise what fired, and store every result (fired or not) under its picture."""
    results = evaluate(rules, facts)
    created = [
        alert
        for result in results
        if result.fired
        for alert in [_raise_alert(work, result, transaction, snapshot, facts, now)]
        if alert is not None
    ]
    snapshot_id = snapshot.id if snapshot else None
    transaction.rule_results = [
        *[r for r in (transaction.rule_results or []) if r.get("snapshot_id") != snapshot_id],
        *[{**r.to_dict(), "snapshot_id": snapshot_id, "snapshot_kind": facts.snapshot_kind} for r in results],
    ]
    return created


def _log_created(created: list[Alert], transaction_id: str) -> None:
    for alert in created:
        log.info("alert A-%s (%s, %s) for transaction %s", alert.id, alert.rule, alert.severity, transaction_id)


def _decided(transaction: Transaction, snapshot_id: str) -> bool:
    return any(r.get("snapshot_id") == snapshot_id for r in (transaction.rule_results or []))


def _facts(work: UnitOfWork, transaction: Transaction, snapshot: Snapshot | None, config: Config) -> Facts:
    store = config.business.store(transaction.store_id)
    local = transaction.occurred_at.astimezone(ZoneInfo(store.timezone if store else "UTC"))
    faces = snapshot.faces if snapshot else []
    best = max((m for f in faces for m in f.matches), key=lambda m: m.similarity, default=None)
    recognition = config.business.recognition
    reconciliation = (snapshot.reconciliation if snapshot else None) or {}
    fingerprint = transaction.card_fingerprint
    patterns = {k: v for k, v in (transaction.pattern_facts or {}).items() if k in FACT_NAMES}
    return Facts(
        **patterns,
        store_id=transaction.store_id,
        register_id=transaction.register_id,
        snapshot_kind=snapshot.kind if snapshot else "none",
        hour=local.hour,
        weekday=WEEKDAYS[local.weekday()],
        amount=float(transaction.total_amount),
        currency=transaction.currency,
        payment_method=transaction.payment_method,
        transaction_type=transaction.type,
        entry_mode=transaction.entry_mode,
        risk_score=transaction.risk_score,
        card_fingerprint_in_fraud=bool(fingerprint and work.transactions.fingerprint_in_fraud(fingerprint)),
        card_fingerprint_seen_before=work.transactions.fingerprint_count_before(
            fingerprint,
            transaction.transaction_id,
            since=transaction.occurred_at - timedelta(hours=24),
            until=transaction.occurred_at,
        )
        if fingerprint
        else 0,
        faces_count=len(faces),
        matched=best is not None and best.similarity >= recognition.match_threshold,
        match_similarity=best.similarity
        if best is not None and best.similarity >= recognition.review_threshold
        else None,
        match_person_id=best.person_id
        if best is not None and best.similarity >= recognition.review_threshold
        else None,
        surplus_count=int(reconciliation.get("surplus_count", 0)),
        surplus_value=float(reconciliation.get("surplus_value", 0) or 0),
        unchecked_count=len(reconciliation.get("not_checked", [])),
    )


def _raise_alert(
    work: UnitOfWork,
    result: RuleResult,
    transaction: Transaction,
    snapshot: Snapshot | None,
    facts: Facts,
    now: datetime,
) -> Alert | None:
    place = AlertPlace(
        transaction.store_id,
        snapshot.camera_serial if snapshot else None,
        snapshot.id if snapshot else None,
        transaction_id=transaction.transaction_id,
        register_id=transaction.register_id,
    )
    return raise_alert(
        work,
        result,
        facts,
        place,
        key=f"tx:{transaction.transaction_id}:{result.rule}",
        cooldown_s=result.cooldown_s,
        now=now,
    )

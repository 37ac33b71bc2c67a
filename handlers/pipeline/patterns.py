"""Pattern facts of a transaction: counted once at triage, computed from index ranges and daily counts.

The triage step calls ``count_transaction`` and ``pattern_facts`` in its own database
transaction, so each transaction is counted exactly once and its facts are stored beside it
(``transactions.pattern_facts``) for every later rule evaluation of that transaction.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.config import Config, PatternsConfig
from rules.baselines import RATES, BaselinePolicy, CashierBaseline, transactions_of
from storage.models import Transaction
from storage.patterns import Window
from storage.uow import UnitOfWork

OWN_REFUND = "own_refund"
UNDER_RUNG = "under_rung"


class BaselineCache:
    """Cashier baselines per store and day. A baseline covers completed days only, so it is built
    once per store and day (one grouped query) and every later transaction of that day reads it."""

    def __init__(self, max_entries: int = 512):
        self._entries: OrderedDict[tuple[Any, ...], CashierBaseline] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...], build: Callable[[], CashierBaseline]) -> CashierBaseline:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        baseline = build()
        with self._lock:
            self._entries[key] = baseline
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return baseline


def local_day(transaction: Transaction, config: Config) -> date:
    store = config.business.store(transaction.store_id)
    return transaction.occurred_at.astimezone(ZoneInfo(store.timezone if store else "UTC")).date()


def count_transaction(work: UnitOfWork, transaction: Transaction, original: Transaction | None, day: date) -> None:
    """Add the transaction to its day's counts (cashier, register, and the card for non-sales)."""
    subjects = _register_and_cashier(transaction)
    card = (
        [("card", transaction.card_fingerprint)] if transaction.card_fingerprint and transaction.type != "sale" else []
    )
    work.patterns.count(
        store_id=transaction.store_id,
        day=day,
        kind=transaction.type,
        subjects=subjects + card,
        amount=transaction.total_amount,
    )
    if _own_sale(transaction, original):
        work.patterns.count(store_id=transaction.store_id, day=day, kind=OWN_REFUND, subjects=subjects)


def count_under_rung(work: UnitOfWork, transaction: Transaction, config: Config) -> None:
    """Once per transaction, the first time one of its pictures shows more than was billed.

    The caller holds the transaction's row lock (``get_for_update``), so two pictures decided on two
    workers cannot both see ``under_rung`` false."""
    if transaction.under_rung:
        return
    transaction.under_rung = True
    work.patterns.count(
        store_id=transaction.store_id,
        day=local_day(transaction, config),
        kind=UNDER_RUNG,
        subjects=_register_and_cashier(transaction),
    )


def _register_and_cashier(transaction: Transaction) -> list[tuple[str, str]]:
    """The daily-count subjects every kind is counted for (a transaction without cashier: the register only)."""
    return [("register", transaction.register_id)] + (
        [("cashier", transaction.cashier_id)] if transaction.cashier_id else []
    )


def pattern_facts(
    work: UnitOfWork,
    transaction: Transaction,
    original: Transaction | None,
    day: date,
    config: Config,
    baselines: BaselineCache,
) -> dict[str, Any]:
    """The pattern fields of core.facts.Facts for this transaction, JSON-safe."""
    policy = config.business.patterns
    at = transaction.occurred_at
    shift = Window(at - timedelta(hours=policy.shift_hours), at)
    facts: dict[str, Any] = {
        "refund_of_own_sale": _own_sale(transaction, original),
        "minutes_since_original": round((at - original.occurred_at).total_seconds() / 60, 1)
        if original is not None and transaction.type in ("refund", "void")
        else None,
        "adjustment_amount": float(transaction.adjustment_amount or 0),
        "approver_is_cashier": transaction.type in ("price_override", "discount")
        and transaction.approver_id is not None
        and transaction.approver_id == transaction.cashier_id,
        "register_exceptions_shift": work.patterns.register_exceptions(
            transaction.store_id, transaction.register_id, shift
        ),
        "store_exceptions_shift": work.patterns.store_exceptions(transaction.store_id, shift),
        **_cashier_shift(work, transaction, shift),
        **_card(work, transaction, policy),
        **_cashier_baseline(work, transaction, day, policy, baselines),
    }
    return facts


def _own_sale(transaction: Transaction, original: Transaction | None) -> bool:
    return (
        transaction.type in ("refund", "void")
        and original is not None
        and original.cashier_id is not None
        and original.cashier_id == transaction.cashier_id
    )


def _cashier_shift(work: UnitOfWork, transaction: Transaction, shift: Window) -> dict[str, int]:
    types = (
        work.patterns.cashier_types(transaction.store_id, transaction.cashier_id, shift)
        if transaction.cashier_id
        else {}
    )
    return {
        "cashier_transactions_shift": sum(types.values()),
        "cashier_voids_shift": types.get("void", 0),
        "cashier_refunds_shift": types.get("refund", 0),
        "cashier_no_sales_shift": types.get("no_sale", 0),
        "cashier_overrides_shift": types.get("price_override", 0) + types.get("discount", 0),
    }


def _card(work: UnitOfWork, transaction: Transaction, policy: PatternsConfig) -> dict[str, int]:
    fingerprint, at = transaction.card_fingerprint, transaction.occurred_at
    if not fingerprint:
        return {"card_uses_window": 0, "card_stores_window": 0, "card_refunds_window": 0}
    uses, stores = work.patterns.card_uses(
        fingerprint, Window(at - timedelta(minutes=policy.card_velocity_minutes), at)
    )
    refunds = work.patterns.card_refunds(fingerprint, Window(at - timedelta(days=policy.card_refund_days), at))
    return {"card_uses_window": uses, "card_stores_window": stores, "card_refunds_window": refunds}


def _cashier_baseline(
    work: UnitOfWork, transaction: Transaction, day: date, policy: PatternsConfig, baselines: BaselineCache
) -> dict[str, Any]:
    key = (
        transaction.store_id,
        day,
        policy.baseline_days,
        policy.min_baseline_transactions,
        policy.min_peers,
        policy.min_rate_stdev,
    )
    baseline = baselines.get(
        key,
        lambda: CashierBaseline(
            work.patterns.daily_counts(
                transaction.store_id, "cashier", day - timedelta(days=policy.baseline_days), day - timedelta(days=1)
            ),
            BaselinePolicy(policy.min_baseline_transactions, policy.min_peers, policy.min_rate_stdev),
        ),
    )
    cashier = transaction.cashier_id or ""
    counts = baseline.counts(cashier) if cashier else {}
    z = baseline.z_scores(cashier) if cashier else {}
    return {
        "cashier_transactions_baseline": transactions_of(counts),
        "cashier_own_refunds_baseline": counts.get(OWN_REFUND, 0),
        "cashier_under_rung_baseline": counts.get(UNDER_RUNG, 0),
        **{f"cashier_{name}_z": z.get(name) for name in RATES},
    }

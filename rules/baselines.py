"""Cashier baselines: each cashier's exception rates against the store's other cashiers.

Pure arithmetic over daily counts (``storage/patterns.py`` sums them). A cashier is compared
with the *other* cashiers (leave one out): with the cashier inside its own population a small
store could never produce a large z-score (with n cashiers |z| ≤ (n−1)/√n). The population's
standard deviation has a floor, so peers with identical rates (zero variance) give a finite z.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

EXCEPTION_KINDS = ("refund", "void", "no_sale", "price_override", "discount")
TRANSACTION_KINDS = ("sale", *EXCEPTION_KINDS)
# fact suffix → the counted kinds whose sum, per transaction, is the rate
RATES: dict[str, tuple[str, ...]] = {
    "exception": EXCEPTION_KINDS,
    "void": ("void",),
    "refund": ("refund",),
    "no_sale": ("no_sale",),
    "override": ("price_override", "discount"),
    "under_rung": ("under_rung",),
}


@dataclass(frozen=True)
class BaselinePolicy:
    min_transactions: int
    min_peers: int
    min_stdev: float


def transactions_of(counts: Mapping[str, int]) -> int:
    return sum(counts.get(kind, 0) for kind in TRANSACTION_KINDS)


def rates_of(counts: Mapping[str, int]) -> dict[str, float]:
    total = transactions_of(counts)
    return {name: sum(counts.get(k, 0) for k in kinds) / total if total else 0.0 for name, kinds in RATES.items()}


class CashierBaseline:
    """The store's cashier population over one baseline window; z-scores in O(1) per cashier."""

    def __init__(self, counts_by_cashier: Mapping[str, Mapping[str, int]], policy: BaselinePolicy):
        self._counts = counts_by_cashier
        self._policy = policy
        self._rates = {
            c: rates_of(counts)
            for c, counts in counts_by_cashier.items()
            if transactions_of(counts) >= policy.min_transactions
        }
        # Sums and sums of squares over the qualified cashiers; one cashier is taken out on lookup.
        self._sums = {name: sum(r[name] for r in self._rates.values()) for name in RATES}
        self._squares = {name: sum(r[name] ** 2 for r in self._rates.values()) for name in RATES}

    def counts(self, cashier_id: str) -> Mapping[str, int]:
        return self._counts.get(cashier_id, {})

    def qualified(self, cashier_id: str) -> bool:
        """Enough transactions to be compared (else the cashier is new)."""
        return cashier_id in self._rates

    def peer_mean(self, cashier_id: str, name: str = "exception") -> float | None:
        """The mean rate of the other qualified cashiers; None when there are none."""
        own = self._rates.get(cashier_id)
        peers = len(self._rates) - (own is not None)
        return (self._sums[name] - (own[name] if own else 0.0)) / peers if peers else None

    def z_scores(self, cashier_id: str) -> dict[str, float | None]:
        """z per rate name; all None for a new cashier (too few transactions) or too few peers."""
        rates = self._rates.get(cashier_id)
        peers = len(self._rates) - 1
        if rates is None or peers < self._policy.min_peers:
            return dict.fromkeys(RATES)
        scores: dict[str, float | None] = {}
        for name, rate in rates.items():
            mean = (self._sums[name] - rate) / peers
            variance = max(0.0, (self._squares[name] - rate**2) / peers - mean**2)
            scores[name] = round((rate - mean) / max(math.sqrt(variance), self._policy.min_stdev), 3)
        return scores

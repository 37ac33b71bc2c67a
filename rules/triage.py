"""Which transactions get a picture: a busy store must stay within the camera API's rate budget."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from core.config import TriageConfig


@dataclass(frozen=True)
class TriageFacts:
    payment_method: str
    entry_mode: str | None
    risk_score: int | None
    amount: Decimal
    fingerprint_in_fraud: bool
    watchlist_active: bool
    transaction_type: str = "sale"


@dataclass(frozen=True)
class TriageDecision:
    decision: Literal["capture", "skip"]
    reason: str


def decide(facts: TriageFacts, policy: TriageConfig) -> TriageDecision:
    """Capture when any condition of the policy holds; the reason names the ones that did."""
    if facts.transaction_type in policy.types:
        return TriageDecision("capture", f"{facts.transaction_type.replace('_', '-')} is always pictured")
    if facts.payment_method not in policy.methods:
        return TriageDecision(
            "skip", f"payment method {facts.payment_method} is not triaged ({', '.join(policy.methods)} are)"
        )
    reasons = []
    if policy.capture_all:
        reasons.append("policy captures every transaction")
    if policy.min_risk_score is not None and facts.risk_score is not None and facts.risk_score >= policy.min_risk_score:
        reasons.append(f"risk score {facts.risk_score} ≥ {policy.min_risk_score}")
    if facts.entry_mode is not None and facts.entry_mode in policy.entry_modes:
        reasons.append(f"entry mode {facts.entry_mode}")
    if policy.min_amount is not None and facts.amount >= policy.min_amount:
        reasons.append(f"amount {facts.amount} ≥ {policy.min_amount}")
    if policy.repeat_fingerprint and facts.fingerprint_in_fraud:
        reasons.append("card fingerprint seen in a reported fraud")
    if policy.when_watchlist_active and facts.watchlist_active:
        reasons.append("watchlist active for this store")
    if reasons:
        return TriageDecision("capture", "; ".join(reasons))
    return TriageDecision("skip", "no triage condition met")

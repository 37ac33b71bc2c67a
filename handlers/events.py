"""The events handlers receive: frozen dataclasses, built at the edges (HTTP, Webex, runner)."""
from __future__ import annotations

from dataclasses import dataclass

from bot.pos_schema import FraudReportBody, PosTransaction


@dataclass(frozen=True)
class TransactionReceived:
    transaction: PosTransaction
    raw_body: str
    body_sha256: str


@dataclass(frozen=True)
class FraudReported:
    report: FraudReportBody
    body_sha256: str | None
    reported_by: str | None = None

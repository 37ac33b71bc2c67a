"""What a processor event maps to: a transaction, a fraud report, or an acknowledgement without effect."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


class MappingError(ValueError):
    """The event lacks or garbles a field we need; ``field`` names it in the processor's terms."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


@dataclass(frozen=True)
class FedTransaction:
    """A body ``PosTransaction`` accepts, plus ``source``; ``unplaced_reason`` when no store/register matches."""

    body: dict[str, Any]
    unplaced_reason: str | None = None
    # The processor's own order of the payment's states (Square's updated_at and version), so a
    # later, older update cannot overwrite what this event says.
    status_at: datetime | None = None
    status_version: int | None = None


@dataclass(frozen=True)
class FedStatus:
    """A later change of a stored payment's status (``payment.status`` in our terms), ordered by the processor."""

    transaction_id: str
    status: str
    changed_at: datetime
    version: int | None
    said: str


@dataclass(frozen=True)
class Inquiry:
    """A pre-dispute inquiry from the cardholder's bank: recorded on the transaction, never a fraud report."""

    transaction_id: str
    said: str


@dataclass(frozen=True)
class FedReport:
    """A body ``FraudReportBody`` accepts."""

    body: dict[str, Any]


@dataclass(frozen=True)
class Ignored:
    """Acknowledged and not stored. ``covered_by``: the transaction another event of the same payment makes."""

    reason: str
    covered_by: str | None = None


Mapped = FedTransaction | FedReport | FedStatus | Inquiry | Ignored


def field(document: Any, path: str) -> Any:
    """``document["a"]["b"]`` for ``"a.b"``, or None where any step is missing or not an object."""
    node = document
    for key in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def text(document: Any, path: str) -> str | None:
    """A string field, or None; an empty string counts as absent."""
    value = field(document, path)
    return value if isinstance(value, str) and value else None


def required_text(document: Any, path: str, *, where: str) -> str:
    value = text(document, path)
    if value is None:
        raise MappingError(f"{where}.{path}", "required")
    return value


def unix_instant(value: Any, *, field_name: str) -> str:
    """A Unix timestamp in seconds (Stripe's ``created``) as ISO 8601 with an offset."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise MappingError(field_name, "must be a Unix timestamp in seconds")
    try:
        return datetime.fromtimestamp(value, tz=UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        raise MappingError(field_name, "is out of range") from None


@dataclass(frozen=True)
class Place:
    """Where a fed payment happened in our terms; ``unplaced_reason`` when the processor's ids map nowhere."""

    store_id: str
    register_id: str
    unplaced_reason: str | None = None


def card_sale(
    *,
    transaction_id: str,
    place: Place,
    occurred_at: str,
    total: tuple[str, str],
    payment: dict[str, Any],
    source: dict[str, str],
    cashier_id: str | None,
) -> FedTransaction:
    """A card sale as the POS would post it (no line items: processors do not see the receipt)."""
    body: dict[str, Any] = {
        "transaction_id": transaction_id,
        "store_id": place.store_id,
        "register_id": place.register_id,
        "occurred_at": occurred_at,
        "total": {"amount": total[0], "currency": total[1]},
        "payment": {"method": "card", **payment},
        "items": [],
        "type": "sale",
        "source": source,
    }
    if cashier_id is not None:
        body["cashier_id"] = cashier_id
    return FedTransaction(body, place.unplaced_reason)


def chargeback(
    reason: str | None, fraud_reasons: Iterable[str], *, transaction_id: str, said: str, reported_at: str
) -> Mapped:
    """A dispute whose reason is one of ``fraud_reasons`` as a chargeback report; any other is ignored."""
    allowed = tuple(fraud_reasons)
    if reason not in allowed:
        return Ignored(f"dispute reason {reason} is not fraud (fraud is: {', '.join(allowed)})")
    return FedReport(
        {"transaction_id": transaction_id, "reason": said, "source": "chargeback", "reported_at": reported_at}
    )


def whole_number(document: Any, path: str) -> int | None:
    """An integer field (never a bool, which is an int in Python), or None."""
    value = field(document, path)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def rfc3339(document: Any, path: str, *, where: str) -> datetime:
    """A required RFC 3339 timestamp with an offset (Square's ``updated_at``), as an aware datetime."""
    value = required_text(document, path, where=where)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise MappingError(f"{where}.{path}", "must be an RFC 3339 timestamp with an offset")
    return parsed

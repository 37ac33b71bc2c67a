"""Square webhook events mapped to our transactions and fraud reports.

In-person card payments only: ``source_type`` CARD, read by a device (``device_details``) or by
chip, tap or swipe. The store comes from ``stores[].square_location_id``, the register from
``registers[].square_device_id`` within that store.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from core.config import BusinessConfig, StoreConfig
from feeds.money import ISO_EXPONENTS, decimal_money
from feeds.types import (
    FedStatus,
    Ignored,
    Inquiry,
    Mapped,
    MappingError,
    Place,
    card_sale,
    chargeback,
    field,
    required_text,
    rfc3339,
    text,
    whole_number,
)

PROCESSOR = "square"
ENTRY_METHODS = {"EMV": "chip", "CONTACTLESS": "contactless", "SWIPED": "swipe", "KEYED": "manual", "ON_FILE": "online"}
CARD_READ = ("EMV", "CONTACTLESS", "SWIPED")
# Square's levels on Stripe Radar's 0–100 bands (elevated from 65, highest from 75), so one triage
# threshold and one rule serve both feeds. NORMAL and PENDING say nothing about risk: null.
RISK_LEVELS = {"MODERATE": 65, "HIGH": 85}
STATUSES = {
    "APPROVED": "approved",
    "COMPLETED": "approved",
    "PENDING": "pending",
    "CANCELED": "canceled",
    "FAILED": "failed",
}
# NO_KNOWLEDGE: the cardholder says they neither made nor authorised it. EMV_LIABILITY_SHIFT: a
# counterfeit or stolen chip card used without its chip (Visa 10.1/10.2, Mastercard 4870/4871).
# The others are disputes between a real customer and the store.
FRAUD_REASONS = ("NO_KNOWLEDGE", "EMV_LIABILITY_SHIFT")
# INQUIRY_*: the bank asks before any chargeback. An inquiry that escalates stays the same dispute
# and moves to a chargeback state (dispute.state.updated); those and only those file the report.
INQUIRY_PREFIX = "INQUIRY_"
CHARGEBACK_STATES = ("EVIDENCE_REQUIRED", "PROCESSING", "LOST", "ACCEPTED")


def map_event(event: dict[str, Any], business: BusinessConfig) -> Mapped:
    """The effect of one Square event notification."""
    kind = event.get("type")
    if kind == "payment.created":
        return map_payment(
            _object(event, "payment"), business, event_id=required_text(event, "event_id", where="event")
        )
    if kind == "payment.updated":
        return map_payment_update(_object(event, "payment"))
    if kind in ("dispute.created", "dispute.state.updated"):
        return map_dispute(_object(event, "dispute"), created=kind == "dispute.created")
    return Ignored(f"Square event type {kind} is not used")


def map_payment(payment: dict[str, Any], business: BusinessConfig, *, event_id: str) -> Mapped:
    """An in-person card payment as our transaction."""
    payment_id = required_text(payment, "id", where="payment")
    device = _device(payment)
    entry = text(payment, "card_details.entry_method")
    not_fed = _not_in_person(payment)
    if not_fed is not None:
        return not_fed
    sale = card_sale(
        transaction_id=f"{PROCESSOR}:{payment_id}",
        place=_place(business, text(payment, "location_id"), device),
        occurred_at=required_text(payment, "created_at", where="payment"),
        total=decimal_money(
            field(payment, "amount_money.amount"),
            field(payment, "amount_money.currency"),
            ISO_EXPONENTS,
            field="payment.amount_money",
        ),
        payment={
            "entry_mode": ENTRY_METHODS.get(entry or ""),
            "card_fingerprint": text(payment, "card_details.card.fingerprint"),
            "status": STATUSES.get(text(payment, "status") or "", "approved"),
            "risk_score": RISK_LEVELS.get(text(payment, "risk_evaluation.risk_level") or ""),
        },
        source={"processor": PROCESSOR, "event_id": event_id, "object_id": payment_id},
        cashier_id=text(payment, "team_member_id"),
    )
    return replace(
        sale, status_at=rfc3339(payment, "updated_at", where="payment"), status_version=whole_number(payment, "version")
    )


def map_payment_update(payment: dict[str, Any]) -> Mapped:
    """A later state of a fed payment: its status (COMPLETED, CANCELED, FAILED, …) in our terms."""
    payment_id = required_text(payment, "id", where="payment")
    not_fed = _not_in_person(payment)
    if not_fed is not None:
        return not_fed
    square_status = text(payment, "status")
    status = STATUSES.get(square_status or "")
    if status is None:
        return Ignored(f"Square payment status {square_status} is not used")
    # updated_at orders the payment's states; without it an update could not be placed among them.
    return FedStatus(
        f"{PROCESSOR}:{payment_id}",
        status,
        rfc3339(payment, "updated_at", where="payment"),
        whole_number(payment, "version"),
        f"Square payment {payment_id}: {square_status}",
    )


def map_dispute(dispute: dict[str, Any], *, created: bool = True) -> Mapped:
    """A dispute whose reason means fraud is a chargeback fraud report; other reasons are ignored.

    An ``INQUIRY_*`` state is an inquiry, recorded and never a chargeback; a state update counts only
    when it is a chargeback state (the report is kept once per transaction, however many updates)."""
    reason, state = text(dispute, "reason"), text(dispute, "state") or ""
    dispute_id = text(dispute, "id") or required_text(dispute, "dispute_id", where="dispute")
    transaction_id = f"{PROCESSOR}:{required_text(dispute, 'disputed_payment.payment_id', where='dispute')}"
    if state.startswith(INQUIRY_PREFIX):
        return Inquiry(transaction_id, f"Square inquiry {dispute_id} ({state}): {reason}")
    if not created and state not in CHARGEBACK_STATES:
        return Ignored(f"a dispute update with state {state or None} files no chargeback")
    return chargeback(
        reason,
        FRAUD_REASONS,
        transaction_id=transaction_id,
        said=f"Square dispute {dispute_id}: {reason}",
        reported_at=text(dispute, "reported_at") or required_text(dispute, "created_at", where="dispute"),
    )


def _device(payment: dict[str, Any]) -> str | None:
    return text(payment, "device_details.device_id") or text(payment, "card_details.device_details.device_id")


def _not_in_person(payment: dict[str, Any]) -> Ignored | None:
    """Why the payment is not fed (not a card, or not in person), or None when it is."""
    if payment.get("source_type") != "CARD" or not isinstance(payment.get("card_details"), dict):
        return Ignored("not a card payment: only card payments carry the device that places them at a register")
    if _device(payment) is None and text(payment, "card_details.entry_method") not in CARD_READ:
        return Ignored("not an in-person payment (no device, card not read): online payments are out of scope")
    return None


def _object(event: dict[str, Any], name: str) -> dict[str, Any]:
    obj = field(event, f"data.object.{name}")
    if not isinstance(obj, dict):
        raise MappingError(f"data.object.{name}", "required")
    return obj


def _place(business: BusinessConfig, location: str | None, device: str | None) -> Place:
    """The location's store and the device's register in it, or ids that say where the payment came from."""
    store = next((s for s in business.stores if location is not None and s.square_location_id == location), None)
    register_id = f"{PROCESSOR}:{device or 'unknown'}"
    if store is None:
        return Place(
            f"{PROCESSOR}:{location or 'unknown'}",
            register_id,
            f"Square location {location} is not mapped to a store: set stores[].square_location_id",
        )
    register = _register(store, device)
    if register is None:
        return Place(
            store.id,
            register_id,
            f"Square device {device} is not mapped to a register of store {store.id}: set registers[].square_device_id",
        )
    return Place(store.id, register)


def _register(store: StoreConfig, device: str | None) -> str | None:
    return next((r.id for r in store.registers if device is not None and r.square_device_id == device), None)

"""Stripe webhook events (API objects as Stripe sends them) mapped to our transactions and fraud reports.

In-person payments only: a Charge whose ``payment_method_details.type`` is ``card_present`` (or
``interac_present``, Terminal's Canadian debit). One payment is one transaction, ``stripe:<payment
intent id>`` (``stripe:<charge id>`` for a charge made without a PaymentIntent), whichever of its
events arrives first. The reader's register comes from ``registers[].stripe_reader_id``.
"""

from __future__ import annotations

from typing import Any

from core.config import BusinessConfig
from feeds.money import STRIPE_EXPONENTS, decimal_money
from feeds.types import (
    Ignored,
    Inquiry,
    Mapped,
    MappingError,
    Place,
    card_sale,
    chargeback,
    field,
    required_text,
    text,
    unix_instant,
)

PROCESSOR = "stripe"
IN_PERSON = ("card_present", "interac_present")
READ_METHODS = {
    "contact_emv": "chip",
    "contactless_emv": "contactless",
    "contactless_magstripe_mode": "contactless",
    "magnetic_stripe_fallback": "swipe",
    "magnetic_stripe_track2": "swipe",
}
FRAUD_REASONS = ("fraudulent",)
DISPUTE_EVENTS = ("charge.dispute.created", "charge.dispute.updated", "charge.dispute.funds_withdrawn")
# An inquiry (retrieval request) is a question from the bank before any chargeback: warning_* statuses.
INQUIRY_PREFIX = "warning_"
# An update moves a dispute into one of these when an inquiry escalates to a chargeback (or the
# chargeback is decided against the store). won and prevented are not chargebacks at all.
CHARGEBACK_STATUSES = ("needs_response", "under_review", "lost", "appeal_needs_response", "appeal_under_review")
NOT_IN_PERSON = "not an in-person (Terminal card_present) payment: online payments are out of scope"


def map_event(event: dict[str, Any], business: BusinessConfig) -> Mapped:
    """The effect of one Stripe event (``Event.to_dict()``)."""
    kind, obj = event.get("type"), field(event, "data.object")
    if kind not in ("charge.succeeded", "payment_intent.succeeded", *DISPUTE_EVENTS):
        return Ignored(f"Stripe event type {kind} is not used")
    if not isinstance(obj, dict):
        raise MappingError("data.object", "required")
    event_id = required_text(event, "id", where="event")
    if kind == "charge.succeeded":
        return map_charge(obj, business, event_id=event_id)
    if kind == "payment_intent.succeeded":
        return _map_payment_intent(obj, business, event_id=event_id)
    return map_dispute(obj, created=kind == "charge.dispute.created")


def transaction_id(charge_or_dispute: dict[str, Any]) -> str:
    """``stripe:<payment intent>`` when there is one, so a payment's charge and intent events meet."""
    intent = charge_or_dispute.get("payment_intent")
    intent_id = intent.get("id") if isinstance(intent, dict) else intent
    if isinstance(intent_id, str) and intent_id:
        return f"{PROCESSOR}:{intent_id}"
    key = "charge" if charge_or_dispute.get("object") == "dispute" else "id"
    return f"{PROCESSOR}:{required_text(charge_or_dispute, key, where=charge_or_dispute.get('object') or 'object')}"


def map_charge(
    charge: dict[str, Any], business: BusinessConfig, *, event_id: str, intent_id: str | None = None
) -> Mapped:
    """A succeeded in-person Charge as our transaction."""
    present = _in_person_details(charge)
    if present is None:
        return Ignored(NOT_IN_PERSON)
    risk = field(charge, "outcome.risk_score")
    return card_sale(
        transaction_id=f"{PROCESSOR}:{intent_id}" if intent_id else transaction_id(charge),
        place=_place(business, text(present, "reader"), text(present, "location")),
        occurred_at=unix_instant(charge.get("created"), field_name="charge.created"),
        total=decimal_money(charge.get("amount"), charge.get("currency"), STRIPE_EXPONENTS, field="charge.amount"),
        payment={
            "entry_mode": READ_METHODS.get(text(present, "read_method") or ""),
            "card_fingerprint": text(present, "fingerprint"),
            "status": "approved",
            # Radar's score is 0–100 like ours; None when Radar did not score the charge.
            "risk_score": risk if isinstance(risk, int) and not isinstance(risk, bool) else None,
        },
        source={"processor": PROCESSOR, "event_id": event_id, "object_id": required_text(charge, "id", where="charge")},
        cashier_id=text(charge, "metadata.cashier_id"),
    )


def map_dispute(dispute: dict[str, Any], *, created: bool = True) -> Mapped:
    """A dispute the cardholder's bank files as fraud is a chargeback fraud report; other reasons are not fraud.

    A ``warning_*`` status is an inquiry, recorded and never a chargeback. An update counts only when
    it shows a chargeback (an inquiry that escalated); the report is kept once per transaction, so
    the created and later updates of one chargeback file it once."""
    reason, status = text(dispute, "reason"), text(dispute, "status") or ""
    dispute_id = required_text(dispute, "id", where="dispute")
    if status.startswith(INQUIRY_PREFIX):
        return Inquiry(transaction_id(dispute), f"Stripe inquiry {dispute_id} ({status}): {reason}")
    if not created and status not in CHARGEBACK_STATUSES:
        return Ignored(f"a dispute update with status {status or None} files no chargeback")
    return chargeback(
        reason,
        FRAUD_REASONS,
        transaction_id=transaction_id(dispute),
        said=f"Stripe dispute {dispute_id}: {reason}",
        reported_at=unix_instant(dispute.get("created"), field_name="dispute.created"),
    )


def _map_payment_intent(intent: dict[str, Any], business: BusinessConfig, *, event_id: str) -> Mapped:
    """The PaymentIntent's charge when the event carries it; else its charge.succeeded event makes the transaction."""
    intent_id = required_text(intent, "id", where="payment_intent")
    types = intent.get("payment_method_types")
    if not isinstance(types, list) or not set(types) & set(IN_PERSON):
        return Ignored(NOT_IN_PERSON)
    charge = _charge_of(intent)
    if charge is None:
        # API versions from 2022-11-15 send latest_charge as an id only: no reader, card or risk here.
        return Ignored(
            "a PaymentIntent event without its charge: the transaction comes from charge.succeeded",
            covered_by=f"{PROCESSOR}:{intent_id}",
        )
    return map_charge(charge, business, event_id=event_id, intent_id=intent_id)


def _charge_of(intent: dict[str, Any]) -> dict[str, Any] | None:
    latest = intent.get("latest_charge")
    if isinstance(latest, dict):
        return latest
    listed = field(intent, "charges.data")  # API versions before 2022-11-15 embed the charges
    if isinstance(listed, list):
        charges = [c for c in listed if isinstance(c, dict)]
        match = [c for c in charges if c.get("id") == latest] if isinstance(latest, str) else []
        chosen = match or charges[-1:]
        return chosen[0] if chosen else None
    return None


def _in_person_details(charge: dict[str, Any]) -> dict[str, Any] | None:
    kind = field(charge, "payment_method_details.type")
    details = field(charge, f"payment_method_details.{kind}") if kind in IN_PERSON else None
    return details if isinstance(details, dict) else None


def _place(business: BusinessConfig, reader: str | None, location: str | None) -> Place:
    """The reader's register, or ids that say where the payment came from and why it is not placed."""
    for store in business.stores:
        for register in store.registers:
            if reader is not None and register.stripe_reader_id == reader:
                return Place(store.id, register.id)
    store_id, register_id = f"{PROCESSOR}:{location or 'unknown'}", f"{PROCESSOR}:{reader or 'unknown'}"
    if reader is None:
        # Charges name their reader from API version 2026-02-25 on.
        return Place(
            store_id,
            register_id,
            "the Stripe charge names no Terminal reader (its webhook API version is "
            "older than 2026-02-25): set the endpoint's API version to 2026-02-25 or later",
        )
    return Place(
        store_id, register_id, f"Stripe reader {reader} is not mapped to a register: set registers[].stripe_reader_id"
    )

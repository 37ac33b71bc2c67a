"""The pure mappings of feeds/: processor event dicts to our bodies, without Flask or a database."""

from __future__ import annotations

import pytest

from core.config import BusinessConfig
from core.pos_schema import PosTransaction
from feeds import square_events, stripe_events
from feeds.money import ISO_EXPONENTS, STRIPE_EXPONENTS, decimal_money
from feeds.types import FedTransaction, Ignored, MappingError
from tests.conftest import minimal_business
from tests.feed_events import feed_business, square_event, square_payment, stripe_charge, stripe_event

BUSINESS = BusinessConfig.model_validate(feed_business(minimal_business()))


@pytest.mark.parametrize(
    ("amount", "currency", "exponents", "expected"),
    [
        (14990, "jpy", STRIPE_EXPONENTS, ("14990", "JPY")),
        (5, "KRW", STRIPE_EXPONENTS, ("5", "KRW")),
        (1500, "kwd", STRIPE_EXPONENTS, ("1.500", "KWD")),
        (7, "BHD", ISO_EXPONENTS, ("0.007", "BHD")),
        (0, "usd", STRIPE_EXPONENTS, ("0.00", "USD")),
        (1490, "brl", STRIPE_EXPONENTS, ("14.90", "BRL")),
        # Stripe keeps ISK two-decimal; ISO 4217 (Square) gives it none.
        (50000, "isk", STRIPE_EXPONENTS, ("500.00", "ISK")),
        (500, "ISK", ISO_EXPONENTS, ("500", "ISK")),
    ],
)
def test_minor_units_become_decimal_strings(amount, currency, exponents, expected):
    assert decimal_money(amount, currency, exponents, field="amount") == expected


@pytest.mark.parametrize(
    ("amount", "currency"), [(-1, "usd"), (1.5, "usd"), (True, "usd"), ("100", "usd"), (1, "us"), (1, None)]
)
def test_garbled_amounts_are_mapping_errors(amount, currency):
    with pytest.raises(MappingError):
        decimal_money(amount, currency, STRIPE_EXPONENTS, field="charge.amount")


@pytest.mark.parametrize(
    ("read_method", "mode"),
    [
        ("contact_emv", "chip"),
        ("contactless_emv", "contactless"),
        ("contactless_magstripe_mode", "contactless"),
        ("magnetic_stripe_fallback", "swipe"),
        ("magnetic_stripe_track2", "swipe"),
        (None, None),
        ("future_method", None),
    ],
)
def test_stripe_read_methods(read_method, mode):
    charge = stripe_charge(payment_method_details__card_present__read_method=read_method)
    mapped = stripe_events.map_event(stripe_event("charge.succeeded", charge), BUSINESS)
    assert isinstance(mapped, FedTransaction) and mapped.body["payment"]["entry_mode"] == mode
    PosTransaction.model_validate(mapped.body)


def test_stripe_interac_present_is_in_person_too():
    charge = stripe_charge(
        payment_method_details={
            "type": "interac_present",
            "interac_present": {"reader": "tmr_FDOt2wlRZEdpd7", "read_method": "contact_emv", "fingerprint": "fp_i"},
        }
    )
    mapped = stripe_events.map_event(stripe_event("charge.succeeded", charge), BUSINESS)
    assert isinstance(mapped, FedTransaction) and (mapped.body["register_id"], mapped.unplaced_reason) == (
        "reg-1",
        None,
    )


def test_stripe_charge_without_radar_score_has_no_risk_score():
    mapped = stripe_events.map_event(stripe_event("charge.succeeded", stripe_charge(outcome=None)), BUSINESS)
    assert mapped.body["payment"]["risk_score"] is None


@pytest.mark.parametrize(
    ("level", "score"), [("HIGH", 85), ("MODERATE", 65), ("NORMAL", None), ("PENDING", None), (None, None)]
)
def test_square_risk_levels(level, score):
    payment = square_payment(risk_evaluation={"risk_level": level} if level else None)
    mapped = square_events.map_event(square_event("payment.created", "payment", payment), BUSINESS)
    assert mapped.body["payment"]["risk_score"] == score


@pytest.mark.parametrize(
    ("status", "ours"), [("APPROVED", "approved"), ("COMPLETED", "approved"), ("FAILED", "failed")]
)
def test_square_statuses(status, ours):
    mapped = square_events.map_event(
        square_event("payment.created", "payment", square_payment(status=status)), BUSINESS
    )
    assert mapped.body["payment"]["status"] == ours


def test_square_payment_read_by_card_without_a_device_is_in_person_but_unplaced():
    payment = square_payment(device_details=None, card_details__entry_method="CONTACTLESS")
    mapped = square_events.map_event(square_event("payment.created", "payment", payment), BUSINESS)
    assert isinstance(mapped, FedTransaction)
    assert mapped.body["register_id"] == "square:unknown" and "square_device_id" in mapped.unplaced_reason


def test_other_square_events_are_ignored():
    assert isinstance(square_events.map_event({"type": "refund.created", "event_id": "e"}, BUSINESS), Ignored)

"""Processor webhook events shaped as Stripe and Square send them, and their signatures, for the feed tests."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import stripe
from sqlalchemy import func, select

from storage.uow import UnitOfWork

STRIPE_SECRET = "whsec_test_0123456789abcdef"
SQUARE_KEY = "sq-signature-key-test"
SQUARE_URL = "https://flp.example.com/api/v1/feeds/square"
READER, LOCATION = "tmr_FDOt2wlRZEdpd7", "tml_FDOtHwxAAdIJOh"
INTENT, CHARGE = "pi_3MmlLrLkdIwHu7ix0uke3Ezy", "ch_3MmlLrLkdIwHu7ix0snN0B15"
SQ_LOCATION, SQ_DEVICE, SQ_PAYMENT = "L88917AVBK2S5", "device:995CS397A6475287", "R2B3Z8WMVt3EAmzYWLZvz7Y69EbZY"
PAID_AT = datetime(2026, 11, 24, 20, 3, 12, tzinfo=UTC)


def feed_business(business: dict[str, Any]) -> dict[str, Any]:
    """The test store with reg-1's Stripe reader and Square device, and the store's Square location."""
    business = copy.deepcopy(business)
    store = business["stores"][0]
    store["square_location_id"] = SQ_LOCATION
    store["registers"][0].update(stripe_reader_id=READER, square_device_id=SQ_DEVICE)
    return business


def feed_environ(environ: dict[str, str]) -> dict[str, str]:
    return {
        **environ,
        "STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
        "SQUARE_SIGNATURE_KEY": SQUARE_KEY,
        "SQUARE_NOTIFICATION_URL": SQUARE_URL,
    }


def stripe_charge(**changes: Any) -> dict[str, Any]:
    """A succeeded Terminal charge as API version 2026-10-28 renders it (reader and location included)."""
    charge = {
        "id": CHARGE,
        "object": "charge",
        "amount": 14990,
        "amount_captured": 14990,
        "amount_refunded": 0,
        "application_fee": None,
        "balance_transaction": "txn_3MmlLrLkdIwHu7ix0Ysy2mYs",
        "billing_details": {
            "address": {
                "city": None,
                "country": None,
                "line1": None,
                "line2": None,
                "postal_code": None,
                "state": None,
            },
            "email": None,
            "name": None,
            "phone": None,
        },
        "captured": True,
        "created": int(PAID_AT.timestamp()),
        "currency": "brl",
        "customer": None,
        "description": None,
        "disputed": False,
        "failure_code": None,
        "failure_message": None,
        "livemode": False,
        "metadata": {"cashier_id": "c-17"},
        "outcome": {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "elevated",
            "risk_score": 72,
            "seller_message": "Payment complete.",
            "type": "authorized",
        },
        "paid": True,
        "payment_intent": INTENT,
        "payment_method": "pm_1MmlLrLkdIwHu7ixXjuVvwP8",
        "payment_method_details": {
            "type": "card_present",
            "card_present": {
                "amount_authorized": 14990,
                "brand": "visa",
                "brand_product": None,
                "capture_before": None,
                "cardholder_name": None,
                "country": "US",
                "description": None,
                "emv_auth_data": "8A023030",
                "exp_month": 12,
                "exp_year": 2029,
                "fingerprint": "Xt5EWLLDS7FJjR1c",
                "funding": "credit",
                "generated_card": None,
                "iin": None,
                "incremental_authorization_supported": False,
                "issuer": None,
                "last4": "4242",
                "location": LOCATION,
                "network": "visa",
                "network_transaction_id": "483002002021117",
                "offline": None,
                "overcapture_supported": False,
                "preferred_locales": ["en"],
                "read_method": "contactless_emv",
                "reader": READER,
                "receipt": {
                    "account_type": "credit",
                    "application_cryptogram": "EC1A2B3C4D5E6F70",
                    "application_preferred_name": "Stripe Credit",
                    "authorization_code": None,
                    "authorization_response_code": "3030",
                    "cardholder_verification_method": "none",
                    "dedicated_file_name": "A0000000031010",
                    "terminal_verification_results": "0000000000",
                    "transaction_status_information": "0000",
                },
                "wallet": None,
            },
        },
        "receipt_email": None,
        "receipt_url": "https://pay.stripe.com/receipts/acct_test/ch_test",
        "refunded": False,
        "status": "succeeded",
    }
    return _changed(charge, changes)


def stripe_intent(**changes: Any) -> dict[str, Any]:
    """The PaymentIntent of that charge; from API version 2022-11-15 on, latest_charge is only an id."""
    intent = {
        "id": INTENT,
        "object": "payment_intent",
        "amount": 14990,
        "amount_capturable": 0,
        "amount_received": 14990,
        "capture_method": "automatic",
        "created": int(PAID_AT.timestamp()) - 20,
        "currency": "brl",
        "latest_charge": CHARGE,
        "livemode": False,
        "metadata": {},
        "payment_method": "pm_1MmlLrLkdIwHu7ixXjuVvwP8",
        "payment_method_types": ["card_present"],
        "status": "succeeded",
    }
    return _changed(intent, changes)


def stripe_dispute(**changes: Any) -> dict[str, Any]:
    dispute = {
        "id": "dp_1MmlM3LkdIwHu7ix6DlyW8Jr",
        "object": "dispute",
        "amount": 14990,
        "balance_transactions": [],
        "charge": CHARGE,
        "created": int(datetime(2026, 12, 1, 13, 0, tzinfo=UTC).timestamp()),
        "currency": "brl",
        "evidence": {"customer_name": "Jane Roe", "customer_email_address": "jane@example.com"},
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": INTENT,
        "reason": "fraudulent",
        "status": "needs_response",
    }
    return _changed(dispute, changes)


def stripe_event(
    kind: str,
    obj: dict[str, Any],
    *,
    event_id: str = "evt_1MmlLsLkdIwHu7ixN0Ngr4Yb",
    api_version: str = "2026-10-28.endive",
) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "api_version": api_version,
        "created": int(PAID_AT.timestamp()) + 1,
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
    }


def stripe_headers(raw: bytes, *, secret: str = STRIPE_SECRET, at: float | None = None) -> dict[str, str]:
    """Stripe-Signature made by the stripe library's own test helper (Stripe checks against the real time)."""
    timestamp = int(at if at is not None else time.time())
    header = stripe.WebhookSignature.generate_signature_header(raw.decode("utf-8"), secret, timestamp=timestamp)
    return {"Content-Type": "application/json", "Stripe-Signature": header}


def square_payment(**changes: Any) -> dict[str, Any]:
    """A card payment taken on a Square Terminal, as the Payments API renders it."""
    payment = {
        "id": SQ_PAYMENT,
        "created_at": "2026-11-24T20:03:12.086Z",
        "updated_at": "2026-11-24T20:03:13.020Z",
        "amount_money": {"amount": 14990, "currency": "JPY"},
        "total_money": {"amount": 14990, "currency": "JPY"},
        "approved_money": {"amount": 14990, "currency": "JPY"},
        "status": "APPROVED",
        "delay_duration": "PT168H",
        "source_type": "CARD",
        "location_id": SQ_LOCATION,
        "order_id": "7ewhlGGsOS4ZHR8cvkNEtt8aSaXZY",
        "team_member_id": "TMoK_Xa1B2c3D4e5",
        "risk_evaluation": {"created_at": "2026-11-24T20:03:12.5Z", "risk_level": "HIGH"},
        "card_details": {
            "status": "AUTHORIZED",
            "card": {
                "card_brand": "VISA",
                "last_4": "1111",
                "exp_month": 11,
                "exp_year": 2028,
                "fingerprint": "sq-1-Hxim77tbdcbGejOejnoAklBVJed2YFLTmirfl8Q5XZzObTc8qY_U8RkwzoNL8dCEcQ",
                "card_type": "CREDIT",
                "prepaid_type": "NOT_PREPAID",
                "bin": "411111",
            },
            "entry_method": "EMV",
            "cvv_status": "CVV_NOT_CHECKED",
            "avs_status": "AVS_NOT_CHECKED",
            "auth_result_code": "68aLBM",
            "statement_description": "SQ *DEFAULT TEST ACCOUNT",
            "card_payment_timeline": {"authorized_at": "2026-11-24T20:03:12.300Z"},
        },
        "device_details": {
            "device_id": SQ_DEVICE,
            "device_installation_id": "0e6a8f7f-1e5c-4a7e-9d1e-1f4a5b6c7d8e",
            "device_name": "Counter 1",
        },
        "application_details": {"square_product": "TERMINAL_API", "application_id": "sq0idp-test"},
        "receipt_number": "R2B3",
        "version_token": "56pRkL3slrzet2iQrTp9n0bdJVYTB9YEWdTNjQfZOPV6o",
    }
    return _changed(payment, changes)


def square_dispute(**changes: Any) -> dict[str, Any]:
    dispute = {
        "id": "XDgyFu7yo1E2S5lQGGpYn",
        "amount_money": {"amount": 14990, "currency": "JPY"},
        "reason": "NO_KNOWLEDGE",
        "state": "EVIDENCE_REQUIRED",
        "due_at": "2026-12-15T00:00:00.000Z",
        "disputed_payment": {"payment_id": SQ_PAYMENT},
        "card_brand": "VISA",
        "created_at": "2026-12-01T13:00:00.000Z",
        "updated_at": "2026-12-01T13:00:00.000Z",
        "brand_dispute_id": "100000809947",
        "reported_at": "2026-12-01T00:00:00.000Z",
        "version": 1,
        "location_id": SQ_LOCATION,
    }
    return _changed(dispute, changes)


def square_event(
    kind: str, name: str, obj: dict[str, Any], *, event_id: str = "6a8f5f28-54a1-4eb0-a98a-3111513fd4fc"
) -> dict[str, Any]:
    return {
        "merchant_id": "6SSW7HV8K2ST5",
        "type": kind,
        "event_id": event_id,
        "created_at": "2026-11-24T20:03:13Z",
        "data": {"type": name, "id": obj["id"], "object": {name: obj}},
    }


def square_headers(raw: bytes, *, key: str = SQUARE_KEY, url: str = SQUARE_URL) -> dict[str, str]:
    """As Square's docs say: base64 of HMAC-SHA256, keyed with the signature key, over the notification URL + body."""
    digest = hmac.new(key.encode("utf-8"), url.encode("utf-8") + raw, hashlib.sha256).digest()
    return {"Content-Type": "application/json", "x-square-hmacsha256-signature": base64.b64encode(digest).decode()}


def raw(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def poster(client: Any, url: str, headers: Callable[..., dict[str, str]]) -> Callable[..., Any]:
    """POST an event signed by ``headers`` (its keyword arguments pass through: another key, time or URL)."""

    def post(event: dict[str, Any], **signing: Any) -> Any:
        body = raw(event)
        return client.post(url, data=body, headers=headers(body, **signing))

    return post


def count_rows(services: Any, model: Any) -> int:
    with UnitOfWork(services.db) as uow:
        return uow.session.scalar(select(func.count()).select_from(model))


def _changed(document: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Apply ``a__b=value`` changes to nested keys (``None`` as value deletes nothing: it sets null)."""
    for key, value in changes.items():
        node = document
        *parents, last = key.split("__")
        for parent in parents:
            node = node[parent]
        node[last] = value
    return document

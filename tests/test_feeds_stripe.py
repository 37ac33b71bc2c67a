"""POST /api/v1/feeds/stripe: Stripe's signed events in, our transactions and fraud reports out (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import logging
import time
from decimal import Decimal

import pytest
import yaml
from sqlalchemy import select

from bot.app import build_services, create_app
from core.config import load_config
from storage.models import FraudReport, InboundEvent, Transaction, WorkItem
from storage.uow import UnitOfWork
from tests.feed_events import (
    CHARGE,
    INTENT,
    LOCATION,
    count_rows,
    feed_business,
    feed_environ,
    poster,
    raw,
    stripe_charge,
    stripe_dispute,
    stripe_event,
    stripe_headers,
    stripe_intent,
)

URL = "/api/v1/feeds/stripe"
TX = f"stripe:{INTENT}"


@pytest.fixture
def business(business):
    return feed_business(business)


@pytest.fixture
def environ(environ):
    return feed_environ(environ)


@pytest.fixture
def send(client):
    return poster(client, URL, stripe_headers)


def stored(services, transaction_id: str = TX):
    with UnitOfWork(services.db) as uow:
        return uow.transactions.get(transaction_id), [
            (w.kind, w.status) for w in uow.work.for_transaction(transaction_id)
        ]


def test_terminal_charge_becomes_a_transaction_at_the_readers_register(send, services, client, auth):
    response = send(stripe_event("charge.succeeded", stripe_charge()))
    assert response.status_code == 202
    assert response.get_json() == {"transaction_id": TX, "status": "accepted"}
    transaction, steps = stored(services)
    assert (transaction.store_id, transaction.register_id, transaction.status) == ("store-001", "reg-1", "pending")
    assert (transaction.total_amount, transaction.currency) == (Decimal("149.90"), "BRL")
    assert (transaction.entry_mode, transaction.card_fingerprint, transaction.risk_score) == (
        "contactless",
        "Xt5EWLLDS7FJjR1c",
        72,
    )
    assert transaction.cashier_id == "c-17" and transaction.payment_method == "card"
    assert transaction.occurred_at.isoformat() == "2026-11-24T20:03:12+00:00"
    assert steps == [("triage", "pending")]
    shown = client.get(f"/api/v1/transactions/{TX}", headers=auth).get_json()["transaction"]
    # Our shape plus where it came from; nothing else of Stripe's payload (no last4, no receipt, no evidence).
    assert shown["source"] == {"processor": "stripe", "event_id": "evt_1MmlLsLkdIwHu7ixN0Ngr4Yb", "object_id": CHARGE}
    assert set(shown) == {
        "transaction_id",
        "store_id",
        "register_id",
        "occurred_at",
        "total",
        "payment",
        "items",
        "type",
        "cashier_id",
        "source",
        "fraud",
    }
    assert "4242" not in json.dumps(shown)


def test_charge_and_payment_intent_of_one_payment_are_one_transaction(send, services):
    assert send(stripe_event("charge.succeeded", stripe_charge())).status_code == 202
    again = send(stripe_event("payment_intent.succeeded", stripe_intent(), event_id="evt_pi_1"))
    assert again.status_code == 200 and again.get_json() == {"status": "duplicate"}
    assert count_rows(services, Transaction) == 1
    assert stored(services)[1] == [("triage", "pending")]
    with UnitOfWork(services.db) as uow:
        assert {e.id for e in uow.session.scalars(select(InboundEvent))} == {
            "stripe:evt_1MmlLsLkdIwHu7ixN0Ngr4Yb",
            "stripe:evt_pi_1",
        }


def test_an_older_api_versions_intent_carries_its_charge_and_comes_first(send, services):
    intent = stripe_intent(latest_charge=None, charges={"object": "list", "data": [stripe_charge()]})
    first = send(stripe_event("payment_intent.succeeded", intent, event_id="evt_pi_1", api_version="2022-08-01"))
    assert first.status_code == 202 and first.get_json()["transaction_id"] == TX
    second = send(stripe_event("charge.succeeded", stripe_charge()))
    assert second.status_code == 200 and second.get_json() == {"status": "duplicate"}
    transaction, steps = stored(services)
    assert json.loads(transaction.body)["source"]["event_id"] == "evt_pi_1"
    assert steps == [("triage", "pending")]


def test_an_intent_without_its_charge_waits_for_the_charge_event(send, services):
    response = send(stripe_event("payment_intent.succeeded", stripe_intent(), event_id="evt_pi_1"))
    assert response.status_code == 200
    assert response.get_json()["status"] == "ignored" and "charge.succeeded" in response.get_json()["reason"]
    assert count_rows(services, Transaction) == 0 and count_rows(services, InboundEvent) == 0
    assert send(stripe_event("charge.succeeded", stripe_charge())).status_code == 202


def test_a_charge_without_a_payment_intent_is_keyed_by_the_charge(send, services):
    assert send(stripe_event("charge.succeeded", stripe_charge(payment_intent=None))).status_code == 202
    assert stored(services, f"stripe:{CHARGE}")[0] is not None


def test_a_redelivered_event_is_a_duplicate_without_a_second_effect(send, services):
    event = stripe_event("charge.succeeded", stripe_charge())
    assert send(event).status_code == 202
    response = send(event)
    assert response.status_code == 200 and response.get_json() == {"status": "duplicate"}
    assert (
        count_rows(services, Transaction) == 1
        and count_rows(services, WorkItem) == 1
        and count_rows(services, InboundEvent) == 1
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Stripe-Signature": "garbage"},
        {"Stripe-Signature": f"t={int(time.time())},v1={'0' * 64}"},
    ],
)
def test_bad_or_missing_signature_is_401_and_nothing_stored(client, services, headers):
    body = raw(stripe_event("charge.succeeded", stripe_charge()))
    response = client.post(URL, data=body, headers={"Content-Type": "application/json", **headers})
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert count_rows(services, Transaction) == 0 and count_rows(services, InboundEvent) == 0


def test_another_secret_or_a_tampered_body_is_401(client, services):
    body = raw(stripe_event("charge.succeeded", stripe_charge()))
    assert client.post(URL, data=body, headers=stripe_headers(body, secret="whsec_other")).status_code == 401
    tampered = raw(stripe_event("charge.succeeded", stripe_charge(amount=1)))
    assert client.post(URL, data=tampered, headers=stripe_headers(body)).status_code == 401
    assert count_rows(services, Transaction) == 0


def test_a_stale_signature_is_401(send, services):
    response = send(stripe_event("charge.succeeded", stripe_charge()), at=time.time() - 301)
    assert response.status_code == 401
    assert "tolerance" in response.get_json()["detail"]
    assert count_rows(services, Transaction) == 0
    assert send(stripe_event("charge.succeeded", stripe_charge()), at=time.time() - 250).status_code == 202


def test_feed_off_is_404_naming_the_variable(environ, business, clock, services):
    off = {k: v for k, v in environ.items() if k != "STRIPE_WEBHOOK_SECRET"}
    app = create_app(build_services(load_config(off, yaml.safe_dump(business)), clock=clock, db=services.db))
    body = raw(stripe_event("charge.succeeded", stripe_charge()))
    response = app.test_client().post(URL, data=body, headers=stripe_headers(body))
    assert response.status_code == 404 and response.mimetype == "application/problem+json"
    assert "STRIPE_WEBHOOK_SECRET" in response.get_json()["detail"]
    assert count_rows(services, Transaction) == 0


def test_unknown_reader_is_stored_skipped_with_the_reason_in_the_api(send, services, client, auth, caplog):
    charge = stripe_charge(payment_method_details__card_present__reader="tmr_NEW0001")
    with caplog.at_level(logging.WARNING, logger="bot.http.feeds"):
        assert send(stripe_event("charge.succeeded", charge)).status_code == 202
    transaction, steps = stored(services)
    assert (transaction.store_id, transaction.register_id) == (f"stripe:{LOCATION}", "stripe:tmr_NEW0001")
    assert steps == []
    correlation = client.get(f"/api/v1/transactions/{TX}", headers=auth).get_json()["correlation"]
    assert correlation["status"] == "skipped"
    assert correlation["reason"] == (
        "Stripe reader tmr_NEW0001 is not mapped to a register: set registers[].stripe_reader_id"
    )
    assert any("tmr_NEW0001" in r.getMessage() and TX in r.getMessage() for r in caplog.records)


def test_a_charge_of_an_older_api_version_names_no_reader_and_says_so(send, services):
    charge = stripe_charge(
        payment_method_details__card_present__reader=None, payment_method_details__card_present__location=None
    )
    assert send(stripe_event("charge.succeeded", charge, api_version="2025-09-30.clover")).status_code == 202
    transaction, _ = stored(services)
    assert (transaction.store_id, transaction.register_id, transaction.status) == (
        "stripe:unknown",
        "stripe:unknown",
        "skipped",
    )
    assert "2026-02-25" in transaction.status_reason


def test_an_online_card_payment_is_ignored_and_not_stored(send, services):
    online = stripe_charge(payment_method_details={"type": "card", "card": {"brand": "visa", "last4": "4242"}})
    response = send(stripe_event("charge.succeeded", online))
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ignored",
        "reason": ("not an in-person (Terminal card_present) payment: online payments are out of scope"),
    }
    assert count_rows(services, Transaction) == 0


def test_other_event_types_are_ignored(send, services):
    response = send(stripe_event("customer.created", {"id": "cus_1", "object": "customer"}))
    assert response.status_code == 200 and response.get_json()["status"] == "ignored"
    assert count_rows(services, InboundEvent) == 0


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (14990, "jpy", ("14990", "JPY")),
        (14990, "krw", ("14990", "KRW")),
        (14990, "kwd", ("14.990", "KWD")),
        (14990, "usd", ("149.90", "USD")),
        (50000, "isk", ("500.00", "ISK")),
    ],
)
def test_amounts_are_converted_with_the_currencys_exponent(send, services, amount, currency, expected):
    assert send(stripe_event("charge.succeeded", stripe_charge(amount=amount, currency=currency))).status_code == 202
    transaction, _ = stored(services)
    posted = json.loads(transaction.body)["total"]
    assert (posted["amount"], posted["currency"]) == expected
    assert transaction.total_amount == Decimal(expected[0])


def test_a_fraudulent_dispute_files_a_chargeback_and_enqueues_its_step(send, services):
    assert send(stripe_event("charge.succeeded", stripe_charge())).status_code == 202
    response = send(stripe_event("charge.dispute.created", stripe_dispute(), event_id="evt_dp_1"))
    assert response.status_code == 202
    assert response.get_json() == {"transaction_id": TX, "source": "chargeback", "status": "accepted"}
    with UnitOfWork(services.db) as uow:
        [report] = uow.session.scalars(select(FraudReport)).all()
        assert (report.transaction_id, report.source) == (TX, "chargeback")
        assert report.reason == "Stripe dispute dp_1MmlM3LkdIwHu7ix6DlyW8Jr: fraudulent"
        assert report.reported_at.isoformat() == "2026-12-01T13:00:00+00:00"
        assert ("fraud_report", "pending") in [(w.kind, w.status) for w in uow.work.for_transaction(TX)]
        assert [a.action for a in uow.audit.entries(subject_id=TX)] == ["fraud_report"]
    assert send(stripe_event("charge.dispute.created", stripe_dispute(), event_id="evt_dp_1")).get_json() == {
        "status": "duplicate"
    }
    assert count_rows(services, FraudReport) == 1


def test_a_dispute_for_another_reason_is_ignored(send, services):
    assert send(stripe_event("charge.succeeded", stripe_charge())).status_code == 202
    response = send(
        stripe_event("charge.dispute.created", stripe_dispute(reason="product_not_received"), event_id="evt_dp_1")
    )
    assert response.status_code == 200 and response.get_json()["status"] == "ignored"
    assert count_rows(services, FraudReport) == 0


def test_a_dispute_for_a_payment_never_seen_is_200_unknown_and_kept(send, services, caplog):
    with caplog.at_level(logging.WARNING, logger="bot.http.feeds"):
        response = send(stripe_event("charge.dispute.created", stripe_dispute(), event_id="evt_dp_1"))
    assert response.status_code == 200
    assert response.get_json() == {"status": "unknown_transaction", "transaction_id": TX}
    assert count_rows(services, FraudReport) == 0
    with UnitOfWork(services.db) as uow:
        kept = uow.session.get(InboundEvent, "stripe:evt_dp_1")
        assert kept.handled_at is None and kept.source == "stripe"
        assert kept.payload["report"]["transaction_id"] == TX and "evidence" not in json.dumps(kept.payload)
    assert any(TX in r.getMessage() for r in caplog.records)


def kept_event(services, key: str):
    with UnitOfWork(services.db) as uow:
        event = uow.session.get(InboundEvent, key)
        return None if event is None else (event.payload, event.handled_at)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"metadata": {"cashier_id": "Ana Souza"}}, "cashier_id"),  # a space
        ({"metadata": {"cashier_id": "c" * 65}}, "cashier_id"),  # over 64 characters
        ({"payment_intent": "pi_" + "x" * 130}, "transaction_id"),  # over 128 with the stripe: prefix
        ({"amount": 10**15}, "total.amount"),  # more than 12 integer digits
        ({"currency": "usd", "amount": 10**14}, "total.amount"),
        ({"payment_method_details__card_present__fingerprint": "f" * 129}, "payment.card_fingerprint"),
        (
            {
                "payment_method_details__card_present__location": "tml_" + "L" * 70,
                "payment_method_details__card_present__reader": "tmr_UNMAPPED",
            },
            "store_id",
        ),
        ({"payment_method_details__card_present__reader": "tmr_" + "R" * 70}, "register_id"),
    ],
)
def test_a_charge_our_schema_refuses_is_200_and_kept_as_skipped_naming_the_field(send, services, changes, field):
    response = send(stripe_event("charge.succeeded", stripe_charge(**changes)))
    assert response.status_code == 200
    answer = response.get_json()
    assert answer["status"] == "skipped" and [e["field"] for e in answer["errors"]] == [field]
    assert f"{field}: " in answer["reason"]
    assert count_rows(services, Transaction) == 0 and count_rows(services, WorkItem) == 0
    payload, handled_at = kept_event(services, "stripe:evt_1MmlLsLkdIwHu7ixN0Ngr4Yb")
    assert payload["outcome"] == "skipped" and payload["reason"] == answer["reason"]
    assert payload["type"] == "charge.succeeded" and handled_at is not None
    # Never the refused value itself: it may be personal (a name) and the payload is kept for days.
    assert "Ana Souza" not in json.dumps(payload)
    again = send(stripe_event("charge.succeeded", stripe_charge(**changes)))
    assert again.status_code == 200 and again.get_json() == {"status": "duplicate"}


def test_a_field_the_mapping_cannot_read_is_200_skipped_naming_it(send, services, client):
    response = send(stripe_event("charge.succeeded", stripe_charge(amount=None)))
    assert response.status_code == 200 and response.get_json()["status"] == "skipped"
    assert response.get_json()["errors"] == [
        {"field": "charge.amount", "message": "must be a non-negative integer amount in the currency's minor unit"}
    ]
    assert count_rows(services, Transaction) == 0
    assert kept_event(services, "stripe:evt_1MmlLsLkdIwHu7ixN0Ngr4Yb")[0]["outcome"] == "skipped"
    assert 'flp_feed_events_total{outcome="skipped",processor="stripe"} 1.0' in client.get("/metrics").get_data(
        as_text=True
    )


def test_a_card_number_in_a_mapped_field_is_skipped_and_never_kept(send, services, caplog):
    charge = stripe_charge(payment_method_details__card_present__fingerprint="4111 1111 1111 1111")
    with caplog.at_level(logging.DEBUG):
        response = send(stripe_event("charge.succeeded", charge))
    assert response.status_code == 200
    assert response.get_json()["errors"] == [
        {"field": "payment.card_fingerprint", "message": "looks like a payment card number"}
    ]
    assert count_rows(services, Transaction) == 0
    payload, _ = kept_event(services, "stripe:evt_1MmlLsLkdIwHu7ixN0Ngr4Yb")
    assert payload["transaction_id"] == TX and "4111" not in json.dumps(payload)
    assert not any("4111" in r.getMessage() for r in caplog.records)


def test_a_signed_body_that_is_not_an_event_is_200_skipped_keyed_by_its_hash(client, services):
    body = b'{"object": "event", "type": "charge.succeeded"}'  # no id
    response = client.post(URL, data=body, headers=stripe_headers(body))
    assert response.status_code == 200 and response.get_json()["status"] == "skipped"
    assert response.get_json()["errors"] == [{"field": "id", "message": "required: the event id"}]
    with UnitOfWork(services.db) as uow:
        [kept] = uow.session.scalars(select(InboundEvent)).all()
        assert kept.id.startswith("stripe:sha256-") and kept.payload["outcome"] == "skipped"
    assert client.post(URL, data=body, headers=stripe_headers(body)).get_json() == {"status": "duplicate"}


def test_a_future_signature_beyond_the_tolerance_is_401(send, services):
    response = send(stripe_event("charge.succeeded", stripe_charge()), at=time.time() + 360)
    assert response.status_code == 401 and "future" in response.get_json()["detail"]
    assert count_rows(services, Transaction) == 0 and count_rows(services, InboundEvent) == 0
    assert send(stripe_event("charge.succeeded", stripe_charge()), at=time.time() + 200).status_code == 202


@pytest.mark.parametrize("status", ["warning_needs_response", "warning_under_review", "warning_closed"])
def test_an_inquiry_is_recorded_but_is_no_chargeback(send, services, client, auth, status):
    assert send(stripe_event("charge.succeeded", stripe_charge())).status_code == 202
    response = send(stripe_event("charge.dispute.created", stripe_dispute(status=status), event_id="evt_dp_1"))
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "inquiry",
        "transaction_id": TX,
        "reason": f"Stripe inquiry dp_1MmlM3LkdIwHu7ix6DlyW8Jr ({status}): fraudulent",
    }
    assert count_rows(services, FraudReport) == 0
    with UnitOfWork(services.db) as uow:
        assert "fraud_report" not in [w.kind for w in uow.work.for_transaction(TX)]
        assert [(a.action, a.actor) for a in uow.audit.entries(subject_id=TX)] == [("dispute_inquiry", "stripe")]
    assert kept_event(services, "stripe:evt_dp_1")[0]["outcome"] == "inquiry"
    assert client.get(f"/api/v1/transactions/{TX}", headers=auth).get_json()["transaction"]["fraud"] is None


def test_an_inquiry_that_escalates_files_the_chargeback_once(send, services):
    assert send(stripe_event("charge.succeeded", stripe_charge())).status_code == 202
    inquiry = stripe_dispute(status="warning_needs_response")
    assert send(stripe_event("charge.dispute.created", inquiry, event_id="evt_dp_1")).get_json()["status"] == "inquiry"
    escalated = send(
        stripe_event("charge.dispute.updated", stripe_dispute(status="needs_response"), event_id="evt_dp_2")
    )
    assert escalated.status_code == 202 and escalated.get_json()["source"] == "chargeback"
    withdrawn = send(
        stripe_event("charge.dispute.funds_withdrawn", stripe_dispute(status="needs_response"), event_id="evt_dp_3")
    )
    assert withdrawn.status_code == 200 and withdrawn.get_json() == {"status": "duplicate"}
    assert count_rows(services, FraudReport) == 1


@pytest.mark.parametrize("status", ["won", "prevented", "warning_closed"])
def test_a_dispute_update_that_is_no_chargeback_files_nothing(send, services, status):
    assert send(stripe_event("charge.succeeded", stripe_charge())).status_code == 202
    response = send(stripe_event("charge.dispute.updated", stripe_dispute(status=status), event_id="evt_dp_2"))
    assert response.status_code == 200 and response.get_json()["status"] in ("ignored", "inquiry")
    assert count_rows(services, FraudReport) == 0


def test_outcomes_are_counted_and_no_card_data_is_logged(send, client, caplog):
    with caplog.at_level(logging.DEBUG):
        send(stripe_event("charge.succeeded", stripe_charge()))
        send(stripe_event("charge.succeeded", stripe_charge()))
        send(stripe_event("customer.created", {"id": "cus_1"}, event_id="evt_2"))
    metrics = client.get("/metrics").get_data(as_text=True)
    for outcome in ("accepted", "duplicate", "ignored"):
        assert f'flp_feed_events_total{{outcome="{outcome}",processor="stripe"}} 1.0' in metrics
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Xt5EWLLDS7FJjR1c" not in logged and "4242" not in logged and "whsec_" not in logged

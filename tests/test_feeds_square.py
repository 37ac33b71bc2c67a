"""POST /api/v1/feeds/square: Square's signed event notifications in, our transactions and fraud reports out."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import yaml
from sqlalchemy import select

from bot.app import build_services, create_app
from core.config import load_config
from storage.models import FraudReport, InboundEvent, Transaction, WorkItem
from storage.uow import UnitOfWork
from tests.feed_events import (
    SQ_DEVICE,
    SQ_PAYMENT,
    SQUARE_URL,
    count_rows,
    feed_business,
    feed_environ,
    poster,
    raw,
    square_dispute,
    square_event,
    square_headers,
    square_payment,
)

URL = "/api/v1/feeds/square"
TX = f"square:{SQ_PAYMENT}"


@pytest.fixture
def business(business):
    return feed_business(business)


@pytest.fixture
def environ(environ):
    return feed_environ(environ)


@pytest.fixture
def send(client):
    return poster(client, URL, square_headers)


def payment_event(event_id: str = "6a8f5f28-54a1-4eb0-a98a-3111513fd4fc", **changes) -> dict:
    return square_event("payment.created", "payment", square_payment(**changes), event_id=event_id)


def dispute_event(event_id: str = "d-1", **changes) -> dict:
    return square_event("dispute.created", "dispute", square_dispute(**changes), event_id=event_id)


def stored(services):
    with UnitOfWork(services.db) as uow:
        return uow.transactions.get(TX), [(w.kind, w.status) for w in uow.work.for_transaction(TX)]


def test_terminal_payment_becomes_a_transaction_at_the_devices_register(send, services):
    response = send(payment_event())
    assert response.status_code == 202 and response.get_json() == {"transaction_id": TX, "status": "accepted"}
    transaction, steps = stored(services)
    assert (transaction.store_id, transaction.register_id, transaction.status) == ("store-001", "reg-1", "pending")
    assert (transaction.total_amount, transaction.currency) == (Decimal("14990"), "JPY")
    assert (transaction.entry_mode, transaction.risk_score, transaction.cashier_id) == ("chip", 85, "TMoK_Xa1B2c3D4e5")
    assert transaction.card_fingerprint.startswith("sq-1-Hxim77")
    assert transaction.occurred_at.isoformat() == "2026-11-24T20:03:12.086000+00:00"
    assert steps == [("triage", "pending")]
    body = json.loads(transaction.body)
    assert body["source"] == {
        "processor": "square",
        "event_id": "6a8f5f28-54a1-4eb0-a98a-3111513fd4fc",
        "object_id": SQ_PAYMENT,
    }
    assert "1111" not in json.dumps(body) and "order_id" not in body


@pytest.mark.parametrize(
    ("entry", "mode"),
    [("EMV", "chip"), ("CONTACTLESS", "contactless"), ("SWIPED", "swipe"), ("KEYED", "manual"), ("ON_FILE", "online")],
)
def test_entry_methods(send, services, entry, mode):
    assert send(payment_event(card_details__entry_method=entry)).status_code == 202
    assert stored(services)[0].entry_mode == mode


def test_a_usd_amount_has_two_decimals(send, services):
    assert send(payment_event(amount_money={"amount": 14990, "currency": "USD"})).status_code == 202
    assert stored(services)[0].total_amount == Decimal("149.90")


def test_unknown_location_is_stored_skipped_with_the_reason(send, services, client, auth):
    assert send(payment_event(location_id="LNEW")).status_code == 202
    transaction, steps = stored(services)
    assert (transaction.store_id, transaction.register_id, transaction.status) == (
        "square:LNEW",
        f"square:{SQ_DEVICE}",
        "skipped",
    )
    assert steps == []
    correlation = client.get(f"/api/v1/transactions/{TX}", headers=auth).get_json()["correlation"]
    assert correlation["reason"] == "Square location LNEW is not mapped to a store: set stores[].square_location_id"


def test_unknown_device_in_a_known_store_is_stored_skipped_with_the_reason(send, services):
    assert send(payment_event(device_details={"device_id": "device:OTHER"})).status_code == 202
    transaction, _ = stored(services)
    assert (transaction.store_id, transaction.register_id) == ("store-001", "square:device:OTHER")
    assert transaction.status_reason == (
        "Square device device:OTHER is not mapped to a register of store store-001: set registers[].square_device_id"
    )


def test_the_device_may_sit_in_card_details_on_older_payments(send, services):
    assert (
        send(payment_event(device_details=None, card_details__device_details={"device_id": SQ_DEVICE})).status_code
        == 202
    )
    assert stored(services)[0].register_id == "reg-1"


@pytest.mark.parametrize(
    "changes",
    [
        {"device_details": None, "card_details__entry_method": "KEYED"},
        {"source_type": "CASH", "card_details": None},
    ],
)
def test_online_and_non_card_payments_are_ignored(send, services, changes):
    response = send(payment_event(**changes))
    assert response.status_code == 200 and response.get_json()["status"] == "ignored"
    assert count_rows(services, Transaction) == 0


def test_a_redelivered_event_is_a_duplicate(send, services):
    assert send(payment_event()).status_code == 202
    response = send(payment_event())
    assert response.status_code == 200 and response.get_json() == {"status": "duplicate"}
    assert count_rows(services, Transaction) == 1 and count_rows(services, WorkItem) == 1
    with UnitOfWork(services.db) as uow:
        assert [(e.id, e.source) for e in uow.session.scalars(select(InboundEvent))] == [
            ("square:6a8f5f28-54a1-4eb0-a98a-3111513fd4fc", "square")
        ]


@pytest.mark.parametrize("signing", [{"key": "other-key"}, {"url": SQUARE_URL + "/"}])
def test_a_wrong_signature_is_401_and_nothing_stored(send, services, signing):
    response = send(payment_event(), **signing)
    assert response.status_code == 401 and response.mimetype == "application/problem+json"
    assert count_rows(services, Transaction) == 0 and count_rows(services, InboundEvent) == 0


def test_a_missing_signature_or_a_tampered_body_is_401(client, services):
    body = raw(payment_event())
    assert client.post(URL, data=body, headers={"Content-Type": "application/json"}).status_code == 401
    tampered = raw(payment_event(amount_money={"amount": 1, "currency": "JPY"}))
    assert client.post(URL, data=tampered, headers=square_headers(body)).status_code == 401
    assert count_rows(services, Transaction) == 0


def test_feed_off_is_404_naming_the_missing_variables(environ, business, clock, services):
    off = {k: v for k, v in environ.items() if not k.startswith("SQUARE_")}
    app = create_app(build_services(load_config(off, yaml.safe_dump(business)), clock=clock, db=services.db))
    body = raw(payment_event())
    response = app.test_client().post(URL, data=body, headers=square_headers(body))
    assert response.status_code == 404
    assert (
        response.get_json()["detail"]
        == "the Square feed is off: SQUARE_SIGNATURE_KEY and SQUARE_NOTIFICATION_URL not set"
    )
    assert count_rows(services, Transaction) == 0


@pytest.mark.parametrize("reason", ["NO_KNOWLEDGE", "EMV_LIABILITY_SHIFT"])
def test_a_fraud_dispute_files_a_chargeback(send, services, reason):
    assert send(payment_event()).status_code == 202
    response = send(dispute_event(reason=reason))
    assert response.status_code == 202
    with UnitOfWork(services.db) as uow:
        [report] = uow.session.scalars(select(FraudReport)).all()
        assert (report.transaction_id, report.source) == (TX, "chargeback")
        assert report.reason == f"Square dispute XDgyFu7yo1E2S5lQGGpYn: {reason}"
        assert report.reported_at.isoformat() == "2026-12-01T00:00:00+00:00"
        assert ("fraud_report", "pending") in [(w.kind, w.status) for w in uow.work.for_transaction(TX)]


@pytest.mark.parametrize("reason", ["DUPLICATE", "NOT_RECEIVED", "AMOUNT_DIFFERS"])
def test_other_dispute_reasons_are_ignored(send, services, reason):
    assert send(payment_event()).status_code == 202
    response = send(dispute_event(reason=reason))
    assert response.status_code == 200 and response.get_json()["status"] == "ignored"
    assert count_rows(services, FraudReport) == 0


def test_a_dispute_for_a_payment_never_seen_is_200_unknown_transaction(send, services):
    response = send(dispute_event())
    assert response.status_code == 200 and response.get_json() == {
        "status": "unknown_transaction",
        "transaction_id": TX,
    }
    assert count_rows(services, FraudReport) == 0 and count_rows(services, InboundEvent) == 1
    assert send(dispute_event()).get_json() == {"status": "duplicate"}


def test_an_event_without_its_object_is_200_skipped_naming_it(send, services):
    event = payment_event()
    del event["data"]["object"]["payment"]
    response = send(event)
    assert response.status_code == 200 and response.get_json()["errors"][0]["field"] == "data.object.payment"
    with UnitOfWork(services.db) as uow:
        kept = uow.session.get(InboundEvent, "square:6a8f5f28-54a1-4eb0-a98a-3111513fd4fc")
        assert kept.payload["outcome"] == "skipped" and "data.object.payment" in kept.payload["reason"]
    assert count_rows(services, Transaction) == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"team_member_id": "Ana Souza"}, "cashier_id"),
        ({"team_member_id": "T" * 65}, "cashier_id"),
        ({"id": "R" * 125}, "transaction_id"),
        ({"amount_money": {"amount": 10**13, "currency": "JPY"}}, "total.amount"),
    ],
)
def test_a_payment_our_schema_refuses_is_200_skipped_naming_the_field(send, services, changes, field):
    response = send(payment_event(**changes))
    assert response.status_code == 200 and response.get_json()["status"] == "skipped"
    assert [e["field"] for e in response.get_json()["errors"]] == [field]
    assert count_rows(services, Transaction) == 0 and count_rows(services, InboundEvent) == 1


def update_event(event_id: str, status: str, updated_at: str, **changes) -> dict:
    payment = square_payment(status=status, updated_at=updated_at, **changes)
    return square_event("payment.updated", "payment", payment, event_id=event_id)


def shown(client, auth) -> dict:
    return client.get(f"/api/v1/transactions/{TX}", headers=auth).get_json()["transaction"]["payment"]


@pytest.mark.parametrize(
    ("status", "ours"), [("CANCELED", "canceled"), ("FAILED", "failed"), ("COMPLETED", "approved")]
)
def test_a_payment_update_changes_the_stored_status(send, services, client, auth, status, ours):
    assert send(payment_event()).status_code == 202
    assert shown(client, auth)["status"] == "approved"
    response = send(update_event("u-1", status, "2026-11-24T20:05:00.000Z"))
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "updated",
        "transaction_id": TX,
        "payment_status": ours,
        "reason": f"Square payment {SQ_PAYMENT}: {status}",
    }
    payment = shown(client, auth)
    assert (payment["status"], payment["status_updated_at"]) == (ours, "2026-11-24T20:05:00Z")
    transaction, steps = stored(services)
    assert transaction.payment_status == ours and steps == [("triage", "pending")]  # no second correlation
    with UnitOfWork(services.db) as uow:
        assert [(a.action, a.reason_code) for a in uow.audit.entries(subject_id=TX)] == [("payment_status", ours)]
    assert send(update_event("u-1", status, "2026-11-24T20:05:00.000Z")).get_json() == {"status": "duplicate"}


def test_an_older_update_arriving_late_does_not_overwrite_a_newer_status(send, services, client, auth):
    assert send(payment_event()).status_code == 202
    assert send(update_event("u-2", "CANCELED", "2026-11-24T20:09:00.000Z")).get_json()["status"] == "updated"
    late = send(update_event("u-1", "COMPLETED", "2026-11-24T20:05:00.000Z"))
    assert late.status_code == 200 and late.get_json()["status"] == "stale"
    assert shown(client, auth)["status"] == "canceled"


def test_an_update_older_than_the_created_payment_changes_nothing(send, client, auth):
    assert send(payment_event(updated_at="2026-11-24T20:06:00.000Z")).status_code == 202
    assert send(update_event("u-1", "FAILED", "2026-11-24T20:04:00+00:00")).get_json()["status"] == "stale"
    assert shown(client, auth)["status"] == "approved"


def test_the_payments_version_orders_updates_when_both_carry_one(send, client, auth):
    assert send(payment_event(version=1)).status_code == 202
    assert send(update_event("u-3", "CANCELED", "2026-11-24T20:05:00Z", version=3)).get_json()["status"] == "updated"
    # A later updated_at but an older version: the version wins (clocks can disagree, versions only grow).
    assert send(update_event("u-2", "COMPLETED", "2026-11-24T20:07:00Z", version=2)).get_json()["status"] == "stale"
    assert shown(client, auth)["status"] == "canceled"


def test_an_update_of_a_payment_never_seen_is_200_unknown_and_kept(send, services):
    response = send(update_event("u-1", "CANCELED", "2026-11-24T20:05:00Z"))
    assert response.status_code == 200 and response.get_json()["status"] == "unknown_transaction"
    with UnitOfWork(services.db) as uow:
        kept = uow.session.get(InboundEvent, "square:u-1")
        assert kept.handled_at is None and kept.payload["payment_status"]["status"] == "canceled"
    assert count_rows(services, Transaction) == 0


def test_an_update_of_an_online_payment_is_ignored(send, services):
    response = send(
        update_event(
            "u-1", "COMPLETED", "2026-11-24T20:05:00Z", device_details=None, card_details__entry_method="KEYED"
        )
    )
    assert response.status_code == 200 and response.get_json()["status"] == "ignored"
    assert count_rows(services, InboundEvent) == 0


@pytest.mark.parametrize("state", ["INQUIRY_EVIDENCE_REQUIRED", "INQUIRY_PROCESSING", "INQUIRY_CLOSED"])
def test_an_inquiry_is_recorded_but_is_no_chargeback(send, services, state):
    assert send(payment_event()).status_code == 202
    response = send(dispute_event(state=state))
    assert response.status_code == 200 and response.get_json()["status"] == "inquiry"
    assert count_rows(services, FraudReport) == 0
    escalated = send(
        square_event("dispute.state.updated", "dispute", square_dispute(state="EVIDENCE_REQUIRED"), event_id="d-2")
    )
    assert escalated.status_code == 202 and count_rows(services, FraudReport) == 1


def test_the_notification_url_is_signed_exactly_as_written(environ, business, clock):
    # A URL type would lower-case the host and drop the default port, and every event would be a 401.
    written = "https://Bot.Example.com:443/flp/square"
    config = load_config({**environ, "SQUARE_NOTIFICATION_URL": written}, yaml.safe_dump(business))
    services = build_services(config, clock=clock)
    try:
        send = poster(create_app(services).test_client(), URL, square_headers)
        assert send(payment_event(), url=written).status_code == 202
        assert send(payment_event(event_id="e-2"), url="https://bot.example.com/flp/square").status_code == 401
    finally:
        services.db.dispose()

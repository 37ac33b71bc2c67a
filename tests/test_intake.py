"""Every row of the POS intake table in docs/interfaces.md, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from storage.models import Transaction
from storage.uow import UnitOfWork
from tests.conftest import signed_headers, transaction_body

URL = "/api/v1/transactions"


def stored(services, transaction_id="T-2026-000123"):
    with UnitOfWork(services.db) as uow:
        return uow.transactions.get(transaction_id), uow.work.for_transaction(transaction_id)


def count_transactions(services) -> int:
    with UnitOfWork(services.db) as uow:
        return uow.session.scalar(select(func.count()).select_from(Transaction))


def test_new_valid_transaction_is_stored_with_its_first_step_then_202(post_signed, services):
    response = post_signed(URL, transaction_body())
    assert response.status_code == 202
    assert response.get_json() == {"transaction_id": "T-2026-000123", "status": "accepted"}
    transaction, items = stored(services)
    assert transaction.store_id == "store-001" and transaction.status == "pending"
    assert transaction.total_amount == Decimal("149.90")
    assert transaction.occurred_at.isoformat() == "2026-11-24T20:03:12+00:00"
    assert json.loads(transaction.body) == transaction_body()
    assert [(i.kind, i.status) for i in items] == [("triage", "pending")]


def test_same_id_same_body_is_a_duplicate_without_a_second_step(post_signed, services):
    assert post_signed(URL, transaction_body()).status_code == 202
    # Same JSON, other key order and spacing: still the same body.
    again = json.dumps(transaction_body(), indent=2, sort_keys=True).encode()
    response = post_signed(URL, again)
    assert response.status_code == 200
    assert response.get_json() == {"status": "duplicate"}
    _, items = stored(services)
    assert len(items) == 1


def test_same_id_different_body_is_a_conflict(post_signed, services):
    assert post_signed(URL, transaction_body()).status_code == 202
    response = post_signed(URL, transaction_body(total={"amount": "1.00", "currency": "BRL"}))
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    transaction, _ = stored(services)
    assert transaction.total_amount == Decimal("149.90")


@pytest.mark.parametrize("header", [None, "garbage", "t=1,v1=" + "0" * 64])
def test_bad_or_missing_signature_is_401_and_nothing_stored(client, services, header):
    raw = json.dumps(transaction_body()).encode()
    headers = {"Content-Type": "application/json", **({"X-Signature": header} if header else {})}
    response = client.post(URL, data=raw, headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert count_transactions(services) == 0


def test_signature_with_another_key_is_401(client, services, clock):
    raw = json.dumps(transaction_body()).encode()
    response = client.post(URL, data=raw, headers=signed_headers(raw, secret="other", at=clock().timestamp()))
    assert response.status_code == 401
    assert count_transactions(services) == 0


@pytest.mark.parametrize("skew", [-301, 301])
def test_stale_or_future_timestamp_is_401(client, services, clock, skew):
    raw = json.dumps(transaction_body()).encode()
    response = client.post(URL, data=raw, headers=signed_headers(raw, at=clock().timestamp() + skew))
    assert response.status_code == 401
    assert "300" in response.get_json()["detail"]


def test_timestamp_within_tolerance_is_accepted(client, clock):
    raw = json.dumps(transaction_body()).encode()
    response = client.post(URL, data=raw, headers=signed_headers(raw, at=clock().timestamp() - 299))
    assert response.status_code == 202


def test_signature_over_another_body_is_401(client, services, clock):
    raw = json.dumps(transaction_body()).encode()
    headers = signed_headers(raw, at=clock().timestamp())
    tampered = json.dumps(transaction_body(total={"amount": "0.01", "currency": "BRL"})).encode()
    assert client.post(URL, data=tampered, headers=headers).status_code == 401
    assert count_transactions(services) == 0


def test_not_json_is_422_problem(post_signed, services):
    response = post_signed(URL, b"{not json")
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["errors"] == [{"field": "(body)", "message": "not valid JSON"}]
    assert count_transactions(services) == 0


def test_schema_errors_name_each_field(post_signed, services):
    body = transaction_body(transaction_id="bad id!", occurred_at="2026-11-24T17:03:12")
    body["total"] = {"amount": 149.9, "currency": "BRL"}
    body["payment"]["risk_score"] = 101
    del body["register_id"]
    response = post_signed(URL, body)
    assert response.status_code == 422
    fields = {e["field"] for e in response.get_json()["errors"]}
    assert {"transaction_id", "occurred_at", "total.amount", "payment.risk_score", "register_id"} <= fields
    assert count_transactions(services) == 0


def test_refund_needs_the_original_transaction(post_signed):
    response = post_signed(URL, transaction_body(type="refund"))
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "original_transaction_id"


def test_card_number_anywhere_is_refused_and_not_stored(post_signed, services):
    body = transaction_body()
    body["items"][0]["name"] = "paid with 4111 1111 1111 1111"
    response = post_signed(URL, body)
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["errors"][0]["field"] == "items.0.name"
    assert "4111" not in response.get_data(as_text=True)
    assert count_transactions(services) == 0


def test_luhn_valid_sku_and_ids_are_not_card_numbers(post_signed):
    body = transaction_body(cashier_id="4111111111111111")
    body["items"][0]["sku"] = "4111111111111111"
    assert post_signed(URL, body).status_code == 202


def test_body_over_256_kib_is_413(post_signed, services):
    body = transaction_body()
    body["padding"] = "x" * (256 * 1024)
    response = post_signed(URL, body)
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert count_transactions(services) == 0


def test_wrong_content_type_is_415(post_signed, services):
    response = post_signed(URL, transaction_body(), **{"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert count_transactions(services) == 0


@pytest.mark.parametrize(
    "store_id, register_id, reason",
    [
        ("store-999", "reg-1", "unknown store 'store-999'"),
        ("store-001", "reg-9", "unknown register 'reg-9'"),
    ],
)
def test_unknown_store_or_register_is_stored_and_skipped_with_reason(
    post_signed, services, client, auth, store_id, register_id, reason
):
    response = post_signed(URL, transaction_body(store_id=store_id, register_id=register_id))
    assert response.status_code == 202
    transaction, items = stored(services)
    assert transaction.status == "skipped" and reason in transaction.status_reason
    assert items == []
    view = client.get(f"{URL}/T-2026-000123", headers=auth).get_json()
    assert view["correlation"]["status"] == "skipped"
    assert reason in view["correlation"]["reason"]


def test_extra_fields_are_accepted_and_kept_as_posted(post_signed, services):
    body = transaction_body(pos_vendor={"name": "Acme POS", "version": "7.1"})
    assert post_signed(URL, body).status_code == 202
    transaction, _ = stored(services)
    assert json.loads(transaction.body)["pos_vendor"]["version"] == "7.1"


@pytest.fixture
def tight_quota(business: dict) -> dict:
    registers = [
        {**r, "camera_serial": r["camera_serial"].replace("AAAA", "BBBB")} for r in business["stores"][0]["registers"]
    ]
    business["stores"].append({**business["stores"][0], "id": "store-002", "name": "Other", "registers": registers})
    business["intake"] = {"per_store_per_s": 0.5, "burst": 3}
    return business


@pytest.mark.usefixtures("tight_quota")
def test_a_store_over_its_quota_gets_429_and_nothing_is_stored_while_another_is_served(post_signed, services):
    answers = [post_signed(URL, transaction_body(transaction_id=f"T-{n}")) for n in range(5)]
    assert [a.status_code for a in answers] == [202, 202, 202, 429, 429]
    assert answers[3].headers["Retry-After"] == "2" and answers[3].mimetype == "application/problem+json"
    assert "store-001 posted more than its quota" in answers[3].get_json()["detail"]
    other = post_signed(URL, transaction_body(transaction_id="T-other", store_id="store-002"))
    assert other.status_code == 202
    with UnitOfWork(services.db) as uow:
        assert uow.transactions.get("T-3") is None and uow.transactions.get("T-other") is not None

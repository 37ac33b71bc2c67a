"""POST /api/v1/fraud-reports (docs/interfaces.md): signed like transactions, once per transaction and source."""

from __future__ import annotations

import json

import pytest

from bot.runner import Runner
from bot.steps import STEPS
from storage.uow import UnitOfWork
from tests import factories
from tests.conftest import signed_headers, transaction_body

URL = "/api/v1/fraud-reports"
TX = "T-2026-000123"


def report(**changes) -> dict:
    return {
        "transaction_id": TX,
        "reason": "cardholder denies",
        "source": "chargeback",
        "reported_at": "2026-12-01T10:00:00-03:00",
        **changes,
    }


@pytest.fixture
def received(post_signed) -> str:
    assert post_signed("/api/v1/transactions", transaction_body()).status_code == 202
    return TX


def stored_reports(services, transaction_id: str = TX):
    with UnitOfWork(services.db) as uow:
        return uow.transactions.with_evidence(transaction_id).fraud_reports, uow.audit.entries(
            subject_id=transaction_id
        )


def test_new_report_is_202_stored_and_audited(received, post_signed, services, clock):
    response = post_signed(URL, report())
    assert response.status_code == 202
    assert response.get_json() == {"transaction_id": TX, "source": "chargeback", "status": "accepted"}
    reports, audit = stored_reports(services)
    [stored] = reports
    assert (stored.source, stored.reason) == ("chargeback", "cardholder denies")
    assert stored.reported_at.isoformat() == "2026-12-01T13:00:00+00:00" and stored.received_at == clock()
    assert [(a.action, a.actor, a.subject_type, a.subject_id, a.reason_code, a.outcome) for a in audit] == [
        ("fraud_report", "chargeback", "transaction", TX, "chargeback", "ok")
    ]


def test_same_transaction_and_source_again_is_a_duplicate(received, post_signed, services):
    assert post_signed(URL, report()).status_code == 202
    again = post_signed(URL, report(reason="another wording", reported_at="2026-12-02T10:00:00-03:00"))
    assert again.status_code == 200 and again.get_json() == {"status": "duplicate"}
    reports, audit = stored_reports(services)
    assert [r.reason for r in reports] == ["cardholder denies"]
    assert len(audit) == 1


def test_another_source_for_the_same_transaction_is_accepted(received, post_signed, services):
    assert post_signed(URL, report()).status_code == 202
    assert post_signed(URL, report(source="processor", reason=None)).status_code == 202
    reports, audit = stored_reports(services)
    assert [r.source for r in reports] == ["chargeback", "processor"]
    assert [a.reason_code for a in audit] == ["chargeback", "processor"]


def test_unknown_transaction_is_404_saying_never_received_or_purged(post_signed, services):
    response = post_signed(URL, report(transaction_id="T-unknown"))
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["detail"] == "transaction T-unknown was never received here or has already been purged"
    with UnitOfWork(services.db) as uow:
        assert uow.audit.entries() == []


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Signature": "t=1,v1=" + "0" * 64},
        {"X-Signature": "garbage"},
    ],
)
def test_bad_signature_is_401_and_nothing_stored(received, client, services, headers):
    response = client.post(
        URL, data=json.dumps(report()).encode(), headers={"Content-Type": "application/json", **headers}
    )
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert stored_reports(services)[0] == []


def test_signature_by_another_key_or_too_old_is_401(received, client, services, clock):
    raw = json.dumps(report()).encode()
    assert (
        client.post(URL, data=raw, headers=signed_headers(raw, secret="other", at=clock().timestamp())).status_code
        == 401
    )
    assert client.post(URL, data=raw, headers=signed_headers(raw, at=clock().timestamp() - 301)).status_code == 401
    assert stored_reports(services)[0] == []


@pytest.mark.parametrize(
    "changes, removed, fields",
    [
        ({"source": "bank"}, None, {"source"}),
        ({"reported_at": "2026-12-01T10:00:00"}, None, {"reported_at"}),
        ({"reported_at": "yesterday"}, None, {"reported_at"}),
        ({"transaction_id": "T 1!"}, None, {"transaction_id"}),
        ({"reason": "x" * 501}, None, {"reason"}),
        ({}, "source", {"source"}),
        ({"source": "bank"}, "reported_at", {"source", "reported_at"}),
    ],
)
def test_schema_errors_are_422_naming_each_field(received, post_signed, services, changes, removed, fields):
    body = report(**changes)
    if removed:
        del body[removed]
    response = post_signed(URL, body)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert {e["field"] for e in response.get_json()["errors"]} == fields
    assert stored_reports(services)[0] == []


def test_not_json_is_422(received, post_signed):
    response = post_signed(URL, b"[1, 2")
    assert response.status_code == 422
    assert response.get_json()["errors"] == [{"field": "(body)", "message": "not valid JSON"}]


def test_a_fraud_report_never_changes_an_alert_status(received, post_signed, services, clock):
    with UnitOfWork(services.db, write=True) as uow:
        for number, status in ((1, "open"), (2, "dismissed")):
            uow.session.add(
                factories.alert(
                    at=clock(),
                    dedupe_key=f"k-{number}",
                    transaction_id=TX,
                    register_id=None,
                    rule="watchlist_match",
                    severity="high",
                    message="A person on the watchlist is at the register",
                    status=status,
                )
            )
        uow.commit()
    assert post_signed(URL, report()).status_code == 202
    Runner(db=services.db, steps=STEPS, dependencies=services.dependencies(), clock=clock).run_until_idle()
    with UnitOfWork(services.db) as uow:
        alerts = uow.alerts.list()
        assert sorted((a.public_id, a.status, a.decided_by) for a in alerts) == [
            ("A-1", "open", None),
            ("A-2", "dismissed", None),
        ]

"""The read API (docs/interfaces.md): bearer API_TOKEN, the transaction view's shape, alerts and the watchlist."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml

from bot.app import build_services, create_app
from bot.runner import Runner
from bot.steps import STEPS
from core.config import load_config
from storage.models import Alert, WatchlistPerson
from storage.uow import UnitOfWork
from tests import factories
from tests.conftest import transaction_body

TX = "/api/v1/transactions"
GUARDED = [f"{TX}/T-2026-000123", "/api/v1/alerts", "/api/v1/alerts/A-1", "/api/v1/watchlist"]


def alert(clock, number: int, *, status: str = "open", transaction_id: str | None = "T-2026-000123") -> Alert:
    return factories.alert(
        at=clock() + timedelta(seconds=number),
        dedupe_key=f"k-{number}",
        transaction_id=transaction_id,
        message="More products seen than billed",
        facts={"surplus": 2},
        status=status,
    )


def person(clock, person_id: str, status: str, minutes: int) -> WatchlistPerson:
    return factories.watchlist_person(
        at=clock(),
        id=person_id,
        region_id="south",
        status=status,
        reason="theft",
        enrolled_by="ana@example.com",
        enrolled_at=clock() + timedelta(minutes=minutes),
        expires_at=clock() + timedelta(days=180),
    )


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status and body["title"]
    return body


@pytest.mark.parametrize("path", GUARDED)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic dGVzdDp0ZXN0"}, {"Authorization": "Bearer"}],
)
def test_missing_or_wrong_bearer_is_401(client, path, headers):
    body = assert_problem(client.get(path, headers=headers), 401)
    assert body["detail"] == "send Authorization: Bearer <API_TOKEN>"
    assert client.get(path, headers=headers).headers["WWW-Authenticate"] == "Bearer"


@pytest.fixture
def client_without_token(environ, business, clock):
    config = load_config({k: v for k, v in environ.items() if k != "API_TOKEN"}, yaml.safe_dump(business))
    services = build_services(config, clock=clock)
    yield create_app(services).test_client()
    services.db.dispose()


def test_read_api_is_off_without_api_token(client_without_token, auth):
    for path in GUARDED:
        response = client_without_token.get(path, headers=auth)
        assert assert_problem(response, 401)["detail"] == "the read API is off: API_TOKEN is not set"
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_transaction_view_has_the_contract_shape(post_signed, client, auth):
    assert post_signed(TX, transaction_body()).status_code == 202
    view = client.get(f"{TX}/T-2026-000123", headers=auth).get_json()
    assert view == {
        "transaction": {**transaction_body(), "fraud": None},
        "correlation": {
            "status": "pending",
            "reason": None,
            "triage": None,
            "snapshots": [],
            "faces": [],
            "reconciliation": {"lines": [], "not_checked": []},
            "rule_results": [],
            "alert_ids": [],
            "steps": [
                {
                    "kind": "triage",
                    "status": "pending",
                    "attempts": 0,
                    "last_error": None,
                    "next_run_at": "2026-11-24T20:03:20Z",
                }
            ],
        },
    }


def test_transaction_view_shows_triage_and_the_fraud_report(post_signed, client, auth, services, clock):
    post_signed(TX, transaction_body())
    Runner(db=services.db, steps=STEPS, dependencies=services.dependencies(), clock=clock).run_until_idle()
    report = {
        "transaction_id": "T-2026-000123",
        "reason": "cardholder denies",
        "source": "chargeback",
        "reported_at": "2026-12-01T10:00:00-03:00",
    }
    assert post_signed("/api/v1/fraud-reports", report).status_code == 202
    view = client.get(f"{TX}/T-2026-000123", headers=auth).get_json()
    assert view["transaction"]["fraud"] == {
        "source": "chargeback",
        "reason": "cardholder denies",
        "reported_at": "2026-12-01T13:00:00Z",
        "reports": [{"source": "chargeback", "reason": "cardholder denies", "reported_at": "2026-12-01T13:00:00Z"}],
    }
    correlation = view["correlation"]
    assert correlation["status"] == "skipped" and correlation["reason"].startswith("camera off")
    assert correlation["triage"] == {"decision": "capture", "reason": "risk score 72 ≥ 60"}


def test_transaction_view_shows_snapshots_faces_matches_and_alerts(post_signed, client, auth, services, clock):
    post_signed(TX, transaction_body())
    factories.add(
        services.db,
        person(clock, "P-7", "active", 0),
        factories.snapshot(at=clock(), transaction_id="T-2026-000123"),
        factories.snapshot(
            at=clock() + timedelta(seconds=1),
            id="S-2",
            transaction_id="T-2026-000123",
            kind="exact",
            status="failed",
            reason="no footage",
        ),
        factories.face(box=[0.41, 0.12, 0.58, 0.4], quality=0.83),
        factories.face_match(person_id="P-7", similarity=97.4),
        alert(clock, 1),
        alert(clock, 2),
        alert(clock, 3, transaction_id="T-other"),
    )
    with UnitOfWork(services.db, write=True) as uow:
        transaction = uow.transactions.get("T-2026-000123")
        transaction.reconciliation = {"lines": [{"label": "Bottle", "billed": 1, "seen": 3}], "not_checked": []}
        transaction.rule_results = [{"rule": "product_mismatch", "fired": True, "facts": {"surplus": 2}}]
        uow.commit()
    correlation = client.get(f"{TX}/T-2026-000123", headers=auth).get_json()["correlation"]
    assert correlation["snapshots"] == [
        {"id": "S-1", "kind": "live", "status": "ready", "reason": None},
        {"id": "S-2", "kind": "exact", "status": "failed", "reason": "no footage"},
    ]
    assert correlation["faces"] == [
        {
            "id": "F-1",
            "snapshot_id": "S-1",
            "box": [0.41, 0.12, 0.58, 0.4],
            "quality": 0.83,
            "matches": [{"person_id": "P-7", "similarity": 97.4}],
        }
    ]
    assert correlation["reconciliation"]["lines"] == [{"label": "Bottle", "billed": 1, "seen": 3}]
    assert correlation["rule_results"][0]["fired"] is True
    assert correlation["alert_ids"] == ["A-1", "A-2"]


@pytest.mark.parametrize(
    "path",
    [
        f"{TX}/T-never",
        f"{TX}/T%00x",
        "/api/v1/alerts/A-999",
        "/api/v1/alerts/B-1",
        "/api/v1/alerts/A-²",
        "/api/v1/alerts/A-99999999999",
    ],
)
def test_unknown_ids_are_404_problems(client, auth, path):
    assert_problem(client.get(path, headers=auth), 404)


def test_unknown_transaction_says_it_was_never_received_or_purged(client, auth):
    assert "never received, or purged" in assert_problem(client.get(f"{TX}/T-never", headers=auth), 404)["detail"]


@pytest.mark.parametrize("status", ["bogus", "", "OPEN"])
def test_alerts_with_an_unknown_status_filter_are_422(client, auth, status):
    body = assert_problem(client.get(f"/api/v1/alerts?status={status}", headers=auth), 422)
    assert body["errors"] == [{"field": "status", "message": "must be one of open, confirmed, dismissed"}]


def test_alerts_are_listed_newest_first_and_filtered_by_status(client, auth, services, clock):
    factories.add(services.db, alert(clock, 1), alert(clock, 2, status="dismissed"), alert(clock, 3))
    listed = client.get("/api/v1/alerts", headers=auth).get_json()["alerts"]
    assert [a["id"] for a in listed] == ["A-3", "A-2", "A-1"]
    open_only = client.get("/api/v1/alerts?status=open", headers=auth).get_json()["alerts"]
    assert [a["id"] for a in open_only] == ["A-3", "A-1"]
    assert client.get("/api/v1/alerts?status=confirmed", headers=auth).get_json() == {"alerts": []}


@pytest.mark.parametrize("typed", ["A-2", "a-2", "2", " A-2 "])
def test_alert_ids_are_looked_up_case_insensitively_and_as_a_bare_number(client, auth, services, clock, typed):
    factories.add(services.db, alert(clock, 1), alert(clock, 2))
    response = client.get(f"/api/v1/alerts/{typed}", headers=auth)
    assert response.status_code == 200
    view = response.get_json()
    assert {
        k: view[k]
        for k in (
            "id",
            "status",
            "rule",
            "severity",
            "store_id",
            "register_id",
            "transaction_id",
            "person_id",
            "similarity",
            "decided_by",
            "decided_at",
            "reason",
        )
    } == {
        "id": "A-2",
        "status": "open",
        "rule": "product_mismatch",
        "severity": "medium",
        "store_id": "store-001",
        "register_id": "reg-1",
        "transaction_id": "T-2026-000123",
        "person_id": None,
        "similarity": None,
        "decided_by": None,
        "decided_at": None,
        "reason": None,
    }


def test_watchlist_lists_enrolling_active_and_pending_people_in_enrollment_order(client, auth, services, clock):
    factories.add(
        services.db,
        person(clock, "P-2", "active", 5),
        person(clock, "P-1", "pending_approval", 1),
        person(clock, "P-3", "removed", 0),
        person(clock, "P-4", "expired", 2),
        person(clock, "P-5", "enrolling", 6),
    )
    listed = client.get("/api/v1/watchlist", headers=auth).get_json()["watchlist"]
    assert [(p["id"], p["status"]) for p in listed] == [
        ("P-1", "pending_approval"),
        ("P-2", "active"),
        ("P-5", "enrolling"),
    ]
    assert listed[1]["enrolled_at"] == "2026-11-24T20:08:20Z" and listed[1]["faces"] == 0
    assert listed[1]["region_id"] == "south" and "reason" in listed[1]


def test_unknown_route_is_a_404_problem(client, auth):
    assert_problem(client.get("/api/v1/nothing-here", headers=auth), 404)
    assert_problem(client.post("/api/v1/alerts", headers=auth), 405)

"""Operations endpoints: /healthz, /readyz (503 only for the database) and /metrics in Prometheus text."""

from __future__ import annotations

import json
import shutil

import pytest
from prometheus_client.parser import text_string_to_metric_families

from storage.db import Database
from tests.conftest import signed_headers, transaction_body


def samples(response) -> dict[tuple[str, tuple], float]:
    """Prometheus text as {(sample name, sorted labels): value}; parsing fails on anything malformed."""
    text = response.get_data(as_text=True)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def unreachable_database(services, tmp_path):
    """Point the services at a SQLite file whose directory has gone away."""
    gone = tmp_path / "gone"
    database = Database(f"sqlite:///{gone / 'flp.db'}")
    shutil.rmtree(gone)
    reachable, services.db = services.db, database
    yield database
    services.db = reachable
    database.dispose()


def test_healthz_answers_without_auth(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_readyz_reports_every_component(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ready",
        "database": "ok",
        "camera": "off",
        "webex": "off",
        "broker": "off",
        "runner": "not running in this process",
        "recognition": "not prepared in this process",
        "evidence": "ready",
    }


def test_readyz_and_status_say_when_the_face_collection_is_missing(client, services):
    from bot.processes import prepare_recognition
    from tests.fakes import FakeFaceBackend

    missing = "collection flp-watchlist missing: access denied to CreateCollection (check the IAM policy)"
    services.faces = FakeFaceBackend(state=missing)
    assert prepare_recognition(services) == missing
    body = client.get("/readyz").get_json()
    assert client.get("/readyz").status_code == 200 and body["recognition"] == missing
    from handlers.conversation.views import status_view

    view = status_view(services.component_state, {}, "rekognition", None)
    assert view.recognition.state == "down" and view.recognition.detail == missing
    services.faces.state = "ready"
    prepare_recognition(services)
    assert client.get("/readyz").get_json()["recognition"] == "ready"
    assert status_view(services.component_state, {}, "rekognition", None).recognition.state == "ok"


def test_readyz_stays_200_while_outside_services_are_down(client, services):
    services.component_state.update(webex="unreachable", camera="rate limited")
    body = client.get("/readyz").get_json()
    assert body["status"] == "ready" and body["webex"] == "unreachable" and body["camera"] == "rate limited"


def test_readyz_is_503_when_the_database_is_unreachable(client, unreachable_database):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable" and body["database"] == "unreachable"
    assert body["runner"] == "not running in this process"


def test_readyz_is_503_when_ping_fails(client, services, monkeypatch):
    def refuse() -> None:
        raise ConnectionError("connection refused")

    monkeypatch.setattr(services.db, "ping", refuse)
    assert client.get("/readyz").status_code == 503
    monkeypatch.undo()
    assert client.get("/readyz").status_code == 200


def test_metrics_count_intake_outcomes_and_queue_depth(client, post_signed, clock):
    before = samples(client.get("/metrics"))
    assert before[("flp_work_items", (("status", "pending"),))] == 0
    assert post_signed("/api/v1/transactions", transaction_body()).status_code == 202
    assert post_signed("/api/v1/transactions", transaction_body()).status_code == 200
    raw = json.dumps(transaction_body(transaction_id="T-2")).encode()
    assert (
        client.post(
            "/api/v1/transactions", data=raw, headers=signed_headers(raw, secret="wrong", at=clock().timestamp())
        ).status_code
        == 401
    )
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    after = samples(response)
    intake = "flp_intake_requests_total"
    assert after[(intake, (("endpoint", "transactions"), ("outcome", "accepted")))] == 1
    assert after[(intake, (("endpoint", "transactions"), ("outcome", "duplicate")))] == 1
    assert after[(intake, (("endpoint", "transactions"), ("outcome", "bad_signature")))] == 1
    assert after[("flp_work_items", (("status", "pending"),))] == 1
    assert after[("flp_work_items", (("status", "dead"),))] == 0
    assert any(
        name == "flp_http_request_seconds_count" and ("endpoint", "/api/v1/transactions") in labels
        for name, labels in after
    )


def test_metrics_answer_even_when_the_database_is_unreachable(client, unreachable_database):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert samples(response)[("flp_work_items", (("status", "pending"),))] == 0


def test_unknown_route_is_a_404_problem(client):
    response = client.get("/no/such/route")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 404

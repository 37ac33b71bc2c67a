"""The review console over HTTP: sign-in with a personal token, the alert cards, presses through the same
handlers as Webex (roles, refusals, audit, a decision once), CSRF, the evidence photo, stats."""

from __future__ import annotations

import hashlib
import io
import re
from decimal import Decimal

import pytest
from PIL import Image

from bot.app import build_services
from storage.models import AuditEntry, FraudReport, OutboxMessage
from storage.uow import UnitOfWork
from tests import factories
from tests.conftest import API_TOKEN, REPO
from tests.fakes import FakeCamera

TOKENS = {
    "ana@example.com": "ana-console-token-0123456789",
    "bruno@example.com": "bruno-console-token-0123456789",
    "dora@example.com": "dora-console-token-0123456789",
}


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@pytest.fixture
def business(business: dict) -> dict:
    business["stores"].append(
        {
            "id": "store-009",
            "name": "Norte",
            "timezone": "America/Sao_Paulo",
            "registers": [{"id": "reg-1", "camera_serial": "Q2XX-CCCC-0001"}],
        }
    )
    business["people"] = [
        {
            "email": "ana@example.com",
            "role": "manager",
            "stores": ["store-001"],
            "console_token_sha256": sha(TOKENS["ana@example.com"]),
        },
        {
            "email": "bruno@example.com",
            "role": "staff",
            "stores": ["store-001"],
            "console_token_sha256": sha(TOKENS["bruno@example.com"]),
        },
        {
            "email": "dora@example.com",
            "role": "manager",
            "stores": ["store-009"],
            "console_token_sha256": sha(TOKENS["dora@example.com"]),
        },
        {"email": "eve@example.com", "role": "security", "stores": ["*"]},  # no console token: cannot sign in
    ]
    business["rules"] = [{"name": "product_mismatch", "when": "surplus_count >= 1", "message": "More seen than billed"}]
    return business


@pytest.fixture
def services(config, clock):
    built = build_services(config, clock=clock, camera=FakeCamera())
    yield built
    built.db.dispose()


def picture() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 180), (90, 120, 150)).save(out, format="JPEG")
    return out.getvalue()


@pytest.fixture
def alert_id(services) -> str:
    """An open alert of store-001 with a ready picture holding one face in the customer zone."""
    now = services.clock()
    image = picture()
    digest = services.evidence.put(image, "image/jpeg")
    with UnitOfWork(services.db, write=True) as uow:
        uow.session.add(factories.transaction(at=now, total_amount=Decimal("149.90")))
        uow.snapshots.record_file(digest, kind="snapshot", content_type="image/jpeg", size_bytes=len(image), now=now)
        uow.session.add(factories.snapshot(at=now, evidence_sha256=digest, ready_at=now))
        uow.session.add(factories.face())
        alert = factories.alert(at=now, camera_serial="Q2XX-AAAA-0001", snapshot_id="S-1", facts={"surplus_count": 2})
        uow.session.add(alert)
        uow.commit()
        return alert.public_id


def sign_in(client, email: str) -> str:
    """Sign in through the form; the CSRF token of the session, as the pages carry it."""
    page = client.get("/console/signin").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    response = client.post("/console/signin", data={"token": TOKENS[email], "csrf": csrf, "next": "/console"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/console")
    page = client.get("/console").get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def press(client, csrf: str, data: dict, *, event: str = "a" * 32):
    return client.post(
        "/console/api/actions",
        json={"event_id": f"console:{event}", "data": data, "title": "Confirm"},
        headers={"X-CSRF-Token": csrf},
    )


def test_signing_in_sets_a_strict_http_only_cookie_and_shows_the_console(client):
    page = client.get("/console/signin").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    response = client.post("/console/signin", data={"token": TOKENS["ana@example.com"], "csrf": csrf})
    cookie = response.headers["Set-Cookie"]
    assert response.status_code == 302
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    page = client.get("/console")
    assert page.status_code == 200 and "ana@example.com · manager" in page.get_data(as_text=True)
    assert "vendor/adaptivecards.min.js" in page.get_data(as_text=True)
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


@pytest.mark.parametrize("token", ["wrong-token", API_TOKEN, ""])
def test_unknown_tokens_and_the_api_token_do_not_sign_anyone_in(client, token):
    page = client.get("/console/signin").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    response = client.post("/console/signin", data={"token": token, "csrf": csrf})
    assert response.status_code == 401
    assert client.get("/console/api/timeline").status_code == 401


def test_without_a_session_pages_redirect_and_the_api_refuses_even_with_the_api_token(client, alert_id):
    page = client.get("/console")
    assert page.status_code == 302 and "/console/signin" in page.headers["Location"]
    bearer = {"Authorization": f"Bearer {API_TOKEN}"}
    assert client.get("/console/api/timeline", headers=bearer).status_code == 401
    refused = client.post(
        "/console/api/actions",
        headers=bearer,
        json={"event_id": "console:" + "b" * 32, "data": {"action": "confirm", "alert_id": alert_id}},
    )
    assert refused.status_code == 401
    assert client.get(f"/console/alerts/{alert_id}/photo", headers=bearer).status_code == 302


def test_sign_in_without_the_form_token_is_refused(client):
    client.get("/console/signin")
    response = client.post("/console/signin", data={"token": TOKENS["ana@example.com"]})
    assert response.status_code == 400


def test_the_timeline_shows_the_alert_card_with_its_photo_and_buttons(client, alert_id):
    sign_in(client, "ana@example.com")
    [item] = client.get("/console/api/timeline").get_json()["items"]
    assert item["id"] == alert_id and item["status"] == "open" and item["thread"] == []
    card = item["card"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.3"
    images = [b for b in card["body"] if b["type"] == "Image"]
    assert images and images[0]["url"] == f"/console/alerts/{alert_id}/photo"
    titles = [a["title"] for a in card["actions"]]
    assert titles[:2] == ["Confirm", "Dismiss"] and "Open footage" in titles
    photo = client.get(images[0]["url"])
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    assert Image.open(io.BytesIO(photo.data)).size == (320, 180)


def test_a_failed_webex_delivery_shows_on_its_alert(client, services, alert_id):
    now = services.clock()
    with UnitOfWork(services.db, write=True) as uow:
        card = uow.outbox.add(key="alert:1:card", room_id="ROOM", now=now, markdown="Alert A-1", alert_id=1)
        card.status, card.last_error = "failed", "Webex refused the message (400): room not found"
        uow.outbox.add(key="alert:1:photo", room_id="ROOM", now=now, markdown="Evidence", parent=card, alert_id=1)
        uow.commit()
    sign_in(client, "ana@example.com")
    [item] = client.get("/console/api/timeline").get_json()["items"]
    assert item["notices"] == ["Webex delivery failed: Webex refused the message (400): room not found"]
    [item] = client.get(f"/console/api/alerts/{alert_id}").get_json()["items"]
    assert item["notices"] == ["Webex delivery failed: Webex refused the message (400): room not found"]


def test_confirm_runs_the_alert_handler_once_with_audit_and_a_threaded_reply(client, services, alert_id):
    csrf = sign_in(client, "ana@example.com")
    response = press(client, csrf, {"action": "confirm", "alert_id": alert_id})
    assert response.status_code == 200
    [reply] = response.get_json()["replies"]
    assert f"{alert_id} confirmed** by ana@example.com" in reply["markdown"]
    again = press(client, csrf, {"action": "confirm", "alert_id": alert_id})  # the same press delivered twice
    assert again.get_json()["duplicate"] is True
    second = press(client, csrf, {"action": "confirm", "alert_id": alert_id}, event="c" * 32)
    assert "was already confirmed by ana@example.com" in second.get_json()["replies"][0]["markdown"]
    with UnitOfWork(services.db) as uow:
        alert = uow.alerts.get(alert_id)
        assert (alert.status, alert.decided_by) == ("confirmed", "ana@example.com")
        assert [(r.source, r.reported_by) for r in uow.session.query(FraudReport)] == [("manual", "ana@example.com")]
        assert [
            (e.actor, e.action, e.subject_id) for e in uow.session.query(AuditEntry).filter_by(action="alert_confirm")
        ] == [("ana@example.com", "alert_confirm", alert_id)]
    [item] = client.get("/console/api/timeline").get_json()["items"]
    # As in a space: the card stays as posted (buttons too); the decision is in the thread and the badge.
    assert item["status"] == "confirmed" and item["card"]["actions"][0]["title"] == "Confirm"
    assert item["decided"]["by"] == "ana@example.com"
    assert [(t["person_email"], len(t["replies"])) for t in item["thread"]] == [
        ("ana@example.com", 1),
        ("ana@example.com", 1),
    ]


def test_the_role_check_is_the_routers_refused_and_audited(client, services, alert_id):
    csrf = sign_in(client, "bruno@example.com")
    refused = press(client, csrf, {"action": "confirm", "alert_id": alert_id}).get_json()["replies"]
    assert "needs the manager role" in refused[0]["markdown"]
    note_missing = press(client, csrf, {"action": "dismiss", "alert_id": alert_id, "reason": "other"}, event="d" * 32)
    assert "short note" in note_missing.get_json()["replies"][0]["markdown"]
    dismissed = press(client, csrf, {"action": "dismiss", "alert_id": alert_id, "reason": "no_loss"}, event="e" * 32)
    assert "dismissed** by bruno@example.com" in dismissed.get_json()["replies"][0]["markdown"]
    with UnitOfWork(services.db) as uow:
        assert uow.alerts.get(alert_id).status == "dismissed"
        outcomes = [(e.actor, e.action, e.outcome) for e in uow.session.query(AuditEntry).order_by(AuditEntry.id)]
    assert ("bruno@example.com", "confirm", "refused") in outcomes
    assert ("bruno@example.com", "alert_dismiss", "ok") in outcomes


def test_a_press_needs_the_pages_csrf_token_and_our_origin(client, services, alert_id):
    csrf = sign_in(client, "ana@example.com")
    assert press(client, "not-the-token", {"action": "confirm", "alert_id": alert_id}).status_code == 403
    foreign = client.post(
        "/console/api/actions",
        json={"event_id": "console:" + "f" * 32, "data": {"action": "confirm", "alert_id": alert_id}},
        headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    assert (
        client.post(
            "/console/api/actions", json={"event_id": "nope", "data": {}}, headers={"X-CSRF-Token": csrf}
        ).status_code
        == 422
    )
    with UnitOfWork(services.db) as uow:
        assert uow.alerts.get(alert_id).status == "open"


def test_people_see_only_their_stores(client, alert_id):
    sign_in(client, "dora@example.com")
    assert client.get("/console/api/timeline").get_json()["items"] == []
    assert client.get(f"/console/alerts/{alert_id}").status_code == 404
    assert client.get(f"/console/alerts/{alert_id}/photo").status_code == 404
    csrf = client.get("/console").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', csrf).group(1)
    reply = press(client, token, {"action": "confirm", "alert_id": alert_id}).get_json()["replies"]
    # Another store's alert is answered as a missing one (tests/security/test_access.py).
    assert reply[0]["markdown"] == "That alert no longer exists (it may have been purged)."


def test_viewing_an_alert_and_its_photo_is_audited(client, services, alert_id):
    sign_in(client, "ana@example.com")
    assert client.get(f"/console/alerts/{alert_id}").status_code == 200
    item = client.get(f"/console/api/alerts/{alert_id}").get_json()["items"][0]
    assert {"name": "surplus_count", "value": 2} in item["facts"]
    client.get(f"/console/alerts/{alert_id}/photo")
    with UnitOfWork(services.db) as uow:
        seen = [(e.actor, e.action, e.subject_id) for e in uow.session.query(AuditEntry).order_by(AuditEntry.id)]
    assert seen == [("ana@example.com", "view", alert_id), ("ana@example.com", "view_photo", alert_id)]


def test_open_footage_asks_the_camera_only_when_pressed(client, services, alert_id):
    sign_in(client, "ana@example.com")
    assert services.camera.calls == []
    response = client.get(f"/console/alerts/{alert_id}/footage")
    assert response.status_code == 302 and response.headers["Location"].startswith(
        "https://dashboard.test/footage/Q2XX-AAAA-0001"
    )


def test_stats_page_is_the_stats_commands_card(client, alert_id):
    sign_in(client, "ana@example.com")
    [item] = client.get("/console/api/stats").get_json()["items"]
    assert item["card"]["type"] == "AdaptiveCard" and "Last 7 days" in item["markdown"]


def test_stats_page_shows_the_last_face_evaluation_figures(client, services, alert_id):
    sign_in(client, "ana@example.com")
    [item] = client.get("/console/api/stats").get_json()["items"]
    assert "face matching on local was never evaluated" in item["markdown"]
    factories.add(services.db, factories.face_evaluation(at=services.clock()))
    [item] = client.get("/console/api/stats").get_json()["items"]
    facts = {f["title"]: f["value"] for b in item["card"]["body"] if b["type"] == "FactSet" for f in b["facts"]}
    # 1 of 40 is 2.5 %, Wilson's 95 % interval 0.4 % to 12.9 %; 2 of 20 is 10 %, 2.8 % to 30.1 %.
    assert facts["False matches at match 90"] == "2.5 % (95 %: 0.4 % to 12.9 %)"
    assert facts["False non-matches at match 90"] == "10.0 % (95 %: 2.8 % to 30.1 %)"
    assert facts["People / photos"] == "3 / 24" and facts["Comparisons"] == "20 genuine, 40 impostor"
    assert "evaluated" in item["markdown"] and "too few people to say much" in item["markdown"]


def test_a_console_decision_is_threaded_under_the_alerts_webex_card(client, services, alert_id):
    with UnitOfWork(services.db, write=True) as uow:
        root = uow.outbox.add(
            key=f"alert:{alert_id[2:]}:card",
            room_id="ROOM-1",
            now=services.clock(),
            markdown="alert",
            alert_id=int(alert_id[2:]),
        )
        root_id = root.id
        uow.commit()
    csrf = sign_in(client, "ana@example.com")
    press(client, csrf, {"action": "confirm", "alert_id": alert_id})
    with UnitOfWork(services.db) as uow:
        [reply] = [m for m in uow.session.query(OutboxMessage) if m.parent_outbox_id == root_id]
        assert reply.room_id == "ROOM-1" and "confirmed" in reply.payload["markdown"]


def test_signing_out_ends_the_session(client):
    csrf = sign_in(client, "ana@example.com")
    assert client.post("/console/signout", data={"csrf": csrf}).status_code == 302
    assert client.get("/console/api/timeline").status_code == 401


def test_the_vendored_renderer_is_the_unchanged_npm_file(client):
    readme = (REPO / "bot/http/static/vendor/README").read_text()
    expected = re.search(r"([0-9a-f]{64})  adaptivecards\.min\.js\n", readme).group(1)
    served = client.get("/console/static/vendor/adaptivecards.min.js")
    assert served.status_code == 200 and hashlib.sha256(served.data).hexdigest() == expected

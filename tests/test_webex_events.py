"""POST /webex/events: signed Webex webhook bodies are stored once with their handle_event step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app import create_app
from bot.http import webex_events
from core.steps import StepKind
from handlers.chat.webex_intake import accept_event
from storage import inbound
from storage.models import InboundEvent, WorkItem
from storage.uow import UnitOfWork
from tests.conftest import base_environ

SECRET = "test-webex-webhook-secret-0123456789"
BOT = "Y2lzY29zcGFyazovL3VzL1BFT1BMRS9ib3Q"
ANA = "Y2lzY29zcGFyazovL3VzL1BFT1BMRS9hbmE"
MESSAGE_ID = "Y2lzY29zcGFyazovL3VzL01FU1NBR0UvOTJkYjNiZTA"
ACTION_ID = "Y2lzY29zcGFyazovL3VzL0FUVEFDSE1FTlRfQUNUSU9OL2E"


@pytest.fixture
def environ(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {
        **base_environ(tmp_path, database_url),
        "WEBEX_ACCESS_TOKEN": "test-webex-token-0123456789",
        "WEBEX_WEBHOOK_SECRET": SECRET,
        "WEBEX_TRANSPORT": "webhook",
        "PUBLIC_URL": "https://flp.example.com",
    }


@pytest.fixture
def app(services):
    app = create_app(services)
    if webex_events.blueprint.name not in app.blueprints:  # until bot/app.py registers it
        app.register_blueprint(webex_events.blueprint)
    return app


@pytest.fixture
def wakes(services) -> list[int]:
    calls: list[int] = []
    services.wake_runner = lambda *kinds: calls.append(1)
    return calls


def webhook_body(resource: str = "messages", data_id: str = MESSAGE_ID, **changes: Any) -> dict[str, Any]:
    data = {
        "id": data_id,
        "roomId": "Y2lzY29zcGFyazovL3VzL1JPT00vcg",
        "roomType": "group",
        "personId": ANA,
        "personEmail": "ana@example.com",
        "created": "2026-11-24T20:05:01.123Z",
    }
    if resource == "attachmentActions":
        data = {
            "id": data_id,
            "type": "submit",
            "messageId": MESSAGE_ID,
            "personId": ANA,
            "roomId": "Y2lzY29zcGFyazovL3VzL1JPT00vcg",
            "created": "2026-11-24T20:06:30.456Z",
        }
    body = {
        "id": "Y2lzY29zcGFyazovL3VzL1dFQkhPT0svdw",
        "name": "fraud-loss-prevention messages",
        "targetUrl": "https://flp.example.com/webex/events",
        "resource": resource,
        "event": "created",
        "orgId": "b3Jn",
        "createdBy": BOT,
        "appId": "YXBw",
        "ownedBy": "creator",
        "status": "active",
        "actorId": ANA,
        "data": data,
    }
    body.update(changes)
    return body


def post(client, body: dict[str, Any] | bytes, *, signature: str | None = "sign"):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if signature == "sign":
        headers["X-Spark-Signature"] = webex_events.sign(raw, SECRET)
    elif signature is not None:
        headers["X-Spark-Signature"] = signature
    return client.post("/webex/events", data=raw, headers=headers)


def stored(services) -> tuple[list[InboundEvent], list[WorkItem]]:
    with UnitOfWork(services.db) as uow:
        events = list(uow.session.scalars(select(InboundEvent).order_by(InboundEvent.id)))
        items = list(uow.session.scalars(select(WorkItem).order_by(WorkItem.id)))
        return events, items


def test_signed_message_event_is_stored_with_its_step_then_200(client, services, clock, wakes):
    response = post(client, webhook_body())
    assert response.status_code == 200 and response.get_json() == {"status": "accepted"}
    events, items = stored(services)
    assert [(e.id, e.source, e.handled_at) for e in events] == [(MESSAGE_ID, "webex_message", None)]
    assert events[0].payload == {**webhook_body()["data"], "resource": "messages"}
    assert events[0].received_at == clock()
    assert [(i.kind, i.dedupe_key, i.ref_id, i.status) for i in items] == [
        (StepKind.HANDLE_EVENT, f"{StepKind.HANDLE_EVENT}:{MESSAGE_ID}", MESSAGE_ID, "pending")
    ]
    assert wakes == [1]


def test_card_press_is_stored_as_an_action(client, services):
    assert post(client, webhook_body("attachmentActions", ACTION_ID)).status_code == 200
    events, items = stored(services)
    assert [(e.id, e.source, e.payload["resource"], e.payload["messageId"]) for e in events] == [
        (ACTION_ID, "webex_action", "attachmentActions", MESSAGE_ID)
    ]
    assert [i.ref_id for i in items] == [ACTION_ID]


def test_redelivery_answers_200_and_stores_nothing_more(client, services, wakes):
    assert post(client, webhook_body()).status_code == 200
    again = post(client, webhook_body())
    assert again.status_code == 200 and again.get_json() == {"status": "duplicate"}
    events, items = stored(services)
    assert len(events) == 1 and len(items) == 1
    assert wakes == [1]


@pytest.mark.parametrize("signature", [None, "", "0" * 40, "not-hex", "sign-with-other-secret"])
def test_missing_or_wrong_signature_is_401_and_nothing_is_stored(client, services, signature):
    raw = json.dumps(webhook_body()).encode()
    if signature == "sign-with-other-secret":
        signature = webex_events.sign(raw, "another-secret")
    response = post(client, raw, signature=signature)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert stored(services) == ([], [])


def test_signature_is_over_the_raw_bytes(client, services):
    raw = json.dumps(webhook_body()).encode()
    signature = webex_events.sign(raw, SECRET)
    respaced = json.dumps(webhook_body(), indent=2).encode()  # same JSON, other bytes
    assert post(client, respaced, signature=signature).status_code == 401
    assert post(client, raw, signature=signature.upper()).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        webhook_body("memberships"),
        webhook_body("rooms"),
        webhook_body(event="deleted"),
        webhook_body("attachmentActions", ACTION_ID, event="updated"),
    ],
)
def test_events_we_did_not_subscribe_to_are_ignored(client, services, body):
    response = post(client, body)
    assert response.status_code == 200 and response.get_json() == {"status": "ignored"}
    assert stored(services) == ([], [])


def test_our_own_messages_are_ignored(client, services):
    body = webhook_body()
    body["data"]["personId"] = BOT
    assert post(client, body).get_json() == {"status": "ignored"}
    assert stored(services) == ([], [])


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1, 2]",
        json.dumps(webhook_body(data_id="../people/me")).encode(),
        json.dumps(webhook_body(data={"roomId": "r"})).encode(),
    ],
)
def test_signed_but_malformed_bodies_are_422(client, services, raw):
    response = post(client, raw)
    assert response.status_code == 422
    assert stored(services) == ([], [])


def test_without_a_webhook_secret_the_endpoint_is_off(services, tmp_path, database_url):
    import yaml

    from bot.app import build_services
    from core.config import load_config
    from tests.conftest import minimal_business

    config = load_config(base_environ(tmp_path, database_url), yaml.safe_dump(minimal_business()))
    other = build_services(config, db=services.db, clock=services.clock)
    app = create_app(other)
    if webex_events.blueprint.name not in app.blueprints:
        app.register_blueprint(webex_events.blueprint)
    assert post(app.test_client(), webhook_body()).status_code == 404
    assert stored(services) == ([], [])


def test_target_url_joins_the_public_url():
    assert webex_events.target_url("https://flp.example.com") == "https://flp.example.com/webex/events"
    assert webex_events.target_url("https://example.com/flp/") == "https://example.com/flp/webex/events"


def test_inbound_storage_records_once_and_marks_handled_once(services, clock):
    with UnitOfWork(services.db, write=True) as uow:
        assert accept_event(uow, event_id=MESSAGE_ID, source="webex_message", payload={"id": MESSAGE_ID}, now=clock())
        assert not accept_event(uow, event_id=MESSAGE_ID, source="webex_message", payload={"id": "x"}, now=clock())
        uow.commit()
    with UnitOfWork(services.db, write=True) as uow:
        assert inbound.get(uow.session, MESSAGE_ID).payload == {"id": MESSAGE_ID}
        assert inbound.get(uow.session, "unknown") is None
        assert inbound.mark_handled(uow.session, MESSAGE_ID, clock())
        assert not inbound.mark_handled(uow.session, MESSAGE_ID, clock())
        assert not inbound.mark_handled(uow.session, "unknown", clock())
        uow.commit()
    with UnitOfWork(services.db) as uow:
        assert inbound.get(uow.session, MESSAGE_ID).handled_at == clock()
        assert uow.session.scalar(select(func.count()).select_from(WorkItem)) == 1


@pytest.mark.parametrize(
    ("event_id", "source"), [("a/b", "webex_message"), ("x" * 129, "webex_message"), (MESSAGE_ID, "sms")]
)
def test_accept_event_refuses_ids_and_sources_it_cannot_store(services, clock, event_id, source):
    with UnitOfWork(services.db, write=True) as uow, pytest.raises(ValueError):
        accept_event(uow, event_id=event_id, source=source, payload={}, now=clock())

"""The websocket transport with recorded activities: conversion, dedupe, store-then-ack, reconnects.

No network: the conversation service is faked with ``responses`` and the websocket is a
server on 127.0.0.1 (the loopback guard in conftest refuses anything else).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
import responses
import websockets
from sqlalchemy import select

from bot.runner import Runner, RunnerSettings
from bot.steps import ON_DEAD
from bot.webex_activities import (
    ActivityDispatcher,
    accept_into,
    activity_event,
    authorization_accepted,
    envelope_id,
    person_uuid,
)
from bot.webex_socket import NotAuthorised, SocketClient, WebsocketTransport, _describe
from core.http_deadline import DeadlineSession
from core.steps import StepKind
from storage.models import AuditEntry, InboundEvent, WorkItem
from storage.uow import UnitOfWork
from tests.mercury import FakeWebexSocket, buffer_state, wait_until

FIXTURES = Path(__file__).parent / "fixtures" / "webex"
TOKEN = "test-webex-token-0123456789"
MESSAGE_ID = "Y2lzY29zcGFyazovL3VzL01FU1NBR0UvMWYyZTNkNGMtMGIxYS0xMWYxLThlMmQtNGI1YTZjN2Q4ZTlm"
ACTION_ID = "Y2lzY29zcGFyazovL3VzL0FUVEFDSE1FTlRfQUNUSU9OLzNjNGQ1ZTZmLTBiMWEtMTFmMS04ZTJkLTRiNWE2YzdkOGU5Zg"
BOT_ID = "Y2lzY29zcGFyazovL3VzL1BFT1BMRS9iMGIwYjBiMC0xMTExLTQyMjItODMzMy00NDQ0NTU1NTY2NjY"
BOT_UUID = "b0b0b0b0-1111-4222-8333-444455556666"
CONVERSATIONS = "https://conv-a.wbx2.com/conversation/api/v1"


def recorded(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


POST, CARD_ACTION = recorded("post_activity"), recorded("card_action_activity")


def by_bot(frame: dict[str, Any]) -> dict[str, Any]:
    own = copy.deepcopy(frame)
    own["id"] = "e0000000-1f1b-4b8a-9a43-6c1d2f3e4a01"
    own["data"]["activity"]["actor"]["id"] = BOT_UUID
    own["data"]["activity"]["id"] = "00000000-0b1a-11f1-8e2d-4b5a6c7d8e9f"
    return own


def redelivered(frame: dict[str, Any]) -> dict[str, Any]:
    """The same activity in a new envelope, as after a reconnect."""
    again = copy.deepcopy(frame)
    again["id"] = "a9a9a9a9-1f1b-4b8a-9a43-6c1d2f3e4a01"
    return again


def resolver(activity: dict[str, Any]) -> str:
    return {"post": MESSAGE_ID, "cardAction": ACTION_ID}[activity["verb"]]


class Recorder:
    def __init__(self, fail_first: int = 0):
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.fail_first = fail_first

    def __call__(self, event_id: str, source: str, payload: dict[str, Any]) -> bool:
        self.calls.append((event_id, source, payload))
        if len(self.calls) <= self.fail_first:
            raise OSError("database unavailable")
        return True


def test_person_uuid_is_what_activities_call_the_actor():
    assert person_uuid(BOT_ID) == BOT_UUID
    assert person_uuid("not base64 at all!") is None
    assert person_uuid("aGVsbG8") is None  # "hello": not a Webex id


def test_a_posted_message_becomes_a_message_event_with_ids_only():
    event = activity_event(POST["data"]["activity"], MESSAGE_ID)
    assert (event.event_id, event.source) == (MESSAGE_ID, "webex_message")
    assert event.payload == {
        "resource": "messages",
        "id": MESSAGE_ID,
        "activityId": "1f2e3d4c-0b1a-11f1-8e2d-4b5a6c7d8e9f",
        "actorId": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "personEmail": "ana@example.com",
        "roomType": "group",
        "conversationId": "c0ffee00-1234-4abc-9def-0123456789ab",
        "parentActivityId": "7d6c5b4a-0b1a-11f1-8e2d-4b5a6c7d8e9f",
        # The REST ids of its space and its thread's root, as a webhook's event names them.
        "roomId": hydra("ROOM/c0ffee00-1234-4abc-9def-0123456789ab"),
        "parentId": hydra("MESSAGE/7d6c5b4a-0b1a-11f1-8e2d-4b5a6c7d8e9f"),
    }
    assert "encrypted" not in json.dumps(event.payload)


def hydra(path: str) -> str:
    return base64.b64encode(f"ciscospark://us/{path}".encode()).decode().rstrip("=")


def test_a_websocket_command_whose_step_dies_is_answered_in_its_thread_and_audited(services):
    event = activity_event(POST["data"]["activity"], MESSAGE_ID)
    now = services.clock()
    with UnitOfWork(services.db, write=True) as uow:
        uow.inbound.record(event_id=event.event_id, source=event.source, payload=event.payload, now=now)
        uow.work.enqueue(kind=StepKind.HANDLE_EVENT, key=MESSAGE_ID, ref_id=MESSAGE_ID, run_at=now, now=now)
        uow.commit()

    def crash(item):
        raise RuntimeError("a bug in a command")

    runner = Runner(
        db=services.db,
        steps={StepKind.HANDLE_EVENT.value: crash},
        dependencies={},
        clock=services.clock,
        settings=RunnerSettings(max_attempts=1),
        on_dead=ON_DEAD,
    )
    runner.run_due()
    with UnitOfWork(services.db) as uow:
        answer = uow.outbox.by_key(f"event:{MESSAGE_ID}:failed")
        assert answer is not None and answer.room_id == hydra("ROOM/c0ffee00-1234-4abc-9def-0123456789ab")
        assert answer.payload["parent_message_id"] == hydra("MESSAGE/7d6c5b4a-0b1a-11f1-8e2d-4b5a6c7d8e9f")
        assert "try again" in answer.payload["markdown"]
        (audited,) = uow.session.scalars(select(AuditEntry).filter_by(action="chat_event"))
        assert (audited.subject_id, audited.reason_code) == (MESSAGE_ID, "step_failed")


def test_a_card_press_becomes_an_action_event():
    event = activity_event(CARD_ACTION["data"]["activity"], ACTION_ID)
    assert (event.event_id, event.source) == (ACTION_ID, "webex_action")
    assert event.payload["resource"] == "attachmentActions" and event.payload["roomType"] == "direct"
    assert event.payload["messageActivityId"] == "9e8d7c6b-0b1a-11f1-8e2d-4b5a6c7d8e9f"
    assert event.payload["messageId"] == hydra("MESSAGE/9e8d7c6b-0b1a-11f1-8e2d-4b5a6c7d8e9f")
    assert "parentId" not in event.payload


def test_an_id_not_of_the_rest_form_names_no_space():
    event = activity_event(POST["data"]["activity"], "not-a-rest-id")
    assert "roomId" not in event.payload and "parentId" not in event.payload


def test_a_frame_is_acknowledged_by_its_envelope_id_not_the_message_id():
    assert envelope_id(POST) == "5e7a9c1e-1f1b-4b8a-9a43-6c1d2f3e4a01" != POST["data"]["activity"]["id"]
    assert envelope_id({"data": {}}) is None and envelope_id({"id": 17}) is None


def test_only_mercurys_buffer_state_accepts_the_authorization():
    assert authorization_accepted(buffer_state("b-1"))
    assert authorization_accepted({"id": "r-1", "data": {"eventType": "mercury.registration_status"}})
    assert not authorization_accepted(POST)
    assert not authorization_accepted({"id": "p-1", "type": "pong", "data": {"eventType": "mercury.buffer_state"}})
    assert not authorization_accepted({"type": "pong"})


def test_each_event_is_accepted_once_even_when_delivered_twice():
    accept = Recorder()
    dispatcher = ActivityDispatcher(accept, bot_person_id=BOT_ID)
    acks = [dispatcher.dispatch(frame, resolver) for frame in (POST, CARD_ACTION, redelivered(POST), CARD_ACTION)]
    assert acks == [True, True, True, True]  # a redelivery is acknowledged again
    assert [(event_id, source) for event_id, source, _ in accept.calls] == [
        (MESSAGE_ID, "webex_message"),
        (ACTION_ID, "webex_action"),
    ]


def test_our_own_posts_are_ignored_before_any_lookup():
    accept, lookups = Recorder(), []
    dispatcher = ActivityDispatcher(accept, bot_person_id=BOT_ID)
    assert dispatcher.dispatch(by_bot(POST), lambda activity: lookups.append(activity) or MESSAGE_ID) is True
    assert accept.calls == [] and lookups == []  # acknowledged (nothing to keep), never stored


@pytest.mark.parametrize(
    "frame",
    [
        {"data": {"eventType": "conversation.highlight"}},
        {"data": {"eventType": "conversation.activity", "activity": {**POST["data"]["activity"], "verb": "share"}}},
        {
            "data": {
                "eventType": "conversation.activity",
                "activity": {**POST["data"]["activity"], "verb": "acknowledge"},
            }
        },
        {"type": "pong"},
    ],
)
def test_other_frames_are_acknowledged_but_not_stored(frame):
    accept = Recorder()
    assert ActivityDispatcher(accept, bot_person_id=BOT_ID).dispatch(frame, resolver) is True
    assert accept.calls == []


@pytest.mark.parametrize(
    "lookup", [lambda a: None, lambda a: "bad/id", lambda a: (_ for _ in ()).throw(TimeoutError())]
)
def test_an_unresolvable_id_is_not_stored_or_acknowledged(lookup):
    accept = Recorder()
    assert ActivityDispatcher(accept, bot_person_id=BOT_ID).dispatch(POST, lookup) is False
    assert accept.calls == []


def test_an_event_that_could_not_be_stored_is_not_acknowledged_and_is_stored_when_it_comes_again():
    accept = Recorder(fail_first=1)
    dispatcher = ActivityDispatcher(accept, bot_person_id=BOT_ID)
    assert dispatcher.dispatch(POST, resolver) is False
    assert dispatcher.dispatch(POST, resolver) is True
    assert len(accept.calls) == 2


def test_a_redelivery_while_the_first_is_being_stored_waits_for_its_outcome():
    storing, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow_accept(event_id: str, source: str, payload: dict[str, Any]) -> bool:
        calls.append(event_id)
        storing.set()
        assert release.wait(10)
        return True

    dispatcher = ActivityDispatcher(slow_accept, bot_person_id=BOT_ID)
    outcomes: list[bool] = []
    first = threading.Thread(target=lambda: outcomes.append(dispatcher.dispatch(POST, resolver)))
    first.start()
    assert storing.wait(10)
    second = threading.Thread(target=lambda: outcomes.append(dispatcher.dispatch(redelivered(POST), resolver)))
    second.start()
    second.join(0.2)
    assert second.is_alive() and outcomes == []  # not acknowledged before the first is stored
    release.set()
    first.join(10)
    second.join(10)
    assert outcomes == [True, True] and calls == [MESSAGE_ID]


def stored(services) -> tuple[list[tuple[str, str]], list[str | None]]:
    with UnitOfWork(services.db) as uow:
        events = [
            (e.id, e.source) for e in uow.session.scalars(select(InboundEvent).order_by(InboundEvent.received_at))
        ]
        items = [
            i.ref_id
            for i in uow.session.scalars(select(WorkItem).where(WorkItem.kind == "handle_event").order_by(WorkItem.id))
        ]
    return events, items


def test_after_a_restart_the_database_dedupes_what_memory_no_longer_knows(services):
    wakes: list[int] = []
    services.wake_runner = lambda *kinds: wakes.append(1)
    for _ in range(2):  # a fresh dispatcher, as after a process restart
        dispatcher = ActivityDispatcher(accept_into(services), bot_person_id=BOT_ID)
        assert dispatcher.dispatch(POST, resolver) is True
    assert stored(services) == ([(MESSAGE_ID, "webex_message")], [MESSAGE_ID])
    assert wakes == [1]


def socket_transport(
    server: FakeWebexSocket,
    accept: Any,
    states: list[str],
    *,
    deadline_s: float = 20,
    backoff_s: tuple[float, float] = (1.0, 60.0),
) -> WebsocketTransport:
    return WebsocketTransport(
        access_token=TOKEN,
        me=lambda: {"id": BOT_ID},
        accept=accept,
        on_state=states.append,
        backoff_s=backoff_s,
        client_factory=lambda token, dispatcher: SocketClient(
            token,
            dispatcher,
            deadline_s=deadline_s,
            device_url="https://wdm.test/wdm/api/v1",
            device_info={"webSocketUrl": f"ws://127.0.0.1:{server.port}"},
        ),
    )


def test_transport_stores_before_it_acknowledges_over_a_real_socket(services):
    frames = [POST, by_bot(POST), CARD_ACTION, redelivered(POST)]  # the post comes twice, as after a reconnect
    root_handlers = list(logging.getLogger().handlers)
    accepted: list[str] = []
    store = accept_into(services)

    def accept(event_id: str, source: str, payload: dict[str, Any]) -> bool:
        accepted.append(event_id)
        return store(event_id, source, payload)

    states: list[str] = []
    with FakeWebexSocket(frames, token=TOKEN) as server, responses.RequestsMock() as conversation:
        conversation.get(f"{CONVERSATIONS}/messages/{POST['data']['activity']['id']}", json={"id": MESSAGE_ID})
        conversation.get(
            f"{CONVERSATIONS}/attachment/actions/{CARD_ACTION['data']['activity']['id']}", json={"id": ACTION_ID}
        )
        transport = socket_transport(server, accept, states)
        transport.start()
        try:
            assert server.all_acked.wait(20), (server.sent - server.acked, server.refused_acks)
            assert transport.state == "connected"
        finally:
            transport.stop()
    assert transport.state == "off" and states[0] == "reconnecting" and "connected" in states and states[-1] == "off"
    assert server.received[0]["type"] == "authorization" and server.received[0]["data"]["token"] == f"Bearer {TOKEN}"
    assert server.handshake_auth == [f"Bearer {TOKEN}"] and server.connections == 1
    # Every envelope, the buffer state and our own post included, is acknowledged by its own id and nothing else.
    assert server.refused_acks == [] and len(server.acked) == 5
    assert sorted(accepted) == sorted([MESSAGE_ID, ACTION_ID])  # once per event id; our own post never
    events, items = stored(services)
    assert sorted(events) == sorted([(MESSAGE_ID, "webex_message"), (ACTION_ID, "webex_action")])
    assert sorted(items) == sorted([MESSAGE_ID, ACTION_ID])
    assert logging.getLogger().handlers == root_handlers  # no coloredlogs, no WebexBot


def test_the_stand_in_refuses_acks_by_message_id_and_unauthorised_sockets():
    """The stand-in itself: acks by the REST or activity id (what webex-bot 1.3 sends) and a wrong token are refused."""
    from websockets.sync.client import connect

    with FakeWebexSocket([POST], token=TOKEN) as server:
        with connect(f"ws://127.0.0.1:{server.port}") as socket:
            socket.send(json.dumps({"id": "auth-1", "type": "authorization", "data": {"token": "Bearer " + TOKEN}}))
            frames = [json.loads(socket.recv(5)) for _ in range(2)]
            assert authorization_accepted(frames[0]) and frames[1] == POST
            socket.send(json.dumps({"type": "ack", "messageId": MESSAGE_ID}))
            socket.send(json.dumps({"type": "ack", "messageId": POST["data"]["activity"]["id"]}))
            socket.send(json.dumps({"type": "ack", "messageId": POST["id"]}))
        with connect(f"ws://127.0.0.1:{server.port}") as socket:
            socket.send(json.dumps({"id": "auth-2", "type": "authorization", "data": {"token": "Bearer wrong"}}))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                socket.recv(5)
        wait_until(lambda: len(server.refused_acks) == 2 and POST["id"] in server.acked)
    assert server.refused_acks == [MESSAGE_ID, POST["data"]["activity"]["id"]]
    assert server.acked == {POST["id"]} and closed.value.rcvd.code == 4401


def test_connected_only_once_the_server_has_accepted_the_authorization():
    states: list[str] = []
    with FakeWebexSocket([], token=TOKEN, accept_auth=False) as server:
        transport = socket_transport(server, Recorder(), states)
        transport.start()
        try:
            assert server.authorised.wait(10)
            # The socket is open and authorised from our side; a client that called that "connected" fails here.
            assert not wait_until(lambda: "connected" in states, timeout_s=0.5, fail=False)
            assert transport.state == "reconnecting"
            server.accept_auth.set()
            wait_until(lambda: transport.state == "connected")
            assert server.all_acked.wait(10)  # the buffer state itself is acknowledged, by its envelope id
        finally:
            transport.stop()
    assert states == ["reconnecting", "connected", "off"] and server.refused_acks == []


def test_a_refused_authorization_is_never_reported_connected():
    states: list[str] = []
    with FakeWebexSocket([POST], token="another-bots-token") as server:
        transport = socket_transport(server, Recorder(), states, backoff_s=(0.01, 0.02))
        transport.start()
        try:
            wait_until(lambda: server.connections >= 3)
        finally:
            transport.stop()
    assert "connected" not in states and set(states) == {"reconnecting", "off"}
    assert server.acked == set() and server.sent == set()


def test_no_acceptance_within_the_deadline_closes_and_reconnects():
    states: list[str] = []
    with FakeWebexSocket([POST], token=TOKEN, accept_auth=False) as server:
        transport = socket_transport(server, Recorder(), states, deadline_s=0.3, backoff_s=(0.01, 0.02))
        transport.start()
        try:
            wait_until(lambda: server.closed_unaccepted >= 2)
        finally:
            transport.stop()
    assert "connected" not in states and server.connections >= 2


def test_failures_are_described_without_urls():
    assert (
        _describe(NotAuthorised("no buffer state within the deadline"))
        == "not authorised: no buffer state within the deadline"
    )
    closed = websockets.ConnectionClosedError(websockets.frames.Close(4401, "authentication failed"), None)
    assert _describe(closed) == "ConnectionClosedError close 4401"


def test_socket_client_gives_the_library_a_deadline_and_no_rest_client():
    client = SocketClient(
        TOKEN,
        ActivityDispatcher(Recorder(), bot_person_id=BOT_ID),
        deadline_s=7,
        device_url="https://wdm.test/wdm/api/v1",
    )
    assert isinstance(client.session, DeadlineSession) and client.session.deadline_s == 7
    assert client.session.headers["Authorization"] == f"Bearer {TOKEN}"
    assert client.teams is None and client.device_url == "https://wdm.test/wdm/api/v1"


class FlakyClient:
    """Fails, then connects and closes, then connects and stays until cancelled."""

    def __init__(self) -> None:
        self.listens = 0

    async def listen(self, on_open: Any, executor: Any) -> None:
        self.listens += 1
        if self.listens == 1:
            raise OSError("connection refused")
        on_open()
        if self.listens == 3:
            await asyncio.Event().wait()


def test_transport_reconnects_with_back_off_and_reports_its_state():
    states: list[str] = []
    connected_twice = threading.Event()
    me_calls: list[int] = []

    def me() -> dict[str, str]:
        me_calls.append(1)
        if len(me_calls) == 1:
            raise OSError("Webex unreachable")
        return {"id": BOT_ID}

    def on_state(state: str) -> None:
        states.append(state)
        if states.count("connected") == 2:
            connected_twice.set()

    client = FlakyClient()
    transport = WebsocketTransport(
        access_token=TOKEN,
        me=me,
        accept=Recorder(),
        on_state=on_state,
        client_factory=lambda token, dispatcher: client,
        backoff_s=(0.001, 0.005),
    )
    assert transport.state == "off"
    transport.start()
    assert connected_twice.wait(10)
    transport.stop()
    assert states == ["reconnecting", "reconnecting", "reconnecting", "connected", "reconnecting", "connected", "off"]
    assert client.listens == 3 and len(me_calls) == 2
    with pytest.raises(RuntimeError):
        transport.start()

"""The websocket transport with recorded activities: conversion, dedupe, store-then-ack, reconnects.

No network: the conversation service is faked with ``responses`` and the websocket is a
server on 127.0.0.1 (the loopback guard in conftest refuses anything else).
"""
from __future__ import annotations

import asyncio
import copy
import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
import responses
from sqlalchemy import select
from websockets.asyncio.server import serve

from bot.webex_activities import ActivityDispatcher, accept_into, activity_event, person_uuid
from bot.webex_socket import SocketClient, WebsocketTransport, _DeadlineSession
from storage.models import InboundEvent, WorkItem
from storage.uow import UnitOfWork

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
    own["data"]["activity"]["actor"]["id"] = BOT_UUID
    own["data"]["activity"]["id"] = "00000000-0b1a-11f1-8e2d-4b5a6c7d8e9f"
    return own


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
        "resource": "messages", "id": MESSAGE_ID, "activityId": "1f2e3d4c-0b1a-11f1-8e2d-4b5a6c7d8e9f",
        "actorId": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "personEmail": "ana@example.com", "roomType": "group",
        "conversationId": "c0ffee00-1234-4abc-9def-0123456789ab",
        "parentActivityId": "7d6c5b4a-0b1a-11f1-8e2d-4b5a6c7d8e9f",
    }
    assert "encrypted" not in json.dumps(event.payload)


def test_a_card_press_becomes_an_action_event():
    event = activity_event(CARD_ACTION["data"]["activity"], ACTION_ID)
    assert (event.event_id, event.source) == (ACTION_ID, "webex_action")
    assert event.payload["resource"] == "attachmentActions" and event.payload["roomType"] == "direct"
    assert event.payload["messageActivityId"] == "9e8d7c6b-0b1a-11f1-8e2d-4b5a6c7d8e9f"


def test_each_event_is_accepted_once_even_when_delivered_twice():
    accept = Recorder()
    dispatcher = ActivityDispatcher(accept, bot_person_id=BOT_ID)
    acks = [dispatcher.dispatch(frame, resolver) for frame in (POST, CARD_ACTION, POST, CARD_ACTION)]
    assert acks == [MESSAGE_ID, ACTION_ID, MESSAGE_ID, ACTION_ID]  # a redelivery is acknowledged again
    assert [(event_id, source) for event_id, source, _ in accept.calls] == [
        (MESSAGE_ID, "webex_message"), (ACTION_ID, "webex_action")]


def test_our_own_posts_are_ignored_before_any_lookup():
    accept, lookups = Recorder(), []
    dispatcher = ActivityDispatcher(accept, bot_person_id=BOT_ID)
    assert dispatcher.dispatch(by_bot(POST), lambda activity: lookups.append(activity) or MESSAGE_ID) is None
    assert accept.calls == [] and lookups == []


@pytest.mark.parametrize("frame", [
    {"data": {"eventType": "conversation.highlight"}},
    {"data": {"eventType": "conversation.activity", "activity": {**POST["data"]["activity"], "verb": "share"}}},
    {"data": {"eventType": "conversation.activity", "activity": {**POST["data"]["activity"], "verb": "acknowledge"}}},
    {"type": "pong"},
])
def test_other_frames_are_neither_stored_nor_acknowledged(frame):
    accept = Recorder()
    assert ActivityDispatcher(accept, bot_person_id=BOT_ID).dispatch(frame, resolver) is None
    assert accept.calls == []


@pytest.mark.parametrize("lookup", [lambda a: None, lambda a: "bad/id", lambda a: (_ for _ in ()).throw(TimeoutError())])
def test_an_unresolvable_id_is_not_stored_or_acknowledged(lookup):
    accept = Recorder()
    assert ActivityDispatcher(accept, bot_person_id=BOT_ID).dispatch(POST, lookup) is None
    assert accept.calls == []


def test_an_event_that_could_not_be_stored_is_not_acknowledged_and_is_stored_when_it_comes_again():
    accept = Recorder(fail_first=1)
    dispatcher = ActivityDispatcher(accept, bot_person_id=BOT_ID)
    assert dispatcher.dispatch(POST, resolver) is None
    assert dispatcher.dispatch(POST, resolver) == MESSAGE_ID
    assert len(accept.calls) == 2


def stored(services) -> tuple[list[tuple[str, str]], list[str | None]]:  # type: ignore[no-untyped-def]
    with UnitOfWork(services.db) as uow:
        events = [(e.id, e.source) for e in uow.session.scalars(select(InboundEvent).order_by(InboundEvent.received_at))]
        items = [i.ref_id for i in uow.session.scalars(select(WorkItem).where(WorkItem.kind == "handle_event").order_by(WorkItem.id))]
    return events, items


def test_after_a_restart_the_database_dedupes_what_memory_no_longer_knows(services):
    wakes: list[int] = []
    services.wake_runner = lambda: wakes.append(1)
    for _ in range(2):  # a fresh dispatcher, as after a process restart
        dispatcher = ActivityDispatcher(accept_into(services), bot_person_id=BOT_ID)
        assert dispatcher.dispatch(POST, resolver) == MESSAGE_ID
    assert stored(services) == ([(MESSAGE_ID, "webex_message")], [MESSAGE_ID])
    assert wakes == [1]


class FakeWebexSocket:
    """A websocket server on loopback that sends recorded frames and collects what the client sends back."""

    def __init__(self, frames: list[dict[str, Any]], expect_acks: set[str]):
        self.frames, self.expect_acks = frames, expect_acks
        self.received: list[dict[str, Any]] = []
        self.handshake_auth: list[str | None] = []
        self.acked = threading.Event()
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._main(),), daemon=True)

    async def _handler(self, socket: Any) -> None:
        self.handshake_auth.append(socket.request.headers.get("Authorization"))
        self.received.append(json.loads(await socket.recv()))
        for frame in self.frames:
            await socket.send(json.dumps(frame))
        async for raw in socket:
            self.received.append(json.loads(raw))
            if self.expect_acks <= {m["messageId"] for m in self.received if m.get("type") == "ack"}:
                self.acked.set()

    async def _main(self) -> None:
        self._stopped = asyncio.Event()
        async with serve(self._handler, "127.0.0.1", 0) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stopped.wait()

    def __enter__(self) -> "FakeWebexSocket":
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(10)
        self._loop.close()


def test_transport_stores_before_it_acknowledges_over_a_real_socket(services):
    frames = [POST, by_bot(POST), CARD_ACTION, POST]  # the post comes twice, as after a reconnect
    root_handlers = list(logging.getLogger().handlers)
    accepted: list[str] = []
    store = accept_into(services)

    def accept(event_id: str, source: str, payload: dict[str, Any]) -> bool:
        accepted.append(event_id)
        return store(event_id, source, payload)

    states: list[str] = []
    with FakeWebexSocket(frames, {MESSAGE_ID, ACTION_ID}) as server, responses.RequestsMock() as conversation:
        conversation.get(f"{CONVERSATIONS}/messages/{POST['data']['activity']['id']}", json={"id": MESSAGE_ID})
        conversation.get(f"{CONVERSATIONS}/attachment/actions/{CARD_ACTION['data']['activity']['id']}", json={"id": ACTION_ID})
        transport = WebsocketTransport(
            access_token=TOKEN, me=lambda: {"id": BOT_ID}, accept=accept, on_state=states.append,
            client_factory=lambda token, dispatcher: SocketClient(
                token, dispatcher, device_url="https://wdm.test/wdm/api/v1",
                device_info={"webSocketUrl": f"ws://127.0.0.1:{server.port}"}))
        transport.start()
        try:
            assert server.acked.wait(20), server.received
            assert transport.state == "connected"
        finally:
            transport.stop()
    assert transport.state == "off" and states[0] == "reconnecting" and "connected" in states and states[-1] == "off"
    assert server.received[0]["type"] == "authorization" and server.received[0]["data"]["token"] == f"Bearer {TOKEN}"
    assert server.handshake_auth == [f"Bearer {TOKEN}"]
    assert sorted(accepted) == sorted([MESSAGE_ID, ACTION_ID])  # once per event id; our own post never
    events, items = stored(services)
    assert sorted(events) == sorted([(MESSAGE_ID, "webex_message"), (ACTION_ID, "webex_action")])
    assert sorted(items) == sorted([MESSAGE_ID, ACTION_ID])
    assert logging.getLogger().handlers == root_handlers  # no coloredlogs, no WebexBot


def test_socket_client_gives_the_library_a_deadline_and_no_rest_client():
    client = SocketClient(TOKEN, ActivityDispatcher(Recorder(), bot_person_id=BOT_ID),
                          deadline_s=7, device_url="https://wdm.test/wdm/api/v1")
    assert isinstance(client.session, _DeadlineSession) and client.session.deadline_s == 7
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
    transport = WebsocketTransport(access_token=TOKEN, me=me, accept=Recorder(), on_state=on_state,
                                   client_factory=lambda token, dispatcher: client, backoff_s=(0.001, 0.005))
    assert transport.state == "off"
    transport.start()
    assert connected_twice.wait(10)
    transport.stop()
    assert states == ["reconnecting", "reconnecting", "reconnecting", "connected", "reconnecting", "connected", "off"]
    assert client.listens == 3 and len(me_calls) == 2
    with pytest.raises(RuntimeError):
        transport.start()

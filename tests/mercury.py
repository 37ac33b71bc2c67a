"""A Mercury (Webex websocket) stand-in on loopback for the transport tests, no kinder than the real service.

What it refuses is what the official Webex SDK's socket relies on: the first frame is the
authorization, Mercury answers it with ``mercury.buffer_state`` (the SDK's "authorized"), and a
frame is acknowledged by its envelope id (the SDK sends ``{"type": "ack", "messageId": <frame id>}``).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import serve


def buffer_state(envelope: str) -> dict[str, Any]:
    """Mercury's answer to an accepted authorization (the official SDK waits for this eventType)."""
    return {
        "id": envelope,
        "data": {"eventType": "mercury.buffer_state", "buffer_state": {"conversation": "UNKNOWN", "locus": "UNKNOWN"}},
        "timestamp": 1795550700000,
        "trackingId": "NA_buffer",
        "alertType": "none",
        "headers": {},
        "sequenceNumber": 1,
        "filterMessage": False,
    }


class FakeWebexSocket:
    """Mercury on loopback, no kinder than the real one.

    The first frame must be the authorization with the bearer token, or the socket is closed with
    4401 as Mercury does. Only after it (and once ``accept_auth`` is set) comes the buffer state, then
    the recorded frames. An ack counts only when it names the envelope id of a frame sent on that
    connection; any other ack is refused (recorded) and its frame stays unacknowledged.
    """

    def __init__(self, frames: list[dict[str, Any]], *, token: str, accept_auth: bool = True):
        self.frames, self.token = frames, token
        self.accept_auth = threading.Event()
        if accept_auth:
            self.accept_auth.set()
        self.received: list[dict[str, Any]] = []
        self.handshake_auth: list[str | None] = []
        self.sent: set[str] = set()
        self.acked: set[str] = set()
        self.refused_acks: list[Any] = []
        self.authorised = threading.Event()
        self.all_acked = threading.Event()
        self.connections = 0
        self.closed_unaccepted = 0  # connections the client closed while waiting for the buffer state
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._main(),), daemon=True)

    async def _handler(self, socket: Any) -> None:
        self.connections += 1
        self.handshake_auth.append(socket.request.headers.get("Authorization"))
        first = json.loads(await socket.recv())
        self.received.append(first)
        if (
            first.get("type") != "authorization"
            or not first.get("id")
            or (first.get("data") or {}).get("token") != f"Bearer {self.token}"
        ):
            await socket.close(4401, "authentication failed")
            return
        self.authorised.set()
        while not self.accept_auth.is_set():
            if socket.state.name != "OPEN":
                self.closed_unaccepted += 1
                return
            await asyncio.sleep(0.01)
        sent = [buffer_state(f"b0f0e000-0000-4000-8000-{self.connections:012d}"), *self.frames]
        sent_here = {frame["id"] for frame in sent}
        self.sent |= sent_here
        for frame in sent:
            await socket.send(json.dumps(frame))
        async for raw in socket:
            message = json.loads(raw)
            self.received.append(message)
            if message.get("type") == "ack":
                if message.get("messageId") in sent_here:
                    self.acked.add(message["messageId"])
                else:
                    self.refused_acks.append(message.get("messageId"))
            if self.sent <= self.acked:
                self.all_acked.set()

    async def _main(self) -> None:
        self._stopped = asyncio.Event()
        async with serve(self._handler, "127.0.0.1", 0) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stopped.wait()

    def __enter__(self) -> FakeWebexSocket:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.accept_auth.set()
        self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(10)
        self._loop.close()


def wait_until(condition: Callable[[], bool], *, timeout_s: float = 10, fail: bool = True) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    if fail:
        raise AssertionError("condition not met in time")
    return False

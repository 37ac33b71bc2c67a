"""A stand-in for Webex's websocket side, on 127.0.0.1: device discovery (U2C), device registration (WDM) and
Mercury, the websocket that carries a bot's events.

No kinder than the real one where it matters here: a bot has one device, every process that registers finds the
same device (``GET /devices`` lists it), and Mercury keeps one connection per device — a second one replaces the
first, which is closed with code 4000 "replaced". The first frame must be the authorization with the bot's token,
or the socket is closed with 4401. Each accepted connection gets a buffer state frame, then nothing (the scale-out
test and benchmark need no events over the socket; tests/mercury.py replays recorded events).

``discovery_url`` is what WEBEX_DISCOVERY_URL should be. ``most_at_once`` is the largest number of sockets that
were open and authorised at the same moment: with one holder per deployment it stays 1.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

REPLACED, UNAUTHORISED = 4000, 4401


class MercuryStandIn:
    def __init__(self, *, access_token: str, host: str = "127.0.0.1"):
        self.access_token, self.host = access_token, host
        self.devices: list[dict[str, Any]] = []
        self.connections = 0  # sockets accepted (authorised)
        self.replaced = 0  # sockets closed because another connected to the same device
        self.most_at_once = 0
        self._open: dict[str, ServerConnection] = {}  # device id → its current socket
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer((host, 0), _handler_for(self))
        self._http.daemon_threads = True
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._threads = [
            threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True),
            threading.Thread(target=self._loop.run_until_complete, args=(self._main(),), daemon=True),
        ]
        self.ws_port = 0

    @property
    def discovery_url(self) -> str:
        return f"http://{self.host}:{self._http.server_address[1]}/u2c/api/v1/catalog"

    @property
    def open_now(self) -> int:
        with self._lock:
            return len(self._open)

    def start(self) -> MercuryStandIn:
        for thread in self._threads:
            thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the Mercury stand-in did not start")
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._loop.call_soon_threadsafe(self._stopped.set)
        for thread in self._threads:
            thread.join(10)

    # --- U2C and WDM (HTTP) -------------------------------------------------------------------------

    def authorized(self, authorization: str | None) -> bool:
        presented = (authorization or "").removeprefix("Bearer ").encode()
        return hmac.compare_digest(presented, self.access_token.encode())

    def catalog(self) -> dict[str, Any]:
        return {"serviceLinks": {"wdm": f"http://{self.host}:{self._http.server_address[1]}/wdm/api/v1"}}

    def register(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            device_id = str(uuid.uuid4())
            device = {
                **body,
                "url": f"http://{self.host}:{self._http.server_address[1]}/wdm/api/v1/devices/{device_id}",
                "webSocketUrl": f"ws://{self.host}:{self.ws_port}/mercury/{device_id}",
            }
            self.devices.append(device)
            return device

    def listed(self) -> dict[str, Any]:
        with self._lock:
            return {"devices": list(self.devices)}

    # --- Mercury (websocket) ----------------------------------------------------------------------

    async def _main(self) -> None:
        self._stopped = asyncio.Event()
        async with serve(self._socket, self.host, 0) as server:
            self.ws_port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stopped.wait()

    async def _socket(self, socket: ServerConnection) -> None:
        device_id = socket.request.path.rsplit("/", 1)[-1] if socket.request else ""
        try:
            first = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
        except (TimeoutError, ValueError):
            await socket.close(UNAUTHORISED, "authentication failed")
            return
        token = (first.get("data") or {}).get("token") if isinstance(first, dict) else None
        if first.get("type") != "authorization" or not self.authorized(token):
            await socket.close(UNAUTHORISED, "authentication failed")
            return
        with self._lock:
            previous = self._open.get(device_id)
            self._open[device_id] = socket
            self.connections += 1
            self.most_at_once = max(self.most_at_once, len(self._open) + (previous is not None))
        if previous is not None:
            self.replaced += 1
            await previous.close(REPLACED, "replaced")
        buffer_state = {
            "id": str(uuid.uuid4()),
            "data": {"eventType": "mercury.buffer_state", "buffer_state": {"conversation": "UNKNOWN"}},
            "trackingId": f"STANDIN_{secrets.token_hex(6)}",
        }
        await socket.send(json.dumps(buffer_state))
        try:
            async for _frame in socket:
                pass  # acknowledgements; nothing is sent after the buffer state
        except ConnectionClosed:
            pass  # a process killed without a close frame: Mercury only notices the socket gone
        finally:
            with self._lock:
                if self._open.get(device_id) is socket:
                    del self._open[device_id]


def _handler_for(mercury: MercuryStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/u2c/api/v1/catalog":
                self._json(200, mercury.catalog())  # the catalog needs no token, as U2C's does not
            elif not mercury.authorized(self.headers.get("Authorization")):
                self._json(401, {"message": "unauthorized"})
            elif path == "/wdm/api/v1/devices":
                self._json(200, mercury.listed())
            else:
                self._json(404, {"message": "not found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not mercury.authorized(self.headers.get("Authorization")):
                self._json(401, {"message": "unauthorized"})
            elif urlsplit(self.path).path == "/wdm/api/v1/devices":
                self._json(200, mercury.register(json.loads(raw or b"{}")))
            else:
                self._json(404, {"message": "not found"})

        def _json(self, status: int, body: Any) -> None:
            content = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler

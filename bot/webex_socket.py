"""The Webex websocket transport (no public URL needed), on webex-bot 1.3's websocket client.

We never construct ``WebexBot``: it installs coloredlogs (an unredacted root handler) and does
its own loose command matching. We subclass its ``WebexWebsocketClient`` for device discovery,
headers and message-id resolution, and change four things:

- an activity is stored (``accept``) *before* it is acknowledged; the library acks first, so a
  crash in between would lose the event;
- nothing is fetched through the library's own ``WebexAPI`` (fixed public host, 60 s timeout,
  unbounded rate-limit sleep): handlers read the message through WEBEX_BASE_URL later;
- our own loop replaces ``run()``, which needs the main thread's event loop, cannot be stopped
  from another thread, and registers a new Webex device after every dropped connection;
- a frame is acknowledged by its envelope id, as the official SDK does (the library sends the REST
  message id, which Mercury does not know), and the socket counts as connected only once Mercury
  has answered the authorization with its buffer state, as the SDK waits for too.

A reconnect may deliver events again: the event id (the REST message or action id) dedupes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import requests
import websockets
from webex_bot.websockets.webex_websocket_client import WebexWebsocketClient, ssl_context

from bot.webex_activities import Accept, ActivityDispatcher, authorization_accepted, envelope_id
from core.http_deadline import DeadlineSession

log = logging.getLogger(__name__)
DISCOVERY_URL = "https://u2c.wbx2.com/u2c/api/v1/catalog"  # webex-bot's DEFAULT_U2C_URL


class NotAuthorised(ConnectionError):
    """Mercury did not accept the authorization: it closed the socket, or sent no buffer state in time."""


class SocketClient(WebexWebsocketClient):
    """webex-bot's client with a deadline on each HTTP call, store-then-ack, and a ``listen`` we drive."""

    # The library's own attributes that this class sets and reads (webex-bot has no type hints).
    session: requests.Session
    device_info: dict[str, Any] | None
    websocket: websockets.ClientConnection | None

    def __init__(
        self,
        access_token: str,
        dispatcher: ActivityDispatcher,
        *,
        deadline_s: float = 20,
        device_url: str | None = None,
        device_info: dict[str, Any] | None = None,
        discovery_url: str = DISCOVERY_URL,
    ):
        self._deadline_s, self._dispatcher, self._preset_device_url = deadline_s, dispatcher, device_url
        self._discovery_url = discovery_url
        self._fresh_device = False
        super().__init__(access_token, bot_name="fraud-loss-prevention")
        self.teams = None  # the library's WebexAPI (public host, unbounded rate-limit sleep) must never be used
        if device_info is not None:
            self.device_info = device_info

    def _get_device_url(self) -> str:
        # Called last in the library's constructor: the one place to swap in a session with deadlines
        # (its calls have no timeout at all; each now ends within the deadline, body included).
        bounded = DeadlineSession(self._deadline_s)
        bounded.headers, bounded.proxies = self.session.headers, self.session.proxies
        self.session = bounded
        return self._preset_device_url or self._discover_device_url()

    def _discover_device_url(self) -> str:
        """The library's discovery, through WEBEX_DISCOVERY_URL instead of its fixed host."""
        response = self.session.get(self._discovery_url, params={"format": "hostmap"})
        if response.status_code == 401:
            raise NotAuthorised("Webex discovery refused the access token")
        response.raise_for_status()
        wdm = (response.json().get("serviceLinks") or {}).get("wdm")
        if not isinstance(wdm, str) or not wdm:
            raise ConnectionError("Webex discovery named no device service")
        return wdm

    def _process_incoming_websocket_message(self, msg: dict[str, Any]) -> bool:
        return self._dispatcher.dispatch(msg, self._get_base64_message_id)

    async def listen(self, on_open: Callable[[], None], executor: ThreadPoolExecutor) -> None:
        """Connect and authorise; ``on_open`` once Mercury accepts; then store and acknowledge each frame until it closes."""
        if self.device_info is None:
            # After a 404 the device registration is stale: register a new one, as the library does.
            self._get_device_info(check_existing=not self._fresh_device)
        if self.device_info is None:  # the library's registration sets it or raises; reconnect if it did neither
            raise ConnectionError("Webex device registration gave no device")
        url = self.device_info["webSocketUrl"]
        tls = {"ssl": ssl_context} if url.startswith("wss:") else {}
        try:
            async with websockets.connect(
                url,
                open_timeout=self._deadline_s,
                close_timeout=5,
                **tls,
                **self._get_websocket_connect_kwargs(websockets.connect),
            ) as socket:
                self.websocket = socket
                await socket.send(
                    json.dumps(
                        {
                            "id": str(uuid.uuid4()),
                            "type": "authorization",
                            "data": {"token": "Bearer " + self.access_token},
                        }
                    )
                )
                self._fresh_device = False
                await self._receive(socket, executor, on_open)
        except websockets.InvalidStatus as exc:
            if exc.response.status_code == 404:
                self.device_info, self._fresh_device = None, True
            raise
        finally:
            self.websocket = None

    async def _receive(self, socket: Any, executor: ThreadPoolExecutor, on_open: Callable[[], None]) -> None:
        pending: set[asyncio.Task[None]] = set()
        accepted = False
        try:
            # Until Mercury accepts the authorization, the socket must answer within the deadline.
            async with asyncio.timeout(self._deadline_s) as handshake:
                async for raw in socket:
                    frame = _parse(raw)
                    if frame is None:
                        continue
                    if not accepted and authorization_accepted(frame):
                        accepted = True
                        handshake.reschedule(None)
                        on_open()
                    task = asyncio.get_running_loop().create_task(self._handle(socket, frame, executor))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
        except TimeoutError:
            if accepted:
                raise
            raise NotAuthorised("no buffer state within the deadline") from None
        finally:
            if pending:  # let events already being stored finish and be acknowledged; the rest come again
                await asyncio.wait(pending, timeout=self._deadline_s)
        if not accepted:
            raise NotAuthorised("the socket closed before the authorization was accepted")

    async def _handle(self, socket: Any, frame: dict[str, Any], executor: ThreadPoolExecutor) -> None:
        # Off the event loop: resolving the id is an HTTP call and storing is a database write.
        settled = await asyncio.get_running_loop().run_in_executor(
            executor, self._process_incoming_websocket_message, frame
        )
        ack_id = envelope_id(frame)
        if settled and ack_id:
            try:
                await socket.send(json.dumps({"type": "ack", "messageId": ack_id}))
            except websockets.ConnectionClosed:
                log.info("webex websocket closed before frame %s was acknowledged; it may come again", ack_id)


def _parse(raw: str | bytes) -> dict[str, Any] | None:
    try:
        frame = json.loads(raw)
    except ValueError:
        frame = None
    if not isinstance(frame, dict):
        log.warning("webex websocket: a frame that is not a JSON object was ignored")
        return None
    return frame


class TransportClient(Protocol):
    async def listen(self, on_open: Callable[[], None], executor: ThreadPoolExecutor) -> None: ...


ClientFactory = Callable[[str, ActivityDispatcher], TransportClient]


class WebsocketTransport:
    """Runs the websocket in a background thread, reconnecting with back-off; ``state`` is for /readyz."""

    def __init__(
        self,
        *,
        access_token: str,
        me: Callable[[], dict[str, Any]],
        accept: Accept,
        on_state: Callable[[str], None] = lambda state: None,
        client_factory: ClientFactory | None = None,
        backoff_s: tuple[float, float] = (1.0, 60.0),
        workers: int = 4,
        discovery_url: str = DISCOVERY_URL,
    ):
        self._token, self._me, self._accept, self._on_state = access_token, me, accept, on_state
        self._client_factory: ClientFactory = client_factory or (
            lambda token, dispatcher: SocketClient(token, dispatcher, discovery_url=discovery_url)
        )
        self._backoff_s, self._workers = backoff_s, workers
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._client: TransportClient | None = None
        self._state = "off"

    @property
    def state(self) -> str:
        """One of "connected", "reconnecting" (also before the first connection) or "off"."""
        return self._state

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the websocket transport was already started")
        self._set_state("reconnecting")
        self._thread = threading.Thread(target=self._run, name="webex-websocket", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30) -> None:
        """Close the socket and wait for the thread; events being stored finish, unacknowledged ones come again."""
        self._stop.set()
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):  # the loop has just closed on its own
                loop.call_soon_threadsafe(task.cancel)
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("webex websocket thread still busy after %.0f s", timeout_s)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)  # the library's helpers call get_event_loop()
        executor = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="webex-event")
        failures = 0
        try:
            while not self._stop.is_set():
                connected = threading.Event()
                try:
                    self._connect_once(executor, connected)
                except asyncio.CancelledError:
                    break  # stop() cancelled the connection
                except Exception as exc:  # any failure: say what in plain words and reconnect (never give up)
                    log.warning("webex websocket failed (%s); reconnecting", _describe(exc))
                failures = 0 if connected.is_set() else failures + 1
                if self._stop.is_set():
                    break
                self._set_state("reconnecting")
                self._stop.wait(self._delay(failures))
        finally:
            executor.shutdown(wait=True)
            self._loop.close()
            self._set_state("off")

    def _connect_once(self, executor: ThreadPoolExecutor, connected: threading.Event) -> None:
        assert self._loop is not None
        if self._client is None:
            # Both reach Webex (people/me through WEBEX_BASE_URL, then device discovery); a failure is retried.
            dispatcher = ActivityDispatcher(self._accept, bot_person_id=str(self._me()["id"]))
            self._client = self._client_factory(self._token, dispatcher)

        def opened() -> None:  # called once Mercury has accepted the authorization, not when the socket opens
            connected.set()
            self._set_state("connected")
            log.info("webex websocket connected")

        self._task = self._loop.create_task(self._client.listen(opened, executor))
        if self._stop.is_set():  # stop() came while we were setting up, before there was a task to cancel
            self._task.cancel()
        try:
            self._loop.run_until_complete(self._task)
        finally:
            self._task = None

    def _delay(self, failures: int) -> float:
        """Exponential back-off with full jitter, so many bots restarting together do not reconnect in step."""
        base, cap = self._backoff_s
        return random.uniform(base, min(cap, base * 2 ** min(failures, 16)))

    def _set_state(self, state: str) -> None:
        self._state = state
        self._on_state(state)


def _describe(exc: BaseException) -> str:
    """A failure in plain words: the type, and a status or close code (never a URL: it may hold ids)."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    code = getattr(getattr(exc, "rcvd", None), "code", None)  # a close from Mercury: 4401 refused, 4000 replaced
    if isinstance(exc, NotAuthorised):
        return f"not authorised: {exc}"
    detail = f" {status}" if status else f" close {code}" if code else ""
    return f"{type(exc).__name__}{detail}"

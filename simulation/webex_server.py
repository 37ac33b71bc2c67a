"""A stand-in for the Webex REST API's bot calls, on 127.0.0.1: it records what the bot posts.

It answers the calls the real client (bot/webex_client.py, over webexpythonsdk) makes when the
bot posts and nobody presses anything: ``GET /people/me`` (the bot's identity), ``POST /messages``
as JSON (markdown, a card in ``attachments``) or as multipart (a file, e.g. an evidence photo),
``GET /messages/{id}``, ``GET /people/{id}``, and an empty ``GET /webhooks``. A posted message is
answered ``200`` with a Webex-shaped message (a new ``id``, ``created``...); a wrong token gets
``401``. Every accepted message is kept in ``messages`` with the moment it arrived, so a benchmark
can tell when a card was delivered. Nothing is ever sent back to the bot (no websocket, no webhooks).
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
_MESSAGE = re.compile(r"^/v1/messages/([A-Za-z0-9_=-]{1,400})$")
_PERSON = re.compile(r"^/v1/people/([A-Za-z0-9_=-]{1,400})$")


def _webex_id(kind: str) -> str:
    """An opaque id shaped like Webex's (base64 of a ``ciscospark://`` URI)."""
    uri = f"ciscospark://us/{kind}/{secrets.token_hex(16)}"
    return base64.urlsafe_b64encode(uri.encode()).decode().rstrip("=")


@dataclass(frozen=True)
class PostedMessage:
    """One message the bot posted, as Webex would store it, with the (unix) time it arrived."""

    id: str
    arrived_at: float
    room_id: str | None
    to_person_email: str | None
    parent_id: str | None
    markdown: str | None
    attachments: tuple[dict[str, Any], ...] = ()
    files: tuple[tuple[str, str, int], ...] = ()  # (name, content type, size in bytes)

    @property
    def cards(self) -> list[Any]:
        """The adaptive cards of this message (their ``content``)."""
        return [a.get("content") for a in self.attachments if a.get("contentType") == CARD_CONTENT_TYPE]


@dataclass
class _Me:
    id: str = field(default_factory=lambda: _webex_id("PEOPLE"))
    display_name: str = "Loss prevention (stand-in)"
    email: str = "flp-standin@webex.bot"


class WebexStandIn:
    """``start()`` binds a free port (or ``port``); ``base_url`` is what WEBEX_BASE_URL should be."""

    def __init__(
        self,
        *,
        access_token: str,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        on_message: Callable[[PostedMessage], None] = lambda message: None,
    ):
        self.access_token, self.clock, self.on_message = access_token, clock, on_message
        self.me = _Me()
        self.messages: list[PostedMessage] = []
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> WebexStandIn:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="webex-stand-in", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def posted(self) -> list[PostedMessage]:
        """A copy of the messages so far, in arrival order."""
        with self._lock:
            return list(self.messages)

    def cards(self) -> list[PostedMessage]:
        """The posted messages that hold an adaptive card."""
        return [m for m in self.posted() if m.cards]

    # The API, as (status, JSON body); the request handler only parses and writes.

    def authorized(self, authorization: str | None) -> bool:
        presented = (authorization or "").removeprefix("Bearer ").encode()
        return hmac.compare_digest(presented, self.access_token.encode())

    def post_message(self, fields: dict[str, Any], files: list[tuple[str, str, int]]) -> tuple[int, Any]:
        room_id, to_email = fields.get("roomId"), fields.get("toPersonEmail")
        if not room_id and not to_email:
            return self._error(400, "roomId or toPersonEmail is required")
        attachments = fields.get("attachments") or []
        if not isinstance(attachments, list) or not all(isinstance(a, dict) for a in attachments):
            return self._error(400, "attachments must be a list of objects")
        if not fields.get("markdown") and not fields.get("text") and not files:
            return self._error(400, "text, markdown or files is required")
        message = PostedMessage(
            id=_webex_id("MESSAGE"),
            arrived_at=self.clock(),
            room_id=room_id,
            to_person_email=to_email,
            parent_id=fields.get("parentId"),
            markdown=fields.get("markdown"),
            attachments=tuple(attachments),
            files=tuple(files),
        )
        with self._lock:
            self.messages.append(message)
            kind = "card" if message.cards else "file" if files else "text"
            self.counts[kind] = self.counts.get(kind, 0) + 1
        self.on_message(message)
        return 200, self._message_json(message)

    def get_message(self, message_id: str) -> tuple[int, Any]:
        with self._lock:
            found = next((m for m in self.messages if m.id == message_id), None)
        return (200, self._message_json(found)) if found else self._error(404, "message not found")

    def get_person(self, person_id: str) -> tuple[int, Any]:
        if person_id in ("me", self.me.id):
            return 200, self._person_json()
        return self._error(404, "person not found")

    def _person_json(self) -> dict[str, Any]:
        return {
            "id": self.me.id,
            "emails": [self.me.email],
            "displayName": self.me.display_name,
            "nickName": self.me.display_name,
            "type": "bot",
            "created": "2026-01-01T00:00:00.000Z",
        }

    def _message_json(self, message: PostedMessage) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": message.id,
            "roomId": message.room_id or _webex_id("ROOM"),
            "roomType": "group" if message.room_id else "direct",
            "text": message.markdown or "",
            "markdown": message.markdown or "",
            "personId": self.me.id,
            "personEmail": self.me.email,
            "created": datetime.fromtimestamp(message.arrived_at, UTC).isoformat(timespec="milliseconds"),
        }
        if message.parent_id:
            body["parentId"] = message.parent_id
        if message.to_person_email:
            body["toPersonEmail"] = message.to_person_email
        if message.attachments:
            body["attachments"] = list(message.attachments)
        if message.files:
            body["files"] = [f"{self.base_url}/contents/{_webex_id('CONTENT')}/0" for _ in message.files]
        return body

    def _error(self, status: int, text: str) -> tuple[int, Any]:
        with self._lock:
            self.counts[f"error {status}"] = self.counts.get(f"error {status}", 0) + 1
        return status, {
            "message": text,
            "errors": [{"description": text}],
            "trackingId": f"STANDIN_{secrets.token_hex(8)}",
        }


def parse_multipart(content_type: str, raw: bytes) -> tuple[dict[str, Any], list[tuple[str, str, int]]]:
    """Form fields and files ((name, content type, size)) of a ``multipart/form-data`` body."""
    parsed = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )
    fields: dict[str, Any] = {}
    files: list[tuple[str, str, int]] = []
    for part in parsed.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        content = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            files.append((filename, part.get_content_type(), len(content)))
        elif isinstance(name, str):
            fields[name] = content.decode("utf-8", errors="replace")
    return fields, files


def _form(content_type: str, raw: bytes) -> tuple[dict[str, Any], list[tuple[str, str, int]]] | None:
    """The fields and files of a POST body (JSON or multipart), or None when it is neither."""
    try:
        if content_type.startswith("multipart/form-data"):
            return parse_multipart(content_type, raw)
        fields = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return None
    return (fields, []) if isinstance(fields, dict) else None


def _handler_for(webex: WebexStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "WebexStandIn/1.0"
        protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's session expects of Webex

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not webex.authorized(self.headers.get("Authorization")):
                self._json(
                    401, {"message": "The request requires a valid access token set in the Authorization header."}
                )
                return
            if urlsplit(self.path).path != "/v1/messages":
                self._json(404, {"message": "The requested resource could not be found."})
                return
            parsed = _form(self.headers.get("Content-Type") or "", raw)
            if parsed is None:
                self._json(400, {"message": "The request body is not a JSON object or a multipart form."})
                return
            fields, files = parsed
            self._json(*webex.post_message(fields, files))

        def do_GET(self) -> None:
            if not webex.authorized(self.headers.get("Authorization")):
                self._json(
                    401, {"message": "The request requires a valid access token set in the Authorization header."}
                )
                return
            path = urlsplit(self.path).path
            if match := _MESSAGE.match(path):
                self._json(*webex.get_message(match.group(1)))
            elif match := _PERSON.match(path):
                self._json(*webex.get_person(match.group(1)))
            elif path == "/v1/webhooks":
                self._json(200, {"items": []})
            else:
                self._json(404, {"message": "The requested resource could not be found."})

        def _json(self, status: int, body: Any) -> None:
            content = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(content)))
            self.send_header("TrackingID", f"STANDIN_{secrets.token_hex(8)}")
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: a benchmark prints its own figures

    return Handler

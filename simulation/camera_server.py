"""A stand-in for the Meraki Dashboard API's camera calls, on 127.0.0.1, serving the demo floor's pictures.

It answers as docs/services.md says Meraki does, so the real client (vision/meraki.py) is what
talks to it: ``generateSnapshot`` gives ``202 {url, expiry}``; that URL answers 404 until the
picture is "uploaded" (about a second) and stops working when it expires; a timestamp whose
footage is not indexed yet (the last few seconds) gets ``400 No video for specified timestamp``;
``fullframe`` with a timestamp is refused; an unknown serial is 404, a wrong key 401; bursts over
the organisation's rate get 429 with Retry-After. ``videoLink`` points at a small footage page
served here, since the real one needs a Dashboard login.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from simulation.floor import Floor

_SNAPSHOT = re.compile(r"^/api/v1/devices/([A-Za-z0-9-]+)/camera/generateSnapshot$")
_VIDEO_LINK = re.compile(r"^/api/v1/devices/([A-Za-z0-9-]+)/camera/videoLink$")
_IMAGE = re.compile(r"^/snapshots/([A-Za-z0-9_-]{16,64})\.jpg$")
_FOOTAGE = re.compile(r"^/footage/([A-Za-z0-9-]+)(/frame\.jpg)?$")
NO_VIDEO = "No video for specified timestamp"


@dataclass
class _Pending:
    image: bytes
    ready_at: float
    expires_at: float


@dataclass(frozen=True)
class CameraEvent:
    """What the stand-in did, for the demo's narration: ``kind`` is snapshot|refused|image_not_ready|image|video_link."""

    kind: str
    serial: str
    detail: str = ""


class CameraStandIn:
    """``start()`` binds a free port (or ``port``); ``base_url`` is what MERAKI_BASE_URL should be."""

    def __init__(
        self,
        floor: Floor,
        *,
        api_key: str,
        host: str = "127.0.0.1",
        port: int = 0,
        image_delay_s: float = 1.0,
        footage_lag_s: float = 3.0,
        link_ttl_s: float = 300.0,
        rate_per_s: int = 10,
        orgs: dict[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        on_event: Callable[[CameraEvent], None] = lambda event: None,
    ):
        self.floor, self.api_key = floor, api_key
        self.image_delay_s, self.footage_lag_s, self.link_ttl_s = image_delay_s, footage_lag_s, link_ttl_s
        self.rate_per_s, self.clock, self.on_event = rate_per_s, clock, on_event
        self.counts: dict[str, int] = {}
        self._pending: dict[str, _Pending] = {}
        # Meraki's budget is per organisation: ``orgs`` maps a serial to its organisation (default: all in one).
        self._orgs = orgs or {}
        self._recent: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def root(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        return f"{self.root}/api/v1"

    @property
    def picture_host(self) -> str:
        """host:port of the picture links it answers (plain http on loopback): what MERAKI_PICTURE_HOSTS must list."""
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> CameraStandIn:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="camera-stand-in", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    # The API, as (status, JSON body, extra headers); the request handler only parses and writes.

    def generate_snapshot(self, serial: str, authorization: str | None, body: dict[str, Any]) -> tuple[int, Any, dict]:
        refused = self._check(serial, authorization)
        if refused:
            return refused
        now = self.clock()
        if "timestamp" in body and body.get("fullframe") is not None:
            return self._refuse(serial, 400, "fullframe cannot be combined with timestamp")
        moment = now
        if "timestamp" in body:
            try:
                moment = datetime.fromisoformat(str(body["timestamp"]).replace("Z", "+00:00")).timestamp()
            except ValueError:
                return self._refuse(serial, 400, "timestamp must be ISO 8601")
            if moment > now - self.footage_lag_s:
                return self._refuse(serial, 400, NO_VIDEO)
        token = secrets.token_urlsafe(24)
        image = self.floor.picture(serial, moment)
        with self._lock:
            self._pending[token] = _Pending(image, now + self.image_delay_s, now + self.link_ttl_s)
        self._event("snapshot", serial, "exact" if "timestamp" in body else "live")
        expiry = f"Access to the image will expire in {int(self.link_ttl_s // 60)} minutes."
        return 202, {"url": f"{self.root}/snapshots/{token}.jpg", "expiry": expiry}, {}

    def image(self, token: str) -> tuple[int, bytes | None]:
        now = self.clock()
        with self._lock:
            pending = self._pending.get(token)
            if pending is not None and now >= pending.expires_at:
                del self._pending[token]
                return 403, None
        if pending is None or now < pending.ready_at:
            self._event("image_not_ready", "")
            return 404, None
        self._event("image", "")
        return 200, pending.image

    def video_link(self, serial: str, authorization: str | None, query: dict[str, list[str]]) -> tuple[int, Any, dict]:
        refused = self._check(serial, authorization)
        if refused:
            return refused
        timestamp = (query.get("timestamp") or [""])[0]
        self._event("video_link", serial)
        url = f"{self.root}/footage/{quote(serial)}?timestamp={quote(timestamp)}"
        return 200, {"url": url, "visionUrl": url}, {}

    def footage_page(self, serial: str, timestamp: str) -> str:
        frame = f"/footage/{quote(serial)}/frame.jpg?timestamp={quote(timestamp)}"
        return (
            f"<!doctype html><meta charset=utf-8><title>Camera {escape(serial)}</title>"
            f"<body style='font-family:sans-serif;background:#111;color:#eee'>"
            f"<p>Simulated footage of camera {escape(serial)} at {escape(timestamp or 'now')}</p>"
            f"<img src='{escape(frame)}' alt='camera picture' style='max-width:100%'></body>"
        )

    def footage_frame(self, serial: str, timestamp: str) -> bytes | None:
        if serial not in self.floor.serials:
            return None
        try:
            moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() if timestamp else None
        except ValueError:
            return None
        return self.floor.picture(serial, moment)

    def _check(self, serial: str, authorization: str | None) -> tuple[int, Any, dict] | None:
        presented = (authorization or "").removeprefix("Bearer ").encode()
        if not hmac.compare_digest(presented, self.api_key.encode()):
            return self._refuse(serial, 401, "Invalid API key")
        now = self.clock()
        with self._lock:
            recent = self._recent.setdefault(self._orgs.get(serial, ""), deque())
            while recent and recent[0] <= now - 1.0:
                recent.popleft()
            if len(recent) >= self.rate_per_s:
                limited = True
            else:
                recent.append(now)
                limited = False
        if limited:
            status, body, _ = self._refuse(serial, 429, "Too many requests")
            return status, body, {"Retry-After": "1"}
        if serial not in self.floor.serials:
            return self._refuse(serial, 404, "Not found")
        return None

    def _refuse(self, serial: str, status: int, message: str) -> tuple[int, Any, dict]:
        self._event("refused", serial, f"{status} {message}")
        return status, {"errors": [message]}, {}

    def _event(self, kind: str, serial: str, detail: str = "") -> None:
        with self._lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
        self.on_event(CameraEvent(kind, serial, detail))


def _handler_for(camera: CameraStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "MerakiStandIn/1.0"

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            match = _SNAPSHOT.match(path)
            if match is None:
                self._json(404, {"errors": ["Not found"]})
                return
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError:
                body = None
            if not isinstance(body, dict):
                self._json(400, {"errors": ["body must be a JSON object"]})
                return
            self._json(*camera.generate_snapshot(match.group(1), self.headers.get("Authorization"), body))

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            if match := _IMAGE.match(parts.path):
                status, image = camera.image(match.group(1))
                self._bytes(status, image or b"", "image/jpeg" if image else "text/plain")
            elif match := _VIDEO_LINK.match(parts.path):
                self._json(*camera.video_link(match.group(1), self.headers.get("Authorization"), query))
            elif match := _FOOTAGE.match(parts.path):
                timestamp = (query.get("timestamp") or [""])[0]
                if match.group(2):
                    frame = camera.footage_frame(match.group(1), timestamp)
                    self._bytes(200 if frame else 404, frame or b"", "image/jpeg" if frame else "text/plain")
                else:
                    self._bytes(
                        200, camera.footage_page(match.group(1), timestamp).encode(), "text/html; charset=utf-8"
                    )
            else:
                self._json(404, {"errors": ["Not found"]})

        def _json(self, status: int, body: Any, headers: dict | None = None) -> None:
            self._bytes(status, json.dumps(body).encode(), "application/json", headers)

        def _bytes(self, status: int, content: bytes, content_type: str, headers: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(content)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: picture links are capabilities, and the demo narrates what matters

    return Handler

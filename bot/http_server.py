"""The embedded HTTP servers' limits: what a hostile or careless client can hold, and for how long.

waitress (``serve``) reads a whole request, headers and body, before a thread sees it, so the limits that matter
are the ones it applies while reading: how big a body may be (else it spools it to a temporary file first), how
long a request may take to arrive (else a client dribbling a header line every few seconds holds a connection
for ever), and how many connections it keeps (else a few hundred such clients take every slot).
gunicorn (``web``) gets the same idea in its own terms; docs/security.md says what a reverse proxy adds.
"""

from __future__ import annotations

import logging
import resource
import time
from dataclasses import dataclass
from typing import Any

from waitress.channel import HTTPChannel

from bot.http import intake

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerLimits:
    # Every endpoint's limit is the intake's (Flask's MAX_CONTENT_LENGTH); waitress refuses at ``>=``, hence + 1.
    max_body_bytes: int = intake.MAX_BODY_BYTES
    # Requests carry a signature, a cookie or a bearer token: a few KiB. waitress's default is 256 KiB.
    max_header_bytes: int = 32 * 1024
    # From a request's first byte to its last: 256 KiB at 32 KiB/s, far slower than any POS link.
    request_deadline_s: float = 10.0
    # A keep-alive connection idle between two requests is closed after this.
    idle_timeout_s: float = 30.0
    # Slow clients cost a socket, never a thread: room for a thousand leaves real work room beside 300 of them.
    connection_limit: int = 1000
    # On SQLite one thread writes at a time while the others parse and validate; 4 measured no better
    # (benchmarks/ingest.py), and a slow read API call then leaves intake fewer threads.
    threads: int = 8


LIMITS = ServerLimits()


class DeadlineChannel(HTTPChannel):
    """waitress's channel, closed when a request is still arriving ``request_deadline_s`` after its first byte
    (or, on a new connection, after the connection was made: a client that connects and says nothing is a slow one).

    waitress's own ``channel_timeout`` counts from the last byte received, so any trickle keeps it open; here it
    only closes keep-alive connections idle between two requests."""

    request_deadline_s = LIMITS.request_deadline_s

    def __init__(self, *args: Any, **kwargs: Any):
        self._reading_since: float | None = time.monotonic()
        super().__init__(*args, **kwargs)

    def received(self, data: bytes) -> bool:
        if self.request is None and self._reading_since is None and data:
            self._reading_since = time.monotonic()
        done = super().received(data)
        if self.request is None:
            self._reading_since = None
        return bool(done)

    def readable(self) -> bool:
        # Called on every turn of the loop (at least once a second), before ``writable``: a channel marked here
        # is closed in the same turn. Never while a request of this connection is being answered.
        since = self._reading_since
        if since is not None and not self.requests and time.monotonic() - since > self.request_deadline_s:
            log.info("closing %s: no whole request %.0f s after it began", self.addr[0], self.request_deadline_s)
            self._reading_since = None
            self.will_close = True
            return False
        return bool(super().readable())


def waitress_server(app: Any, *, sockets: dict[int, Any], host: str, port: int, limits: ServerLimits = LIMITS) -> Any:
    from waitress import create_server

    _raise_open_file_limit(limits.connection_limit + 100)
    server = create_server(
        app,
        map=sockets,
        host=host,
        port=port,
        threads=limits.threads,
        connection_limit=limits.connection_limit,
        # select() cannot watch descriptors above 1023; poll() can.
        asyncore_use_poll=True,
        max_request_body_size=limits.max_body_bytes + 1,
        max_request_header_size=limits.max_header_bytes,
        # Above this waitress spools a body to a temporary file; no accepted body comes near it.
        inbuf_overflow=limits.max_body_bytes + limits.max_header_bytes + 1,
        channel_timeout=limits.idle_timeout_s,
        cleanup_interval=2,
        ident="fraud-loss-prevention",
    )
    for listener in _listeners(server, sockets):
        listener.channel_class = DeadlineChannel
    return server


def _listeners(server: Any, sockets: dict[int, Any]) -> list[Any]:
    from waitress.server import BaseWSGIServer

    return [d for d in sockets.values() if isinstance(d, BaseWSGIServer)] or [server]


def _raise_open_file_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < wanted:
        log.warning("open file limit %d is below the %d connections allowed; raise it (ulimit -n)", hard, wanted)


def gunicorn_settings(limits: ServerLimits = LIMITS) -> dict[str, Any]:
    """gthread: a connection waits for its bytes in the poller, not in a thread; keep-alive is short, so idle
    clients give their slot back; request line and headers are bounded. Flask bounds bodies (it reads them
    itself, through MAX_CONTENT_LENGTH, and gunicorn spools nothing). gunicorn has no deadline for a request that
    has begun: in front of ``web``, a reverse proxy is required (docs/security.md)."""
    return {
        "worker_class": "gthread",
        "threads": limits.threads,
        "worker_connections": limits.connection_limit,
        "keepalive": 5,
        "timeout": 30,
        "limit_request_line": 8190,
        "limit_request_fields": 100,
        "limit_request_field_size": 8190,
    }

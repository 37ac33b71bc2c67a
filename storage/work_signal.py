"""Wake-ups across processes on PostgreSQL: a committed work item wakes idle workers at once.

A unit of work that enqueued steps sends ``NOTIFY flp_work, '<kind>,<kind>'`` in its own transaction, so
PostgreSQL delivers it at commit and never for a rollback; identical notifications of one transaction are
delivered once. Each process running steps keeps one connection listening (``WorkSignals``) and wakes its
lanes. A missed notification (the listener reconnecting) costs no work: the runners still poll, and a
reconnect wakes every lane once to catch up. SQLite has no such thing and keeps polling.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection

import psycopg
from sqlalchemy import func, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

CHANNEL = "flp_work"
LISTENING, RECONNECTING, OFF = "listening", "reconnecting", "off"


def announce(session: Session, kinds: Collection[str]) -> None:
    """Ask PostgreSQL to tell every listener, at this transaction's commit, which kinds of step were enqueued."""
    session.execute(select(func.pg_notify(CHANNEL, ",".join(sorted(kinds)))))


def libpq_url(url: str | URL) -> str:
    """The SQLAlchemy URL as psycopg takes it (no ``+psycopg`` driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class WorkSignals:
    """One thread with one connection: ``LISTEN flp_work`` and ``wake(kinds)`` for each notification.

    ``wake(None)`` (every lane) after each (re)connect: whatever was committed while it was away is found."""

    def __init__(
        self,
        url: str | URL,
        wake: Callable[[list[str] | None], None],
        *,
        on_state: Callable[[str], None] = lambda state: None,
        reconnect_s: tuple[float, float] = (0.5, 15.0),
        poll_s: float = 1.0,
    ):
        self._conninfo = libpq_url(url)
        self._wake, self._on_state = wake, on_state
        self._reconnect_s, self._poll_s = reconnect_s, poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="work-signals", daemon=True)
        self.received = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)
        self._on_state(OFF)

    def _run(self) -> None:
        delay = self._reconnect_s[0]
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._on_state(LISTENING)
                    delay = self._reconnect_s[0]
                    self._wake(None)
                    self._listen(conn)
            except psycopg.Error as exc:
                # The message of a connection error can quote the host, never the password.
                log.warning("work signals: connection lost (%s); polling until it is back", type(exc).__name__)
                self._on_state(RECONNECTING)
                self._stop.wait(delay)
                delay = min(delay * 2, self._reconnect_s[1])

    def _listen(self, conn: psycopg.Connection) -> None:
        while not self._stop.is_set():
            # notifies() returns after poll_s without any, so a stop is seen within a second.
            for notification in conn.notifies(timeout=self._poll_s):
                self.received += 1
                kinds = [kind for kind in notification.payload.split(",") if kind]
                self._wake(kinds or None)

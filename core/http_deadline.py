"""A total deadline on an HTTP call with ``requests``, body included, whatever the server does.

``requests``' ``timeout=`` bounds each socket read, not the call: a server that drips a byte every few
seconds (in its headers or its body) holds the caller for ever. Inside ``total_deadline(s)``, every
request this thread sends through a session with a ``DeadlineAdapter`` mounted is watched: at the
deadline a timer shuts the connection's socket down, which wakes a read blocked on it at once, and the
call raises ``DeadlineExceeded`` (a ``requests.Timeout``, so callers that map timeouts keep doing so).

``DeadlineSession`` puts each request in its own ``total_deadline`` and reads the body inside it (no
streaming). A caller that streams (``stream=True``) reads the body inside its own ``total_deadline``.
Backend-neutral: only ``requests`` and ``urllib3``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager


class DeadlineExceeded(requests.Timeout):
    """The call's total deadline passed before the answer was complete (plain words: no URL)."""


class _Watch:
    """The connections of one deadline; at expiry their sockets are shut down (once, under the lock)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self._connections: list[HTTPConnection] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(seconds, 0.0), self._expire)
        self._timer.daemon = True

    def attach(self, connection: HTTPConnection) -> None:
        with self._lock:
            if connection not in self._connections:
                self._connections.append(connection)
            if self.expired:  # a retry that began after the deadline: end it too
                _shut(connection)

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        self._timer.cancel()
        with self._lock:  # after this, _expire touches nothing (a kept-alive connection is back in its pool)
            self._connections.clear()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for connection in self._connections:
                _shut(connection)


def _shut(connection: HTTPConnection) -> None:
    sock = connection.sock
    if sock is not None:
        # socket.socket's own shutdown, not SSLSocket's (that one also drops its TLS state under the reader).
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


_local = threading.local()


@contextlib.contextmanager
def total_deadline(seconds: float) -> Iterator[None]:
    """Every request of this thread through a ``DeadlineAdapter`` ends within ``seconds`` from now.

    Once the deadline has passed, the block raises ``DeadlineExceeded`` whatever the library made of its
    shut socket: an error, or an answer cut short (headers ended early read as a complete empty answer)."""
    watch, outer = _Watch(seconds), getattr(_local, "watch", None)
    _local.watch = watch
    watch.start()
    try:
        yield
    except Exception as exc:
        if watch.expired:
            raise DeadlineExceeded(f"no complete answer within {seconds:g} s") from exc
        raise
    finally:
        watch.stop()
        _local.watch = outer
    if watch.expired:
        raise DeadlineExceeded(f"no complete answer within {seconds:g} s")


def _attach(connection: HTTPConnection) -> None:
    watch = getattr(_local, "watch", None)
    if watch is not None:
        watch.attach(connection)


class _WatchedHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        _attach(self)
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self)  # a kept-alive connection from the pool does not connect again
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        _attach(self)
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self)
        super().request(*args, **kwargs)


# For pools that add their own connection behaviour (core/outbound_guard.py) on top of the deadline's.
WatchedHTTPConnection, WatchedHTTPSConnection = _WatchedHTTPConnection, _WatchedHTTPSConnection


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` (same arguments) whose connections ``total_deadline`` can end."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # a SOCKS proxy has its own connection classes
            manager.pool_classes_by_scheme = _POOLS
        return manager


def mount_deadlines(session: requests.Session, adapter: HTTPAdapter | None = None) -> requests.Session:
    """Mount ``adapter`` (a ``DeadlineAdapter``; a new one without retries by default) for http and https."""
    adapter = adapter or DeadlineAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class DeadlineSession(requests.Session):
    """A session whose every request ends within ``deadline_s`` in total, body included (never streamed).

    ``timeout=`` (each socket read) defaults to the deadline too, so a quiet server is noticed as before."""

    def __init__(self, deadline_s: float):
        super().__init__()
        self.deadline_s = deadline_s
        mount_deadlines(self)

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.deadline_s)
        kwargs["stream"] = False  # the body is read here, inside the deadline
        with total_deadline(self.deadline_s):
            return super().request(method, url, *args, **kwargs)

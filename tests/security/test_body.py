"""Issue 17, items 1 and 2, against a real ``python -m bot serve`` on 127.0.0.1: bodies over the limit are refused
before they are read and nothing is spooled; slow clients cannot take the connections /healthz and the intake need.
Every loop has a count and a deadline."""

from __future__ import annotations

import os
import secrets
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bot.http.intake import MAX_BODY_BYTES
from bot.http_server import LIMITS
from tests.conftest import REPO
from tests.served import INTAKE, ServedProcess, pos_body, post_signed, wait_for

pytestmark = pytest.mark.slow

GIB = 1024**3
PIECE = 64 * 1024


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServedProcess, Path, str]]:
    root = tmp_path_factory.mktemp("served")
    spool = root / "tmp"  # the child's TMPDIR: where waitress would spool a body
    spool.mkdir()
    secret = secrets.token_urlsafe(32)
    environ = {
        "DATABASE_URL": f"sqlite:///{root / 'flp.db'}",
        "DATA_DIR": str(root / "data"),
        "POS_WEBHOOK_SECRET": secret,
        "API_TOKEN": secrets.token_urlsafe(32),
        "FLP_CONFIG": str(REPO / "config/flp.yaml"),
        "TMPDIR": str(spool),
    }
    with ServedProcess(environ, root / "serve.log") as server:
        server.start()
        yield server, spool, secret


def spooled_files(pid: int, spool: Path) -> list[str]:
    """Files the server holds open under its TMPDIR, deleted ones (O_TMPFILE, TemporaryFile) included."""
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith(str(spool)):
            found.append(target)
    return found


def pieces(total: int, *, chunked: bool) -> Iterator[bytes]:
    """The body, produced lazily: never more than one piece in memory."""
    piece = b"x" * PIECE
    for _ in range(total // PIECE):
        yield b"%x\r\n%s\r\n" % (PIECE, piece) if chunked else piece
    if chunked:
        yield b"0\r\n\r\n"


def upload(port: int, total: int, *, chunked: bool, deadline_s: float = 20) -> tuple[bytes, int, float]:
    """Send headers and then the body piece by piece until the server answers or hangs up.

    The answer's first bytes, how many body bytes went out before it, and how long it took."""
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    head = f"POST {INTAKE} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{framing}\r\n\r\n"
    started = time.monotonic()
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(head.encode())
        for piece in pieces(total, chunked=chunked):  # bounded: total // PIECE pieces
            if time.monotonic() - started > deadline_s:
                break
            if select.select([conn], [], [], 0)[0]:
                break  # an answer (or a hang-up) is waiting: stop sending
            try:
                conn.sendall(piece)
            except OSError:  # refused and closed while we were still sending
                break
            sent += len(piece)
        try:
            answer = conn.recv(200)
        except OSError:
            answer = b""
    return answer, sent, time.monotonic() - started


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_three_one_gib_uploads_are_refused_at_once_and_nothing_is_spooled(
    served: tuple[ServedProcess, Path, str], chunked: bool
) -> None:
    server, spool, _ = served
    assert server.process is not None
    # Just under 1 GiB: waitress's own default refuses a Content-Length of 1 GiB and more, and spools the rest.
    total = GIB - PIECE
    results: list[tuple[bytes, int, float]] = []
    seen_spooled: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(upload(server.port, total, chunked=chunked))) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
        seen_spooled += spooled_files(server.process.pid, spool)
        time.sleep(0.01)
    for thread in threads:
        thread.join(5)

    assert len(results) == 3
    for answer, sent, took in results:
        assert answer.startswith(b"HTTP/1.1 413"), answer
        assert sent < 16 * 1024 * 1024, f"{sent} bytes went out before the refusal"
        assert took < 5, took
    assert seen_spooled == [] and list(spool.iterdir()) == []
    assert requests.get(f"{server.base_url}/healthz", timeout=5).status_code == 200


def test_a_body_at_the_limit_reaches_the_application(served: tuple[ServedProcess, Path, str]) -> None:
    server, _, _ = served
    # Unsigned: the application's signature check answers, so waitress let the whole body through.
    at_limit = requests.post(
        server.base_url + INTAKE, data=b" " * MAX_BODY_BYTES, headers={"Content-Type": "application/json"}, timeout=10
    )
    over = requests.post(
        server.base_url + INTAKE,
        data=b" " * (MAX_BODY_BYTES + 1),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert (at_limit.status_code, over.status_code) == (401, 413)


class Dribblers:
    """``count`` sockets that each send a request's first line and then one header line every ``every_s``."""

    def __init__(self, port: int, count: int, every_s: float, *, silent: int = 0):
        self.every_s = every_s
        self.open: list[socket.socket] = []
        self.silent: list[socket.socket] = []  # connect and never send a byte
        for n in range(count + silent):
            conn = socket.create_connection(("127.0.0.1", port), timeout=5)
            if n < count:
                conn.sendall(f"POST {INTAKE} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: {n}\r\n".encode())
                self.open.append(conn)
            else:
                self.silent.append(conn)
        self.closed_by_server: list[float] = []
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drip, daemon=True)

    def start(self) -> Dribblers:
        self._thread.start()
        return self

    def _drip(self) -> None:
        for line in range(1000):  # bounded; stopped long before
            if self._stop.wait(self.every_s):
                return
            for conn in list(self.open):
                try:
                    if select.select([conn], [], [], 0)[0] and conn.recv(100) == b"":
                        raise ConnectionResetError
                    conn.sendall(f"X-Drip-{line}: still here\r\n".encode())
                except OSError:
                    self.open.remove(conn)
                    self.closed_by_server.append(time.monotonic() - self._started)
                    conn.close()

    def silent_closed_by_server(self) -> int:
        closed = 0
        for conn in self.silent:
            conn.setblocking(False)
            try:
                closed += conn.recv(100) == b""
            except BlockingIOError:  # still open
                pass
            except OSError:
                closed += 1
        return closed

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for conn in self.open + self.silent:
            conn.close()


def test_three_hundred_slow_sockets_leave_healthz_and_the_intake_answering_and_are_closed(
    served: tuple[ServedProcess, Path, str],
) -> None:
    server, _, secret = served
    started = time.monotonic()
    # 250 dribble a header line every 2 s, 50 say nothing at all.
    dribblers = Dribblers(server.port, 250, every_s=2, silent=50).start()
    latencies: dict[str, list[float]] = {"healthz": [], "intake": []}
    statuses: list[int | None] = []
    try:
        with requests.Session() as session:
            probe_until = time.monotonic() + LIMITS.request_deadline_s * 0.7
            for index in range(100):  # bounded by the count and by the time
                if time.monotonic() > probe_until:
                    break
                started = time.monotonic()
                statuses.append(requests.get(f"{server.base_url}/healthz", timeout=10).status_code)
                latencies["healthz"].append(time.monotonic() - started)
                started = time.monotonic()
                raw = pos_body(f"SLOW-{index:04d}", index)
                statuses.append(post_signed(session, server.base_url, raw, secret, timeout_s=10))
                latencies["intake"].append(time.monotonic() - started)
                time.sleep(0.3)
            still_open_while_probing = len(dribblers.open) + len(dribblers.silent) - dribblers.silent_closed_by_server()
        # The deadline counts from a request's first byte, whatever trickles after it.
        wait_for(
            lambda: not dribblers.open and dribblers.silent_closed_by_server() == 50,
            timeout_s=LIMITS.request_deadline_s + 10,
            what="the server to close every slow socket",
            every_s=0.5,
        )
        all_closed_after = time.monotonic() - started
    finally:
        dribblers.stop()

    assert still_open_while_probing >= 290, "the probes ran while the slow sockets were open"
    assert len(latencies["healthz"]) >= 5
    assert set(statuses) == {200, 202}, statuses
    assert max(latencies["healthz"]) < 2 and max(latencies["intake"]) < 3, latencies
    assert len(dribblers.closed_by_server) == 250
    # Noticed by the dribblers at their next line, so up to one interval late.
    assert max(dribblers.closed_by_server) < LIMITS.request_deadline_s + 6, max(dribblers.closed_by_server)
    assert all_closed_after < LIMITS.request_deadline_s + 6, all_closed_after


def test_gunicorn_takes_every_limit_given_to_web() -> None:
    from gunicorn.config import Config

    from bot.http_server import gunicorn_settings

    config = Config()
    for name, value in gunicorn_settings().items():
        config.set(name, value)  # an unknown name or a bad value raises here
    assert (config.keepalive, config.limit_request_fields, config.worker_class_str) == (5, 100, "gthread")
    assert config.worker_connections > 300 + config.threads

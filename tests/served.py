"""The real ``python -m bot serve`` process on 127.0.0.1, for the slow tests and the benchmark.

Output goes to a file (a pipe nobody reads would block the server once full). Waiting is
always a bounded poll of a condition, never a fixed sleep.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from core import signatures
from tests.conftest import transaction_body

REPO = Path(__file__).resolve().parent.parent
INTAKE = "/api/v1/transactions"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(
    condition: Callable[[], Any], *, timeout_s: float = 10.0, what: str = "the condition", every_s: float = 0.05
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout_s:.0f} s waiting for {what}")
        time.sleep(every_s)


class ServedProcess:
    """``python -m bot serve`` with the given environment; ``with`` kills it if still running."""

    def __init__(self, environ: Mapping[str, str], log_path: Path, *, port: int | None = None):
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.environ = {**child_environ(environ), "HOST": "127.0.0.1", "PORT": str(self.port)}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, ready_timeout_s: float = 60) -> ServedProcess:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve"],
                cwd=REPO,
                env=self.environ,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        wait_for(self._ready, timeout_s=ready_timeout_s, what=f"{self.base_url}/healthz (log: {self.log_path})")
        return self

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"serve exited with {self.process.returncode} before it was ready:\n{self.output()}")
        try:
            return requests.get(f"{self.base_url}/healthz", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, timeout_s: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout_s)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def work_items(self) -> dict[str, float]:
        """The ``flp_work_items`` gauges from /metrics, by status."""
        text = requests.get(f"{self.base_url}/metrics", timeout=5).text
        counts = {}
        for line in text.splitlines():
            if line.startswith("flp_work_items{"):
                labels, value = line.rsplit(" ", 1)
                counts[labels.split('status="', 1)[1].split('"', 1)[0]] = float(value)
        return counts

    def __enter__(self) -> ServedProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.kill()


def child_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` plus only what a Python process needs from ours: never our DATABASE_URL, secrets or FLP_*."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "SYSTEMROOT")
    return {**{k: v for k, v in os.environ.items() if k in keep}, **environ}


def run_check_config(config_path: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    """``python -m bot check-config`` on this YAML, with our environment minus what the test must give itself."""
    env = {k: v for k, v in os.environ.items() if k not in {"POS_WEBHOOK_SECRET", "DATABASE_URL", "FLP_CONFIG"}}
    env.update(FLP_CONFIG=str(config_path), **environ)
    return subprocess.run(
        [sys.executable, "-m", "bot", "check-config"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


def now_iso() -> str:
    return datetime.now(UTC).astimezone().isoformat(timespec="seconds")


def post_signed(
    session: requests.Session, base_url: str, raw: bytes, secret: str, *, timeout_s: float = 30
) -> int | None:
    """POST a signed body to the intake; the status, or None when the connection failed."""
    headers = {"Content-Type": "application/json", "X-Signature": signatures.sign(raw, secret, int(time.time()))}
    try:
        return session.post(f"{base_url}{INTAKE}", data=raw, headers=headers, timeout=timeout_s).status_code
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
        return None


# The places of config/flp.yaml, plus one register it does not know (stored, skipped at intake).
PLACES = (("store-001", "reg-1"), ("store-001", "reg-2"), ("store-002", "reg-1"), ("store-002", "reg-9"))
ENTRY_MODES = ("contactless", "chip", "swipe", "manual", None)


def pos_body(transaction_id: str, index: int) -> bytes:
    """A valid POS body, varied so that triage captures some and skips others; occurred_at is now."""
    store_id, register_id = PLACES[index % len(PLACES)]
    payment = {
        "method": "cash" if index % 7 == 0 else "card",
        "entry_mode": ENTRY_MODES[index % len(ENTRY_MODES)],
        "card_fingerprint": f"fp_{index % 50:04x}",
        "status": "approved",
        "risk_score": (index * 37) % 101,
    }
    body = transaction_body(
        transaction_id=transaction_id,
        store_id=store_id,
        register_id=register_id,
        occurred_at=now_iso(),
        payment=payment,
        total={"amount": f"{(index * 13) % 900 + 0.99:.2f}", "currency": "BRL"},
    )
    return json.dumps(body).encode()


class Traffic:
    """Client threads posting fresh signed transactions (one ``requests.Session`` each) until stopped.

    ``retry=True`` behaves like a POS: a body whose connection failed is sent again until it gets
    an HTTP answer. ``outcomes[id]`` lists every answer (None: the connection failed).
    """

    def __init__(self, base_url: str, secret: str, *, prefix: str, clients: int = 4, retry: bool = False):
        self.base_url, self.secret, self.prefix, self.retry = base_url, secret, prefix, retry
        self.outcomes: dict[str, list[int | None]] = {}
        self.bodies: dict[str, bytes] = {}
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._next = iter(range(10**9))
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, name=f"pos-{n}", daemon=True) for n in range(clients)]

    def start(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def answered(self) -> int:
        with self._lock:
            return sum(1 for answers in self.outcomes.values() for status in answers if status is not None)

    def stop(self, timeout_s: float = 60) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout_s)
        assert not any(t.is_alive() for t in self._threads), "a client thread did not stop"

    def with_answer(self, *statuses: int) -> set[str]:
        with self._lock:
            return {tid for tid, answers in self.outcomes.items() if set(statuses) & set(answers)}

    def counts(self) -> Counter:
        with self._lock:
            return Counter(status for answers in self.outcomes.values() for status in answers)

    def _client(self) -> None:
        try:
            with requests.Session() as session:
                while not self._stop.is_set():
                    with self._lock:
                        index = next(self._next)
                    transaction_id = f"{self.prefix}-{index:06d}"
                    raw = self.bodies[transaction_id] = pos_body(transaction_id, index)
                    self._send(session, transaction_id, raw)
        except BaseException as exc:  # the test asserts there are none
            self.errors.append(exc)

    def _send(self, session: requests.Session, transaction_id: str, raw: bytes) -> None:
        while True:
            status = post_signed(session, self.base_url, raw, self.secret)
            with self._lock:
                self.outcomes.setdefault(transaction_id, []).append(status)
            # After a failed connection, a short back-off (never a busy loop); a POS then sends the same body again.
            if status is not None or self._stop.wait(0.05) or not self.retry:
                return

"""The real processes of docs/interfaces.md, "Processes and commands": stopping, migrating, refusing to start, logging."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, func, inspect, select, text

from storage import migrate
from storage.models import Transaction, WorkItem
from tests.conftest import REPO
from tests.served import INTAKE, ServedProcess, Traffic, child_environ, now_iso, post_signed, wait_for

pytestmark = pytest.mark.slow


def environ_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'flp.db'}",
        "DATA_DIR": str(tmp_path / "data"),
        "POS_WEBHOOK_SECRET": secrets.token_urlsafe(24),
        "API_TOKEN": secrets.token_urlsafe(24),
        "FLP_CONFIG": str(REPO / "config/flp.yaml"),
        **extra,
    }


def encode(body: dict) -> bytes:
    return json.dumps(body).encode()


def run_bot(*args: str, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=REPO,
        env=child_environ(environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_during_traffic_answers_what_is_in_flight_and_exits_0(tmp_path: Path, signum: int) -> None:
    environ = environ_for(tmp_path)
    server = ServedProcess(environ, tmp_path / "serve.log")
    traffic = Traffic(server.base_url, environ["POS_WEBHOOK_SECRET"], prefix="ST", clients=4)
    try:
        server.start()
        traffic.start()
        wait_for(lambda: traffic.answered() >= 150, timeout_s=120, what="150 answers before the signal")
        server.signal(signum)
        started = time.monotonic()
        code = server.wait(30)
        stopped_in = time.monotonic() - started
    finally:
        traffic.stop()
        server.kill()

    assert not traffic.errors
    output = server.output()
    assert code == 0, output[-3000:]
    assert stopped_in < 30 and "stopped cleanly" in output
    engine = create_engine(environ["DATABASE_URL"])
    with engine.connect() as conn:
        stored = set(conn.scalars(select(Transaction.transaction_id)))
        running = conn.scalar(select(func.count()).select_from(WorkItem).where(WorkItem.status == "running"))
    engine.dispose()
    accepted = traffic.with_answer(202)
    assert len(accepted) >= 150 and set(traffic.counts()) <= {202, None}
    assert accepted - stored == set(), "answered 202 but not stored"
    # Requests already read were finished and answered; later ones were refused before anything was stored.
    assert stored - accepted == set(), "stored, but the POS never got its answer"
    assert running == 0, "a claimed step was neither finished nor given back"


def test_db_upgrade_creates_the_schema_on_an_empty_sqlite_path(tmp_path: Path) -> None:
    database = tmp_path / "new" / "dir" / "flp.db"
    done = run_bot(
        "db", "upgrade", environ={"DATABASE_URL": f"sqlite:///{database}", "FLP_CONFIG": str(REPO / "config/flp.yaml")}
    )
    assert done.returncode == 0, done.stderr
    assert "latest migration" in done.stdout
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        version = conn.scalar(text("SELECT version_num FROM alembic_version"))
    engine.dispose()
    assert {"transactions", "work_items", "alembic_version"} <= tables
    assert [version] == migrate.heads()


def test_serve_without_pos_webhook_secret_exits_1_and_names_it(tmp_path: Path) -> None:
    environ = environ_for(tmp_path)
    del environ["POS_WEBHOOK_SECRET"]
    done = run_bot("serve", environ=environ)
    assert done.returncode == 1
    assert "POS_WEBHOOK_SECRET" in done.stderr
    assert not (tmp_path / "flp.db").exists(), "nothing should start before the configuration is valid"


def test_secrets_from_the_environment_never_reach_the_output_even_at_debug(tmp_path: Path) -> None:
    environ = environ_for(tmp_path, LOG_LEVEL="DEBUG", WEBEX_WEBHOOK_SECRET=secrets.token_urlsafe(24))
    pos_secret, api_token = environ["POS_WEBHOOK_SECRET"], environ["API_TOKEN"]
    server = ServedProcess(environ, tmp_path / "serve.log")
    try:
        server.start()
        url = server.base_url
        body = {
            "transaction_id": "S-1",
            "store_id": "store-001",
            "register_id": "reg-1",
            "occurred_at": now_iso(),
            "total": {"amount": "10.00", "currency": "BRL"},
            "payment": {"method": "card", "risk_score": 90},
        }
        with requests.Session() as session:
            assert post_signed(session, url, encode(body), pos_secret) == 202
            assert post_signed(session, url, encode(body), pos_secret) == 200
            assert post_signed(session, url, encode({**body, "transaction_id": "S-2"}), "not-the-secret") == 401
            wrong = session.post(
                f"{url}{INTAKE}",
                data=encode(body),
                timeout=10,
                headers={"Content-Type": "application/json", "X-Signature": f"t=1,v1={pos_secret}"},
            )
            assert wrong.status_code == 401
            assert (
                post_signed(
                    session, url, b'{"not": "a transaction", "secret": "' + pos_secret.encode() + b'"}', pos_secret
                )
                == 422
            )
            read = session.get(
                f"{url}/api/v1/transactions/S-1", headers={"Authorization": f"Bearer {api_token}"}, timeout=10
            )
            assert read.status_code == 200 and read.json()["transaction"]["transaction_id"] == "S-1"
            refused = session.get(
                f"{url}/api/v1/transactions/S-1", headers={"Authorization": f"Bearer {api_token}x"}, timeout=10
            )
            assert refused.status_code == 401
            assert session.get(f"{url}/readyz", timeout=10).status_code == 200
            assert "flp_work_items" in session.get(f"{url}/metrics", timeout=10).text
        wait_for(
            lambda: json.loads(requests.get(f"{url}/readyz", timeout=10).text)["runner"] == "running",
            timeout_s=30,
            what="the runner",
        )
        server.signal(signal.SIGTERM)
        assert server.wait(30) == 0
    finally:
        server.kill()

    output = server.output()
    assert "transaction S-1 accepted" in output and "stopped cleanly" in output
    for name in ("POS_WEBHOOK_SECRET", "API_TOKEN", "WEBEX_WEBHOOK_SECRET"):
        value = environ[name]
        assert value not in output and value[:12] not in output, f"{name} (or its start) is in the output"

"""Fixtures: a fresh database per test (SQLite, and PostgreSQL where available), config, services, app, client.

Tests that use ``services`` run once per database backend. PostgreSQL comes from
``FLP_TEST_POSTGRES_URL`` (``./run test`` starts one when it can); without it the PostgreSQL
variants skip, except under ``CI=true``, where they fail (the one rule for a missing real part: tests/real_parts.py).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import text

from bot.app import Services, build_services, create_app
from core import signatures
from core.config import Config, load_config
from storage import migrate
from storage.db import Database
from storage.models import Base
from tests.postgres import scratch_database
from tests.real_parts import require_or_skip

# A real S3 API (moto's server on 127.0.0.1) for the evidence store: the s3_server fixture.
pytest_plugins = ["tests.s3"]

POS_SECRET = "test-pos-secret-0123456789abcdefghij"
API_TOKEN = "test-api-token-abcdef0123456789abcdef"
REPO = Path(__file__).resolve().parent.parent


def minimal_business() -> dict[str, Any]:
    """The smallest valid business config; tests vary it."""
    return {
        "stores": [
            {
                "id": "store-001",
                "name": "Centro",
                "timezone": "America/Sao_Paulo",
                "meraki_org_id": "1",
                "registers": [
                    {"id": "reg-1", "camera_serial": "Q2XX-AAAA-0001", "customer_zone": [0, 0, 0.6, 1]},
                    {"id": "reg-2", "camera_serial": "Q2XX-AAAA-0002"},
                ],
            }
        ],
        "people": [{"email": "ana@example.com", "role": "manager", "stores": ["store-001"]}],
    }


def base_environ(tmp_path: Path, database_url: str) -> dict[str, str]:
    # Outside services on .test hosts: a test that forgets its fake fails to resolve, never reaches the real one.
    return {
        "DATABASE_URL": database_url,
        "DATA_DIR": str(tmp_path / "data"),
        "POS_WEBHOOK_SECRET": POS_SECRET,
        "API_TOKEN": API_TOKEN,
        "MERAKI_BASE_URL": "https://meraki.test/api/v1",
        "WEBEX_BASE_URL": "https://webex.test/v1",
        "AWS_ENDPOINT_URL": "https://rekognition.test",
        "AWS_REGION": "us-east-1",
    }


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests talk only to 127.0.0.1: any other connection fails loudly."""
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            if not (host.startswith("127.") or host in ("::1", "localhost")):
                raise ConnectionRefusedError(f"test tried to reach {host}: only loopback is allowed")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


class FixedClock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        from datetime import timedelta

        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate once; each test copies the file (migrations are tested on their own)."""
    path = tmp_path_factory.mktemp("template") / "flp.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A database of this test session's own on the server of FLP_TEST_POSTGRES_URL, dropped at the end,
    so test runs side by side never empty each other's tables."""
    server_url = os.environ.get("FLP_TEST_POSTGRES_URL")
    if not server_url:
        require_or_skip("PostgreSQL not available: set FLP_TEST_POSTGRES_URL (./run test starts one as root)")
    with scratch_database(server_url, f"flp_test_{os.getpid()}") as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture
def sqlite_database_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A fresh migrated SQLite file; modules that test no database behaviour use it as their database_url."""
    path = tmp_path / "flp.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_database_url")
    url = request.getfixturevalue("postgres_url")
    database = Database(url)
    with database.engine.begin() as conn:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    database.dispose()
    return url


@pytest.fixture
def business() -> dict[str, Any]:
    return minimal_business()


@pytest.fixture
def environ(tmp_path: Path, database_url: str) -> dict[str, str]:
    return base_environ(tmp_path, database_url)


@pytest.fixture
def config(environ: dict[str, str], business: dict[str, Any]) -> Config:
    return load_config(environ, yaml.safe_dump(business))


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 24, 20, 3, 20, tzinfo=UTC))


CONFIGURED = object()  # the messenger fixture's default: whatever the configuration builds (none without a token)


@pytest.fixture
def messenger() -> Any:
    """What the bot talks to Webex through; modules that watch what is sent override it with a FakeMessenger."""
    return CONFIGURED


@pytest.fixture
def services(config: Config, clock: FixedClock, messenger: Any) -> Services:
    built = build_services(config, clock=clock, **({} if messenger is CONFIGURED else {"messenger": messenger}))
    yield built
    built.db.dispose()


@pytest.fixture
def app(services: Services):
    return create_app(services)


@pytest.fixture
def client(app):
    return app.test_client()


def transaction_body(**changes: Any) -> dict[str, Any]:
    body = {
        "transaction_id": "T-2026-000123",
        "store_id": "store-001",
        "register_id": "reg-1",
        "occurred_at": "2026-11-24T17:03:12-03:00",
        "total": {"amount": "149.90", "currency": "BRL"},
        "payment": {
            "method": "card",
            "entry_mode": "contactless",
            "card_fingerprint": "fp_8d1c",
            "status": "approved",
            "risk_score": 72,
        },
        "items": [{"sku": "7891000100103", "name": "Whisky 1L", "quantity": 2, "unit_price": "74.95"}],
        "cashier_id": "c-17",
    }
    body.update(changes)
    return body


def signed_headers(raw: bytes, *, secret: str = POS_SECRET, at: float | None = None) -> dict[str, str]:
    timestamp = int(at if at is not None else time.time())
    return {"Content-Type": "application/json", "X-Signature": signatures.sign(raw, secret, timestamp)}


@pytest.fixture
def post_signed(client, clock: FixedClock) -> Callable[..., Any]:
    """POST a JSON body (dict or raw bytes), signed at the test clock's time."""

    def post(path: str, body: dict[str, Any] | bytes, **headers: str):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return client.post(path, data=raw, headers={**signed_headers(raw, at=clock().timestamp()), **headers})

    return post


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_TOKEN}"}

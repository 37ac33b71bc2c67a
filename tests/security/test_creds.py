"""Issue 17, item 7: sessions and credentials. Sign-out ends the session on the server; failed sign-ins, bearer
tokens and signatures are held back per client address (429, Retry-After) and logged without the secret;
short operator secrets are refused; 1e999 is a 422; the SQLite file is 0600; Stripe signatures from the future
are refused; a sign-in ``next`` with CR/LF is ignored; the console forbids framing."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
import time
from pathlib import Path

import pytest
import yaml

from bot.http.credential_failures import EXTENSION, FAILURES_ALLOWED, WINDOW_S, CredentialFailures
from core.config import ConfigError, load_config
from storage.db import Database
from tests.conftest import API_TOKEN, POS_SECRET, REPO, minimal_business, signed_headers, transaction_body
from tests.feed_events import feed_business, feed_environ, poster, stripe_charge, stripe_event, stripe_headers
from tests.served import run_check_config

TOKEN = "ana-console-token-0123456789abcdef"
WRONG_TOKEN = "not-anyones-token-0123456789abcdef"
OTHER_ADDRESS = {"REMOTE_ADDR": "127.0.0.2"}


@pytest.fixture
def business(business: dict) -> dict:
    business["people"] = [
        {
            "email": "ana@example.com",
            "role": "manager",
            "stores": ["store-001"],
            "console_token_sha256": hashlib.sha256(TOKEN.encode()).hexdigest(),
        }
    ]
    return feed_business(business)


@pytest.fixture
def environ(environ: dict) -> dict:
    return feed_environ(environ)


class Ticker:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticker(app) -> Ticker:
    ticker = Ticker()
    app.extensions[EXTENSION] = CredentialFailures(monotonic=ticker)
    return ticker


def csrf_of(client, path: str = "/console/signin") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def sign_in(client, token: str = TOKEN, **extra):
    return client.post("/console/signin", data={"token": token, "csrf": csrf_of(client), **extra})


def test_a_cookie_kept_after_sign_out_is_refused(app, client):
    assert sign_in(client).status_code == 302
    assert client.get("/console/api/timeline").status_code == 200
    kept = client.get_cookie("flp_console", path="/console").value
    page = client.get("/console").get_data(as_text=True)
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    assert client.post("/console/signout", data={"csrf": csrf}).status_code == 302

    copy = app.test_client()  # the cookie as it was before sign-out: still well signed, not yet 12 h old
    copy.set_cookie("flp_console", kept, path="/console")
    assert copy.get("/console/api/timeline").status_code == 401
    assert copy.get("/console").status_code == 302
    # Signing in again opens a new session; the old cookie stays refused.
    assert sign_in(client).status_code == 302 and client.get("/console/api/timeline").status_code == 200
    assert copy.get("/console/api/timeline").status_code == 401


def test_failed_sign_ins_are_held_back_per_address_and_logged_without_the_token(client, ticker, caplog):
    caplog.set_level(logging.INFO)
    for _ in range(FAILURES_ALLOWED):
        assert sign_in(client, WRONG_TOKEN).status_code == 401
    held = sign_in(client)  # even the right token: a right guess must look like a wrong one
    assert held.status_code == 429 and 1 <= int(held.headers["Retry-After"]) <= WINDOW_S
    assert WRONG_TOKEN not in caplog.text and TOKEN not in caplog.text
    assert "console sign-in refused from 127.0.0.1" in caplog.text
    # Another address is not held back; this one is again once its failures have aged out.
    other = client.application.test_client()
    other.environ_base.update(OTHER_ADDRESS)
    assert sign_in(other).status_code == 302
    ticker.now += WINDOW_S
    assert sign_in(client).status_code == 302


def test_failed_bearer_tokens_are_held_back(client, ticker, caplog):
    wrong = {"Authorization": "Bearer " + "w" * 40}
    for _ in range(FAILURES_ALLOWED):
        assert client.get("/api/v1/alerts", headers=wrong).status_code == 401
    held = client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert held.status_code == 429 and int(held.headers["Retry-After"]) >= 1
    assert "w" * 40 not in caplog.text and API_TOKEN not in caplog.text
    bearer = {"Authorization": f"Bearer {API_TOKEN}"}
    assert client.get("/api/v1/alerts", headers=bearer, environ_base=OTHER_ADDRESS).status_code == 200
    ticker.now += WINDOW_S
    assert client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {API_TOKEN}"}).status_code == 200


def test_failed_webhook_signatures_are_held_back(client, clock, ticker, caplog):
    raw = json.dumps(transaction_body()).encode()
    wrong = signed_headers(raw, secret="x" * 40, at=clock().timestamp())
    right = signed_headers(raw, at=clock().timestamp())
    for _ in range(FAILURES_ALLOWED):
        assert client.post("/api/v1/transactions", data=raw, headers=wrong).status_code == 401
    held = client.post("/api/v1/transactions", data=raw, headers=right)
    assert held.status_code == 429 and int(held.headers["Retry-After"]) >= 1
    # One count for every webhook: the Stripe feed is held back for this address too.
    stripe = poster(client, "/api/v1/feeds/stripe", stripe_headers)
    assert stripe(stripe_event("charge.succeeded", stripe_charge())).status_code == 429
    assert "webhook signature refused from 127.0.0.1" in caplog.text and POS_SECRET not in caplog.text
    ticker.now += WINDOW_S
    assert client.post("/api/v1/transactions", data=raw, headers=right).status_code == 202


def test_a_few_failures_are_only_401(client, ticker):
    for _ in range(3):
        assert sign_in(client, WRONG_TOKEN).status_code == 401
    assert sign_in(client).status_code == 302


@pytest.mark.parametrize("name", ["POS_WEBHOOK_SECRET", "API_TOKEN", "WEBEX_WEBHOOK_SECRET", "SESSION_SECRET"])
def test_secrets_an_operator_chooses_must_be_32_characters(name):
    environ = {"POS_WEBHOOK_SECRET": "p" * 32, name: "s" * 31}
    with pytest.raises(ConfigError) as caught:
        load_config(environ, yaml.safe_dump(minimal_business()))
    assert caught.value.problems == [f"{name}: too short: at least 32 characters"]
    load_config({**environ, name: "s" * 32}, yaml.safe_dump(minimal_business()))


def test_keys_stripe_and_square_issue_are_taken_as_issued():
    environ = {"POS_WEBHOOK_SECRET": "p" * 32, "STRIPE_WEBHOOK_SECRET": "whsec_short", "SQUARE_SIGNATURE_KEY": "sq"}
    assert load_config(environ, yaml.safe_dump(minimal_business())).env.stripe_webhook_secret is not None


def test_check_config_refuses_a_one_character_secret():
    result = run_check_config(REPO / "config" / "flp.yaml", POS_WEBHOOK_SECRET="a")
    assert result.returncode == 1 and "POS_WEBHOOK_SECRET: too short: at least 32 characters" in result.stderr
    assert "POS_WEBHOOK_SECRET=a" not in result.stderr


@pytest.mark.parametrize("number", ["1e999", "-1e999", "1E400"])
def test_numbers_that_overflow_are_a_422(post_signed, number):
    text = json.dumps(transaction_body(payment={**transaction_body()["payment"], "risk_score": 0}))
    raw = text.replace('"risk_score": 0', f'"risk_score": {number}').encode()
    assert number.encode() in raw
    response = post_signed("/api/v1/transactions", raw)
    assert response.status_code == 422 and response.get_json()["errors"] == [
        {"field": "(body)", "message": "not valid JSON"}
    ]


def test_the_sqlite_file_is_created_owner_only(tmp_path: Path):
    previous = os.umask(0o022)
    try:
        database = Database(f"sqlite:///{tmp_path / 'new' / 'flp.db'}")
        database.ping()
        database.dispose()
    finally:
        os.umask(previous)
    made = list((tmp_path / "new").iterdir())
    assert tmp_path / "new" / "flp.db" in made
    for path in made:  # the database and any -wal / -shm beside it
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_a_stripe_signature_from_beyond_the_tolerance_in_the_future_is_refused(client):
    send = poster(client, "/api/v1/feeds/stripe", stripe_headers)
    response = send(stripe_event("charge.succeeded", stripe_charge()), at=time.time() + 301 + 60)
    assert response.status_code == 401 and "future" in response.get_json()["detail"]


@pytest.mark.parametrize("target", ["/console\r\nSet-Cookie: x=1", "/console/alerts/A\n", "/console\x00"])
def test_a_next_with_control_characters_is_ignored(client, target):
    assert client.get("/console/signin", query_string={"next": target}).status_code == 200
    response = sign_in(client, next=target)
    assert response.status_code == 302 and response.headers["Location"] == "/console/"
    assert "x=1" not in response.headers.get("Set-Cookie", "")


def test_console_pages_may_not_be_framed(client):
    response = client.get("/console/signin")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]

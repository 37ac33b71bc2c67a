"""No local state in a split deployment: the console's session key comes from SESSION_SECRET, which ``web`` and
``worker`` require; ``serve`` and the demo fall back to a key file in DATA_DIR."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import yaml
from sqlalchemy import create_engine, select

from bot.app import build_services, create_app
from bot.http.console_auth import KEY_FILE
from core.config import ConfigError, load_config
from storage import migrate
from storage.models import Transaction
from tests.conftest import REPO, base_environ, minimal_business, transaction_body
from tests.fakes import FakeCamera
from tests.postgres import scratch_database
from tests.real_parts import require_or_skip
from tests.served import child_environ, free_port, post_signed, wait_for

SECRET = "a-session-secret-of-at-least-32-characters"
TOKEN = "ana-console-token-0123456789"
POSTGRES_URL = "postgresql+psycopg://flp:flp@127.0.0.1:9/never-reached"  # refused before any connection


def business() -> dict:
    shape = minimal_business()
    shape["people"][0]["console_token_sha256"] = hashlib.sha256(TOKEN.encode()).hexdigest()
    return shape


def console_app(tmp_path: Path, database_url: str, data_dir: str, *, mode: str, **environ: str):
    """The Flask app of one process of the given mode, with its own DATA_DIR."""
    values = {**base_environ(tmp_path, database_url), "DATA_DIR": str(tmp_path / data_dir), **environ}
    config = dataclasses.replace(load_config(values, yaml.safe_dump(business())), mode=mode)
    services = build_services(config, camera=FakeCamera())
    return create_app(services), services


def signed_in_cookie(client) -> str:
    page = client.get("/console/signin").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    response = client.post("/console/signin", data={"token": TOKEN, "csrf": csrf})
    assert response.status_code == 302
    return client.get_cookie("flp_console", path="/console").value


def run_bot(*args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=REPO,
        env=child_environ({"FLP_CONFIG": str(REPO / "config/flp.yaml"), **environ}),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("mode", ["web", "worker"])
def test_web_and_worker_require_the_session_secret(mode: str) -> None:
    environ = {"POS_WEBHOOK_SECRET": "p" * 32, "DATABASE_URL": POSTGRES_URL, "EVIDENCE_URL": "s3://flp-evidence"}
    config = load_config(environ, yaml.safe_dump(minimal_business()))
    with pytest.raises(ConfigError) as caught:
        config.require_for(mode)
    [problem] = caught.value.problems
    assert problem.startswith("SESSION_SECRET: required for web and worker")
    assert "secrets.token_hex(32)" in problem
    load_config({**environ, "SESSION_SECRET": SECRET}, yaml.safe_dump(minimal_business())).require_for(mode)


@pytest.mark.parametrize("mode", ["serve", "demo"])
def test_serve_and_demo_do_not(mode: str) -> None:
    load_config({"POS_WEBHOOK_SECRET": "p" * 32}, yaml.safe_dump(minimal_business())).require_for(mode)


def test_a_short_session_secret_is_refused_without_showing_it() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({"POS_WEBHOOK_SECRET": "p" * 32, "SESSION_SECRET": "too-short"}, yaml.safe_dump(minimal_business()))
    assert caught.value.problems == ["SESSION_SECRET: too short: at least 32 characters"]


def test_the_session_secret_is_redacted_from_logs() -> None:
    config = load_config({"SESSION_SECRET": SECRET}, yaml.safe_dump(minimal_business()))
    assert SECRET in config.env.secrets()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["web", "worker"])
def test_the_process_refuses_to_start_without_it_and_names_it(tmp_path: Path, mode: str) -> None:
    done = run_bot(mode, POS_WEBHOOK_SECRET="p" * 32, DATABASE_URL=POSTGRES_URL, DATA_DIR=str(tmp_path / "data"))
    assert done.returncode == 1, done.stderr
    assert "SESSION_SECRET: required" in done.stderr and "secrets.token_hex(32)" in done.stderr
    check = run_bot("check-config", "--for", mode, POS_WEBHOOK_SECRET="p" * 32, DATABASE_URL=POSTGRES_URL)
    assert check.returncode == 1 and "SESSION_SECRET" in check.stderr
    assert not (tmp_path / "data").exists()


def test_two_web_processes_on_empty_disks_accept_each_others_cookie(tmp_path: Path, database_url: str) -> None:
    first, first_services = console_app(tmp_path, database_url, "one", mode="web", SESSION_SECRET=SECRET)
    second, second_services = console_app(tmp_path, database_url, "two", mode="web", SESSION_SECRET=SECRET)
    other, other_services = console_app(tmp_path, database_url, "three", mode="web", SESSION_SECRET="b" * 40)
    try:
        cookie = signed_in_cookie(first.test_client())
        elsewhere = second.test_client()
        elsewhere.set_cookie("flp_console", cookie, path="/console")
        page = elsewhere.get("/console")
        assert page.status_code == 200 and "ana@example.com" in page.get_data(as_text=True)
        # Another deployment's secret does not accept it.
        stranger = other.test_client()
        stranger.set_cookie("flp_console", cookie, path="/console")
        assert stranger.get("/console").status_code == 302
    finally:
        for services in (first_services, second_services, other_services):
            services.db.dispose()
    assert not any((tmp_path / name / KEY_FILE).exists() for name in ("one", "two", "three"))


def test_a_web_app_built_without_the_secret_refuses_rather_than_make_a_key_file(
    tmp_path: Path, sqlite_database_url: str
) -> None:
    with pytest.raises(ConfigError, match="SESSION_SECRET"):
        console_app(tmp_path, sqlite_database_url, "data", mode="web")
    assert not (tmp_path / "data" / KEY_FILE).exists()


def test_serve_without_it_keeps_the_key_in_data_dir(tmp_path: Path, sqlite_database_url: str) -> None:
    app, services = console_app(tmp_path, sqlite_database_url, "data", mode="serve")
    again, again_services = console_app(tmp_path, sqlite_database_url, "data", mode="serve")
    try:
        cookie = signed_in_cookie(app.test_client())
        assert len(bytes.fromhex((tmp_path / "data" / KEY_FILE).read_text())) == 32
        restarted = again.test_client()  # the same DATA_DIR after a restart: the session survives
        restarted.set_cookie("flp_console", cookie, path="/console")
        assert restarted.get("/console").status_code == 200
    finally:
        services.db.dispose()
        again_services.db.dispose()


@pytest.fixture
def postgres_server() -> str:
    url = os.environ.get("FLP_TEST_POSTGRES_URL")
    if not url:
        require_or_skip("PostgreSQL not available: set FLP_TEST_POSTGRES_URL (./run test starts one as root)")
    return url


def start(command: str, environ: dict[str, str], log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", command],
            cwd=REPO,
            env=child_environ({**environ, "HOST": "127.0.0.1", "PORT": str(port)}),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return process, f"http://127.0.0.1:{port}"


def healthy(process: subprocess.Popen[bytes], url: str, log_path: Path) -> bool:
    if process.poll() is not None:
        raise RuntimeError(f"web exited with {process.returncode}:\n{log_path.read_text(errors='replace')}")
    try:
        return requests.get(f"{url}/healthz", timeout=2).status_code == 200
    except (requests.ConnectionError, requests.Timeout):  # gunicorn listens before its workers have loaded the app
        return False


@pytest.mark.slow
def test_two_real_web_processes_and_a_worker_on_empty_disks_share_sessions_and_handle_a_payment(
    tmp_path: Path, postgres_server: str, s3_server
) -> None:
    config_path = tmp_path / "flp.yaml"
    config_path.write_text(yaml.safe_dump(business()), encoding="utf-8")
    with scratch_database(postgres_server, "flp_web_disk") as database_url:
        migrate.upgrade(database_url)  # once, as the release step does, rather than two processes racing
        common = {
            "DATABASE_URL": database_url,
            "FLP_CONFIG": str(config_path),
            "POS_WEBHOOK_SECRET": "p" * 32,
            "SESSION_SECRET": SECRET,
            "EVIDENCE_URL": f"s3://{s3_server.bucket()}/evidence",  # no disk shared, none used
            "AWS_ENDPOINT_URL_S3": s3_server.endpoint,
            "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
            "AWS_DEFAULT_REGION": os.environ["AWS_DEFAULT_REGION"],
            # matplotlib's font cache, the one file a process writes (a cache; the image builds it in advance).
            "MPLCONFIGDIR": str(tmp_path / "matplotlib"),
        }
        processes = {
            name: (
                *start(
                    command,
                    {**common, "DATA_DIR": str(tmp_path / name), "HOME": str(tmp_path / f"home-{name}")},
                    tmp_path / f"{name}.log",
                ),
                tmp_path / f"{name}.log",
            )
            for name, command in (("one", "web"), ("two", "web"), ("three", "worker"))
        }
        webs = [processes["one"], processes["two"]]
        try:
            for process, url, log_path in webs:
                wait_for(lambda p=process, u=url, lp=log_path: healthy(p, u, lp), timeout_s=60, what=f"{url}/healthz")
            (_, first, _), (_, second, _) = webs
            with requests.Session() as browser:
                page = browser.get(f"{first}/console/signin", timeout=10).text
                csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
                signed = browser.post(
                    f"{first}/console/signin", data={"token": TOKEN, "csrf": csrf}, allow_redirects=False, timeout=10
                )
                assert signed.status_code == 302
                cookie = browser.cookies.get("flp_console")
            elsewhere = requests.get(
                f"{second}/console", cookies={"flp_console": cookie}, allow_redirects=False, timeout=10
            )
            assert elsewhere.status_code == 200 and "ana@example.com" in elsewhere.text
            body = json.dumps(transaction_body(occurred_at=datetime.now(UTC).isoformat())).encode()
            with requests.Session() as pos:
                assert post_signed(pos, second, body, common["POS_WEBHOOK_SECRET"]) == 202
            # The worker, on a disk of its own, takes the payment's steps from the shared queue.
            engine = create_engine(database_url)
            try:
                status = wait_for(
                    lambda: correlation_past_pending(engine), timeout_s=90, what="the worker to take the payment"
                )
            finally:
                engine.dispose()
            assert status in {"skipped", "done", "failed"}, status
        finally:
            for process, _, _ in processes.values():
                process.send_signal(signal.SIGTERM)
            for process, _, _ in processes.values():
                process.wait(timeout=60)
    written = [f"{p}{n}" for n in ("one", "two", "three") for p in ("", "home-") if (tmp_path / f"{p}{n}").exists()]
    assert written == [], "a process wrote to its disk (DATA_DIR, or gunicorn's control socket in HOME)"


def correlation_past_pending(engine) -> str | None:
    with engine.connect() as conn:
        status = conn.scalar(select(Transaction.status))
    return status if status not in (None, "pending", "capturing", "analyzing") else None

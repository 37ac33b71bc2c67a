"""The product with EVIDENCE_URL on object storage: nothing of the evidence touches DATA_DIR.

A checkout's pictures and crops land in the bucket (moto's S3 server on 127.0.0.1, versioned, as a
careful operator sets it up), Webex delivery and the console read them from there, and retention and
erasure leave no version behind. The store is built from the configuration, as in production.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot.app import build_services, create_app
from bot.sweeps import enqueue_sweeps
from cards.status import status_card
from core.config import load_config
from handlers.conversation.views import status_view
from storage.evidence import object_name
from storage.evidence_s3 import S3EvidenceStore
from storage.models import EvidenceFile, Snapshot, WorkItem
from storage.uow import UnitOfWork
from tests.conftest import REPO, minimal_business
from tests.learning_fixtures import (  # noqa: F401  (fixtures)
    CountingCamera,
    OnePerPicture,
    chat,
    checkout,
    learning_business,
    messenger,
    proposed,
)
from tests.learning_helpers import enroll_inputs, people
from tests.s3 import free_port

PREFIX = "evidence/south"
TOKEN = "console-token-of-ana-0123456789abcdef"
RISKY = {"method": "card", "entry_mode": "chip", "risk_score": 95}
DAY = 86400


@pytest.fixture
def bucket(s3_server) -> str:
    return s3_server.bucket(versioned=True)


@pytest.fixture
def environ(environ: dict, s3_server, bucket: str) -> dict:
    return {
        **environ,
        "MERAKI_DASHBOARD_API_KEY": "test-meraki-key",
        "EVIDENCE_URL": f"s3://{bucket}/{PREFIX}/",
        "AWS_ENDPOINT_URL_S3": s3_server.endpoint,
    }


@pytest.fixture
def business(business: dict) -> dict:
    business = learning_business(business)
    business["camera"] = {"exact_delay_s": 0}
    business["rules"] = [{"name": "risky", "when": "(risk_score ?? 0) >= 90", "message": "Risky payment"}]
    business["people"][0]["console_token_sha256"] = hashlib.sha256(TOKEN.encode()).hexdigest()
    return business


@pytest.fixture
def faces() -> OnePerPicture:
    return OnePerPicture()


@pytest.fixture
def services(config, clock, faces, messenger):
    built = build_services(
        config, clock=clock, camera=CountingCamera(), faces=faces, messenger=messenger, products=None
    )
    yield built
    built.db.dispose()


def objects(s3_server, bucket: str) -> set[str]:
    return set(s3_server.keys(bucket))


def versions(s3_server, bucket: str) -> set[str]:
    """The keys that still have any version or delete marker."""
    return {key for key, _ in s3_server.versions(bucket)}


def keys_of_files_on_record(services) -> set[str]:
    with UnitOfWork(services.db) as uow:
        return {f"{PREFIX}/{object_name(f.sha256, f.content_type)}" for f in uow.session.query(EvidenceFile)}


def key_of(digest: str, content_type: str = "image/jpeg") -> str:
    return f"{PREFIX}/{object_name(digest, content_type)}"


def no_evidence_on_disk(config) -> bool:
    return not (Path(config.env.data_dir) / "evidence").exists()


def sign_in(client) -> None:
    page = client.get("/console/signin").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert client.post("/console/signin", data={"token": TOKEN, "csrf": csrf}).status_code == 302


def test_pictures_live_in_the_bucket_and_reach_webex_and_the_console(
    post_signed, chat, clock, services, config, s3_server, bucket, messenger, client
):
    assert isinstance(services.evidence, S3EvidenceStore) and services.evidence.prefix == f"{PREFIX}/"
    assert services.component_state["evidence"] == "ready"
    assert client.get("/readyz").get_json()["evidence"] == "ready"
    checkout(post_signed, chat, clock, "T-risky", payment=RISKY)

    stored = objects(s3_server, bucket)
    assert stored and stored == keys_of_files_on_record(services)  # pictures, crops, the annotated photo
    assert no_evidence_on_disk(config)
    (photo,) = [m for m in messenger.sent if m.attachment is not None]
    sent_file = photo.attachment.content
    digest = hashlib.sha256(sent_file).hexdigest()
    assert s3_server.admin.get_object(Bucket=bucket, Key=key_of(digest))["Body"].read() == sent_file

    sign_in(client)
    shown = client.get("/console/alerts/A-1/photo")
    assert shown.status_code == 200 and shown.mimetype == "image/jpeg" and shown.data[:2] == b"\xff\xd8"
    # The console's picture is the bucket's: without the object, there is nothing to show.
    with UnitOfWork(services.db) as uow:
        picture = next(s.evidence_sha256 for s in uow.session.query(Snapshot) if s.transaction_id == "T-risky")
    s3_server.admin.delete_object(Bucket=bucket, Key=key_of(picture))
    assert client.get("/console/alerts/A-1/photo").status_code == 404
    assert no_evidence_on_disk(config)


def test_retention_deletes_the_objects_and_every_version(post_signed, chat, clock, services, config, s3_server, bucket):
    checkout(post_signed, chat, clock, "T-plain")
    checkout(post_signed, chat, clock, "T-risky", payment=RISKY)  # an open alert keeps its pictures for a year
    before = objects(s3_server, bucket)
    with UnitOfWork(services.db) as uow:
        plain = {s.evidence_sha256 for s in uow.session.query(Snapshot) if s.transaction_id == "T-plain"}
    assert {key_of(d) for d in plain} <= before

    clock.advance(31 * DAY)
    enqueue_sweeps(services.db, clock)
    chat.run()
    after = objects(s3_server, bucket)
    assert after == keys_of_files_on_record(services) and after < before
    assert not {key_of(d) for d in plain} & versions(s3_server, bucket)  # no version or marker left either
    assert versions(s3_server, bucket) == after
    assert no_evidence_on_disk(config)


def test_erasure_leaves_nothing_of_the_person_in_the_bucket(post_signed, chat, clock, services, s3_server, bucket):
    card = proposed(post_signed, chat, clock, "T-1")
    chat.press("P-ana", enroll_inputs(card.card, days=180), on=chat.message_id(card))
    (person,) = people(services)
    photo = person.faces[0].enrollment_image_sha256
    assert key_of(photo) in objects(s3_server, bucket)

    sent = chat.say("P-carla", f"forget {person.id}")
    assert sent[-1].markdown.startswith(f"🧹 **{person.id}** is erased")
    assert key_of(photo) not in versions(s3_server, bucket)
    assert objects(s3_server, bucket) == keys_of_files_on_record(services)


def test_an_unreachable_store_delays_the_steps_and_the_console_answers_503(
    post_signed, chat, clock, services, environ, business, messenger
):
    checkout(post_signed, chat, clock, "T-1", payment=RISKY)
    # The same product and database, its store's endpoint now a port where nothing listens.
    dead = load_config({**environ, "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{free_port()}"}, yaml.safe_dump(business))
    down = build_services(dead, db=services.db, clock=clock, camera=CountingCamera(), faces=OnePerPicture())
    assert down.component_state["evidence"].startswith("object store unreachable")
    view = status_view(down.component_state, {}, "local", None)
    assert view.evidence.state == "down" and view.evidence.detail.startswith("object store unreachable")
    assert "Evidence store" in status_card(view)["body"][1]["text"]  # the headline: needs attention

    console = create_app(down).test_client()
    ready = console.get("/readyz")  # the database answers: POS intake goes on, the pictures wait
    assert ready.status_code == 200 and ready.get_json()["evidence"].startswith("object store unreachable")
    sign_in(console)
    shown = console.get("/console/alerts/A-1/photo")
    assert shown.status_code == 503 and shown.mimetype == "application/problem+json"
    assert "127.0.0.1" not in shown.get_data(as_text=True)

    clock.advance(60)
    chat.services = down
    checkout(post_signed, chat, clock, "T-2")
    with UnitOfWork(down.db) as uow:
        (capture,) = [i for i in uow.session.query(WorkItem) if i.kind == "capture_live" and i.transaction_id == "T-2"]
    # Not dead, not failed: waiting to try again, with the reason and no URL.
    assert capture.status == "pending" and capture.attempts == 1
    assert capture.last_error.startswith("evidence store failed") and "127.0.0.1" not in capture.last_error
    assert (capture.next_run_at - clock()).total_seconds() == pytest.approx(30, abs=1)


def check_config(tmp_path: Path, **environ: str) -> subprocess.CompletedProcess:
    config_path = tmp_path / "flp.yaml"
    config_path.write_text(yaml.safe_dump(minimal_business()))
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "FLP_CONFIG", "EVIDENCE_URL"}}
    env.update(FLP_CONFIG=str(config_path), POS_WEBHOOK_SECRET="x" * 32, DATA_DIR=str(tmp_path / "data"), **environ)
    return subprocess.run(
        [sys.executable, "-m", "bot", "check-config"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


def test_check_config_reports_the_evidence_store(tmp_path, s3_server, bucket):
    on_disk = check_config(tmp_path)
    assert on_disk.returncode == 0 and "evidence (files under DATA_DIR): ready" in on_disk.stdout
    endpoint = {"AWS_ENDPOINT_URL_S3": s3_server.endpoint, "AWS_REGION": "us-east-1"}
    found = check_config(tmp_path, EVIDENCE_URL=f"s3://{bucket}/{PREFIX}", **endpoint)
    assert found.returncode == 0 and f"evidence (s3://{bucket}/{PREFIX}): ready" in found.stdout
    # A store that cannot be used is said plainly; reachability is not a configuration error.
    missing = check_config(tmp_path, EVIDENCE_URL="s3://flp-not-created", **endpoint)
    assert missing.returncode == 0 and "bucket flp-not-created does not exist" in missing.stdout

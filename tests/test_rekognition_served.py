"""The seed's loop on the Rekognition path, with real processes: ``python -m bot serve`` on a fresh AWS account.

A Rekognition stand-in (no collection yet; it refuses what Rekognition refuses and sees with the local
models) and the Meraki stand-in run on 127.0.0.1. A checkout is pictured, a chargeback arrives, a
manager presses "Enroll a face" and then Enroll in the console, and the same person paying at another
register raises the watchlist alert. Before the collection was created at start, every enrollment on a
fresh account ended ``backend_refused``.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from simulation.camera_server import CameraStandIn
from simulation.floor import Customer, Floor
from simulation.rekognition_server import RekognitionStandIn
from simulation.scenes import Placement
from tests.conftest import API_TOKEN, POS_SECRET, REPO, transaction_body
from tests.served import ServedProcess, now_iso, post_signed, wait_for

pytestmark = pytest.mark.slow
MERAKI_KEY = "test-meraki-key-0123456789abcdef"
CONSOLE_TOKEN = "console-token-of-ana-0123456789abcdef"
REG_1, REG_2 = "Q2XX-AAAA-0001", "Q2XX-AAAA-0002"
GRACE = "grace_hopper"


@pytest.fixture
def floor() -> Floor:
    return Floor([REG_1, REG_2])


@pytest.fixture
def rekognition() -> Iterator[RekognitionStandIn]:
    stand_in = RekognitionStandIn().start()
    yield stand_in
    stand_in.stop()


@pytest.fixture
def camera(floor: Floor) -> Iterator[CameraStandIn]:
    stand_in = CameraStandIn(floor, api_key=MERAKI_KEY, image_delay_s=0.5, footage_lag_s=2).start()
    yield stand_in
    stand_in.stop()


@pytest.fixture
def server(tmp_path: Path, rekognition: RekognitionStandIn, camera: CameraStandIn) -> Iterator[ServedProcess]:
    business = yaml.safe_load((REPO / "config/flp.yaml").read_text(encoding="utf-8"))
    for person in business["people"]:
        if person["email"] == "ana@example.com":
            person["console_token_sha256"] = hashlib.sha256(CONSOLE_TOKEN.encode()).hexdigest()
    business["camera"].update(poll_initial_s=0.5, poll_total_s=20)
    business["runner"] = {"idle_wait_s": 0.2}
    config = tmp_path / "flp.yaml"
    config.write_text(yaml.safe_dump(business), encoding="utf-8")
    environ = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'flp.db'}",
        "DATA_DIR": str(tmp_path / "data"),
        "POS_WEBHOOK_SECRET": POS_SECRET,
        "API_TOKEN": API_TOKEN,
        "FLP_CONFIG": str(config),
        "MERAKI_DASHBOARD_API_KEY": MERAKI_KEY,
        "MERAKI_BASE_URL": camera.base_url,
        "MERAKI_PICTURE_HOSTS": camera.picture_host,
        "RECOGNITION_BACKEND": "rekognition",
        "REKOGNITION_COLLECTION_ID": "flp-watchlist",
        "AWS_ENDPOINT_URL": rekognition.endpoint_url,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    with ServedProcess(environ, tmp_path / "serve.log") as served:
        yield served.start()


def read(server: ServedProcess, path: str) -> Any:
    response = requests.get(f"{server.base_url}{path}", headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=10)
    return response.json() if response.status_code == 200 else None


def pay(server: ServedProcess, transaction_id: str, register_id: str) -> dict[str, Any]:
    """A risky card payment (risk 70: pictured, no rule of its own fires) at a register; the correlation once its picture is analysed."""
    body = transaction_body(
        transaction_id=transaction_id,
        register_id=register_id,
        occurred_at=now_iso(),
        payment={
            "method": "card",
            "entry_mode": "chip",
            "card_fingerprint": f"fp_{transaction_id}",
            "status": "approved",
            "risk_score": 70,
        },
    )
    with requests.Session() as session:
        assert post_signed(session, server.base_url, json.dumps(body).encode(), POS_SECRET) == 202

    def analysed() -> Any:
        found = read(server, f"/api/v1/transactions/{transaction_id}")
        return found["correlation"] if found and found["correlation"]["status"] in ("done", "failed") else None

    correlation = wait_for(analysed, timeout_s=60, what=f"{transaction_id} analysed ({server.log_path})")
    assert correlation["status"] == "done", (correlation, server.output()[-3000:])
    return correlation


class Console:
    """A manager signed in to the console of the served process, pressing buttons as the page does."""

    def __init__(self, server: ServedProcess):
        self.base, self.session = f"{server.base_url}/console", requests.Session()
        page = self.session.get(f"{self.base}/signin", timeout=10).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        signed = self.session.post(
            f"{self.base}/signin",
            data={"token": CONSOLE_TOKEN, "csrf": csrf, "next": "/console"},
            allow_redirects=False,
            timeout=10,
        )
        assert signed.status_code == 302
        self.csrf = re.search(
            r'name="csrf-token" content="([^"]+)"', self.session.get(self.base, timeout=10).text
        ).group(1)

    def press(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        response = self.session.post(
            f"{self.base}/api/actions",
            headers={"X-CSRF-Token": self.csrf},
            timeout=60,
            json={"event_id": f"console:{secrets.token_hex(16)}", "data": data, "title": "x"},
        )
        assert response.status_code == 200, response.text
        return response.json()["replies"]


def test_fresh_collection_fraud_report_enroll_button_and_the_next_visit_alerts(
    server: ServedProcess, rekognition: RekognitionStandIn, floor: Floor
) -> None:
    assert rekognition.collection_ids() == ["flp-watchlist"]  # created at start, before any enrollment
    assert requests.get(f"{server.base_url}/readyz", timeout=5).json()["recognition"] == "ready"
    assert "rekognition collection flp-watchlist created" in server.output()

    floor.step_up(REG_1, Customer(people=(Placement(GRACE, at=(0.3, 0.42), face_px=150),)))
    first = pay(server, "T-1", "reg-1")
    assert len(first["faces"]) == 1 and first["faces"][0]["matches"] == [] and first["alert_ids"] == []

    report = {"transaction_id": "T-1", "reason": "cardholder denies", "source": "chargeback", "reported_at": now_iso()}
    with requests.Session() as session:
        raw = json.dumps(report).encode()
        import time

        from core import signatures

        answer = session.post(
            f"{server.base_url}/api/v1/fraud-reports",
            data=raw,
            timeout=10,
            headers={
                "Content-Type": "application/json",
                "X-Signature": signatures.sign(raw, POS_SECRET, int(time.time())),
            },
        )
    assert answer.status_code == 202

    console = Console(server)
    proposal = next(
        r["card"] for r in console.press({"action": "enroll_proposal", "transaction_id": "T-1"}) if r.get("card")
    )
    (button,) = [a for a in proposal["actions"] if a["data"]["action"] == "enroll"]
    console.press({**button["data"], "face": "1", "reason": "chargeback on T-1", "expiry_days": "90"})

    def enrolled() -> Any:
        entries = read(server, "/api/v1/watchlist") or {}
        return [e for e in entries.get("items", entries.get("watchlist", [])) if e.get("status") == "active"]

    (entry,) = wait_for(enrolled, timeout_s=60, what=f"the watchlist entry active ({server.log_path})")
    assert set(rekognition.users("flp-watchlist")) == {entry["id"]}  # our opaque id, never a name

    floor.step_up(REG_2, Customer(people=(Placement(GRACE, at=(0.62, 0.45), face_px=120, brightness=0.85),)))
    second = pay(server, "T-2", "reg-2")
    (face,) = second["faces"]
    assert face["matches"] and face["matches"][0]["person_id"] == entry["id"] and face["matches"][0]["similarity"] >= 90
    (alert_id,) = second["alert_ids"]
    alert = read(server, f"/api/v1/alerts/{alert_id}")
    assert (alert["rule"], alert["person_id"], alert["register_id"]) == ("watchlist_match", entry["id"], "reg-2")
    assert "backend_refused" not in server.output()

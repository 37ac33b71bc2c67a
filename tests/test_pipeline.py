"""The correlation pipeline from a signed POST to stored alerts: triage → capture → analyse → decide.

Outside services are fakes of the vision Protocols (tests/fakes.py); the database is real
(SQLite and PostgreSQL). Time is the test clock, moved by hand past the exact-time delay.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml

from bot.app import build_services
from bot.runner import Runner
from bot.steps import STEPS
from storage.models import Alert
from storage.uow import UnitOfWork
from tests.checkouts import CASHIER, CUSTOMER, URL, body_now, enroll
from tests.conftest import REPO, minimal_business, transaction_body
from tests.fakes import FakeCamera, FakeFaceBackend, FakeProductCounter, face
from vision.types import CameraError


@pytest.fixture
def business() -> dict:
    business = minimal_business()
    business["catalog"] = [{"sku": "7891000100103", "label": "Bottle"}]
    business["rules"] = yaml.safe_load((REPO / "config" / "flp.yaml").read_text())["rules"]
    return business


@pytest.fixture
def environ(environ: dict) -> dict:
    return {**environ, "MERAKI_DASHBOARD_API_KEY": "test-meraki-key"}


@pytest.fixture
def camera() -> FakeCamera:
    return FakeCamera()


@pytest.fixture
def faces() -> FakeFaceBackend:
    return FakeFaceBackend(
        faces=[face(CUSTOMER, name="shopper"), face(CASHIER, name="cashier")],
        similarity={("shopper", "P-1"): 95.0, ("cashier", "P-1"): 99.0},
    )


@pytest.fixture
def services(config, clock, camera, faces):
    built = build_services(config, clock=clock, camera=camera, faces=faces, products=FakeProductCounter({"Bottle": 3}))
    yield built
    built.db.dispose()


@pytest.fixture
def run(services, clock):
    runner = Runner(db=services.db, steps=STEPS, dependencies=services.dependencies(), clock=clock)
    return runner.run_until_idle


def view(client, auth, transaction_id="T-2026-000123") -> dict:
    return client.get(f"{URL}/{transaction_id}", headers=auth).get_json()


def alerts(services) -> list[Alert]:
    with UnitOfWork(services.db) as uow:
        return sorted(uow.alerts.list(), key=lambda a: a.rule)


def test_signed_post_to_alerts_with_evidence(post_signed, services, run, clock, client, auth, camera, faces):
    enroll(services)
    assert post_signed(URL, body_now(clock)).status_code == 202
    run()
    live = view(client, auth)
    assert live["correlation"]["status"] == "done"
    assert [(s["kind"], s["status"]) for s in live["correlation"]["snapshots"]] == [("live", "ready")]
    # Only the customer's face is kept and searched; the cashier's is neither.
    assert [f["box"] for f in live["correlation"]["faces"]] == [list(CUSTOMER)]
    assert live["correlation"]["faces"][0]["matches"] == [{"person_id": "P-1", "similarity": 95.0}]
    assert [s[0] for s in faces.searches] == ["shopper"]
    line = live["correlation"]["reconciliation"]["lines"][0]
    assert (line["label"], line["billed"], line["seen"]) == ("Bottle", 2, 3)
    fired = {r["rule"] for r in live["correlation"]["rule_results"] if r["fired"]}
    assert fired == {"watchlist_match", "product_mismatch"}
    assert sorted(live["correlation"]["alert_ids"]) == sorted(f"A-{a.id}" for a in alerts(services))
    match = next(a for a in alerts(services) if a.rule == "watchlist_match")
    assert (match.person_id, match.similarity, match.severity) == ("P-1", 95.0, "high")
    assert match.facts["match_similarity"] == 95.0 and match.facts["surplus_count"] == 1

    # The exact-time picture comes later; the same rules firing again raise no second alert.
    assert camera.calls[0][2] is None
    clock.advance(181)
    run()
    exact = view(client, auth)
    assert [(s["kind"], s["status"]) for s in exact["correlation"]["snapshots"]] == [
        ("live", "ready"),
        ("exact", "ready"),
    ]
    assert camera.calls[1][2] is not None
    assert len(alerts(services)) == 2
    assert {r["snapshot_kind"] for r in exact["correlation"]["rule_results"]} == {"live", "exact"}
    with UnitOfWork(services.db) as uow:
        notify = [i for i in uow.work.for_transaction("T-2026-000123") if i.kind == "notify_alert"]
    assert len(notify) == 2  # one notification per alert, waiting for the Webex step


def test_exact_time_picture_is_asked_for_the_payment_moment(post_signed, services, run, clock, camera):
    body = body_now(clock)
    assert post_signed(URL, body).status_code == 202
    run()
    clock.advance(180)
    run()
    assert [c[2] for c in camera.calls] == [None, datetime.fromisoformat(body["occurred_at"])]


def test_no_alert_without_a_watchlist_match_or_surplus(post_signed, services, run, clock, faces):
    faces.similarity.clear()
    services.products.seen["Bottle"] = 2
    assert post_signed(URL, body_now(clock)).status_code == 202
    run()
    assert alerts(services) == []


def test_resemblance_below_the_review_threshold_is_not_a_match(post_signed, services, run, clock, client, auth, faces):
    enroll(services)
    faces.similarity[("shopper", "P-1")] = 79.9
    services.products.seen["Bottle"] = 2
    assert post_signed(URL, body_now(clock)).status_code == 202
    run()
    correlation = view(client, auth)["correlation"]
    assert correlation["faces"][0]["matches"] == []
    assert alerts(services) == []


def test_expired_watchlist_entry_is_not_searched(post_signed, services, run, clock, faces):
    enroll(services, expires_in_days=-1)
    services.products.seen["Bottle"] = 2
    assert post_signed(URL, body_now(clock)).status_code == 202
    run()
    assert faces.searches == []
    assert alerts(services) == []


def test_late_transaction_gets_only_the_exact_time_picture(post_signed, services, run, clock, client, auth, camera):
    old = (clock() - timedelta(seconds=60)).astimezone(UTC).isoformat()
    assert post_signed(URL, transaction_body(occurred_at=old)).status_code == 202
    run()
    assert camera.calls == []
    clock.advance(120)
    run()
    assert len(camera.calls) == 1 and camera.calls[0][2] is not None
    kinds = [s["kind"] for s in view(client, auth)["correlation"]["snapshots"]]
    assert kinds == ["exact"]


def test_footage_not_ready_is_retried_then_picture_stored(post_signed, services, run, clock, client, auth, camera):
    camera.script = [CameraError("no footage for that moment yet", retry=True, retry_after_s=60)] * 2
    old = (clock() - timedelta(seconds=60)).astimezone(UTC).isoformat()
    assert post_signed(URL, transaction_body(occurred_at=old)).status_code == 202
    run()
    clock.advance(120)
    run()  # first try: no footage, waits 60 s
    assert view(client, auth)["correlation"]["snapshots"] == []
    clock.advance(60)
    run()  # second try: still none
    clock.advance(60)
    run()  # third: the picture
    snapshots = view(client, auth)["correlation"]["snapshots"]
    assert [(s["kind"], s["status"]) for s in snapshots] == [("exact", "ready")]
    assert len(camera.calls) == 3


def test_unknown_camera_fails_plainly_without_retrying(post_signed, services, run, clock, client, auth, camera):
    camera.script = [CameraError("unknown camera serial", retry=False)] * 2
    assert post_signed(URL, body_now(clock)).status_code == 202
    run()
    clock.advance(181)
    run()
    correlation = view(client, auth)["correlation"]
    assert [(s["kind"], s["status"]) for s in correlation["snapshots"]] == [("live", "failed"), ("exact", "failed")]
    assert "unknown camera serial" in correlation["snapshots"][1]["reason"]
    assert correlation["status"] == "failed"
    assert "no picture of this checkout" in correlation["reason"]
    assert len(camera.calls) == 2


def test_camera_that_stays_down_ends_as_a_recorded_failure(post_signed, services, run, clock, client, auth, camera):
    camera.script = [CameraError("camera offline or unreachable", retry=True)] * 20
    old = (clock() - timedelta(seconds=60)).astimezone(UTC).isoformat()
    assert post_signed(URL, transaction_body(occurred_at=old)).status_code == 202
    for _ in range(12):
        clock.advance(400)
        run()
    correlation = view(client, auth)["correlation"]
    assert correlation["status"] == "failed"
    assert "camera offline" in correlation["snapshots"][0]["reason"]
    assert len(camera.calls) == 6  # CAPTURE_ATTEMPTS, then it stops asking


def test_steps_rerun_after_a_crash_add_nothing(post_signed, services, run, clock, camera):
    enroll(services)
    assert post_signed(URL, body_now(clock)).status_code == 202
    run()
    before = len(alerts(services))
    with UnitOfWork(services.db, write=True) as uow:
        # As if every step had crashed after its effects but before its completion was seen.
        for item in uow.work.for_transaction("T-2026-000123"):
            if item.status == "done":
                item.status, item.next_run_at = "pending", clock()
        uow.commit()
    run()
    assert len(alerts(services)) == before
    assert len(camera.calls) == 1


def test_unreadable_picture_is_recorded_not_retried_forever(post_signed, services, run, clock, client, auth, camera):
    from vision.local_faces import LocalFaceBackend
    from vision.types import Picture

    services.faces = LocalFaceBackend()
    camera.script = [Picture(b"\xff\xd8\xff\xe0 not really a jpeg", "image/jpeg")]
    assert post_signed(URL, body_now(clock)).status_code == 202
    Runner(db=services.db, steps=STEPS, dependencies=services.dependencies(), clock=clock).run_until_idle()
    correlation = view(client, auth)["correlation"]
    assert correlation["status"] == "failed"
    assert "cannot be analysed" in correlation["reason"]
    assert correlation["snapshots"][0]["reason"].startswith("analysis failed")


def test_recognition_outage_is_retried_later(post_signed, services, run, clock, client, auth, faces):
    from vision.types import RecognitionError

    calls = []
    real_detect = faces.detect

    def flaky(image: bytes):
        calls.append(image)
        if len(calls) == 1:
            raise RecognitionError("Amazon Rekognition could not be reached", retry=True)
        return real_detect(image)

    faces.detect = flaky
    assert post_signed(URL, body_now(clock)).status_code == 202
    run()
    assert view(client, auth)["correlation"]["status"] == "analyzing"
    clock.advance(60)
    run()
    assert view(client, auth)["correlation"]["status"] == "done"
    assert len(calls) == 2


def test_read_api_shows_each_step_and_its_last_error(post_signed, services, run, clock, client, auth, camera):
    camera.script = [CameraError("no footage for that moment yet", retry=True, retry_after_s=60)]
    old = (clock() - timedelta(seconds=60)).astimezone(UTC).isoformat()
    assert post_signed(URL, transaction_body(occurred_at=old)).status_code == 202
    run()
    clock.advance(120)
    run()
    steps = {s["kind"]: s for s in view(client, auth)["correlation"]["steps"]}
    assert steps["triage"]["status"] == "done"
    waiting = steps["capture_exact"]
    assert waiting["status"] == "pending" and waiting["attempts"] == 1
    assert "no footage" in waiting["last_error"] and waiting["next_run_at"] is not None

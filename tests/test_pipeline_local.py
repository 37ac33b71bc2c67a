"""End to end on the local backend with real photos: a signed POST to a stored watchlist alert.

The camera is a fake serving composed scenes of public-domain faces that ship in pip packages
(matplotlib's grace_hopper.jpg, scikit-image's astronaut); dlib runs for real. SQLite only:
the database paths are covered on both backends by test_pipeline.py.
"""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from bot.app import build_services
from bot.runner import Runner
from bot.steps import STEPS
from simulation.scenes import Placement, compose_scene
from storage.uow import UnitOfWork
from tests import factories
from tests.conftest import transaction_body
from tests.fakes import FakeCamera
from vision.types import Picture

URL = "/api/v1/transactions"


@pytest.fixture
def database_url(sqlite_database_url: str) -> str:
    """SQLite only: the database paths are covered on both backends by test_pipeline.py."""
    return sqlite_database_url


@pytest.fixture
def environ(environ: dict) -> dict:
    return {**environ, "MERAKI_DASHBOARD_API_KEY": "test-meraki-key"}


@pytest.fixture
def business(business: dict) -> dict:
    business["rules"] = [
        {
            "name": "watchlist_match",
            "when": "matched",
            "severity": "high",
            "message": "Watchlist person {match_person_id} at {register_id}",
        }
    ]
    return business


@pytest.fixture
def camera() -> FakeCamera:
    return FakeCamera()


@pytest.fixture
def services(config, clock, camera):
    built = build_services(config, clock=clock, camera=camera, products=None)  # the real local face backend
    yield built
    built.db.dispose()


def enroll_from_scene(services, person_id: str, scene: bytes) -> None:
    """What the enrollment flow stores: the person, the enrollment photo and the local descriptor."""
    (detected,) = services.faces.detect(scene)
    enrolled = services.faces.enroll(person_id, detected)
    digest = services.evidence.put(detected.crop, "image/jpeg")
    now = services.clock()
    with UnitOfWork(services.db, write=True) as uow:
        uow.snapshots.record_file(
            digest, kind="enrollment", content_type="image/jpeg", size_bytes=len(detected.crop), now=now
        )
        uow.session.add(factories.watchlist_person(at=now, id=person_id, expires_at=now + timedelta(days=90)))
        uow.session.add(
            factories.watchlist_face(
                at=now,
                id=f"{person_id}-f1",
                person_id=person_id,
                descriptor=enrolled.descriptor,
                backend="local",
                enrollment_image_sha256=digest,
            )
        )
        uow.commit()


def checkout(post_signed, services, clock, camera, transaction_id: str, *people: Placement) -> dict:
    camera.script = [Picture(compose_scene(people, seed=len(camera.calls)).image, "image/jpeg")]
    local = clock().astimezone(timezone(timedelta(hours=-3))).isoformat()
    response = post_signed(URL, transaction_body(transaction_id=transaction_id, occurred_at=local))
    assert response.status_code == 202
    Runner(db=services.db, steps=STEPS, dependencies=services.dependencies(), clock=clock).run_until_idle()
    with UnitOfWork(services.db) as uow:
        transaction = uow.transactions.with_evidence(transaction_id)
        faces = [
            (f.box, [(m.person_id, m.similarity) for m in f.matches]) for s in transaction.snapshots for f in s.faces
        ]
        return {
            "status": transaction.status,
            "faces": faces,
            "alerts": [
                (a.rule, a.person_id, a.similarity) for a in uow.alerts.list() if a.transaction_id == transaction_id
            ],
        }


def test_enrolled_person_raises_an_alert_and_the_other_shopper_does_not(post_signed, services, clock, camera):
    enroll_from_scene(
        services, "P-1", compose_scene([Placement("grace_hopper", at=(0.5, 0.45), face_px=180)], seed=7).image
    )

    both = checkout(
        post_signed,
        services,
        clock,
        camera,
        "T-1",
        Placement("grace_hopper", at=(0.15, 0.4), face_px=110, brightness=0.8),
        Placement("astronaut", at=(0.42, 0.45), face_px=120),
    )
    assert both["status"] == "done"
    assert len(both["faces"]) == 2
    matched = [f for f in both["faces"] if f[1]]
    assert len(matched) == 1 and matched[0][1][0][0] == "P-1" and matched[0][1][0][1] >= 90
    assert matched[0][0][2] < 0.3  # the matched face is Grace Hopper's, on the left
    assert [(rule, person) for rule, person, _ in both["alerts"]] == [("watchlist_match", "P-1")]

    other = checkout(post_signed, services, clock, camera, "T-2", Placement("astronaut", at=(0.3, 0.45), face_px=140))
    assert other["status"] == "done"
    assert len(other["faces"]) == 1 and other["faces"][0][1] == []
    assert other["alerts"] == []


def test_face_in_the_cashier_zone_is_ignored(post_signed, services, clock, camera):
    enroll_from_scene(services, "P-1", compose_scene([Placement("grace_hopper", face_px=180)], seed=3).image)
    # reg-1's customer zone is the left 60 % of the picture: she stands on the cashier's side.
    result = checkout(
        post_signed, services, clock, camera, "T-3", Placement("grace_hopper", at=(0.85, 0.4), face_px=120)
    )
    assert result["faces"] == []
    assert result["alerts"] == []

"""The whole learning loop on the local backend with real photos (dlib runs for real):

a visit at register 2 → a checkout at register 1 → a chargeback → the enrollment proposal in the
store's space → a manager enrolls the face → the look-back finds the earlier visit → the same
person, in another scene at register 2, raises a watchlist alert; the astronaut does not.
SQLite only: the database paths are covered on both backends by the governance tests.
"""

from __future__ import annotations

import pytest

from bot.app import build_services
from core.waiting import Waits, at_once
from simulation.scenes import Placement, compose_scene
from storage.models import Alert
from storage.uow import UnitOfWork
from tests.learning_fixtures import messenger  # noqa: F401  (a fixture: every card sent must be valid)
from tests.learning_helpers import (
    ROLES,
    ROOM,
    Chat,
    body_at,
    card_texts,
    cards_titled,
    enroll_inputs,
    people,
)
from vision.types import Picture

GRACE = "grace_hopper"


@pytest.fixture
def database_url(sqlite_database_url: str) -> str:
    """SQLite only: real photos are slow; the database paths run on both backends elsewhere."""
    return sqlite_database_url


@pytest.fixture
def environ(environ: dict) -> dict:
    return {**environ, "MERAKI_DASHBOARD_API_KEY": "test-meraki-key"}


@pytest.fixture
def business(business: dict) -> dict:
    business["stores"][0]["webex_room_id"] = ROOM
    business["people"] = ROLES
    business["rules"] = [
        {
            "name": "watchlist_match",
            "when": "matched",
            "severity": "high",
            "message": "Watchlist person {match_person_id} at {register_id}",
        }
    ]
    return business


class SceneCamera:
    """Each register's camera shows the scene set for it (the live and the exact-time picture alike)."""

    def __init__(self) -> None:
        self.scenes: dict[str, bytes] = {}

    def snapshot(self, serial: str, *, org_id: str, at) -> Picture:
        return Picture(self.scenes[serial], "image/jpeg")

    def snapshot_waits(self, serial: str, *, org_id: str, at) -> Waits[Picture]:
        return at_once(self.snapshot(serial, org_id=org_id, at=at))

    def video_link(self, serial: str, *, org_id: str, at) -> str | None:
        return None


@pytest.fixture
def camera() -> SceneCamera:
    return SceneCamera()


@pytest.fixture
def services(config, clock, camera, messenger):
    built = build_services(config, clock=clock, camera=camera, messenger=messenger, products=None)
    yield built
    built.db.dispose()


def checkout(
    post_signed,
    chat: Chat,
    clock,
    camera: SceneCamera,
    transaction_id: str,
    register: str,
    *placements: Placement,
    seed: int,
) -> list:
    """A card payment at a register with these people in front of it, both pictures analysed."""
    serial = {"reg-1": "Q2XX-AAAA-0001", "reg-2": "Q2XX-AAAA-0002"}[register]
    camera.scenes[serial] = compose_scene(placements, seed=seed).image
    assert post_signed("/api/v1/transactions", body_at(clock, transaction_id, register)).status_code == 202
    sent = chat.run()
    clock.advance(181)  # the exact-time picture
    return sent + chat.run()


def alerts_of(services, transaction_id: str) -> list[Alert]:
    with UnitOfWork(services.db) as uow:
        return [a for a in uow.alerts.list() if a.transaction_id == transaction_id]


def test_fraud_report_to_enrollment_to_recognition_at_another_register(post_signed, services, clock, camera, messenger):
    chat = Chat(services, messenger, clock)
    # An earlier visit, before anyone knew: nothing is enrolled, nothing is kept about her as a person.
    checkout(post_signed, chat, clock, camera, "T-0", "reg-2", Placement(GRACE, at=(0.55, 0.42), face_px=130), seed=1)
    clock.advance(3600)
    # The checkout that is later charged back; the cashier (right of reg-1's customer zone) is never offered.
    checkout(
        post_signed,
        chat,
        clock,
        camera,
        "T-1",
        "reg-1",
        Placement(GRACE, at=(0.25, 0.4), face_px=150),
        Placement("astronaut", at=(0.85, 0.4), face_px=120),
        seed=2,
    )
    assert alerts_of(services, "T-1") == []

    clock.advance(3 * 86400)
    report = {
        "transaction_id": "T-1",
        "reason": "cardholder denies",
        "source": "chargeback",
        "reported_at": clock().isoformat(),
    }
    assert post_signed("/api/v1/fraud-reports", report).status_code == 202
    sent = chat.run()
    (proposal,) = cards_titled(sent, "Enrollment proposal")
    assert proposal.room_id == ROOM and proposal.parent_id is None  # no alert card: its own message
    texts = card_texts(proposal.card)
    assert any("chargeback" in t and "cardholder denies" in t for t in texts)
    assert [t for t in texts if t in ("Face 1", "Face 2", "Face 3")] == ["Face 1", "Face 2"]  # hers, in both pictures
    assert "Face 1 from the live picture; face 2 from the exact-time picture." in texts
    assert not any(t.startswith("Not offered") for t in texts)
    sheet = next(m for m in sent if m.attachment is not None)
    assert sheet.parent_id == chat.message_id(proposal)  # the numbered crops, in the proposal's thread

    (answer,) = chat.press(
        "P-ana", enroll_inputs(proposal.card, reason="chargeback on T-1", days=90), on=chat.message_id(proposal)
    )[:1]
    assert "Enrolling the face from **T-1**" in answer.markdown and answer.parent_id == chat.message_id(proposal)
    (person,) = people(services)
    assert (person.status, person.reason, person.store_id) == ("active", "chargeback on T-1", "store-001")
    assert person.id.startswith("P-") and len(person.faces) == 1 and person.faces[0].descriptor is not None
    done = [m.markdown for m in messenger.sent if m.parent_id == chat.message_id(proposal)]
    assert any(f"✅ **{person.id}** is on the watchlist" in text for text in done)

    clock.advance(10)  # the look-back runs at low priority, behind the checkouts due now
    (lookback,) = chat.run()
    assert lookback.parent_id == chat.message_id(proposal)
    assert f"Earlier visits of {person.id}" in lookback.markdown
    assert "Centro, reg-2, transaction T-0" in lookback.markdown and "T-1" not in lookback.markdown
    assert "Look-back done: 1 earlier visit(s)" in lookback.markdown

    # Recognised at another register, in another scene; the other shopper is not.
    clock.advance(86400)
    checkout(
        post_signed,
        chat,
        clock,
        camera,
        "T-2",
        "reg-2",
        Placement(GRACE, at=(0.4, 0.45), face_px=110, brightness=0.85),
        seed=3,
    )
    (alert,) = alerts_of(services, "T-2")
    assert (alert.rule, alert.person_id) == ("watchlist_match", person.id) and alert.similarity >= 90
    checkout(
        post_signed, chat, clock, camera, "T-3", "reg-2", Placement("astronaut", at=(0.4, 0.45), face_px=130), seed=4
    )
    assert alerts_of(services, "T-3") == []

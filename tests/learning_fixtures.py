"""Fixtures of the enrollment and governance tests (imported by name into those modules): a store with a
Webex space, the people of every role, the fake backend that sees one face per crop, and a chat."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta

import pytest
from PIL import Image

from bot.app import build_services
from core.waiting import Waits, at_once
from storage.uow import UnitOfWork
from tests import factories
from tests.fakes import FakeMessenger, face
from tests.learning_helpers import PEOPLE, ROLES, ROOM, Chat, CropFaces, assert_cards_valid, body_at, cards_titled
from vision.types import DetectedFace, Picture

CUSTOMER = (0.1, 0.2, 0.3, 0.5)  # inside reg-1's customer zone


def still_picture() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 360), (120, 130, 140)).save(out, "JPEG")
    return out.getvalue()


class StillCamera:
    """Every snapshot is the same real (if empty) JPEG: the fake backend decides what it shows."""

    picture = still_picture()

    def snapshot(self, serial: str, *, org_id: str, at) -> Picture:
        return Picture(self.picture, "image/jpeg")

    def snapshot_waits(self, serial: str, *, org_id: str, at) -> Waits[Picture]:
        return at_once(self.snapshot(serial, org_id=org_id, at=at))

    def video_link(self, serial: str, *, org_id: str, at) -> str | None:
        return None


class CountingCamera(StillCamera):
    """A different picture every time (so no two snapshots share an evidence file)."""

    def __init__(self) -> None:
        self.n = 0

    def snapshot(self, serial: str, *, org_id: str, at) -> Picture:
        self.n += 1
        return Picture(self.picture + self.n.to_bytes(4, "big"), "image/jpeg")  # a JPEG may carry trailing bytes


class OnePerPicture(CropFaces):
    """The same shopper in every picture, but each picture's crop of her is its own file."""

    def detect(self, image: bytes) -> list[DetectedFace]:
        if image.startswith(b"\xff\xd8\xff\xe0crop-"):
            return [DetectedFace(CUSTOMER, 0.9, 120, 0.8, image, "shopper")]
        crop = b"\xff\xd8\xff\xe0crop-" + hashlib.sha256(image).hexdigest()[:12].encode()
        return [DetectedFace(CUSTOMER, 0.9, 120, 0.8, crop, "shopper")]


@pytest.fixture
def business(business: dict) -> dict:
    return learning_business(business)


def learning_business(business: dict) -> dict:
    """The store's space, the people of every role and two rules; a module that overrides ``business``
    calls this on the conftest's (its own fixture of the same name would hide the imported one)."""
    business["stores"][0]["webex_room_id"] = ROOM
    business["people"] = ROLES
    business["rules"] = [
        {"name": "watchlist_match", "when": "matched", "severity": "high", "message": "Watchlist {match_person_id}"},
        {
            "name": "known_fraud_card",
            "when": "card_fingerprint_in_fraud",
            "severity": "high",
            "message": "Card in a fraud",
        },
    ]
    return business


@pytest.fixture
def environ(environ: dict) -> dict:
    return {**environ, "MERAKI_DASHBOARD_API_KEY": "test-meraki-key"}


@pytest.fixture
def faces() -> CropFaces:
    return CropFaces(faces=[face(CUSTOMER, name="shopper")])


@pytest.fixture
def messenger() -> FakeMessenger:
    """Every card the bot sent in a test must be a valid Adaptive Card 1.3."""
    fake = FakeMessenger(emails=dict(PEOPLE))
    yield fake
    assert_cards_valid(fake.sent)


@pytest.fixture
def services(config, clock, faces, messenger):
    built = build_services(config, clock=clock, camera=StillCamera(), faces=faces, messenger=messenger, products=None)
    yield built
    built.db.dispose()


@pytest.fixture
def chat(services, messenger, clock) -> Chat:
    return Chat(services, messenger, clock)


def checkout(post_signed, chat: Chat, clock, transaction_id: str = "T-1", **changes) -> list:
    assert post_signed("/api/v1/transactions", body_at(clock, transaction_id, **changes)).status_code == 202
    return chat.run()


def proposed(post_signed, chat: Chat, clock, transaction_id: str = "T-1") -> object:
    """A checkout, then `fraud <it>` by the manager: the proposal card that follows."""
    checkout(post_signed, chat, clock, transaction_id)
    (card,) = cards_titled(chat.say("P-ana", f"fraud {transaction_id} stolen card"), "Enrollment proposal")
    return card


def active_entry(services, person_id: str = "P-7", *, days: int = 30, wrong: int = 0) -> None:
    """An entry enrolled earlier, with one enrolled face and its photo on record."""
    now = services.clock()
    photo = services.evidence.put(b"\xff\xd8\xff\xe0enrolled-" + person_id.encode(), "image/jpeg")
    with UnitOfWork(services.db, write=True) as uow:
        uow.snapshots.record_file(photo, kind="enrollment", content_type="image/jpeg", size_bytes=20, now=now)
        uow.session.add(
            factories.watchlist_person(
                at=now,
                id=person_id,
                enrolled_at=now - timedelta(days=9),
                expires_at=now + timedelta(days=days),
                wrong_match_count=wrong,
            )
        )
        uow.session.flush()
        uow.session.add(
            factories.watchlist_face(
                at=now, person_id=person_id, descriptor=b"\x00" * 512, enrollment_image_sha256=photo
            )
        )
        uow.commit()


def decided_alert(services, person_id: str, status: str, n: int) -> None:
    now = services.clock()
    with UnitOfWork(services.db, write=True) as uow:
        uow.session.add(
            factories.alert(
                at=now,
                dedupe_key=f"test:{person_id}:{n}",
                transaction_id=f"T-x{n}",
                rule="watchlist_match",
                severity="high",
                message="m",
                person_id=person_id,
                similarity=95.0,
                status=status,
                decided_by="ana@example.com" if status != "open" else None,
            )
        )
        uow.commit()

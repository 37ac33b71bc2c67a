"""An alert reaches Webex: its card in the store's space, the boxed photo threaded under it, a regional copy."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.app import build_services
from bot.runner import Runner
from bot.steps import STEPS
from simulation.scenes import Placement, compose_scene
from tests.card_schema import card_validator
from tests.checkouts import CUSTOMER, URL, body_now, enroll
from tests.fakes import FakeCamera, FakeFaceBackend, FakeMessenger, FakeProductCounter, face
from vision.types import Picture

ROOM, REGION_ROOM = "ROOM-STORE-1", "ROOM-SOUTH"


@pytest.fixture
def business(business: dict) -> dict:
    business["stores"][0].update(webex_room_id=ROOM, region="south")
    business["regions"] = [{"id": "south", "webex_room_id": REGION_ROOM}]
    business["catalog"] = [{"sku": "7891000100103", "label": "Bottle"}]
    business["rules"] = [
        {
            "name": "watchlist_match",
            "when": "matched",
            "severity": "high",
            "message": "Watchlist person {match_person_id}",
        },
        {"name": "product_mismatch", "when": "surplus_count >= 1", "message": "{surplus_count} more seen than billed"},
    ]
    return business


@pytest.fixture
def environ(environ: dict) -> dict:
    return {**environ, "MERAKI_DASHBOARD_API_KEY": "test-meraki-key", "WEBEX_ACCESS_TOKEN": "test-webex-token"}


@pytest.fixture
def messenger() -> FakeMessenger:
    return FakeMessenger()


@pytest.fixture
def services(config, clock, messenger):
    scene = compose_scene([Placement("grace_hopper", at=(0.2, 0.4))], seed=1).image
    built = build_services(
        config,
        clock=clock,
        messenger=messenger,
        camera=FakeCamera(script=[Picture(scene, "image/jpeg")]),
        faces=FakeFaceBackend(faces=[face(CUSTOMER, name="shopper")], similarity={("shopper", "P-1"): 96.0}),
        products=FakeProductCounter({"Bottle": 3}),
    )
    yield built
    built.db.dispose()


def test_alert_card_then_threaded_photo_and_regional_copy(post_signed, services, clock, messenger):
    enroll(services)
    assert post_signed(URL, body_now(clock)).status_code == 202
    Runner(db=services.db, steps=STEPS, dependencies=services.dependencies(), clock=clock).run_until_idle()
    sent = messenger.sent
    store_cards = [i for i, m in enumerate(sent) if m.room_id == ROOM and m.card is not None]
    assert len(store_cards) == 2  # the watchlist match and the surplus: one card each
    for index in store_cards:
        photo = next(m for m in sent if m.attachment is not None and m.parent_id == f"M-{index + 1}")
        assert photo.room_id == ROOM and photo.card is None  # never a card and a file in one message
    assert [m.room_id for m in sent if m.card is not None].count(REGION_ROOM) == 1
    assert len(sent) == 5
    cards = [m.card for m in messenger.sent if m.card is not None]
    for card in cards:
        errors = sorted(card_validator().iter_errors(card), key=str)
        assert errors == [], errors[0].message if errors else ""
        assert len(card.get("actions", [])) <= 5
    photos = [m for m in messenger.sent if m.attachment is not None]
    assert {p.attachment.content_type for p in photos} == {"image/jpeg"}
    assert Image.open(io.BytesIO(photos[0].attachment.content)).size == (1280, 720)
    confirm = [a for a in cards[0]["actions"] if a.get("data", {}).get("action") == "confirm"]
    assert confirm and confirm[0]["data"]["alert_id"].startswith("A-")

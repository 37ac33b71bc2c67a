"""The look-back pages through the retained pictures a few visits at a time, never splitting a checkout's
live and exact pictures, and stops for an entry that is no longer active. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from bot.app import build_services
from handlers.learning import lookback
from tests.learning_fixtures import (  # noqa: F401  (fixtures)
    CountingCamera,
    OnePerPicture,
    chat,
    checkout,
    environ,
    learning_business,
    messenger,
    proposed,
)
from tests.learning_helpers import audit, enroll_inputs, people


@pytest.fixture
def business(business: dict) -> dict:
    business["camera"] = {"exact_delay_s": 0}  # each checkout has its live and exact picture at once
    return learning_business(business)


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


def enroll(post_signed, chat, clock, faces) -> tuple[str, object]:
    proposal = proposed(post_signed, chat, clock, "T-report")
    chat.press("P-ana", enroll_inputs(proposal.card), on=chat.message_id(proposal))
    (person,) = people(chat.services)
    faces.similarity[("shopper", person.id)] = 96.5  # from now on the fake sees her in every picture
    return person.id, proposal


def test_look_back_pages_through_whole_visits(post_signed, chat, clock, faces, monkeypatch):
    monkeypatch.setattr(lookback, "PAGE", 3)
    for n in range(4):  # four earlier visits an hour apart, two pictures each
        checkout(post_signed, chat, clock, f"T-{n}")
        clock.advance(3600)
    person_id, proposal = enroll(post_signed, chat, clock, faces)
    sent = []
    for _ in range(6):
        clock.advance(lookback.DELAY_S)
        sent += chat.run()
    lines = [line for m in sent for line in m.markdown.splitlines() if line.startswith("- ")]
    assert [line.split("transaction ")[1].split(" ")[0] for line in lines] == ["T-0", "T-1", "T-2", "T-3"]
    assert all(m.parent_id == chat.message_id(proposal) for m in sent)
    assert sent[-1].markdown.endswith("Look-back done: 4 earlier visit(s) in 8 picture(s) of the last 30 days.")
    assert ("system", "watchlist_lookback", person_id, "found", "ok") in audit(chat.services)


def test_look_back_stops_for_an_entry_removed_meanwhile(post_signed, chat, clock, faces):
    checkout(post_signed, chat, clock, "T-0")
    clock.advance(3600)
    person_id, _ = enroll(post_signed, chat, clock, faces)
    chat.say("P-carla", f"watchlist remove {person_id}")
    clock.advance(lookback.DELAY_S)
    assert chat.run() == []

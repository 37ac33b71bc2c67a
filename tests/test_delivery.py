"""Outbox delivery: once, threaded, delayed (never lost) by Webex outages."""

from __future__ import annotations

import pytest

from bot.app import build_services
from bot.runner import Runner
from bot.steps import ON_DEAD, STEPS
from core.messenger import WebexError
from storage.uow import UnitOfWork
from tests.fakes import FakeMessenger


@pytest.fixture
def messenger() -> FakeMessenger:
    return FakeMessenger()


@pytest.fixture
def run(services, clock):
    return Runner(db=services.db, steps=STEPS, dependencies=services.dependencies(), clock=clock).run_until_idle


def queue_card_with_photo(services) -> tuple[int, int]:
    now = services.clock()
    digest = services.evidence.put(b"\xff\xd8\xff\xe0photo", "image/jpeg")
    with UnitOfWork(services.db, write=True) as uow:
        uow.snapshots.record_file(digest, kind="snapshot", content_type="image/jpeg", size_bytes=9, now=now)
        card = uow.outbox.add(
            key="alert:1:card", room_id="ROOM", now=now, markdown="Alert A-1", card={"type": "AdaptiveCard"}
        )
        photo = uow.outbox.add(
            key="alert:1:photo",
            room_id="ROOM",
            now=now,
            markdown="Evidence",
            file={"sha256": digest, "content_type": "image/jpeg", "name": "A-1.jpg"},
            parent=card,
        )
        uow.commit()
        return card.id, photo.id


def rows(services) -> dict:
    with UnitOfWork(services.db) as uow:
        found = {key: uow.outbox.by_key(key) for key in ("alert:1:card", "alert:1:photo")}
        return {key: (m.status, m.webex_message_id, m.attempts) for key, m in found.items() if m is not None}


def test_card_then_photo_threaded_under_it(services, run, messenger):
    queue_card_with_photo(services)
    run()
    card, photo = messenger.sent
    assert card.card == {"type": "AdaptiveCard"} and card.attachment is None and card.parent_id is None
    assert photo.card is None and photo.attachment.content == b"\xff\xd8\xff\xe0photo"
    assert photo.parent_id == "M-1"  # the card's Webex message id: the thread root
    assert rows(services) == {"alert:1:card": ("sent", "M-1", 1), "alert:1:photo": ("sent", "M-2", 1)}


def test_same_key_queued_twice_is_sent_once(services, run, messenger):
    queue_card_with_photo(services)
    queue_card_with_photo(services)
    run()
    assert len(messenger.sent) == 2


@pytest.mark.parametrize(
    "failure",
    [
        WebexError("Webex is rate limiting (429)", retry=True, retry_after_s=30, status=429),
        WebexError("Webex answered 500", retry=True, status=500),
    ],
)
def test_outage_delays_and_then_delivers_once(services, run, messenger, clock, failure):
    queue_card_with_photo(services)
    messenger.failures = [failure]
    run()
    assert messenger.sent == []
    assert rows(services)["alert:1:card"][0] == "pending"
    clock.advance(30)
    run()
    assert [m.markdown for m in messenger.sent] == ["Alert A-1", "Evidence"]
    assert rows(services)["alert:1:card"] == ("sent", "M-1", 2)


def test_permanent_refusal_is_recorded_and_the_thread_reply_gives_up(services, run, messenger):
    queue_card_with_photo(services)
    messenger.failures = [WebexError("Webex refused the message (400): room not found", retry=False, status=400)]
    run()
    assert messenger.sent == []
    with UnitOfWork(services.db) as uow:
        card, photo = uow.outbox.by_key("alert:1:card"), uow.outbox.by_key("alert:1:photo")
        assert (card.status, card.last_error) == ("failed", "Webex refused the message (400): room not found")
        assert photo.status == "failed" and "thread" in photo.last_error


def test_crash_after_marking_sending_sends_again(services, run, messenger, clock):
    """At least once: a message marked sending whose step never finished is sent when the lease runs out."""
    card_id, _ = queue_card_with_photo(services)
    runner = Runner(db=services.db, steps=STEPS, dependencies=services.dependencies(), clock=clock)
    with UnitOfWork(services.db, write=True) as uow:
        (claimed,) = uow.work.claim_due(kinds={"deliver"}, now=clock(), lease_s=60, limit=1)
        uow.outbox.get(card_id).status = "sending"
        uow.commit()
    clock.advance(61)  # the "crashed" process's lease has run out
    runner.run_until_idle()
    assert [m.markdown for m in messenger.sent] == ["Alert A-1", "Evidence"]
    assert rows(services)["alert:1:card"][0] == "sent"


def test_webex_off_records_why_nothing_was_sent(config, clock):
    services = build_services(config, clock=clock)  # no messenger: WEBEX_ACCESS_TOKEN unset
    queue_card_with_photo(services)
    Runner(db=services.db, steps=STEPS, dependencies=services.dependencies(), clock=clock).run_until_idle()
    with UnitOfWork(services.db) as uow:
        assert "WEBEX_ACCESS_TOKEN" in uow.outbox.by_key("alert:1:card").last_error
    services.db.dispose()


def work_statuses(services) -> dict:
    with UnitOfWork(services.db) as uow:
        return {m.dedupe_key: m.status for m in uow.work.for_kind("deliver")}


def test_a_reply_waiting_behind_a_rate_limited_root_waits_without_spending_attempts(services, run, messenger, clock):
    # The card meets three 429s with a 60 s Retry-After: its photo waits (every 5 s) far more often than the
    # runner's dead-letter limit of 8 attempts, and is sent once the card is.
    card_id, photo_id = queue_card_with_photo(services)
    messenger.failures = [WebexError("Webex rate limit (429)", retry=True, retry_after_s=60.0, status=429)] * 3
    for _ in range(4):
        run()
        for _ in range(12):  # the photo's waits: 12 × 5 s per Retry-After
            clock.advance(5.1)
            run()
    assert rows(services) == {"alert:1:card": ("sent", "M-1", 4), "alert:1:photo": ("sent", "M-2", 1)}
    assert set(work_statuses(services).values()) == {"done"}
    assert messenger.sent[1].parent_id == "M-1"


def test_a_delivery_step_that_dies_leaves_its_message_failed_and_its_replies_settle(services, messenger, clock):
    run = Runner(
        db=services.db, steps=STEPS, dependencies=services.dependencies(), clock=clock, on_dead=ON_DEAD
    ).run_until_idle
    queue_card_with_photo(services)
    messenger.failures = [RuntimeError("the SDK broke")] * 20  # not a WebexError: the runner's own back-off and limit
    for _ in range(12):
        run()
        clock.advance(1000)
    run()
    assert rows(services)["alert:1:card"][0] == "failed" and rows(services)["alert:1:photo"][0] == "failed"
    with UnitOfWork(services.db) as uow:
        card = uow.outbox.by_key("alert:1:card")
        assert "failed for good after 8 attempt(s)" in card.last_error
        photo = uow.outbox.by_key("alert:1:photo")
        assert photo.last_error == "its thread's first message could not be sent"
    assert messenger.sent == []

"""The daily digest: one stats card and a threaded chart per store and local day, at the configured local
time, across daylight-saving changes; enqueued by the sweep tick, idempotently."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from PIL import Image

from bot.sweeps import enqueue_daily, schedule_sweeps
from core.steps import StepKind
from storage.models import WorkItem
from storage.uow import UnitOfWork
from tests import factories
from tests.card_schema import card_validator
from tests.fakes import FakeMessenger
from tests.scheduled import TICK, cards_with_charts, items, run, tick_until

ROOM = "ROOM-STORE-1"
UTC = UTC


@pytest.fixture
def local_time() -> str:
    return "21:00"


@pytest.fixture
def room() -> str | None:
    return ROOM


@pytest.fixture
def business(business: dict, local_time: str, room: str | None) -> dict:
    business["stores"][0].update(timezone="America/New_York", webex_room_id=room)
    business["digest"] = {"local_time": local_time}
    return business


@pytest.fixture
def environ(environ: dict) -> dict:
    return {**environ, "WEBEX_ACCESS_TOKEN": "test-webex-token"}


@pytest.fixture
def messenger() -> FakeMessenger:
    return FakeMessenger()


def digest_items(services) -> dict[str, datetime]:
    return items(services, StepKind.DAILY_DIGEST)


def digests_sent(messenger: FakeMessenger) -> list[tuple[object, object]]:
    return cards_with_charts(messenger, ROOM)


@pytest.mark.parametrize(
    "local_time, start, end, expected",
    [
        # Spring forward (8 Mar 2026): 02:30 does not exist that day; it is read as 03:30 EDT (07:30 UTC).
        (
            "02:30",
            datetime(2026, 3, 6, 15, tzinfo=UTC),
            datetime(2026, 3, 10, 6, tzinfo=UTC),
            {
                "2026-03-07": datetime(2026, 3, 7, 7, 30, tzinfo=UTC),
                "2026-03-08": datetime(2026, 3, 8, 7, 30, tzinfo=UTC),
                "2026-03-09": datetime(2026, 3, 9, 6, 30, tzinfo=UTC),
            },
        ),
        # Fall back (1 Nov 2026): 01:30 happens twice; only the first (EDT, 05:30 UTC) counts.
        (
            "01:30",
            datetime(2026, 10, 30, 15, tzinfo=UTC),
            datetime(2026, 11, 3, 5, tzinfo=UTC),
            {
                "2026-10-31": datetime(2026, 10, 31, 5, 30, tzinfo=UTC),
                "2026-11-01": datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
                "2026-11-02": datetime(2026, 11, 2, 6, 30, tzinfo=UTC),
            },
        ),
    ],
    ids=["spring-forward", "fall-back"],
)
def test_one_digest_per_local_day_at_the_local_time_across_daylight_saving(
    services, clock, messenger, local_time, start, end, expected
):
    clock.now = start
    tick_until(services, clock, end, enqueue_daily)
    enqueued = digest_items(services)
    assert sorted(enqueued) == [f"{StepKind.DAILY_DIGEST}:store-001:{day}" for day in sorted(expected)]
    for day, due_at in expected.items():
        # Never before the local time, and at the first tick after it.
        assert due_at <= enqueued[f"{StepKind.DAILY_DIGEST}:store-001:{day}"] < due_at + TICK
    run(services, clock)
    sent = digests_sent(messenger)
    assert len(sent) == len(expected) and len(messenger.sent) == 2 * len(expected)
    assert [chart.attachment.name for _, chart in sent] == [f"digest-store-001-{day}.png" for day in sorted(expected)]


def test_nothing_before_the_local_time_and_a_repeated_tick_adds_nothing(services, clock, messenger):
    woken: list[bool] = []
    services.wake_runner = lambda *kinds: woken.append(True)
    scheduler = BackgroundScheduler(timezone="UTC")  # never started: the job is called by hand
    schedule_sweeps(scheduler, services)
    (job,) = scheduler.get_jobs()
    clock.now = datetime(2026, 11, 24, 1, 59, tzinfo=UTC)  # 20:59 in New York
    job.func()
    assert digest_items(services) == {}
    clock.now = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 21:00
    job.func()
    job.func()  # a second tick, or another process firing too
    assert list(digest_items(services)) == [f"{StepKind.DAILY_DIGEST}:store-001:2026-11-23"]
    run(services, clock)
    clock.advance(600)
    job.func()
    run(services, clock)
    assert len(digests_sent(messenger)) == 1 and len(messenger.sent) == 2 and woken == [True] * 4


def test_the_card_validates_and_the_chart_is_an_800_by_400_png_of_the_day(services, clock, messenger):
    clock.now = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 21:00 on 23 Nov in New York
    seed_day(services, datetime(2026, 11, 23, 15, tzinfo=UTC))
    seed_day(services, datetime(2026, 11, 22, 15, tzinfo=UTC), prefix="old")  # the day before: not counted
    enqueue_daily(services.db, clock, services.config)
    run(services, clock)
    ((card_message, chart_message),) = digests_sent(messenger)
    errors = sorted(card_validator().iter_errors(card_message.card), key=str)
    assert errors == [], errors[0].message if errors else ""
    facts = {f["title"]: f["value"] for f in _facts(card_message.card)}
    assert facts["Transactions checked"] == "3" and facts["Confirmed"] == "1" and facts["Dismissed"] == "1"
    assert facts["Alerts"].startswith("3 (")
    assert "Mon 23 Nov 2026" in card_message.card["body"][0]["text"]
    assert chart_message.attachment.content_type == "image/png" and chart_message.card is None
    image = Image.open(io.BytesIO(chart_message.attachment.content))
    assert image.format == "PNG" and image.size == (800, 400)


def test_a_digest_covers_the_24_hours_since_the_last_one(services, clock, messenger):
    clock.now = datetime(2026, 11, 24, 2, 40, tzinfo=UTC)  # 21:40 on 23 Nov in New York: sent a little late
    seed_day(services, datetime(2026, 11, 23, 2, 30, tzinfo=UTC), prefix="late")  # 21:30 on the 22nd: counted
    seed_day(services, datetime(2026, 11, 23, 1, 59, tzinfo=UTC), prefix="before")  # 20:59 on the 22nd: its own digest
    seed_day(services, datetime(2026, 11, 24, 2, 10, tzinfo=UTC), prefix="after")  # 21:10 on the 23rd: the next one
    enqueue_daily(services.db, clock, services.config)
    run(services, clock)
    ((card_message, _),) = digests_sent(messenger)
    facts = {f["title"]: f["value"] for f in _facts(card_message.card)}
    assert facts["Transactions checked"] == "3" and facts["Confirmed"] == "1"
    assert "the 24 h to 21:00" in card_message.card["body"][0]["text"]


@pytest.mark.parametrize("room", [None])
def test_a_store_without_a_space_gets_no_digest(services, clock, messenger):
    clock.now = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    enqueue_daily(services.db, clock, services.config)
    run(services, clock)
    assert messenger.sent == []
    with UnitOfWork(services.db) as uow:  # the item is done, quietly: nothing waits or retries
        assert [w.status for w in uow.session.query(WorkItem)] == ["done"]


def seed_day(services, at: datetime, prefix: str = "T") -> None:
    """Three checkouts with an alert each: one confirmed, one dismissed, one open."""
    with UnitOfWork(services.db, write=True) as uow:
        for n, (rule, status) in enumerate(
            [("product_mismatch", "confirmed"), ("product_mismatch", "dismissed"), ("watchlist_match", "open")]
        ):
            tid = f"{prefix}-{n}"
            uow.session.add(factories.transaction(at=at, transaction_id=tid, currency="USD"))
            uow.session.add(
                factories.alert(
                    at=at, dedupe_key=f"{tid}:{rule}", transaction_id=tid, rule=rule, message="m", status=status
                )
            )
        uow.commit()


def _facts(card: dict) -> list[dict]:
    found = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "FactSet":
                found.extend(node["facts"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    return found

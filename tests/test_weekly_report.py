"""The weekly pattern report: one card and a threaded chart per store and local week, at the configured local
weekday and time, across daylight-saving changes, with the digest's catch-up; enqueued by the sweep tick."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from PIL import Image

from bot.sweeps import enqueue_weekly, schedule_sweeps
from core.steps import StepKind
from storage.uow import UnitOfWork
from tests import factories
from tests.card_schema import card_validator
from tests.fakes import FakeMessenger
from tests.scheduled import TICK, cards_with_charts, items, run, tick_until

ROOM = "ROOM-STORE-1"
UTC = UTC


@pytest.fixture
def weekly() -> dict:
    return {}


@pytest.fixture
def business(business: dict, weekly: dict) -> dict:
    business["stores"][0].update(timezone="America/New_York", webex_room_id=ROOM)
    business["stores"].append(
        {
            "id": "store-002",
            "name": "Norte",
            "timezone": "America/New_York",
            "registers": [{"id": "reg-1", "camera_serial": "Q2XX-AAAA-0101"}],
        }
    )  # no space
    business["patterns"] = weekly
    business["digest"] = {"enabled": False}  # only the weekly report speaks here
    return business


@pytest.fixture
def environ(environ: dict) -> dict:
    return {**environ, "WEBEX_ACCESS_TOKEN": "test-webex-token"}


@pytest.fixture
def messenger() -> FakeMessenger:
    return FakeMessenger()


def report_items(services) -> dict[str, datetime]:
    return items(services, StepKind.PATTERN_REPORT)


def reports_sent(messenger: FakeMessenger) -> list[tuple[object, object]]:
    return cards_with_charts(messenger, ROOM)


def subtitle(card: dict) -> str:
    return card["body"][1]["text"]


@pytest.mark.parametrize(
    "weekly, start, end, expected",
    [
        # Spring forward (Sun 8 Mar 2026): 02:30 does not exist that day; it is read as 03:30 EDT (07:30 UTC).
        (
            {"report_weekday": "sun", "report_local_time": "02:30"},
            datetime(2026, 2, 28, 12, tzinfo=UTC),
            datetime(2026, 3, 16, 12, tzinfo=UTC),
            {
                "2026-W09": (datetime(2026, 3, 1, 7, 30, tzinfo=UTC), "Sun 22 Feb 2026 – Sat 28 Feb 2026"),
                "2026-W10": (datetime(2026, 3, 8, 7, 30, tzinfo=UTC), "Sun 1 Mar 2026 – Sat 7 Mar 2026"),
                "2026-W11": (datetime(2026, 3, 15, 6, 30, tzinfo=UTC), "Sun 8 Mar 2026 – Sat 14 Mar 2026"),
            },
        ),
        # Fall back (Sun 1 Nov 2026): 01:30 happens twice; only the first (EDT, 05:30 UTC) counts.
        (
            {"report_weekday": "sun", "report_local_time": "01:30"},
            datetime(2026, 10, 24, 12, tzinfo=UTC),
            datetime(2026, 11, 9, 12, tzinfo=UTC),
            {
                "2026-W43": (datetime(2026, 10, 25, 5, 30, tzinfo=UTC), "Sun 18 Oct 2026 – Sat 24 Oct 2026"),
                "2026-W44": (datetime(2026, 11, 1, 5, 30, tzinfo=UTC), "Sun 25 Oct 2026 – Sat 31 Oct 2026"),
                "2026-W45": (datetime(2026, 11, 8, 6, 30, tzinfo=UTC), "Sun 1 Nov 2026 – Sat 7 Nov 2026"),
            },
        ),
    ],
    ids=["spring-forward", "fall-back"],
)
def test_one_report_per_store_and_local_week_at_the_local_time_across_daylight_saving(
    services, clock, messenger, start, end, expected
):
    clock.now = start
    tick_until(services, clock, end, enqueue_weekly)
    enqueued = report_items(services)
    assert sorted(enqueued) == [
        f"{StepKind.PATTERN_REPORT}:store-001:{week}" for week in sorted(expected)
    ]  # not store-002
    for week, (due_at, _) in expected.items():
        # Never before the local time, and at the first tick after it.
        assert due_at <= enqueued[f"{StepKind.PATTERN_REPORT}:store-001:{week}"] < due_at + TICK
    run(services, clock)
    sent = reports_sent(messenger)
    assert len(sent) == len(expected) and len(messenger.sent) == 2 * len(expected)
    assert [subtitle(card.card).split(" (")[0] for card, _ in sent] == [period for _, period in expected.values()]


def test_nothing_before_the_local_time_and_a_repeated_tick_adds_nothing(services, clock, messenger):
    woken: list[bool] = []
    services.wake_runner = lambda *kinds: woken.append(True)
    scheduler = BackgroundScheduler(timezone="UTC")  # never started: the job is called by hand
    schedule_sweeps(scheduler, services)
    (job,) = scheduler.get_jobs()
    clock.now = datetime(2026, 11, 23, 12, 59, tzinfo=UTC)  # Mon 07:59 in New York (the default: mon 08:00)
    job.func()
    assert report_items(services) == {}
    clock.now = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
    job.func()
    job.func()  # a second tick, or another process firing too
    assert list(report_items(services)) == [f"{StepKind.PATTERN_REPORT}:store-001:2026-W48"]
    run(services, clock)
    clock.advance(600)
    job.func()
    run(services, clock)
    assert len(reports_sent(messenger)) == 1 and len(messenger.sent) == 2 and woken == [True] * 4


@pytest.mark.parametrize(
    "back_at, sent",
    [
        (datetime(2026, 11, 23, 18, 59, tzinfo=UTC), 1),  # 5 h 59 min late: still sent
        (datetime(2026, 11, 23, 19, 0, tzinfo=UTC), 0),  # 6 h late: stale, skipped like a digest
    ],
)
def test_a_process_back_within_the_catch_up_sends_the_weeks_report_and_later_skips_it(
    services, clock, messenger, back_at, sent
):
    clock.now = back_at
    enqueue_weekly(services.db, clock, services.config)
    run(services, clock)
    assert len(reports_sent(messenger)) == sent


@pytest.mark.parametrize("weekly", [{"report_enabled": False}])
def test_nothing_when_the_report_is_disabled(services, clock, messenger):
    clock.now = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
    enqueue_weekly(services.db, clock, services.config)
    run(services, clock)
    assert report_items(services) == {} and messenger.sent == []


def test_the_report_covers_the_seven_completed_days_before_its_day(services, clock, messenger):
    with UnitOfWork(services.db, write=True) as uow:
        for day, voids in (
            (date(2026, 11, 15), 100),
            (date(2026, 11, 16), 3),
            (date(2026, 11, 22), 4),
            (date(2026, 11, 23), 200),
        ):  # the day before the period, its first and last, the report day
            uow.session.add(factories.pattern_count(subject="c-17", day=day, kind="void", count=voids))
        uow.commit()
    clock.now = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
    enqueue_weekly(services.db, clock, services.config)
    run(services, clock)
    ((card_message, chart_message),) = reports_sent(messenger)
    assert list(card_validator().iter_errors(card_message.card)) == []
    assert subtitle(card_message.card).startswith("Mon 16 Nov 2026 – Sun 22 Nov 2026 (7 days)")
    cashier = card_message.card["body"][3]["items"]
    assert [item["text"] for item in cashier[:2]] == ["c-17 · new", "7 transactions, 7 exceptions (100.0%)"]
    assert card_message.markdown.startswith("**Patterns, Centro, Mon 16 Nov 2026 – Sun 22 Nov 2026 (7 days)**")
    assert chart_message.attachment.name == "patterns-store-001-2026-11-16-2026-11-22.png"
    image = Image.open(io.BytesIO(chart_message.attachment.content))
    assert image.format == "PNG" and image.size == (800, 400)

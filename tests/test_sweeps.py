"""Periodic sweeps are a row first and a job second: the scheduler only enqueues one item per sweep and
hour (idempotently, whichever process fires) and wakes the runner."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from apscheduler.schedulers.background import BackgroundScheduler

from bot.sweeps import CHECK_EVERY_S, enqueue_sweeps, period_key, schedule_sweeps, slot_key
from storage.models import WorkItem
from storage.uow import UnitOfWork


def sweep_keys(services) -> list[str]:
    with UnitOfWork(services.db) as uow:
        return sorted(w.dedupe_key for w in uow.session.query(WorkItem))


def test_period_key_is_the_utc_hour():
    moment = datetime(2026, 11, 25, 12, 59, 59, tzinfo=UTC).astimezone()
    assert period_key(moment) == "2026-11-25T12"


def test_slot_key_is_the_five_minute_utc_slot():
    assert slot_key(datetime(2026, 11, 25, 12, 59, 59, tzinfo=UTC)) == "2026-11-25T12:55"
    assert slot_key(datetime(2026, 11, 25, 13, 0, 0, tzinfo=UTC).astimezone()) == "2026-11-25T13:00"


def test_schedule_sweeps_adds_one_job_that_enqueues_this_hours_items_and_wakes_the_runner(services, clock):
    woken = []
    services.wake_runner = lambda *kinds: woken.append(True)
    scheduler = BackgroundScheduler(timezone="UTC")  # never started: the job is called by hand
    schedule_sweeps(scheduler, services)
    (job,) = scheduler.get_jobs()
    assert job.id == "sweeps" and job.trigger.interval.total_seconds() == CHECK_EVERY_S
    job.func()
    job.func()  # a second tick, or another process, in the same hour: no second item
    assert sweep_keys(services) == [
        "archive_work:2026-11-24T20:00",
        "purge:2026-11-24T20",
        "watchlist_expiry:2026-11-24T20",
    ]
    assert woken == [True, True]
    clock.advance(CHECK_EVERY_S)
    enqueue_sweeps(services.db, clock)
    assert len(sweep_keys(services)) == 4, "the archival runs every tick's slot; the hourly sweeps once an hour"
    clock.advance(3600)
    enqueue_sweeps(services.db, clock)
    assert len(sweep_keys(services)) == 7


def test_a_sweep_that_cannot_reach_the_database_waits_for_the_next_tick(clock, caplog):
    woken: list[bool] = []
    services = SimpleNamespace(db=_Unreachable(), clock=clock, wake_runner=lambda *kinds: woken.append(True))
    scheduler = BackgroundScheduler(timezone="UTC")
    schedule_sweeps(scheduler, services)
    scheduler.get_jobs()[0].func()
    assert woken == [] and "could not enqueue this hour's sweeps" in caplog.text


class _Unreachable:
    write_lock = None

    def session(self, *, write: bool):
        raise ConnectionError("database down")

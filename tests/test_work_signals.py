"""Wake-ups across processes on PostgreSQL (LISTEN/NOTIFY): a committed step wakes listeners at once."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from storage.db import Database
from storage.uow import UnitOfWork
from storage.work_signal import LISTENING, RECONNECTING, WorkSignals

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
WAIT_S = 10  # a bound on waiting for a notification, not a speed requirement


@pytest.fixture
def database(postgres_url: str) -> Iterator[Database]:
    db = Database(postgres_url)
    yield db
    db.dispose()


class Heard:
    """What a listener was told, in order, and its connection states."""

    def __init__(self) -> None:
        self.wakes: queue.Queue[list[str] | None] = queue.Queue()
        self.states: list[str] = []
        self.listening = threading.Event()

    def wake(self, kinds: list[str] | None) -> None:
        self.wakes.put(kinds)

    def state(self, state: str) -> None:
        self.states.append(state)
        if state == LISTENING:
            self.listening.set()

    def next_wake(self) -> list[str] | None:
        return self.wakes.get(timeout=WAIT_S)


@pytest.fixture
def heard(database: Database) -> Iterator[tuple[Heard, WorkSignals]]:
    heard = Heard()
    signals = WorkSignals(database.url, heard.wake, on_state=heard.state, reconnect_s=(0.1, 0.5), poll_s=0.2)
    signals.start()
    assert heard.listening.wait(WAIT_S), heard.states
    assert heard.next_wake() is None  # every lane once on connecting: catches up what was committed before
    yield heard, signals
    signals.stop()


def enqueue(db: Database, kind: str, key: str, *, commit: bool = True) -> None:
    with UnitOfWork(db, write=True) as work:
        work.work.enqueue(kind=kind, key=key, run_at=NOW, now=NOW)
        if commit:
            work.commit()


def test_a_committed_step_wakes_a_listener_of_another_connection_with_its_kinds(postgres_url, heard) -> None:
    listener, _ = heard
    other_process = Database(postgres_url)  # its own engine and pool, as a web process would have
    try:
        with UnitOfWork(other_process, write=True) as work:
            work.work.enqueue(kind="triage", key="t-1", run_at=NOW, now=NOW)
            work.work.enqueue(kind="deliver", key="m-1", run_at=NOW, now=NOW)
            work.commit()
    finally:
        other_process.dispose()
    assert listener.next_wake() == ["deliver", "triage"]


def test_a_rolled_back_step_wakes_nobody(database, heard) -> None:
    listener, signals = heard
    enqueue(database, "triage", "rolled-back", commit=False)
    enqueue(database, "deliver", "committed")
    # Notifications arrive in commit order: had the rollback sent one, it would come first.
    assert listener.next_wake() == ["deliver"]
    assert signals.received == 1


def test_a_unit_of_work_that_enqueued_nothing_sends_nothing(database, heard) -> None:
    listener, signals = heard
    with UnitOfWork(database, write=True) as work:
        work.session.execute(text("SELECT 1"))
        work.commit()
    enqueue(database, "deliver", "after")
    assert listener.next_wake() == ["deliver"]
    assert signals.received == 1


def test_a_lost_connection_is_made_again_and_wakes_every_lane_once(database, heard) -> None:
    listener, _ = heard
    listener.listening.clear()
    with database.engine.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN flp_work%' AND pid <> pg_backend_pid()"
            )
        )
    assert listener.listening.wait(WAIT_S), listener.states
    assert RECONNECTING in listener.states
    assert listener.next_wake() is None  # the catch-up after reconnecting
    enqueue(database, "notify", "after-reconnect")
    assert listener.next_wake() == ["notify"]

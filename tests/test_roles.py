"""One of each where one is needed: roles elected through lease rows (bot/roles.py, storage/process_leases.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import OperationalError

import bot.roles
from bot.roles import RoleGroup, Roles
from storage.db import Database
from storage.uow import UnitOfWork
from tests.conftest import FixedClock

LEASE_S, RENEW_S = 15.0, 5.0


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


class Process:
    """A process's Roles, driven tick by tick, with what each of its groups plays now."""

    def __init__(self, db: Database, clock: FixedClock, name: str, *, shares: int = 8):
        self.now_s = 0.0
        self.webex: frozenset[int] = frozenset()
        self.entrance: frozenset[int] = frozenset()
        self.changes = 0
        groups = [RoleGroup("webex", 1, self._play("webex")), RoleGroup("entrance", shares, self._play("entrance"))]
        self.roles = Roles(
            db, clock, groups, identity=name, lease_s=LEASE_S, renew_s=RENEW_S, monotonic=lambda: self.now_s
        )

    def _play(self, group: str):
        def play(held: frozenset[int]) -> None:
            setattr(self, group, held)
            self.changes += 1

        return play

    def tick(self) -> None:
        self.roles.tick()


def advance(clock: FixedClock, seconds: float, *processes: Process) -> None:
    clock.advance(seconds)
    for process in processes:
        process.now_s += seconds


def test_one_process_holds_the_websocket_and_another_takes_over_when_it_dies(db, clock) -> None:
    first, second = Process(db, clock, "a"), Process(db, clock, "b")
    first.tick()
    second.tick()
    assert (first.webex, second.webex) == ({0}, set())
    advance(clock, 10, first, second)  # the first dies now: it never ticks again and gives nothing back
    second.tick()
    assert second.webex == set()  # its lease has not run out yet
    advance(clock, RENEW_S + 1, second)
    second.tick()
    assert second.webex == {0}  # taken over 16 s after the last renewal: within LEASE_S + RENEW_S of the death


def test_a_renewed_lease_is_never_taken(db, clock) -> None:
    first, second = Process(db, clock, "a"), Process(db, clock, "b")
    for _ in range(10):  # 50 s: three lease lengths
        first.tick()
        second.tick()
        assert (first.webex, second.webex) == ({0}, set())
        advance(clock, RENEW_S, first, second)


def test_a_clean_stop_hands_the_roles_over_at_once(db, clock) -> None:
    first, second = Process(db, clock, "a"), Process(db, clock, "b")
    first.tick()
    second.tick()
    first.roles.stop()
    assert first.webex == set() and first.entrance == set()
    second.tick()
    assert second.webex == {0}
    assert second.entrance == set(range(8))  # alone now: every share


def test_the_entrance_shares_are_split_between_the_processes_alive_and_never_played_twice(db, clock) -> None:
    processes = [Process(db, clock, "a")]
    processes[0].tick()
    assert processes[0].entrance == set(range(8))

    def settle(rounds: int = 3) -> None:
        for _ in range(rounds):
            for process in processes:
                process.tick()
                played = [p.entrance for p in processes]
                assert sum(len(s) for s in played) == len(frozenset().union(*played)), played  # never twice
            advance(clock, RENEW_S, *processes)

    processes.append(Process(db, clock, "b"))
    settle()
    assert sorted(len(p.entrance) for p in processes) == [4, 4]
    processes.append(Process(db, clock, "c"))
    settle()
    assert sorted(len(p.entrance) for p in processes) == [2, 3, 3]
    assert frozenset().union(*(p.entrance for p in processes)) == set(range(8))

    dead = processes.pop(1)  # killed: its shares run out and the living take them over
    for _ in range(5):
        for process in processes:
            process.tick()
        advance(clock, RENEW_S, *processes)
    assert sorted(len(p.entrance) for p in processes) == [4, 4]
    assert dead.entrance  # it never knew: it is dead, and its leases ran out instead


def test_a_process_that_cannot_renew_stops_its_roles_before_its_lease_runs_out(db, clock, monkeypatch) -> None:
    process = Process(db, clock, "a")
    process.tick()
    assert process.webex == {0}

    class Unreachable(UnitOfWork):
        def __enter__(self) -> UnitOfWork:
            raise OperationalError("connect", {}, Exception("connection refused"))

    monkeypatch.setattr(bot.roles, "UnitOfWork", Unreachable)
    advance(clock, RENEW_S, process)
    process.tick()
    assert process.webex == {0}  # 5 s after the last renewal: 10 s of lease left
    advance(clock, RENEW_S + 1, process)
    process.tick()
    assert process.webex == set()  # 11 s: stopped before the 15 s lease can run out and another take it


def test_of_two_racing_for_a_run_out_lease_one_gets_it(db) -> None:
    at = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

    def hold(holder: str, now: datetime) -> bool:
        with UnitOfWork(db, write=True) as work:
            held = work.leases.hold("webex:0", holder=holder, now=now, lease_s=LEASE_S)
            work.commit()
        return held

    assert hold("a", at)
    assert not hold("b", at)
    assert hold("a", at.replace(second=10))  # renewed: now until 12:00:25
    assert not hold("b", at.replace(second=20))
    assert hold("b", at.replace(second=26))  # run out: taken
    assert not hold("a", at.replace(second=27))  # and the old holder cannot renew it back
    with UnitOfWork(db) as work:
        assert work.leases.holders("webex:", now=at.replace(second=27)) == {"webex:0": "b"}

"""The background runner over the real queue, on SQLite and PostgreSQL: one transaction per step,
back-off then dead letter, leases that protect against a second runner, and a clean stop."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

from bot.runner import Runner, RunnerSettings
from bot.steps import STEPS
from core.steps import RetryLater
from storage.db import Database
from storage.models import AuditEntry, Transaction, WorkItem
from storage.uow import UnitOfWork
from tests.conftest import transaction_body

LEASE_S = 60.0


def make_runner(services, clock, steps, dependencies=None, outcomes=None, **settings):
    return Runner(
        db=services.db,
        steps=steps,
        dependencies=dependencies or {},
        clock=clock,
        settings=RunnerSettings(**{"lease_s": LEASE_S, **settings}),
        on_step=lambda kind, outcome: (outcomes if outcomes is not None else []).append(outcome),
    )


def enqueue(services, clock, *keys, kind="job"):
    with UnitOfWork(services.db, write=True) as uow:
        for key in keys:
            uow.work.enqueue(kind=kind, key=key, run_at=clock(), now=clock())
        uow.commit()


def items(services):
    with UnitOfWork(services.db) as uow:
        return {row.dedupe_key.split(":", 1)[1]: row for row in uow.session.query(WorkItem).order_by(WorkItem.id)}


def record_effect(work, item, clock):
    work.audit.record(at=clock(), actor="test", action="step", subject_type="work_item", subject_id=str(item.id))


def effects(services):
    with UnitOfWork(services.db) as uow:
        return [int(e.subject_id) for e in uow.session.query(AuditEntry).filter_by(action="step")]


def another_process(services) -> Database:
    """Its own engine and, on SQLite, its own writer lock: what a second worker process has."""
    return Database(services.db.url.render_as_string(hide_password=False))


def test_step_effects_and_the_completion_commit_together(services, clock):
    def step(item, *, uow):
        with uow() as work:
            record_effect(work, item, clock)
            work.commit()

    enqueue(services, clock, "a")
    make_runner(services, clock, {"job": step}).run_until_idle()
    row = items(services)["a"]
    assert (row.status, row.attempts, row.completed_at, row.lease_token) == ("done", 1, clock(), None)
    assert effects(services) == [row.id]


def test_lease_lost_before_the_step_commits_rolls_its_effects_back(services, clock):
    other, stolen, outcomes = another_process(services), [], []

    def step(item, *, uow):
        with uow() as work:
            record_effect(work, item, clock)
            if not services.db.is_sqlite:
                work.session.flush()  # written; on SQLite a written transaction shuts out every other writer
            clock.advance(LEASE_S + 1)
            with UnitOfWork(other, write=True) as thief:
                stolen.extend(thief.work.claim_due(kinds={"job"}, now=clock(), lease_s=LEASE_S, limit=1))
                thief.commit()
            work.commit()

    enqueue(services, clock, "a")
    make_runner(services, clock, {"job": step}, outcomes=outcomes).run_due()
    other.dispose()
    assert outcomes == ["lease_lost"]
    assert effects(services) == [], "the step's effect was rolled back with its lost completion"
    row = items(services)["a"]
    assert [s.id for s in stolen] == [row.id]
    assert (row.status, row.attempts, row.lease_token) == ("running", 2, stolen[0].lease_token)


def test_step_late_in_a_batch_renews_its_lease_or_skips_an_item_taken_over(services, clock):
    other, ran, stolen = another_process(services), [], []

    def slow(item):
        ran.append("slow")
        clock.advance(LEASE_S + 1)  # the batch's other leases run out meanwhile; another worker takes one
        with UnitOfWork(other, write=True) as thief:
            stolen.extend(thief.work.claim_due(kinds={"job"}, now=clock(), lease_s=LEASE_S, limit=1))
            thief.commit()

    def job(item):
        ran.append(item.id)

    enqueue(services, clock, "s", kind="slow")
    enqueue(services, clock, "taken", "renewed")
    outcomes: list[str] = []
    make_runner(services, clock, {"slow": slow, "job": job}, outcomes=outcomes, batch=3).run_due()
    other.dispose()
    rows = items(services)
    assert [s.id for s in stolen] == [rows["taken"].id]
    assert ran == ["slow", rows["renewed"].id], "the item taken over is not run a second time here"
    assert outcomes == ["done", "lease_lost", "done"]
    assert (rows["taken"].status, rows["taken"].lease_token) == ("running", stolen[0].lease_token)
    assert rows["renewed"].status == "done" and rows["s"].status == "done"


def test_failing_step_backs_off_with_jitter_then_is_dead_lettered_with_its_last_error(services, clock):
    def step(item):
        raise ValueError(f"camera down on attempt {item.attempts}")

    keys = [f"k{n}" for n in range(12)]
    enqueue(services, clock, *keys)
    runner = make_runner(services, clock, {"job": step}, max_attempts=4, backoff_base_s=10, backoff_cap_s=25)
    assert runner.run_due() == len(keys)
    for attempt, ceiling in [(1, 10), (2, 20), (3, 25)]:
        delays = set()
        for row in items(services).values():
            assert (row.status, row.attempts) == ("pending", attempt)
            assert row.last_error == f"ValueError: camera down on attempt {attempt}"
            delays.add((row.next_run_at - clock()).total_seconds())
        assert all(ceiling / 2 <= d <= ceiling for d in delays), delays
        assert len(delays) > 1, "retries of one outage are spread out"
        clock.advance(min(delays) - 0.001)
        assert runner.run_due() == 0, "nothing runs before its back-off is over"
        clock.advance(max(delays) - min(delays) + 0.001)
        assert runner.run_due() == len(keys)

    rows = items(services).values()
    assert {(r.status, r.attempts, r.last_error) for r in rows} == {("dead", 4, "ValueError: camera down on attempt 4")}
    clock.advance(10**6)
    assert runner.run_due() == 0


def test_retry_later_reschedules_at_exactly_now_plus_its_delay(services, clock):
    def step(item):
        raise RetryLater("footage not indexed yet", 42.5)

    outcomes: list[str] = []
    enqueue(services, clock, "a")
    make_runner(services, clock, {"job": step}, outcomes=outcomes).run_due()
    row = items(services)["a"]
    assert row.next_run_at == clock() + timedelta(seconds=42.5)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "footage not indexed yet")
    assert outcomes == ["waiting"]


def test_step_that_does_not_commit_is_completed_by_the_runner(services, clock):
    def step(item, *, uow):
        with uow() as work:
            record_effect(work, item, clock)  # never committed: discarded

    enqueue(services, clock, "a")
    make_runner(services, clock, {"job": step}).run_until_idle()
    row = items(services)["a"]
    assert (row.status, row.attempts, row.completed_at) == ("done", 1, clock())
    assert effects(services) == []


def test_kind_without_a_step_is_never_claimed(services, clock):
    enqueue(services, clock, "known")
    enqueue(services, clock, "orphan", kind="capture_exact_v2")
    make_runner(services, clock, {"job": lambda item: None}).run_until_idle()
    rows = items(services)
    assert rows["known"].status == "done"
    assert (rows["orphan"].status, rows["orphan"].attempts, rows["orphan"].lease_token) == ("pending", 0, None)


def test_dependencies_are_injected_by_keyword_only_parameter_name(services, clock):
    received = {}
    camera = object()

    def step(item, positional=None, *, clock, camera, note="default"):
        received.update(clock=clock, camera=camera, note=note, positional=positional, item=item.id)

    enqueue(services, clock, "a")
    deps = {"clock": clock, "camera": camera, "positional": "never injected", "unrelated": object()}
    make_runner(services, clock, {"job": step}, deps).run_until_idle()
    assert received == {
        "clock": clock,
        "camera": camera,
        "note": "default",
        "positional": None,
        "item": items(services)["a"].id,
    }


def test_missing_dependency_is_an_error_on_the_item_not_a_runner_crash(services, clock):
    def needs_camera(item, *, camera):
        raise AssertionError("never called")

    enqueue(services, clock, "a")
    runner = make_runner(services, clock, {"job": needs_camera}, max_attempts=2)
    assert runner.run_due() == 1
    row = items(services)["a"]
    assert row.status == "pending"
    assert row.last_error == "TypeError: needs_camera needs camera, which nothing provides"
    clock.advance(3600)
    runner.run_due()
    assert items(services)["a"].status == "dead"


def test_stop_while_items_are_claimed_releases_the_unrun_ones(services, clock):
    ran = []

    def step(item):
        ran.append(item.id)
        runner.stop()

    enqueue(services, clock, *"abcde")
    runner = make_runner(services, clock, {"job": step}, batch=5)
    assert runner.run_due() == 5
    rows = items(services)
    assert ran == [rows["a"].id]
    assert (rows["a"].status, rows["a"].attempts) == ("done", 1)
    assert {(r.status, r.attempts, r.lease_token) for k, r in rows.items() if k != "a"} == {("pending", 0, None)}


def test_run_forever_returns_after_stop(services, clock):
    def step(item):
        runner.stop()

    enqueue(services, clock, "a")
    runner = make_runner(services, clock, {"job": step})
    thread = threading.Thread(target=runner.run_forever)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert items(services)["a"].status == "done"


def test_step_whose_attempts_never_finish_is_dead_lettered_without_running_again(services, clock):
    """A step that kills its process each time must not be retried forever."""
    enqueue(services, clock, "a")
    for _ in range(3):  # claimed by workers that died mid-step
        with UnitOfWork(services.db, write=True) as uow:
            assert uow.work.claim_due(kinds={"job"}, now=clock(), lease_s=LEASE_S, limit=1)
            uow.commit()
        clock.advance(LEASE_S + 1)
    ran = []
    make_runner(services, clock, {"job": ran.append}, max_attempts=3).run_until_idle()
    row = items(services)["a"]
    assert ran == []
    assert row.status == "dead" and "attempt 3 never finished" in row.last_error


def test_two_runners_in_two_threads_never_run_the_same_item_twice(services, clock):
    runs: Counter[int] = Counter()
    by_runner: Counter[str] = Counter()
    lock = threading.Lock()

    def step(item, *, uow):
        with lock:
            runs[item.id] += 1
            by_runner[threading.current_thread().name] += 1
        with uow() as work:
            record_effect(work, item, clock)
            work.commit()

    enqueue(services, clock, *(f"k{n}" for n in range(200)))
    runners = [make_runner(services, clock, {"job": step}, batch=5) for _ in range(2)]
    start, errors = threading.Barrier(2), []

    def run(runner: Runner) -> None:
        try:
            start.wait()
            runner.run_until_idle()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(r,), name=f"runner-{n}") for n, r in enumerate(runners)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads) and errors == []
    assert len(runs) == 200 and set(runs.values()) == {1}
    assert sorted(effects(services)) == sorted(runs)
    assert {(r.status, r.attempts) for r in items(services).values()} == {("done", 1)}
    assert len(by_runner) == 2, f"both runners took work: {by_runner}"


def test_triage_step_end_to_end_from_signed_post_to_stored_decision(post_signed, services, clock):
    assert post_signed("/api/v1/transactions", transaction_body()).status_code == 202
    runner = Runner(db=services.db, steps=STEPS, dependencies=services.dependencies(), clock=clock)
    runner.run_until_idle()

    def state():
        with UnitOfWork(services.db) as uow:
            t = uow.session.get(Transaction, "T-2026-000123")
            work = [(i.kind, i.status, i.attempts, i.completed_at) for i in uow.work.for_transaction("T-2026-000123")]
            return (t.triage_decision, t.triage_reason, t.status, t.status_reason), work

    (decision, reason, status, status_reason), work = state()
    assert decision == "capture" and "risk score 72" in reason
    assert (status, status_reason) == ("skipped", "camera off: MERAKI_DASHBOARD_API_KEY is not set")
    assert work[0] == ("triage", "done", 1, clock())

    before = state()
    clock.advance(3600)
    assert runner.run_due() == 0
    assert state() == before


def test_a_step_that_only_waits_gives_its_attempt_back_and_is_never_dead_lettered(services, clock):
    waits = []

    def step(item):
        waits.append(item.attempts)
        if len(waits) < 20:  # far past the runner's limit of 8 attempts
            raise RetryLater("waiting for the thread's first message", 5.0, waiting=True)

    enqueue(services, clock, "a")
    runner = make_runner(services, clock, {"job": step})
    for _ in range(20):
        runner.run_due()
        clock.advance(5)
    assert waits == [1] * 20  # each claim is the first attempt again
    assert items(services)["a"].status == "done"


def test_a_heartbeat_keeps_a_long_steps_lease_across_two_lease_lengths(services):
    # Real time here: the lease is 0.6 s and the step takes 1.5 s, so without renewals another runner would take it.
    from core.clock import system_clock

    started, other_claims = threading.Event(), []

    def long_step(item):
        started.set()
        threading.Event().wait(1.5)

    with UnitOfWork(services.db, write=True) as uow:
        now = system_clock()
        uow.work.enqueue(kind="job", key="long", run_at=now, now=now)
        uow.commit()
    runner = Runner(
        db=services.db,
        steps={"job": long_step},
        dependencies={},
        clock=system_clock,
        settings=RunnerSettings(lease_s=0.6),
    )
    worker = threading.Thread(target=runner.run_due)
    worker.start()
    assert started.wait(5)
    for _ in range(4):  # claims by a second runner at 0.4, 0.8, 1.2 and 1.6 s of the step's 1.5 s
        threading.Event().wait(0.4)
        with UnitOfWork(services.db, write=True) as uow:
            other_claims += uow.work.claim_due(kinds={"job"}, now=system_clock(), lease_s=0.6, limit=1)
            uow.commit()
    worker.join(5)
    assert other_claims == []
    (row,) = items(services).values()
    assert (row.status, row.attempts) == ("done", 1)

"""The work_items queue on its own: enqueue once, claim due work with a lease, finish only while holding it."""

from __future__ import annotations

from datetime import timedelta

from storage.models import WorkItem
from storage.uow import UnitOfWork

LEASE_S = 60.0


def enqueue(services, clock, kind, key, *, delay_s=0.0, transaction_id=None):
    with UnitOfWork(services.db, write=True) as uow:
        uow.work.enqueue(
            kind=kind, key=key, transaction_id=transaction_id, run_at=clock() + timedelta(seconds=delay_s), now=clock()
        )
        uow.commit()


def claim(services, clock, kinds, limit=10):
    with UnitOfWork(services.db, write=True) as uow:
        claimed = uow.work.claim_due(kinds=set(kinds), now=clock(), lease_s=LEASE_S, limit=limit)
        uow.commit()
    return claimed


def finish(services, change):
    """Run ``change(queue)`` in its own unit and commit; returns what it returned."""
    with UnitOfWork(services.db, write=True) as uow:
        result = change(uow.work)
        uow.commit()
    return result


def rows(services):
    with UnitOfWork(services.db) as uow:
        return {row.dedupe_key: row for row in uow.session.query(WorkItem).all()}


def test_enqueue_is_idempotent_per_kind_and_key_even_after_done(services, clock):
    enqueue(services, clock, "triage", "T-1")
    enqueue(services, clock, "triage", "T-1", delay_s=500)
    enqueue(services, clock, "capture_live", "T-1")
    assert set(rows(services)) == {"triage:T-1", "capture_live:T-1"}
    assert rows(services)["triage:T-1"].next_run_at == clock(), "the second enqueue changed nothing"

    [item] = claim(services, clock, {"triage"})
    assert finish(services, lambda q: q.complete(item, now=clock()))
    enqueue(services, clock, "triage", "T-1")
    row = rows(services)["triage:T-1"]
    assert (row.status, row.attempts) == ("done", 1)
    assert len(rows(services)) == 2


def test_claim_due_takes_only_due_items_of_the_given_kinds_in_run_order_up_to_the_limit(services, clock):
    enqueue(services, clock, "triage", "late", delay_s=-10)
    enqueue(services, clock, "triage", "earliest", delay_s=-30)
    enqueue(services, clock, "triage", "middle", delay_s=-20)
    enqueue(services, clock, "triage", "future", delay_s=60)
    enqueue(services, clock, "notify", "other-kind", delay_s=-100)

    first = claim(services, clock, {"triage"}, limit=2)
    assert [rows(services)[f"triage:{k}"].id for k in ("earliest", "middle")] == [i.id for i in first]
    assert all(i.kind == "triage" and i.attempts == 1 and i.lease_token for i in first)
    assert len({i.lease_token for i in first}) == 2
    stored = rows(services)["triage:earliest"]
    assert stored.status == "running" and stored.attempts == 1
    assert stored.lease_until == clock() + timedelta(seconds=LEASE_S)
    assert stored.lease_token == first[0].lease_token

    rest = claim(services, clock, {"triage"}, limit=10)
    assert [i.id for i in rest] == [rows(services)["triage:late"].id]
    assert claim(services, clock, {"triage"}) == [], "running and future items are not due"
    assert claim(services, clock, set()) == []
    other = rows(services)["notify:other-kind"]
    assert (other.status, other.attempts) == ("pending", 0)


def test_item_becomes_due_when_the_clock_reaches_next_run_at(services, clock):
    enqueue(services, clock, "capture_exact", "T-1", delay_s=180)
    assert claim(services, clock, {"capture_exact"}) == []
    clock.advance(180)
    assert len(claim(services, clock, {"capture_exact"})) == 1


def test_expired_lease_is_claimable_again_and_the_old_claimer_cannot_finish(services, clock):
    enqueue(services, clock, "triage", "T-1")
    [old] = claim(services, clock, {"triage"})
    clock.advance(LEASE_S - 1)
    assert claim(services, clock, {"triage"}) == [], "a live lease is not taken over"

    clock.advance(2)
    [new] = claim(services, clock, {"triage"})
    assert new.id == old.id and new.attempts == 2 and new.lease_token != old.lease_token
    assert finish(services, lambda q: q.complete(old, now=clock())) is False
    assert finish(services, lambda q: q.reschedule(old, run_at=clock(), error="x")) is False
    assert finish(services, lambda q: q.bury(old, now=clock(), error="x")) is False
    assert finish(services, lambda q: q.release(old)) is False
    assert rows(services)["triage:T-1"].status == "running"

    assert finish(services, lambda q: q.complete(new, now=clock())) is True
    row = rows(services)["triage:T-1"]
    assert (row.status, row.attempts, row.completed_at, row.lease_token) == ("done", 2, clock(), None)
    assert finish(services, lambda q: q.complete(new, now=clock())) is False, "completing twice is refused"


def test_release_gives_the_attempt_back_and_the_item_is_due_again(services, clock):
    enqueue(services, clock, "triage", "T-1")
    [item] = claim(services, clock, {"triage"})
    assert finish(services, lambda q: q.release(item)) is True
    row = rows(services)["triage:T-1"]
    assert (row.status, row.attempts, row.lease_token, row.lease_until) == ("pending", 0, None, None)
    [again] = claim(services, clock, {"triage"})
    assert again.attempts == 1


def test_reschedule_keeps_the_error_and_bury_dead_letters(services, clock):
    enqueue(services, clock, "triage", "T-1")
    [item] = claim(services, clock, {"triage"})
    later = clock() + timedelta(seconds=30)
    assert finish(services, lambda q: q.reschedule(item, run_at=later, error="E" * 2000))
    row = rows(services)["triage:T-1"]
    assert (row.status, row.next_run_at, row.attempts) == ("pending", later, 1)
    assert row.last_error == "E" * 1000, "errors are cut to the column's size"
    assert claim(services, clock, {"triage"}) == []

    clock.advance(30)
    [item] = claim(services, clock, {"triage"})
    assert finish(services, lambda q: q.bury(item, now=clock(), error="ValueError: camera down"))
    row = rows(services)["triage:T-1"]
    assert (row.status, row.last_error, row.completed_at) == ("dead", "ValueError: camera down", clock())
    clock.advance(10_000)
    assert claim(services, clock, {"triage"}) == [], "dead items never run again by themselves"


def test_renew_extends_a_held_lease_and_refuses_a_lost_one(services, clock):
    enqueue(services, clock, "triage", "T-1")
    [item] = claim(services, clock, {"triage"})
    clock.advance(LEASE_S - 5)
    assert finish(services, lambda q: q.renew(item, now=clock(), lease_s=LEASE_S)) is True
    clock.advance(10)
    assert claim(services, clock, {"triage"}) == [], "the renewed lease still holds"
    clock.advance(LEASE_S)
    [thief] = claim(services, clock, {"triage"})
    assert finish(services, lambda q: q.renew(item, now=clock(), lease_s=LEASE_S)) is False
    assert rows(services)["triage:T-1"].lease_token == thief.lease_token


def test_counts_and_oldest_due(services, clock):
    for key in ("a", "b", "c", "d"):
        enqueue(services, clock, "triage", key, delay_s=-1 if key == "a" else 0)
    enqueue(services, clock, "triage", "future", delay_s=60)
    [a, b, c] = claim(services, clock, {"triage"}, limit=3)
    finish(services, lambda q: q.complete(a, now=clock()))
    finish(services, lambda q: q.bury(b, now=clock(), error="boom"))
    assert finish(services, lambda q: q.counts()) == {"done": 1, "dead": 1, "running": 1, "pending": 2}
    assert finish(services, lambda q: q.oldest_due(now=clock())) == clock(), "d is due; future is not"
    finish(services, lambda q: q.release(c))
    assert finish(services, lambda q: q.counts())["pending"] == 3


def test_for_transaction_lists_its_items_in_order(services, clock):
    enqueue(services, clock, "triage", "T-1", transaction_id="T-1")
    enqueue(services, clock, "capture_exact", "T-1", transaction_id="T-1", delay_s=180)
    enqueue(services, clock, "triage", "T-2", transaction_id="T-2")
    with UnitOfWork(services.db) as uow:
        assert [i.kind for i in uow.work.for_transaction("T-1")] == ["triage", "capture_exact"]

"""The work table stays small: done steps move to work_history after ``runner.finished_keep_hours``, their keys
still make a second enqueue a no-op, readers see both tables, dead steps stay for the operator, and the history
goes after retention's window; on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from bot import work_admin
from handlers.routine.work_archive import job_archive_work
from storage.models import WorkHistory, WorkItem
from storage.uow import UnitOfWork
from storage.work_queue import ClaimedItem

HOUR = 3600.0
ARCHIVE_ITEM = ClaimedItem(0, "archive_work", None, None, 1, "token")


@pytest.fixture
def business(business: dict) -> dict:
    return {**business, "runner": {"finished_keep_hours": 2}}


def enqueue(services, clock, kind, key, *, transaction_id=None, ref_id=None) -> None:
    with UnitOfWork(services.db, write=True) as uow:
        uow.work.enqueue(kind=kind, key=key, transaction_id=transaction_id, ref_id=ref_id, run_at=clock(), now=clock())
        uow.commit()


def run_all(services, clock, kinds, *, die: bool = False) -> None:
    """Claim every due step of ``kinds`` and complete it (or bury it, ``die``)."""
    with UnitOfWork(services.db, write=True) as uow:
        for item in uow.work.claim_due(kinds=set(kinds), now=clock(), lease_s=60, limit=100):
            if die:
                uow.work.bury(item, now=clock(), error=f"gave up on {item.kind}")
            else:
                uow.work.complete(item, now=clock())
        uow.commit()


def archive(services, clock) -> None:
    job_archive_work(
        ARCHIVE_ITEM, write_uow=lambda: UnitOfWork(services.db, write=True), config=services.config, clock=clock
    )


def tables(services) -> tuple[list[str], list[str]]:
    """The dedupe keys in work_items and in work_history."""
    with UnitOfWork(services.db) as uow:
        queued = sorted(uow.session.scalars(select(WorkItem.dedupe_key)))
        moved = sorted(uow.session.scalars(select(WorkHistory.dedupe_key)))
    return queued, moved


def test_done_steps_move_after_the_configured_hours_and_not_before(services, clock):
    enqueue(services, clock, "triage", "T-1", transaction_id="T-1")
    enqueue(services, clock, "analyze", "T-1", transaction_id="T-1", ref_id="S-1")
    run_all(services, clock, {"triage", "analyze"})
    enqueue(services, clock, "capture_exact", "T-1", transaction_id="T-1")  # still pending: never moves

    clock.advance(2 * HOUR - 1)
    archive(services, clock)
    assert tables(services) == (["analyze:T-1", "capture_exact:T-1", "triage:T-1"], []), "not yet two hours"

    clock.advance(2)
    archive(services, clock)
    assert tables(services) == (["capture_exact:T-1"], ["analyze:T-1", "triage:T-1"])
    with UnitOfWork(services.db) as uow:
        moved = uow.session.get(WorkHistory, "analyze:T-1")
    assert moved is not None
    assert (moved.kind, moved.transaction_id, moved.ref_id, moved.attempts, moved.status) == (
        "analyze",
        "T-1",
        "S-1",
        1,
        "done",
    )
    assert moved.completed_at == clock() - timedelta(seconds=2 * HOUR + 1)


def test_enqueue_of_a_moved_key_is_still_a_no_op(services, clock):
    enqueue(services, clock, "purge", "2026-11-24T20")
    run_all(services, clock, {"purge"})
    clock.advance(3 * HOUR)
    archive(services, clock)
    assert tables(services) == ([], ["purge:2026-11-24T20"])

    enqueue(services, clock, "purge", "2026-11-24T20")
    assert tables(services) == ([], ["purge:2026-11-24T20"]), "the key is in the history: nothing new to run"
    enqueue(services, clock, "purge", "2026-11-24T23")
    assert tables(services) == (["purge:2026-11-24T23"], ["purge:2026-11-24T20"])


def test_readers_see_moved_steps_beside_queued_ones(services, clock):
    enqueue(services, clock, "erase_person", "P-1", ref_id="P-1")
    enqueue(services, clock, "triage", "T-1", transaction_id="T-1")
    run_all(services, clock, {"erase_person", "triage"})
    clock.advance(3 * HOUR)
    archive(services, clock)
    enqueue(services, clock, "erase_person", "P-1:again:1", ref_id="P-1")
    enqueue(services, clock, "decide", "T-1", transaction_id="T-1")

    with UnitOfWork(services.db) as uow:
        assert uow.work.count(kind="erase_person", ref_id="P-1") == 2
        first = uow.work.first(kind="erase_person", ref_id="P-1")
        assert first is not None and (first.dedupe_key, first.status) == ("erase_person:P-1", "done")
        steps = uow.work.for_transaction("T-1")
        assert [(w.kind, w.status) for w in steps] == [("triage", "done"), ("decide", "pending")]
        assert [w.kind for w in uow.work.queued_for_transaction("T-1")] == ["decide"]
        assert [w.dedupe_key for w in uow.work.for_kind("erase_person")] == [
            "erase_person:P-1",
            "erase_person:P-1:again:1",
        ]


def test_the_read_api_still_shows_a_moved_step(services, clock, client, post_signed, auth):
    from tests.conftest import transaction_body

    body = transaction_body(transaction_id="T-moved")
    assert post_signed("/api/v1/transactions", body).status_code == 202
    run_all(services, clock, {"triage"})
    clock.advance(3 * HOUR)
    archive(services, clock)
    assert "triage:T-moved" in tables(services)[1]
    steps = client.get("/api/v1/transactions/T-moved", headers=auth).get_json()["correlation"]["steps"]
    assert {"kind": "triage", "status": "done", "attempts": 1, "last_error": None, "next_run_at": None} in steps


def test_dead_steps_stay_in_the_work_table_for_the_operator(services, clock, capsys):
    enqueue(services, clock, "deliver", "O-9", ref_id="O-9")
    run_all(services, clock, {"deliver"}, die=True)
    clock.advance(30 * 24 * HOUR)
    archive(services, clock)
    assert tables(services) == (["deliver:O-9"], [])
    assert work_admin.run(services.config.env.database_url, "list", []) == 0
    assert "gave up on deliver" in capsys.readouterr().out


def test_history_goes_after_the_transactions_window(services, clock):
    enqueue(services, clock, "triage", "T-old")
    run_all(services, clock, {"triage"})
    clock.advance(3 * HOUR)
    archive(services, clock)
    assert tables(services) == ([], ["triage:T-old"])
    days = services.config.business.retention.transactions_days
    clock.advance(days * 24 * HOUR - 3 * HOUR - 1)
    archive(services, clock)
    assert tables(services) == ([], ["triage:T-old"]), "a second short of its window"
    clock.advance(2)
    archive(services, clock)
    assert tables(services) == ([], [])


def test_counts_cover_both_tables(services, clock):
    for key in ("a", "b", "c", "d"):
        enqueue(services, clock, "triage", key)
    run_all(services, clock, {"triage"})  # four done
    enqueue(services, clock, "deliver", "x")
    run_all(services, clock, {"deliver"}, die=True)
    clock.advance(3 * HOUR)
    archive(services, clock)  # the four move
    enqueue(services, clock, "triage", "e")
    run_all(services, clock, {"triage"})  # one done, not moved
    enqueue(services, clock, "triage", "f")  # pending
    enqueue(services, clock, "analyze", "g")
    with UnitOfWork(services.db, write=True) as uow:
        uow.work.claim_due(kinds={"analyze"}, now=clock(), lease_s=60, limit=1)  # running
        uow.commit()
    if not services.db.is_sqlite:
        # The done figure is the planner's estimate there: what autovacuum's ANALYZE would have left.
        with services.db.engine.connect() as conn:
            conn.execute(text("ANALYZE work_items, work_history"))
    with UnitOfWork(services.db) as uow:
        assert uow.work.counts() == {"pending": 1, "running": 1, "dead": 1, "done": 5}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite runs one writer at a time
def test_a_key_moved_while_it_is_enqueued_is_not_queued_again(services, clock):
    """PostgreSQL: an archiver commits its move while an enqueue of the same key waits on the row."""
    enqueue(services, clock, "daily_digest", "store-1:2026-11-24")
    run_all(services, clock, {"daily_digest"})
    clock.advance(3 * HOUR)
    archiver = UnitOfWork(services.db, write=True).__enter__()
    try:
        assert archiver.work.archive_finished(before=clock(), limit=10) == 1  # deleted, not yet committed
        blocked = threading.Thread(target=enqueue, args=(services, clock, "daily_digest", "store-1:2026-11-24"))
        blocked.start()
        blocked.join(0.5)
        assert blocked.is_alive(), "the enqueue waits for the archiver's delete"
        archiver.commit()
    finally:
        archiver.__exit__(None, None, None)
    blocked.join(10)
    assert tables(services) == ([], ["daily_digest:store-1:2026-11-24"])


def test_the_claim_and_archival_use_partial_indexes(services):
    with services.db.engine.connect() as conn:
        if services.db.is_sqlite:
            rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE tbl_name = 'work_items'")).all()
        else:
            rows = conn.execute(text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'work_items'")).all()
    definitions = {name: sql for name, sql in rows if sql and name.startswith("ix_work_items_")}
    assert "pending" in definitions["ix_work_items_claimable"] and "WHERE" in definitions["ix_work_items_claimable"]
    assert "'done'" in definitions["ix_work_items_finished"] and "'dead'" in definitions["ix_work_items_dead"]


def test_a_purged_alerts_notify_key_leaves_the_history_too(services, clock):
    """SQLite may give a purged alert's id out again: its old notify step must not make the new one's a no-op."""
    from tests import factories

    factories.add(services.db, factories.alert(transaction_id=None, at=clock()))
    with UnitOfWork(services.db) as uow:
        (alert_id,) = uow.session.scalars(text("SELECT id FROM alerts"))
    enqueue(services, clock, "notify_alert", str(alert_id), ref_id=str(alert_id))
    run_all(services, clock, {"notify_alert"})
    clock.advance(3 * HOUR)
    archive(services, clock)
    assert tables(services) == ([], [f"notify_alert:{alert_id}"])
    with UnitOfWork(services.db, write=True) as uow:
        assert uow.retention.alerts(before=clock(), limit=10).rows == 1
        uow.commit()
    assert tables(services) == ([], [])


def test_one_run_moves_batch_after_batch_until_none_is_left(services, clock, monkeypatch):
    monkeypatch.setattr("storage.work_queue.SQLITE_BATCH", 2)
    monkeypatch.setattr("storage.work_queue.POSTGRES_BATCH", 2)
    for n in range(5):
        enqueue(services, clock, "triage", f"T-{n}")
    run_all(services, clock, {"triage"})
    clock.advance(3 * HOUR)
    archive(services, clock)
    assert tables(services) == ([], [f"triage:T-{n}" for n in range(5)]), "three batches: 2, 2 and 1"

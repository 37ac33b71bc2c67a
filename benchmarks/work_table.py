"""The work table with millions of finished steps (issue #15, item 5): claim, counts and archival on PostgreSQL.

    .venv/bin/python benchmarks/work_table.py [--finished 1000000] [--recent 100000] [--claimable 5000]
    .venv/bin/python benchmarks/work_table.py --finished 10000000        # the 2,000-store chain's 90 days

Two layouts, each in a fresh database on ``--url`` / ``FLP_TEST_POSTGRES_URL`` (dropped afterwards):

- before: migrated to 0005 (index ``ix_work_items_due (status, next_run_at)``), every finished step still in
  ``work_items``, counts by ``SELECT status, count(*) … GROUP BY status``, as the code did until 0006;
- after: migrated to head, ``--finished`` steps in ``work_history`` and the last ``--recent`` done ones still
  in ``work_items`` (those finished within ``runner.finished_keep_hours``), counts by ``WorkQueue.counts``.

Both have ``--claimable`` pending steps (camera and pipeline kinds, 2,000 stores, due) and a tenth as many
running. Rows are made with ``generate_series`` and VACUUM ANALYZE follows, as autovacuum would have done.
Measured (median of ``--repeat`` runs, ``time.perf_counter``): a camera lane's claim of 20 (``claim_due`` and
the flush of its UPDATE, rolled back so every run sees the same rows), the counts of ``/metrics``, and
``oldest_due``; then, after only, an enqueue of a new step with its commit, ``archive_finished`` and
``purge_history`` in batches of ``storage.work_history.POSTGRES_BATCH`` (rows a second). EXPLAIN plans of the
claim and the counts are printed. Talks only to the PostgreSQL server of the URL.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from psycopg import ClientCursor
from sqlalchemy import event, text

from core.steps import CATALOGUE, Lane
from storage import migrate
from storage.db import Database
from storage.uow import UnitOfWork
from storage.work_history import POSTGRES_BATCH as BATCH
from tests.postgres import scratch_database

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
CAMERA = {kind.value for kind, spec in CATALOGUE.items() if spec.lane == Lane.CAMERA}
STEP_KINDS = "(ARRAY['triage','capture_live','analyze','decide','notify_alert','deliver','capture_exact'])"
OLD_COUNTS = "SELECT status, count(*) FROM work_items GROUP BY status"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="PostgreSQL server URL (default: FLP_TEST_POSTGRES_URL)")
    parser.add_argument("--finished", type=int, default=1_000_000, help="finished steps (90 days of them)")
    parser.add_argument("--recent", type=int, default=100_000, help="after: done steps not yet moved")
    parser.add_argument("--claimable", type=int, default=5_000, help="pending steps, due")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    server = args.url or os.environ.get("FLP_TEST_POSTGRES_URL")
    if not server:
        raise SystemExit("PostgreSQL: pass --url or set FLP_TEST_POSTGRES_URL (./run test starts one as root)")
    print(f"{args.finished:,} finished steps, {args.claimable:,} pending, {args.claimable // 10:,} running")
    for layout in ("before", "after"):
        with scratch_database(server, "flp_bench_work") as url:
            migrate.upgrade(url, "0005" if layout == "before" else "head")
            db = Database(url)
            try:
                started = time.perf_counter()
                load(db, layout, args)
                print(f"\n== {layout} (loaded in {time.perf_counter() - started:.0f} s) ==")
                measure(db, layout, args)
            finally:
                db.dispose()


def load(db: Database, layout: str, args: argparse.Namespace) -> None:
    finished, recent = (args.finished + args.recent, 0) if layout == "before" else (args.finished, args.recent)
    done = (
        f"{STEP_KINDS}[1 + g % 7], 'k:' || g, 'T-' || (g / 5), 'store-' || (g % 2000), 1, "
        f"CAST(:now AS timestamptz) - interval '90 days' * (1 - g::float / :n)"
    )
    with db.engine.begin() as conn:
        if layout == "before":
            conn.execute(
                text(
                    "INSERT INTO work_items (kind, dedupe_key, transaction_id, store_id, attempts, completed_at, "
                    "status, priority, next_run_at, created_at) "
                    f"SELECT {done}, 'done', 5, :now, :now FROM generate_series(1, :n) AS g"
                ),
                {"n": finished, "now": NOW},
            )
        else:
            conn.execute(
                text(
                    "INSERT INTO work_history (kind, dedupe_key, transaction_id, store_id, attempts, completed_at, "
                    f"item_id, created_at) SELECT {done}, g, :now FROM generate_series(1, :n) AS g"
                ),
                {"n": finished, "now": NOW},
            )
            conn.execute(
                text(
                    "INSERT INTO work_items (kind, dedupe_key, transaction_id, store_id, attempts, completed_at, "
                    f"status, priority, next_run_at, created_at) SELECT {STEP_KINDS}[1 + g % 7], 'r:' || g, "
                    "'T-r' || (g / 5), 'store-' || (g % 2000), 1, :now - interval '1 second' * (g % 3600), "
                    "'done', 5, :now, :now FROM generate_series(1, :n) AS g"
                ),
                {"n": recent, "now": NOW},
            )
        conn.execute(
            text(
                "INSERT INTO work_items (kind, dedupe_key, transaction_id, store_id, attempts, status, priority, "
                "next_run_at, created_at, lease_token, lease_until) "
                "SELECT (ARRAY['capture_live','capture_exact','triage','decide'])[1 + g % 4], 'p:' || g, "
                "'T-p' || g, 'store-' || (g % 2000), CASE WHEN g % 11 = 0 THEN 1 ELSE 0 END, "
                "CASE WHEN g % 11 = 0 THEN 'running' ELSE 'pending' END, (ARRAY[0, 8, 5, 5])[1 + g % 4], "
                ":now - interval '1 second' * (g % 600), :now, "
                "CASE WHEN g % 11 = 0 THEN 'x' END, CASE WHEN g % 11 = 0 THEN :now + interval '2 minutes' END "
                "FROM generate_series(1, :n) AS g"
            ),
            {"n": args.claimable + args.claimable // 10, "now": NOW},
        )
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def measure(db: Database, layout: str, args: argparse.Namespace) -> None:
    def claim() -> None:
        with UnitOfWork(db, write=True) as uow:
            assert len(uow.work.claim_due(kinds=CAMERA, now=NOW, lease_s=120, limit=20)) == 20
            uow.session.flush()  # the claim's UPDATE; closing the unit rolls it back

    def counts() -> None:
        with UnitOfWork(db) as uow:
            if layout == "before":
                uow.session.execute(text(OLD_COUNTS)).all()
            else:
                uow.work.counts()

    def oldest() -> None:
        with UnitOfWork(db) as uow:
            uow.work.oldest_due(now=NOW)

    report("claim 20 (camera lane)", claim, args.repeat)
    report("counts (/metrics, status)", counts, args.repeat)
    report("oldest_due", oldest, args.repeat)
    with UnitOfWork(db) as uow:
        if layout == "after":
            print(f"  counts: {uow.work.counts()}")
        explain(uow, "claim", claim_sql(uow))
        for statement in [OLD_COUNTS] if layout == "before" else counts_sql():
            explain(uow, "counts", statement)
    if layout == "after":
        enqueue_and_archive(db, args)


def enqueue_and_archive(db: Database, args: argparse.Namespace) -> None:
    serial = iter(range(10**9))

    def enqueue() -> None:
        with UnitOfWork(db, write=True) as uow:
            uow.work.enqueue(kind="triage", key=f"new-{next(serial)}", run_at=NOW, now=NOW)
            uow.commit()

    report("enqueue a new step + commit", enqueue, args.repeat * 10)

    def moved_in_batches(step: Callable[[UnitOfWork], int]) -> tuple[int, float]:
        total, started = 0, time.perf_counter()
        while True:
            with UnitOfWork(db, write=True) as uow:
                n = step(uow)
                uow.commit()
            total += n
            if n < BATCH:
                return total, time.perf_counter() - started

    keep = NOW + timedelta(hours=2)  # every recent done step is past its keep time
    moved, seconds = moved_in_batches(lambda uow: uow.work.archive_finished(before=keep, limit=BATCH))
    print(f"  archive: {moved:,} moved in {seconds:.1f} s = {moved / seconds:,.0f} rows/s (batches of {BATCH})")
    cutoff = NOW - timedelta(days=90 * (1 - args.recent / args.finished))  # the oldest --recent of the history
    purged, seconds = moved_in_batches(lambda uow: uow.work.purge_history(before=cutoff, limit=BATCH))
    print(f"  history purge: {purged:,} deleted in {seconds:.1f} s = {purged / seconds:,.0f} rows/s")


def claim_sql(uow: UnitOfWork) -> str:
    """The claim's SELECT as PostgreSQL receives it, captured from one run (rolled back)."""
    captured: list[str] = []
    connection = uow.session.connection()

    def keep(conn, cursor, statement, parameters, context, executemany):
        if "row_number" in statement and not captured:
            captured.append(ClientCursor(cursor.connection).mogrify(statement, parameters))

    event.listen(connection, "before_cursor_execute", keep)
    try:
        uow.work.claim_due(kinds=CAMERA, now=NOW, lease_s=120, limit=20)
    finally:
        event.remove(connection, "before_cursor_execute", keep)
        uow.session.rollback()
    return captured[0]


def counts_sql() -> list[str]:
    return [
        "SELECT status, count(*) FROM work_items WHERE status IN ('pending', 'running') GROUP BY status",
        "SELECT count(*) FROM work_items WHERE status = 'dead'",
    ]


def explain(uow: UnitOfWork, what: str, statement: str) -> None:
    plan = uow.session.execute(text(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {statement}")).scalars().all()
    print(f"  EXPLAIN {what}:")
    for line in plan:
        if "Scan" in line or "Execution Time" in line:
            print(f"    {line.strip()[:150]}")


def report(what: str, run: Callable[[], None], repeat: int) -> None:
    run()  # warm-up: statement compilation, caches
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    print(f"  {what:<30} median {statistics.median(times):8.2f} ms   p95 {p95:8.2f} ms")


if __name__ == "__main__":
    main()

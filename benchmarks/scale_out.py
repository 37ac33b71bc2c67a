"""Pictures per second with 1, 2 and 4 workers: real ``web`` and ``worker`` processes on PostgreSQL and S3.

    FLP_TEST_POSTGRES_URL=postgresql+psycopg://flp:flp@127.0.0.1:5432/flp_test \\
        .venv/bin/python benchmarks/scale_out.py                       # 1, 2, 4 workers; 4 organisations
    .venv/bin/python benchmarks/scale_out.py --workers 1,2 --orgs 1    # where one organisation's budget binds

For each number of workers: a fresh database on the PostgreSQL server of FLP_TEST_POSTGRES_URL, a bucket on
moto's S3 server (in this process), the camera stand-in with one organisation per store (Meraki's 10 requests/s
each) and a picture ready 1.5 s after ``generateSnapshot``, the Webex REST and websocket stand-ins. One ``web``
takes a burst of ``--payments`` payments that triage pictures, spread over the stores; the workers capture them.
Printed per run: live pictures stored, pictures per second (the first payment's arrival to the last picture
stored), the time to the median and last picture, and the load average. Every process has an empty DATA_DIR of
its own; evidence goes to S3. Only 127.0.0.1. Exit status 0 when every run stored every picture.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import func, select

from storage.models import Snapshot, Transaction
from tests.postgres import scratch_database
from tests.scale_out import Deployment
from tests.served import wait_for


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,4", help="worker counts to run, comma-separated (default 1,2,4)")
    parser.add_argument("--orgs", type=int, default=4, help="Meraki organisations, one store each (default 4)")
    parser.add_argument("--registers", type=int, default=10, help="registers per store (default 10)")
    parser.add_argument("--payments", type=int, default=160, help="pictured payments per run (default 160)")
    parser.add_argument("--wait", type=float, default=300, help="give up on missing pictures after (default 300 s)")
    args = parser.parse_args(argv)
    server_url = os.environ.get("FLP_TEST_POSTGRES_URL")
    if not server_url:
        parser.error("set FLP_TEST_POSTGRES_URL to a PostgreSQL server this benchmark may create databases on")
    from moto.server import ThreadedMotoServer

    from tests.s3 import S3Server, free_port

    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "scale-out-access-key",
            "AWS_SECRET_ACCESS_KEY": "scale-out-secret-key",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    s3 = S3Server(f"http://127.0.0.1:{port}")
    results = []
    try:
        for workers in [int(n) for n in args.workers.split(",")]:
            results.append(_run(args, workers, server_url, s3))
    finally:
        moto.stop()
    print()
    print(f"{'workers':>7} {'pictures':>9} {'pictures/s':>11} {'p50 s':>7} {'last s':>7} {'load':>6}")
    for row in results:
        print(
            f"{row['workers']:>7} {row['pictures']:>4}/{row['expected']:<4} {row['per_s']:>11.1f} "
            f"{row['p50_s']:>7.1f} {row['last_s']:>7.1f} {row['load']:>6.2f}"
        )
    budget = 10 * args.orgs
    print(f"Meraki budget: {budget} requests/s ({args.orgs} organisations × 10); {os.cpu_count()} CPUs")
    return 0 if all(r["pictures"] == r["expected"] for r in results) else 1


def _run(args: argparse.Namespace, workers: int, server_url: str, s3) -> dict:
    with (
        tempfile.TemporaryDirectory(prefix="flp-scale-") as tmp_name,
        scratch_database(server_url, "flp_bench_scale") as database_url,
    ):
        bucket = s3.bucket()
        with Deployment(
            Path(tmp_name), database_url, s3.endpoint, bucket, stores=args.orgs, registers=args.registers
        ) as deployment:
            deployment.release()
            _, base_url = deployment.start_web()
            for n in range(workers):
                deployment.start_worker(f"worker-{n + 1}")
            run = uuid.uuid4().hex[:6]
            bodies = [
                (f"B-{run}-{i:04d}", deployment.body(f"B-{run}-{i:04d}", i, pictured=True))
                for i in range(args.payments)
            ]
            print(f"{workers} worker(s): posting {len(bodies)} payments", flush=True)
            answers = deployment.post_all(base_url, bodies, clients=8)
            accepted = sum(1 for status in answers.values() if status == 202)

            def stored() -> int:
                with deployment.session() as session:
                    query = select(func.count()).where(Snapshot.kind == "live", Snapshot.status != "pending")
                    return int(session.scalar(query) or 0)

            try:
                wait_for(lambda: stored() >= accepted, timeout_s=args.wait, what="every live picture", every_s=0.5)
            except TimeoutError as exc:
                print(f"  {exc}", flush=True)
            with deployment.session() as session:
                first = session.scalar(select(func.min(Transaction.received_at)))
                ready = sorted(
                    session.scalars(
                        select(Snapshot.ready_at).where(Snapshot.kind == "live", Snapshot.status == "ready")
                    )
                )
            load = os.getloadavg()[0]
            for process in deployment.processes:
                process.stop()
    offsets = [(at - first).total_seconds() for at in ready] if ready and first else [0.0]
    last = max(offsets)
    row = {
        "workers": workers,
        "pictures": len(ready),
        "expected": args.payments,
        "per_s": len(ready) / last if last > 0 else 0.0,
        "p50_s": statistics.median(offsets),
        "last_s": last,
        "load": load,
    }
    print(f"  {row}", flush=True)
    return row


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"wall time {time.perf_counter() - started:.0f} s")
    sys.exit(code)

"""POS intake throughput of the real ``python -m bot serve`` process on 127.0.0.1.

    .venv/bin/python benchmarks/ingest.py --database sqlite
    .venv/bin/python benchmarks/ingest.py --database postgresql [--url postgresql+psycopg://…]

Starts the server on a free port against a fresh database (SQLite: a temp file; PostgreSQL: a
new database created next to ``--url`` or ``FLP_TEST_POSTGRES_URL`` and dropped afterwards),
posts N signed transactions from C client threads (one ``requests.Session`` each), and prints
accepted requests/s and latency percentiles. Bounded: every wait has a deadline, and the
server is stopped (SIGTERM, then SIGKILL) whatever happens. Talks only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import requests
import yaml
from sqlalchemy.engine import make_url

from tests.postgres import scratch_database
from tests.served import ServedProcess, pos_body, post_signed, wait_for

SECRET = "bench-pos-secret-" + uuid.uuid4().hex


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--url", help="PostgreSQL server URL (default: FLP_TEST_POSTGRES_URL); a fresh database is created on it"
    )
    parser.add_argument("-n", "--requests", type=int, default=5000, help="transactions to post (default 5000)")
    parser.add_argument("-c", "--clients", type=int, default=16, help="concurrent client threads (default 16)")
    parser.add_argument("--max-seconds", type=float, default=300, help="stop posting after this long (default 300)")
    parser.add_argument("--drain", action="store_true", help="also time the runner until the queue is empty")
    parser.add_argument("--log-level", default="INFO", help="the server's LOG_LEVEL (default INFO, as deployed)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="flp-bench-") as tmp, _database(args, Path(tmp)) as database_url:
        # A load generator is one runaway POS per store: lift the per-store intake quota, or it measures the 429s.
        config = Path(tmp) / "flp.yaml"
        business = yaml.safe_load((REPO / "config/flp.yaml").read_text(encoding="utf-8"))
        business["intake"] = {"per_store_per_s": 10000, "burst": 100000}
        config.write_text(yaml.safe_dump(business), encoding="utf-8")
        environ = {
            "DATABASE_URL": database_url,
            "DATA_DIR": f"{tmp}/data",
            "POS_WEBHOOK_SECRET": SECRET,
            "API_TOKEN": uuid.uuid4().hex,
            "FLP_CONFIG": str(config),
            "LOG_LEVEL": args.log_level,
        }
        with ServedProcess(environ, Path(tmp) / "serve.log") as server:
            server.start()
            print(
                f"serve on {server.base_url}, {args.database}, {args.requests} requests, {args.clients} clients",
                flush=True,
            )
            cpu_before = _cpu_seconds(server.process.pid)
            elapsed, latencies, statuses = _post_all(server.base_url, args.requests, args.clients, args.max_seconds)
            _report(elapsed, latencies, statuses)
            cpu = _cpu_seconds(server.process.pid) - cpu_before
            print(
                f"server CPU while posting: {cpu:.1f} s ({cpu / max(len(latencies), 1) * 1000:.2f} ms a request, "
                f"{cpu / elapsed * 100:.0f}% of one core); benchmark process CPU {time.process_time():.1f} s",
                flush=True,
            )
            if args.drain:
                started = time.perf_counter()
                wait_for(lambda: _queue_empty(server), timeout_s=600, what="an empty work queue", every_s=0.25)
                print(f"queue drained {time.perf_counter() - started:.1f} s after the last response")
            server.signal(signal.SIGTERM)
            code = server.wait(60)
            if code != 0:
                print(f"serve exited with {code}:\n{server.output()[-4000:]}", file=sys.stderr)
                return 1
    return 0 if statuses.get(202, 0) == args.requests else 1


def _post_all(base_url: str, total: int, clients: int, max_seconds: float) -> tuple[float, list[float], Counter]:
    run = uuid.uuid4().hex[:8]
    bodies = [pos_body(f"B-{run}-{i:07d}", i) for i in range(total)]
    indexes = iter(range(total))
    take = threading.Lock()
    latencies: list[float] = []
    statuses: Counter = Counter()
    deadline = time.monotonic() + max_seconds

    def client() -> None:
        mine: list[float] = []
        seen: Counter = Counter()
        with requests.Session() as session:
            while time.monotonic() < deadline:
                with take:
                    index = next(indexes, None)
                if index is None:
                    break
                started = time.perf_counter()
                status = post_signed(session, base_url, bodies[index], SECRET)
                mine.append(time.perf_counter() - started)
                seen[status] += 1
        with take:
            latencies.extend(mine)
            statuses.update(seen)

    threads = [threading.Thread(target=client, name=f"client-{n}") for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max_seconds + 60)
    return time.perf_counter() - started, latencies, statuses


def _report(elapsed: float, latencies: list[float], statuses: Counter) -> None:
    accepted = statuses.get(202, 0)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else [0.0] * 99
    print(f"{len(latencies)} requests in {elapsed:.2f} s; statuses {dict(sorted(statuses.items(), key=str))}")
    print(
        f"accepted/s {accepted / elapsed:.0f}   latency ms p50 {cuts[49] * 1000:.1f}  p90 {cuts[89] * 1000:.1f}  "
        f"p99 {cuts[98] * 1000:.1f}  max {max(latencies, default=0) * 1000:.1f}",
        flush=True,
    )


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _queue_empty(server: ServedProcess) -> bool:
    counts = server.work_items()
    return counts.get("pending", 1) == 0 and counts.get("running", 1) == 0


@contextmanager
def _database(args: argparse.Namespace, tmp: Path) -> Iterator[str]:
    if args.database == "sqlite":
        yield f"sqlite:///{tmp / 'bench.db'}"
        return
    base = args.url or os.environ.get("FLP_TEST_POSTGRES_URL")
    if not base:
        raise SystemExit("PostgreSQL: pass --url or set FLP_TEST_POSTGRES_URL (./run test starts one as root)")
    if make_url(base).host not in {None, "127.0.0.1", "localhost", "::1"}:  # None: the local socket
        raise SystemExit("PostgreSQL: this benchmark only talks to a server on 127.0.0.1")
    with scratch_database(base, "flp_bench") as url:
        yield url


if __name__ == "__main__":
    sys.exit(main())

"""Time per transaction spent in our own code, step by step, on the local backend (no network waits).

The camera is an in-memory stand-in that answers at once with pre-composed scenes (public-domain
faces in a checkout scene), so what is measured is triage, capture bookkeeping, evidence writes,
dlib detection and search, product counting, rules, alert creation and the notify step's card
and boxed photo. Run:  .venv/bin/python benchmarks/pipeline.py [--transactions 40]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.app import build_services
from bot.runner import Runner
from bot.steps import STEPS
from core.config import load_config
from core.events import TransactionReceived
from core.pos_schema import PosTransaction
from core.waiting import Waits, at_once
from handlers.pipeline.intake import accept_transaction
from simulation.scenes import Placement, compose_scene
from storage import migrate
from storage.models import WatchlistFace, WatchlistPerson
from storage.uow import UnitOfWork
from vision.types import Picture

REPO = Path(__file__).resolve().parent.parent


class InstantCamera:
    def __init__(self, scenes: list[bytes]):
        self.scenes, self.n = scenes, 0

    def snapshot(self, serial: str, *, org_id: str, at: datetime | None) -> Picture:
        self.n += 1
        return Picture(self.scenes[self.n % len(self.scenes)], "image/jpeg")

    def snapshot_waits(self, serial: str, *, org_id: str, at: datetime | None) -> Waits[Picture]:
        return at_once(self.snapshot(serial, org_id=org_id, at=at))

    def video_link(self, serial: str, *, org_id: str, at: datetime) -> str | None:
        return None


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=40)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="flp-bench-pipeline-"))
    url = f"sqlite:///{workdir / 'flp.db'}"
    migrate.upgrade(url)
    business = yaml.safe_load((REPO / "config" / "flp.yaml").read_text())
    environ = {
        "DATABASE_URL": url,
        "DATA_DIR": str(workdir / "data"),
        "POS_WEBHOOK_SECRET": "bench-pos-secret-0123456789abcdef",
        "MERAKI_DASHBOARD_API_KEY": "bench",
        "MERAKI_BASE_URL": "https://meraki.invalid/api/v1",
    }
    config = load_config(environ, yaml.safe_dump(business), source=str(REPO / "config" / "flp.yaml"))
    scenes = [
        compose_scene([Placement("grace_hopper", at=(0.2, 0.4)), Placement("astronaut", at=(0.45, 0.45))], seed=s).image
        for s in range(4)
    ]
    clock = Clock()
    services = build_services(config, clock=clock, camera=InstantCamera(scenes))
    enroll(services, scenes[0], clock)
    runner = Runner(db=services.db, steps=STEPS, dependencies=services.dependencies(), clock=clock)
    timings: dict[str, list[float]] = defaultdict(list)
    started = time.perf_counter()
    for n in range(args.transactions):
        body = transaction(n, clock())
        raw = json.dumps(body)
        t0 = time.perf_counter()
        services.handle(
            accept_transaction, TransactionReceived(PosTransaction.model_validate(body), raw, f"{n:064x}"), write=True
        )
        timings["intake"].append(time.perf_counter() - t0)
        drain(runner, services, clock, timings)
        clock.now += timedelta(seconds=200)  # past the exact-time delay: the second picture is taken too
        drain(runner, services, clock, timings)
    total = time.perf_counter() - started
    report(timings, total, args.transactions)


def drain(runner: Runner, services, clock: Clock, timings: dict[str, list[float]]) -> None:
    while True:
        with UnitOfWork(services.db, write=True) as uow:
            claimed = uow.work.claim_due(kinds=set(STEPS), now=clock(), lease_s=60, limit=1)
            uow.commit()
        if not claimed:
            return
        t0 = time.perf_counter()
        runner.run_step(claimed[0])
        timings[claimed[0].kind].append(time.perf_counter() - t0)


def enroll(services, scene: bytes, clock: Clock) -> None:
    detected = max(services.faces.detect(scene), key=lambda f: f.box[0] < 0.3)
    enrolled = services.faces.enroll("P-bench", detected)
    digest = services.evidence.put(detected.crop, "image/jpeg")
    with UnitOfWork(services.db, write=True) as uow:
        uow.snapshots.record_file(
            digest, kind="enrollment", content_type="image/jpeg", size_bytes=len(detected.crop), now=clock()
        )
        uow.session.add(
            WatchlistPerson(
                id="P-bench",
                store_id="store-001",
                region_id="south",
                status="active",
                reason="bench",
                enrolled_by="bench@example.com",
                enrolled_at=clock(),
                expires_at=clock() + timedelta(days=30),
            )
        )
        uow.session.add(
            WatchlistFace(
                id="F-bench",
                person_id="P-bench",
                descriptor=enrolled.descriptor,
                backend="local",
                enrollment_image_sha256=digest,
                created_at=clock(),
            )
        )
        uow.commit()


def transaction(n: int, now: datetime) -> dict:
    return {
        "transaction_id": f"T-bench-{n}",
        "store_id": "store-001",
        "register_id": "reg-1",
        "occurred_at": now.isoformat(),
        "total": {"amount": "149.90", "currency": "BRL"},
        "payment": {"method": "card", "entry_mode": "manual", "card_fingerprint": f"fp_{n % 7}", "risk_score": 72},
        "items": [{"sku": "7891000100103", "name": "Whisky 1L", "quantity": 2, "unit_price": "74.95"}],
    }


def report(timings: dict[str, list[float]], total: float, transactions: int) -> None:
    print(f"{transactions} transactions, two pictures each, local backend, SQLite")
    print(f"{'step':<14}{'runs':>6}{'p50 ms':>10}{'p90 ms':>10}{'max ms':>10}{'ms/transaction':>16}")
    for kind, values in sorted(timings.items(), key=lambda kv: -sum(kv[1])):
        ordered = sorted(values)
        p = lambda q, ordered=ordered: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731  (a one-line percentile)
        print(
            f"{kind:<14}{len(values):>6}{statistics.median(values) * 1000:>10.1f}{p(0.9):>10.1f}"
            f"{max(values) * 1000:>10.1f}{sum(values) * 1000 / transactions:>16.1f}"
        )
    own = sum(sum(v) for v in timings.values())
    print(f"total in our code: {own * 1000 / transactions:.0f} ms per transaction ({total:.1f} s wall for all)")


if __name__ == "__main__":
    main()

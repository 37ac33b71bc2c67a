"""A deployment of real processes on loopback, as a chain runs it: ``python -m bot web`` and several
``python -m bot worker`` on one PostgreSQL database and an S3 endpoint, each process with an empty DATA_DIR of its
own, against the camera, Webex REST and Webex websocket stand-ins. Used by tests/test_scale_out.py and
benchmarks/scale_out.py.

Every register's camera shows a customer with three bottles on the counter; a payment that triage pictures bills
one bottle, so each pictured payment ends in one ``product_mismatch`` alert card with its photo. The other
payments are skipped by triage (low risk), so a run can post many transactions and analyse few pictures.
Processes write their output to files (a pipe nobody reads would block them); every wait is a bounded poll.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from simulation import products
from simulation.camera_server import CameraStandIn
from simulation.floor import Customer, Floor, compose
from simulation.mercury_server import MercuryStandIn
from simulation.scenes import PEOPLE, Placement
from simulation.webex_server import WebexStandIn
from storage.models import Alert, OutboxMessage, ProcessLease, Snapshot, Transaction, WorkItem
from tests.conftest import transaction_body
from tests.served import REPO, child_environ, free_port, now_iso, post_signed, wait_for

POS_SECRET = "scale-pos-secret-" + uuid.uuid4().hex
SESSION_SECRET = "scale-session-secret-" + uuid.uuid4().hex
MERAKI_KEY = "scale-meraki-key-" + uuid.uuid4().hex
WEBEX_TOKEN = "scale-webex-token-" + uuid.uuid4().hex
BOTTLE = ("7891000100103", "Whisky 1L", "74.95")
ON_COUNTER = 3  # bottles each camera sees; a pictured receipt bills one


@dataclass
class BotProcess:
    """One ``python -m bot <command>`` with its own environment and log file."""

    name: str
    command: str
    environ: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> BotProcess:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", self.command],
                cwd=REPO,
                env=self.environ,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout_s: float = 30) -> int | None:
        """SIGTERM, then SIGKILL if it does not stop in time; the exit status (None if it had to be killed)."""
        if not self.alive():
            return self.process.returncode if self.process is not None else None
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)


@dataclass
class Deployment:
    """The stand-ins, the configuration and the processes of one run. ``with`` stops everything."""

    tmp: Path
    database_url: str
    s3_endpoint: str
    bucket: str
    stores: int = 2
    registers: int = 5
    exact_delay_s: int = 5
    camera_rate_per_s: int = 10
    processes: list[BotProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.serials = {
            f"store-{s:03d}": [f"Q2XX-S{s:03d}-{r:04d}" for r in range(1, self.registers + 1)]
            for s in range(1, self.stores + 1)
        }
        self.floor = Floor([serial for serials in self.serials.values() for serial in serials])
        for index, serial in enumerate(sorted(self.floor.serials)):
            self.floor.step_up(serial, _customer(index), picture=compose(_customer(index), seed=index + 1))
        orgs = {serial: self.org_of(store) for store, serials in self.serials.items() for serial in serials}
        self.camera = CameraStandIn(
            self.floor, api_key=MERAKI_KEY, image_delay_s=1.5, rate_per_s=self.camera_rate_per_s, orgs=orgs
        )
        self.webex = WebexStandIn(access_token=WEBEX_TOKEN)
        self.mercury = MercuryStandIn(access_token=WEBEX_TOKEN)
        self.config_path = self._write_config()
        self.engine = create_engine(self.database_url, pool_size=2)

    def __enter__(self) -> Deployment:
        self.camera.start()
        self.webex.start()
        self.mercury.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        try:
            for process in self.processes:
                process.kill()
        finally:
            self.mercury.stop()
            self.webex.stop()
            self.camera.stop()
            self.engine.dispose()

    def org_of(self, store_id: str) -> str:
        return str(1000 + list(self.serials).index(store_id))

    # --- processes --------------------------------------------------------------------------------

    def data_dir(self, name: str) -> Path:
        path = self.tmp / name / "data"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def environ(self, name: str, **extra: str) -> dict[str, str]:
        return child_environ(
            {
                "DATABASE_URL": self.database_url,
                "DATA_DIR": str(self.data_dir(name)),
                "EVIDENCE_URL": f"s3://{self.bucket}/evidence",
                "AWS_ENDPOINT_URL_S3": self.s3_endpoint,
                "AWS_ACCESS_KEY_ID": "scale-out-access-key",
                "AWS_SECRET_ACCESS_KEY": "scale-out-secret-key",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_CONFIG_FILE": "/nonexistent/aws-config",
                "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
                "SESSION_SECRET": SESSION_SECRET,
                "POS_WEBHOOK_SECRET": POS_SECRET,
                "API_TOKEN": uuid.uuid4().hex,
                "FLP_CONFIG": str(self.config_path),
                "RECOGNITION_BACKEND": "local",
                "MERAKI_DASHBOARD_API_KEY": MERAKI_KEY,
                "MERAKI_BASE_URL": self.camera.base_url,
                "MERAKI_PICTURE_HOSTS": self.camera.picture_host,
                "WEBEX_ACCESS_TOKEN": WEBEX_TOKEN,
                "WEBEX_BASE_URL": self.webex.base_url,
                "WEBEX_DISCOVERY_URL": self.mercury.discovery_url,
                "WEBEX_TRANSPORT": "websocket",
                "HOME": str(self.tmp / name),  # nothing of ours may land in a home directory either
                # matplotlib's font cache: a cache (the container image builds it), kept out of the process's dirs
                "MPLCONFIGDIR": str(self.tmp.parent / f"{self.tmp.name}-matplotlib"),
                **extra,
            }
        )

    def release(self) -> None:
        """The Procfile's release step: migrations, once, before the others start."""
        result = subprocess.run(
            [sys.executable, "-m", "bot", "db", "upgrade"],
            cwd=REPO,
            env=self.environ("release"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def start_web(self, name: str = "web") -> tuple[BotProcess, str]:
        port = free_port()
        web = BotProcess(name, "web", self.environ(name, HOST="127.0.0.1", PORT=str(port)), self.tmp / f"{name}.log")
        self.processes.append(web.start())
        base_url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            if not web.alive():
                raise RuntimeError(f"{name} exited before it was ready:\n{web.output()[-3000:]}")
            try:
                return requests.get(f"{base_url}/healthz", timeout=5).status_code == 200
            except requests.RequestException:  # not listening yet, or too busy starting to answer
                return False

        wait_for(ready, timeout_s=60, what=f"{name} on {base_url}")
        return web, base_url

    def start_worker(self, name: str) -> BotProcess:
        worker = BotProcess(name, "worker", self.environ(name), self.tmp / f"{name}.log")
        self.processes.append(worker.start())

        def ready() -> bool:
            if not worker.alive():
                raise RuntimeError(f"{name} exited before it was ready:\n{worker.output()[-3000:]}")
            return "worker running" in worker.output()

        wait_for(ready, timeout_s=90, what=f"{name} running")
        return worker

    # --- traffic ----------------------------------------------------------------------------------

    def places(self) -> list[tuple[str, str]]:
        return [(store, f"reg-{r}") for store in self.serials for r in range(1, self.registers + 1)]

    def body(self, transaction_id: str, index: int, *, pictured: bool) -> bytes:
        store_id, register_id = self.places()[index % len(self.places())]
        body = transaction_body(
            transaction_id=transaction_id,
            store_id=store_id,
            register_id=register_id,
            occurred_at=now_iso(),
            payment={
                "method": "card",
                "entry_mode": "chip",
                "card_fingerprint": f"fp_{transaction_id}",
                "status": "approved",
                "risk_score": 70 if pictured else 5,  # triage pictures at 60 and above (config/flp.yaml)
            },
            total={"amount": BOTTLE[2], "currency": "BRL"},
            items=[{"sku": BOTTLE[0], "name": BOTTLE[1], "quantity": 1, "unit_price": BOTTLE[2]}],
        )
        return json.dumps(body).encode()

    def post_all(self, base_url: str, bodies: list[tuple[str, bytes]], *, clients: int = 4) -> dict[str, int | None]:
        """POST every body (each retried like a POS until it gets an HTTP answer); transaction id → status."""
        answers: dict[str, int | None] = {}
        queue = iter(bodies)
        lock = threading.Lock()

        def client() -> None:
            with requests.Session() as session:
                while True:
                    with lock:
                        item = next(queue, None)
                    if item is None:
                        return
                    transaction_id, raw = item
                    status = None
                    for _ in range(20):
                        status = post_signed(session, base_url, raw, POS_SECRET)
                        if status is not None and status != 503:
                            break
                        time.sleep(0.25)
                    answers[transaction_id] = status

        threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        return answers

    # --- what the database says -------------------------------------------------------------------

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine) as session:
            yield session

    def websocket_holder_pid(self) -> int | None:
        with self.session() as session:
            holder = session.scalar(select(ProcessLease.holder).where(ProcessLease.name == "webex:0"))
        return int(holder.split(":")[1]) if holder else None

    def unfinished_work(self) -> int:
        """Steps still to run, except the periodic sweeps (always one ahead)."""
        with self.session() as session:
            query = (
                select(func.count())
                .select_from(WorkItem)
                .where(WorkItem.status.in_(("pending", "running")), WorkItem.transaction_id.is_not(None))
            )
            return int(session.scalar(query) or 0)

    def outbox_unsent(self) -> int:
        with self.session() as session:
            query = select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status != "sent")
            return int(session.scalar(query) or 0)

    def sending(self) -> set[int]:
        with self.session() as session:
            return set(session.scalars(select(OutboxMessage.id).where(OutboxMessage.status == "sending")))

    def transactions(self) -> dict[str, str | None]:
        with self.session() as session:
            return dict(session.execute(select(Transaction.transaction_id, Transaction.triage_decision)).all())

    def snapshot_evidence(self) -> set[str]:
        """The SHA-256 of every stored picture."""
        with self.session() as session:
            return set(session.scalars(select(Snapshot.evidence_sha256).where(Snapshot.evidence_sha256.is_not(None))))

    def alerts(self) -> dict[int, str]:
        with self.session() as session:
            return dict(session.execute(select(Alert.id, Alert.transaction_id)).all())

    def outbox(self) -> list[OutboxMessage]:
        with self.session() as session:
            return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))

    def local_files(self) -> list[Path]:
        """Every file a process left in its DATA_DIR or home: none, when nothing is local. (The configuration, the
        YAML and the catalog's reference photos, is read from disk as it is shipped with the image.)"""
        names = {"release", *(process.name for process in self.processes)}
        return sorted(p for name in names for p in (self.tmp / name).rglob("*") if p.is_file())

    # --- configuration ----------------------------------------------------------------------------

    def _write_config(self) -> Path:
        business = yaml.safe_load((REPO / "config/flp.yaml").read_text(encoding="utf-8"))
        template = business["stores"][0]
        stores = []
        for n, (store_id, serials) in enumerate(self.serials.items()):
            store = {
                **template,
                "id": store_id,
                "name": f"Store {n + 1}",
                "meraki_org_id": self.org_of(store_id),  # an organisation per store: each its own Meraki budget
                "webex_room_id": f"ROOM-{store_id}",
                "registers": [
                    {"id": f"reg-{r}", "camera_serial": serial, "customer_zone": [0.0, 0.0, 0.6, 1.0]}
                    for r, serial in enumerate(serials, start=1)
                ],
                "entrance_cameras": [],
            }
            stores.append(store)
        business["stores"] = stores
        for person in business["people"]:
            person["stores"] = ["*"] if "*" in person["stores"] else list(self.serials)
        references = self.tmp / "catalog"
        references.mkdir(parents=True, exist_ok=True)
        for label in ("Bottle", "Box"):
            (references / f"{label.lower()}.png").write_bytes(products.package_png(label))
        business["catalog"] = [
            {"sku": BOTTLE[0], "label": "Bottle", "unit_price": BOTTLE[2], "reference_images": ["catalog/bottle.png"]},
            {"sku": "7891000200200", "label": "Box", "unit_price": "19.90", "reference_images": ["catalog/box.png"]},
        ]
        business["camera"]["exact_delay_s"] = self.exact_delay_s
        business["camera"]["live_max_age_s"] = 60
        path = self.tmp / "flp.yaml"
        path.write_text(yaml.safe_dump(business, sort_keys=False), encoding="utf-8")
        return path


def _customer(index: int) -> Customer:
    person = Placement(PEOPLE[index % len(PEOPLE)], at=(0.3, 0.36), face_px=130)
    bottles = tuple(
        products.Placement("Bottle", (220 + 165 * i, 600), 0.55, (-4, 3, 6, -2)[i % 4]) for i in range(ON_COUNTER)
    )
    return Customer(people=(person,), packages=bottles)


def card_alert_ids(webex: WebexStandIn) -> list[int]:
    """The alert id of every card posted, repeats included."""
    pattern = re.compile(r"\*\*Alert A-(\d+)\*\*")
    found = []
    for message in webex.cards():
        match = pattern.search(message.markdown or "")
        if match:
            found.append(int(match.group(1)))
    return found

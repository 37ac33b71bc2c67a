"""Waiting for a picture holds no worker: a step that waits is parked in its lane's waiting room, with its lease
renewed, and a free worker goes on with it when its wait is over; a stopping process gives parked steps back."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from bot.app import build_services
from bot.processes import Background
from bot.runner import Runner, RunnerSettings
from bot.steps import STEPS
from bot.waiting_room import WaitingRoom
from core.clock import system_clock
from core.steps import Lane, StepKind
from core.waiting import Waits
from simulation.camera_server import CameraEvent, CameraStandIn
from simulation.floor import Floor
from storage.models import Snapshot, WorkItem
from storage.uow import UnitOfWork
from tests.checkouts import body_now
from tests.fakes import FakeFaceBackend
from tests.served import wait_for
from vision.types import Picture

MERAKI_KEY = "test-meraki-key"
REG_1, REG_2 = "Q2XX-AAAA-0001", "Q2XX-AAAA-0002"


def snapshots(services) -> list[Snapshot]:
    with UnitOfWork(services.db) as uow:
        return list(uow.session.query(Snapshot))


class TestAPictureBecomingReadyHoldsNoWorker:
    @pytest.fixture
    def events(self) -> list[tuple[float, str, str]]:
        return []

    @pytest.fixture
    def camera(self, events) -> Iterator[CameraStandIn]:
        def record(event: CameraEvent) -> None:
            events.append((time.monotonic(), event.kind, event.serial))

        stand_in = CameraStandIn(Floor([REG_1, REG_2]), api_key=MERAKI_KEY, image_delay_s=1.5, on_event=record)
        yield stand_in.start()
        stand_in.stop()

    @pytest.fixture
    def environ(self, environ: dict, camera: CameraStandIn) -> dict:
        return {
            **environ,
            "MERAKI_DASHBOARD_API_KEY": MERAKI_KEY,
            "MERAKI_BASE_URL": camera.base_url,
            "MERAKI_PICTURE_HOSTS": camera.picture_host,
        }

    @pytest.fixture
    def business(self, business: dict) -> dict:
        business["runner"] = {"idle_wait_s": 0.05, "workers": {"camera": 1}}
        business["triage"] = {"capture_all": True}
        business["camera"] = {"poll_initial_s": 1.5, "poll_total_s": 20}
        return business

    @pytest.fixture
    def services(self, config, clock):
        built = build_services(config, clock=clock, faces=FakeFaceBackend(), products=None)
        yield built
        built.db.dispose()

    def test_one_camera_worker_asks_for_the_second_picture_while_the_first_becomes_ready(
        self, services, post_signed, clock, events
    ) -> None:
        background = Background(services)
        background.start()
        try:
            for transaction_id, register_id in (("T-1", "reg-1"), ("T-2", "reg-2")):
                body = body_now(clock, transaction_id=transaction_id, register_id=register_id)
                assert post_signed("/api/v1/transactions", body).status_code == 202
            background.wake()
            wait_for(
                lambda: [s.status for s in snapshots(services)] == ["ready", "ready"],
                timeout_s=15,
                what="both live pictures",
            )
        finally:
            background.stop(timeout_s=10)
        kinds = [(kind, serial) for _at, kind, serial in events if kind in ("snapshot", "image")]
        first_image = kinds.index(next(k for k in kinds if k[0] == "image"))
        # Both generateSnapshot calls came before either picture was fetched: the one worker did not wait in between.
        assert sorted(kinds[:first_image]) == [("snapshot", REG_1), ("snapshot", REG_2)]
        assert [kind for kind, _serial in kinds[first_image:]] == ["image", "image"]
        asked = max(at for at, kind, _ in events if kind == "snapshot")
        fetched = min(at for at, kind, _ in events if kind == "image")
        assert asked < fetched


def enqueue(services, *keys: str) -> None:
    with UnitOfWork(services.db, write=True) as uow:
        for key in keys:
            uow.work.enqueue(kind="job", key=key, ref_id=key, run_at=system_clock(), now=system_clock())
        uow.commit()


def rows(services) -> dict[str, WorkItem]:
    with UnitOfWork(services.db) as uow:
        return {row.dedupe_key.split(":", 1)[1]: row for row in uow.session.query(WorkItem)}


def test_a_parked_steps_lease_is_renewed_while_its_worker_runs_other_steps(services) -> None:
    # Real time: the lease is 0.6 s and the step waits 1.5 s, so without renewals another runner would take it.
    order: list[str] = []

    def step(item) -> Waits[None]:
        order.append(f"start {item.ref_id}")
        if item.ref_id == "slow":
            yield 1.5
        order.append(f"end {item.ref_id}")

    runner: Runner
    room: WaitingRoom = WaitingRoom("test", on_ready=lambda: runner.wake())
    runner = Runner(
        db=services.db,
        steps={"job": step},
        dependencies={},
        clock=system_clock,
        settings=RunnerSettings(lease_s=0.6, batch=1, idle_wait_s=0.05),
        waiting_room=room,
    )
    enqueue(services, "slow")
    worker = threading.Thread(target=runner.run_forever)
    worker.start()
    try:
        wait_for(lambda: len(room) == 1, what="the slow step parked")
        enqueue(services, "quick")  # the one worker is free: it runs this while the slow step waits
        other_claims = []
        for _ in range(4):  # claims by another process at 0.4, 0.8, 1.2 and 1.6 s
            threading.Event().wait(0.4)
            with UnitOfWork(services.db, write=True) as uow:
                other_claims += uow.work.claim_due(kinds={"job"}, now=system_clock(), lease_s=0.6, limit=1)
                uow.commit()
        wait_for(lambda: rows(services)["slow"].status == "done", what="the slow step resumed and done")
    finally:
        runner.stop()
        worker.join(5)
    assert other_claims == []
    assert order == ["start slow", "start quick", "end quick", "end slow"]
    assert {key: (row.status, row.attempts) for key, row in rows(services).items()} == {
        "slow": ("done", 1),
        "quick": ("done", 1),
    }


class SlowPictures:
    """The first picture takes a minute to become ready; later ones are ready at once."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def snapshot_waits(self, serial, *, org_id, at) -> Waits[Picture]:
        self.asked.append(serial)
        if len(self.asked) == 1:
            yield 60.0
        return Picture(b"\xff\xd8\xff\xe0 a checkout", "image/jpeg")

    def snapshot(self, serial, *, org_id, at):
        raise AssertionError("captures go through snapshot_waits")

    def video_link(self, serial, *, org_id, at):
        return None


class TestStoppingGivesParkedStepsBack:
    @pytest.fixture
    def environ(self, environ: dict) -> dict:
        return {**environ, "MERAKI_DASHBOARD_API_KEY": MERAKI_KEY}

    @pytest.fixture
    def business(self, business: dict) -> dict:
        business["runner"] = {"idle_wait_s": 0.05, "workers": {"camera": 2}}
        business["triage"] = {"capture_all": True}
        return business

    @pytest.fixture
    def camera(self) -> SlowPictures:
        return SlowPictures()

    @pytest.fixture
    def services(self, config, clock, camera):
        built = build_services(config, clock=clock, camera=camera, faces=FakeFaceBackend(), products=None)
        yield built
        built.db.dispose()

    def test_a_parked_capture_is_released_and_another_process_runs_it_from_the_start(
        self, services, post_signed, clock, camera
    ) -> None:
        background = Background(services)
        background.start()
        assert post_signed("/api/v1/transactions", body_now(clock, transaction_id="T-1")).status_code == 202
        background.wake()
        room = background.waiting_rooms[Lane.CAMERA]
        wait_for(lambda: len(room) == 1, what="the capture parked, waiting for its picture")
        started = time.monotonic()
        background.stop(timeout_s=10)
        assert time.monotonic() - started < 5, "stopping does not wait for a parked step's picture"
        with UnitOfWork(services.db) as uow:
            (capture,) = uow.session.query(WorkItem).filter_by(kind=StepKind.CAPTURE_LIVE.value)
            assert (capture.status, capture.attempts, capture.lease_token) == ("pending", 0, None)
        # Another process claims it and starts again: a new request to the camera, whose picture is ready now.
        other = Runner(db=services.db, steps=STEPS, dependencies=services.dependencies(), clock=clock)
        other.run_until_idle()
        assert camera.asked == [REG_1, REG_1]
        assert [s.status for s in snapshots(services)] == ["ready"]

"""Lanes: each kind of work has its own workers (runner.workers), so a hung camera delays no chat answer and no
other picture; live pictures are claimed before exact-time ones."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from bot.app import build_services
from bot.processes import Background
from core.steps import CATALOGUE, Lane, StepKind
from core.waiting import at_once
from storage.uow import UnitOfWork
from tests.checkouts import body_now
from tests.fakes import FakeFaceBackend, FakeMessenger
from tests.served import wait_for
from vision.types import Picture

JPEG = b"\xff\xd8\xff\xe0 a checkout"


@pytest.fixture
def environ(environ: dict) -> dict:
    return {**environ, "MERAKI_DASHBOARD_API_KEY": "test-meraki-key"}


@pytest.fixture
def business(business: dict) -> dict:
    business["runner"] = {"idle_wait_s": 0.05, "workers": {"camera": 3, "chat": 2}}
    business["triage"] = {"capture_all": True}
    return business


class HangingCamera:
    """The first snapshot hangs until released (a camera host that never answers); the others answer at once."""

    def __init__(self) -> None:
        self.release, self.hanging, self.calls = threading.Event(), threading.Event(), []
        self._lock = threading.Lock()

    def snapshot(self, serial, *, org_id, at):
        with self._lock:
            self.calls.append((serial, at))
            first = len(self.calls) == 1
        if first:
            self.hanging.set()
            self.release.wait(30)
        return Picture(JPEG, "image/jpeg")

    def snapshot_waits(self, serial, *, org_id, at):
        return at_once(self.snapshot(serial, org_id=org_id, at=at))

    def video_link(self, serial, *, org_id, at):
        return None


@pytest.fixture
def camera() -> HangingCamera:
    return HangingCamera()


@pytest.fixture
def messenger() -> FakeMessenger:
    return FakeMessenger(emails={"P-ana": "ana@example.com"})


@pytest.fixture
def services(config, clock, camera, messenger):
    built = build_services(
        config, clock=clock, camera=camera, faces=FakeFaceBackend(), products=None, messenger=messenger
    )
    yield built
    built.db.dispose()


def test_each_lane_has_its_workers_and_only_its_kinds(services) -> None:
    background = Background(services)
    names = sorted(t.name for t in background._threads)
    assert names == sorted(
        ["analysis-0", "camera-0", "camera-1", "camera-2", "chat-0", "chat-1", "pipeline-0", "routine-0"]
    )
    for runner, thread in zip(background.runners, background._threads, strict=True):
        lane = Lane(thread.name.split("-")[0])
        assert set(runner.steps) == {k for k, spec in CATALOGUE.items() if spec.lane is lane}
        assert runner.settings.batch == (1 if thread.name[:-2] in ("camera", "chat") else 20)


def test_a_hung_camera_delays_neither_a_chat_answer_nor_another_registers_picture(
    services, camera, messenger, post_signed, clock
) -> None:
    background = Background(services)
    background.start()
    try:
        assert post_signed("/api/v1/transactions", body_now(clock, transaction_id="T-1")).status_code == 202
        background.wake()
        assert camera.hanging.wait(10), "the first capture reached the camera"
        # Another register's payment is pictured by another camera worker meanwhile.
        body = body_now(clock, transaction_id="T-2", register_id="reg-2")
        assert post_signed("/api/v1/transactions", body).status_code == 202
        background.wake()
        wait_for(lambda: len(camera.calls) >= 2, timeout_s=10, what="the second register's snapshot")
        # And a chat command is answered while the first capture still hangs.
        messenger.messages["MSG-1"] = {
            "id": "MSG-1",
            "roomId": "ROOM-1",
            "roomType": "direct",
            "personId": "P-ana",
            "personEmail": "ana@example.com",
            "text": "help",
        }
        now = clock()
        with UnitOfWork(services.db, write=True) as uow:
            uow.inbound.record(event_id="MSG-1", source="webex_message", payload={}, now=now)
            uow.work.enqueue(kind=StepKind.HANDLE_EVENT, key="MSG-1", ref_id="MSG-1", run_at=now, now=now)
            uow.commit()
        background.wake()
        wait_for(
            lambda: any(m.to_person_email or m.room_id == "ROOM-1" for m in messenger.sent),
            timeout_s=10,
            what="the answer to `help`",
        )
        assert not camera.release.is_set()
    finally:
        camera.release.set()
        background.stop(timeout_s=10)


def test_live_pictures_are_claimed_before_older_exact_time_ones(services, clock) -> None:
    now = clock()
    with UnitOfWork(services.db, write=True) as uow:
        uow.work.enqueue(
            kind=StepKind.CAPTURE_EXACT, key="T-old", ref_id="exact", run_at=now - timedelta(minutes=5), now=now
        )
        uow.work.enqueue(kind=StepKind.CAPTURE_LIVE, key="T-new", ref_id="live", run_at=now, now=now)
        uow.commit()
    with UnitOfWork(services.db, write=True) as uow:
        kinds = {StepKind.CAPTURE_EXACT.value, StepKind.CAPTURE_LIVE.value}
        first = uow.work.claim_due(kinds=kinds, now=now, lease_s=60, limit=1)
        then = uow.work.claim_due(kinds=kinds, now=now, lease_s=60, limit=1)
        uow.commit()
    assert [c.ref_id for c in first] == ["live"] and [c.ref_id for c in then] == ["exact"]


def test_claims_go_round_the_stores_so_one_stores_burst_does_not_starve_another(services, clock) -> None:
    now = clock()
    with UnitOfWork(services.db, write=True) as uow:
        for n in range(40):  # a store's burst, all due before the other store's one capture
            uow.work.enqueue(
                kind=StepKind.CAPTURE_LIVE,
                key=f"A-{n}",
                ref_id=f"A-{n}",
                store_id="store-001",
                run_at=now - timedelta(seconds=60 - n),
                now=now,
            )
        uow.work.enqueue(kind=StepKind.CAPTURE_LIVE, key="B-0", ref_id="B-0", store_id="store-002", run_at=now, now=now)
        uow.work.enqueue(
            kind=StepKind.ANALYZE,
            key="exact",
            ref_id="exact",
            store_id="store-002",
            priority=6,
            run_at=now - timedelta(minutes=3),
            now=now,
        )
        uow.work.enqueue(
            kind=StepKind.ANALYZE, key="live", ref_id="live", store_id="store-002", priority=3, run_at=now, now=now
        )
        uow.commit()
    with UnitOfWork(services.db, write=True) as uow:
        captures = uow.work.claim_due(kinds={StepKind.CAPTURE_LIVE.value}, now=now, lease_s=60, limit=3)
        analyses = uow.work.claim_due(kinds={StepKind.ANALYZE.value}, now=now, lease_s=60, limit=2)
        uow.commit()
    assert [c.ref_id for c in captures] == ["A-0", "B-0", "A-1"]
    assert [c.ref_id for c in analyses] == ["live", "exact"]  # a live picture's analysis first, though younger

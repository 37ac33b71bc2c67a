"""Entrance cameras split between processes through a real broker (mosquitto): each process listens to the
cameras of the shares it plays, so every appearance is recorded by exactly one process, and a process that stops
hands its cameras to the one left (bot/listeners.py, bot/roles.py)."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest
from pydantic import AnyUrl

from bot.app import build_services
from bot.entrance import share_of
from bot.listeners import entrance_roles
from bot.roles import RoleGroup, Roles
from core.steps import StepKind
from storage.uow import UnitOfWork
from tests.fakes import FakeCamera, FakeMessenger
from tests.mosquitto import broker, mosquitto, publisher, wait_for  # noqa: F401  (fixtures)

DOORS = [f"Q2XX-DOOR-{n:04d}" for n in range(1, 9)]
SHARES = 8


@pytest.fixture
def business(business: dict) -> dict:
    business["stores"][0]["entrance_cameras"] = DOORS
    business.setdefault("camera", {})["entrance_shares"] = SHARES
    return business


@pytest.fixture
def environ(environ: dict) -> dict:
    return {**environ, "MERAKI_DASHBOARD_API_KEY": "test-meraki-key", "MQTT_URL": "mqtt://127.0.0.1:1"}


class Process:
    """One process's services and roles; ``recorded`` counts the visits this process wrote."""

    def __init__(self, config, clock, broker, name: str):
        self.services = build_services(config, clock=clock, camera=FakeCamera(), messenger=FakeMessenger())
        env = self.services.config.env.model_copy(update={"mqtt_url": AnyUrl(broker.url)})
        self.services.config = dataclasses.replace(self.services.config, env=env)
        self.recorded = 0
        self.services.wake_runner = self._woken  # called once per visit recorded (bot/entrance.py)
        group = entrance_roles(self.services)
        assert isinstance(group, RoleGroup)
        self.roles = Roles(self.services.db, clock, [group], identity=name, renew_s=0.2)

    def _woken(self, *kinds: object) -> None:
        self.recorded += 1

    def cameras(self) -> set[str]:
        return {door for door in DOORS if share_of(door, SHARES) in self.roles.playing("entrance")}

    def listening(self) -> bool:
        return self.services.component_state.get("broker") == "connected" or not self.cameras()


def visits(services) -> list[str]:
    with UnitOfWork(services.db) as work:
        return [item.dedupe_key for item in work.work.for_kind(StepKind.ENTRANCE_VISIT)]


def appear_everywhere(publisher, clock) -> None:
    at = int(clock().timestamp() * 1000)
    for door in DOORS:
        publisher.publish(f"/merakimv/{door}/0", {"ts": at, "counts": {"person": 0}})
        publisher.publish(f"/merakimv/{door}/0", {"ts": at, "counts": {"person": 1}})


def test_two_processes_split_the_cameras_and_each_appearance_is_recorded_by_one(
    config, clock, broker, publisher
) -> None:
    first, second = Process(config, clock, broker, "p1"), Process(config, clock, broker, "p2")
    try:
        first.roles.start()
        second.roles.start()
        wait_for(
            lambda: sorted(len(p.roles.playing("entrance")) for p in (first, second)) == [4, 4],
            what="the shares split evenly",
        )
        assert first.cameras().isdisjoint(second.cameras())
        assert first.cameras() | second.cameras() == set(DOORS)
        wait_for(lambda: first.listening() and second.listening(), what="both watches subscribed")

        appear_everywhere(publisher, clock)
        wait_for(lambda: len(visits(first.services)) == len(DOORS), what="a visit per camera")
        # Each process recorded only its own cameras' visits: neither handled every message.
        assert (first.recorded, second.recorded) == (len(first.cameras()), len(second.cameras()))
        assert len(set(visits(first.services))) == len(DOORS)

        second.roles.stop()  # its cameras go to the one left, at its next renewal
        wait_for(lambda: first.cameras() == set(DOORS), what="the shares taken over")
        wait_for(first.listening, what="the watch subscribed to every camera")
        before = first.recorded
        clock.advance(31)  # the next entrance window
        appear_everywhere(publisher, clock)
        wait_for(lambda: len(visits(first.services)) == 2 * len(DOORS), what="a second visit per camera")
        assert first.recorded - before == len(DOORS)
        assert Counter(visits(first.services)).most_common(1)[0][1] == 1  # nothing recorded twice
    finally:
        for process in (first, second):
            process.roles.stop()
            process.services.close()

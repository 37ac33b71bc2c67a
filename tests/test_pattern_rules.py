"""Rules over pattern facts, end to end: with no picture (triage skipped, camera off) and with one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.app import build_services
from bot.runner import Runner, RunnerSettings
from bot.steps import ON_DEAD, STEPS
from simulation.scenes import Placement, compose_scene
from storage.models import Alert
from storage.uow import UnitOfWork
from tests.card_schema import card_validator
from tests.checkouts import CUSTOMER, post
from tests.fakes import FakeCamera, FakeFaceBackend, FakeMessenger, FakeProductCounter, face
from vision.types import Picture, RecognitionError

ROOM = "ROOM-STORE-1"
RULES = [
    {
        "name": "void_spree",
        "when": "cashier_voids_shift >= 3",
        "severity": "medium",
        "cooldown": "8h",
        "message": "{cashier_voids_shift} voids by this cashier in this shift",
    },
    {
        "name": "refund_of_own_sale",
        "when": "refund_of_own_sale",
        "severity": "medium",
        "message": "Refund of the cashier's own sale, {minutes_since_original} minutes later",
    },
    {
        "name": "far_from_peers",
        "when": "(cashier_void_z ?? 0) >= 3",
        "severity": "low",
        "message": "z {cashier_void_z}",
    },
]


@pytest.fixture
def business(business: dict) -> dict:
    business["stores"][0].update(webex_room_id=ROOM)
    business["rules"] = RULES
    return business


@pytest.fixture
def messenger() -> FakeMessenger:
    return FakeMessenger()


def run(services, clock) -> None:
    Runner(db=services.db, steps=STEPS, dependencies=services.dependencies(), clock=clock).run_until_idle()


def alerts(services) -> list[Alert]:
    with UnitOfWork(services.db) as uow:
        return list(uow.session.scalars(select(Alert).order_by(Alert.id)))


class TestWithoutPicture:
    @pytest.fixture
    def environ(self, environ: dict) -> dict:
        return {**environ, "WEBEX_ACCESS_TOKEN": "test-webex-token"}  # no Meraki key: the camera is off

    def test_a_void_spree_alerts_once_without_a_photo(self, services, clock, messenger):
        voids = [
            post(services, at=clock() - timedelta(minutes=40 - 10 * n), type="void", original="T-x") for n in range(4)
        ]
        run(services, clock)

        [alert] = alerts(services)
        assert (alert.rule, alert.transaction_id, alert.snapshot_id) == ("void_spree", voids[2], None)
        assert alert.facts["cashier_voids_shift"] == 3 and alert.facts["snapshot_kind"] == "none"
        assert alert.message == "3 voids by this cashier in this shift"
        with UnitOfWork(services.db) as uow:
            first = uow.transactions.get(voids[0])
            assert first.status == "skipped"  # still says why there is no picture
            assert [(r["rule"], r["fired"], r["snapshot_kind"]) for r in first.rule_results] == [
                ("void_spree", False, "none"),
                ("refund_of_own_sale", False, "none"),
                ("far_from_peers", False, "none"),
            ]
        [card] = [m for m in messenger.sent if m.card is not None]
        assert card.room_id == ROOM and not [m for m in messenger.sent if m.attachment is not None]
        card_validator().validate(card.card)

    def test_a_new_cashier_never_fires_a_z_score_rule(self, services, clock):
        for n in range(2):
            post(services, at=clock() - timedelta(minutes=n), type="void", cashier="c-new", original="T-x")
        run(services, clock)
        assert [a.rule for a in alerts(services)] == []


class TestWithPicture:
    @pytest.fixture
    def environ(self, environ: dict) -> dict:
        return {**environ, "MERAKI_DASHBOARD_API_KEY": "test-meraki-key", "WEBEX_ACCESS_TOKEN": "test-webex-token"}

    @pytest.fixture
    def services(self, config, clock, messenger):
        scene = compose_scene([Placement("grace_hopper", at=(0.2, 0.4))], seed=1).image
        built = build_services(
            config,
            clock=clock,
            messenger=messenger,
            camera=FakeCamera(script=[Picture(scene, "image/jpeg")] * 4),
            faces=FakeFaceBackend(faces=[face(CUSTOMER, name="shopper")]),
            products=FakeProductCounter({}),
        )
        yield built
        built.db.dispose()

    def test_a_refund_of_the_cashiers_own_sale_is_pictured_and_alerted_with_the_photo(self, services, clock, messenger):
        sale = post(services, at=clock() - timedelta(minutes=25), cashier="c-1")
        refund = post(services, at=clock() - timedelta(seconds=5), type="refund", cashier="c-1", original=sale)
        run(services, clock)

        [alert] = alerts(services)
        assert (alert.rule, alert.transaction_id) == ("refund_of_own_sale", refund)
        assert alert.snapshot_id is not None and alert.facts["snapshot_kind"] == "live"
        assert alert.facts["refund_of_own_sale"] is True and alert.facts["minutes_since_original"] == pytest.approx(
            24.9, abs=0.1
        )
        with UnitOfWork(services.db) as uow:
            assert uow.transactions.get(refund).triage_reason == "refund is always pictured"
        assert [m for m in messenger.sent if m.attachment is not None]  # the photo, threaded under the card


class RefusingFaces(FakeFaceBackend):
    """A backend that refuses every picture for good (e.g. an image it cannot read)."""

    def detect(self, image: bytes):
        raise RecognitionError("the image cannot be read", retry=False)


class TestPictureThatCannotBeAnalysed:
    @pytest.fixture
    def environ(self, environ: dict) -> dict:
        return {**environ, "MERAKI_DASHBOARD_API_KEY": "test-meraki-key"}

    @pytest.fixture
    def services(self, config, clock):
        scene = compose_scene([Placement("grace_hopper", at=(0.2, 0.4))], seed=1).image
        built = build_services(
            config,
            clock=clock,
            messenger=None,
            camera=FakeCamera(script=[Picture(scene, "image/jpeg")] * 8),
            faces=RefusingFaces(),
            products=FakeProductCounter({}),
        )
        yield built
        built.db.dispose()

    def test_the_rules_still_run_once_without_the_picture(self, services, clock):
        voids = [
            post(services, at=clock() - timedelta(seconds=15 - 5 * n), type="void", original="T-x") for n in range(3)
        ]  # fresh: live pictures now, the exact-time ones 3 minutes later
        run(services, clock)
        with UnitOfWork(services.db) as uow:
            assert uow.transactions.get(voids[2]).status == "failed"
        assert alerts(services) == []  # not yet: the exact-time picture may still be analysable
        clock.advance(services.config.business.camera.exact_delay_s + services.config.business.camera.poll_total_s)
        run(services, clock)
        [alert] = alerts(services)
        assert (alert.rule, alert.transaction_id, alert.snapshot_id) == ("void_spree", voids[2], None)
        with UnitOfWork(services.db) as uow:
            results = uow.transactions.get(voids[2]).rule_results
        assert {r["snapshot_kind"] for r in results} == {"none"} and len(results) == len(RULES)


class CrashingCamera(FakeCamera):
    """A camera client with a bug: every snapshot raises, so the step is retried, then dead-lettered."""

    def snapshot(self, serial, *, org_id, at):
        self.calls.append((serial, org_id, at))
        raise RuntimeError("bug in the camera client")


class TestDeadCaptureStep:
    @pytest.fixture
    def environ(self, environ: dict) -> dict:
        return {**environ, "MERAKI_DASHBOARD_API_KEY": "test-meraki-key"}

    @pytest.fixture
    def services(self, config, clock):
        built = build_services(
            config,
            clock=clock,
            messenger=None,
            camera=CrashingCamera(),
            faces=FakeFaceBackend(),
            products=FakeProductCounter({}),
        )
        yield built
        built.db.dispose()

    def test_a_dead_capture_fails_the_transaction_and_the_rules_still_run(self, services, clock):
        voids = [
            post(services, at=clock() - timedelta(minutes=30 - 10 * n), type="void", original="T-x") for n in range(3)
        ]  # old: only the exact-time picture, due at once
        runner = Runner(
            db=services.db,
            steps=STEPS,
            dependencies=services.dependencies(),
            clock=clock,
            settings=RunnerSettings(max_attempts=2),
            on_dead=ON_DEAD,
        )
        for _ in range(3):  # attempts come back after their back-off
            runner.run_until_idle()
            clock.advance(3600)
        with UnitOfWork(services.db) as uow:
            last = uow.transactions.get(voids[2])
            steps = {w.kind: w.status for w in uow.work.for_transaction(voids[2])}
        assert steps["capture_exact"] == "dead" and steps["decide_unpictured"] == "done"
        assert (last.status, last.status_reason) == (
            "failed",
            "the capture exact step failed for good after 2 attempt(s)",
        )
        assert [a.rule for a in alerts(services)] == ["void_spree"]

"""Entrance watch: MV Sense messages through a real broker (mosquitto) to one picture per visit and a
watchlist alert per camera, person and cool-down; and the broker going away and coming back.

The camera and recognition are fakes (tests/fakes.py); the database and the broker are real. The
listener runs on paho's thread, so tests wait for conditions with a bound; the runner's steps are
run directly.
"""

from __future__ import annotations

import dataclasses
import threading

import pytest
import yaml
from pydantic import AnyUrl

from bot.app import build_services
from bot.entrance import AppearanceDetector, BrokerAddress, event_time_ms, parse_topic, start_entrance_watch
from bot.runner import Runner
from bot.steps import STEPS
from core.steps import StepKind
from handlers.pipeline.entrance import record_visit
from storage.models import Alert, Snapshot, WorkItem
from storage.uow import UnitOfWork
from tests.card_schema import card_validator
from tests.checkouts import body_now, enroll
from tests.conftest import REPO
from tests.fakes import FakeCamera, FakeFaceBackend, FakeMessenger, face
from tests.mosquitto import broker, mosquitto, publisher, wait_for  # noqa: F401  (fixtures)
from vision.types import RecognitionError

DOOR, SIDE_DOOR = "Q2XX-AAAA-0009", "Q2XX-AAAA-0008"
COUNT, OBJECTS = f"/merakimv/{DOOR}/0", f"/merakimv/{DOOR}/raw_detections"
ROOM = "ROOM-STORE-1"


@pytest.fixture
def business(business: dict) -> dict:
    business["stores"][0].update(entrance_cameras=[DOOR, SIDE_DOOR], webex_room_id=ROOM)
    business["rules"] = yaml.safe_load((REPO / "config" / "flp.yaml").read_text())["rules"]
    return business


@pytest.fixture
def environ(environ: dict) -> dict:
    # The broker's port is known only once it runs: tests that need it point the watch at it (on_broker).
    return {**environ, "MERAKI_DASHBOARD_API_KEY": "test-meraki-key", "MQTT_URL": "mqtt://127.0.0.1:1"}


@pytest.fixture
def camera() -> FakeCamera:
    return FakeCamera()


@pytest.fixture
def faces() -> FakeFaceBackend:
    # The second face stands where a register's cashier would: at the door every face is searched.
    return FakeFaceBackend(
        faces=[face((0.1, 0.2, 0.3, 0.5), name="visitor"), face((0.7, 0.2, 0.9, 0.5), name="passer-by")],
        similarity={("visitor", "P-1"): 95.0},
    )


@pytest.fixture(scope="module")
def validator():
    return card_validator()


@pytest.fixture
def wakes() -> threading.Event:
    return threading.Event()


@pytest.fixture
def services(config, clock, camera, faces, wakes):
    built = build_services(config, clock=clock, camera=camera, faces=faces, products=None, messenger=FakeMessenger())
    built.wake_runner = lambda *kinds: wakes.set()  # Background.wake takes the kinds of the new work
    yield built
    built.db.dispose()


@pytest.fixture
def run(services, clock):
    return Runner(db=services.db, steps=STEPS, dependencies=services.dependencies(), clock=clock).run_until_idle


def on_broker(services, broker) -> None:
    env = services.config.env.model_copy(update={"mqtt_url": AnyUrl(broker.url)})
    services.config = dataclasses.replace(services.config, env=env)


@pytest.fixture
def watch(services, broker):
    on_broker(services, broker)
    started = start_entrance_watch(services, reconnect_s=(1, 2))
    wait_for(lambda: services.component_state["broker"] == "connected", what="the watch to subscribe")
    yield started
    started.stop()


def now_ms(clock) -> int:
    return int(clock().timestamp() * 1000)


def visits(services) -> list[WorkItem]:
    with UnitOfWork(services.db) as uow:
        return list(uow.session.query(WorkItem).filter(WorkItem.kind == StepKind.ENTRANCE_VISIT).order_by(WorkItem.id))


def alerts(services) -> list[Alert]:
    with UnitOfWork(services.db) as uow:
        return sorted(uow.alerts.list(), key=lambda a: a.id)


def entrance_snapshots(services) -> list[Snapshot]:
    with UnitOfWork(services.db) as uow:
        found = list(uow.session.query(Snapshot).filter(Snapshot.kind == "entrance").order_by(Snapshot.created_at))
        for snapshot in found:
            [f.matches for f in snapshot.faces]  # loaded before the session closes
        return found


def someone_appears(publisher, clock, serial: str = DOOR) -> None:
    publisher.publish(f"/merakimv/{serial}/0", {"ts": now_ms(clock), "counts": {"person": 0}})
    publisher.publish(f"/merakimv/{serial}/0", {"ts": now_ms(clock), "counts": {"person": 1}})


# --- through the broker ----------------------------------------------------------------------------


def test_someone_appearing_is_pictured_and_a_watchlist_person_alerted(
    services, watch, publisher, run, clock, camera, faces, wakes
):
    enroll(services)
    someone_appears(publisher, clock)
    wait_for(lambda: visits(services), what="the visit to be recorded")
    wait_for(wakes.is_set, what="the runner to be woken")  # the wake follows the commit: poll, do not race it
    run()
    assert camera.calls == [(DOOR, "1", None)]  # live, through the same camera (and rate budget) as the registers
    [snapshot] = entrance_snapshots(services)
    assert (snapshot.transaction_id, snapshot.camera_serial, snapshot.status) == (None, DOOR, "ready")
    assert sorted(s[0] for s in faces.searches) == ["passer-by", "visitor"]
    assert [f.matches[0].person_id for f in snapshot.faces] == ["P-1"]  # the passer-by's face is not kept
    [alert] = alerts(services)
    assert (alert.rule, alert.person_id, alert.similarity, alert.severity) == ("watchlist_match", "P-1", 95.0, "high")
    assert (alert.transaction_id, alert.register_id, alert.camera_serial, alert.snapshot_id) == (
        None,
        None,
        DOOR,
        snapshot.id,
    )
    assert alert.dedupe_key.startswith(f"entrance:{DOOR}:P-1:watchlist_match:")
    assert (
        alert.facts["snapshot_kind"] == "entrance" and alert.facts["amount"] == 0 and alert.facts["risk_score"] is None
    )
    # Every evaluation is kept with the picture, the rules that did not fire too.
    evaluated = {(r["rule"], r["fired"], r["person_id"]) for r in snapshot.rule_results}
    assert ("watchlist_match", True, "P-1") in evaluated and any(not fired for _, fired, _ in evaluated)
    card = services.messenger.sent[0].card
    assert "Entrance" in str(card)  # the card says where: the door, not a register


def test_a_burst_of_messages_is_one_visit_and_one_picture(services, watch, publisher, run, clock, camera):
    enroll(services)
    before = watch.messages_handled
    for n in range(50):  # a crowd at the door: counts flicker and new people are tracked, 100 messages
        publisher.publish(COUNT, {"ts": now_ms(clock) + n, "counts": {"person": n % 3}})
        publisher.publish(
            OBJECTS,
            {
                "ts": now_ms(clock) + n,
                "objects": [{"oid": n, "type": "person", "x0": 0.1, "y0": 0.1, "x1": 0.2, "y1": 0.4}],
            },
        )
    wait_for(lambda: watch.messages_handled >= before + 100, what="all 100 messages to be handled")
    assert len(visits(services)) == 1
    run()
    assert len(camera.calls) == 1

    clock.advance(31)  # the next window: someone new is pictured again, but the person's alert keeps its cool-down
    someone_appears(publisher, clock)
    wait_for(lambda: len(visits(services)) == 2, what="the second visit")
    run()
    assert len(camera.calls) == 2
    assert len(alerts(services)) == 1


def test_the_window_comes_from_the_config(services, broker, publisher, clock):
    camera = services.config.business.camera.model_copy(update={"entrance_window_s": 120})
    services.config = dataclasses.replace(
        services.config, business=services.config.business.model_copy(update={"camera": camera})
    )
    on_broker(services, broker)
    watch = start_entrance_watch(services, reconnect_s=(1, 2))
    try:
        wait_for(lambda: services.component_state["broker"] == "connected", what="the watch to subscribe")
        someone_appears(publisher, clock)
        wait_for(lambda: len(visits(services)) == 1, what="the first visit")
        # Windows are fixed slices of the event time: 20:03:20 and 20:03:55 share [20:02, 20:04) of 120 s,
        # but not a 30-s window, whose default would picture this one too.
        clock.advance(35)
        handled = watch.messages_handled
        someone_appears(publisher, clock)
        wait_for(lambda: watch.messages_handled >= handled + 2, what="both messages to be handled")
        assert len(visits(services)) == 1
        clock.advance(60)
        someone_appears(publisher, clock)
        wait_for(lambda: len(visits(services)) == 2, what="the visit of the next window")
    finally:
        watch.stop()


def test_broker_restart_is_survived(services, watch, broker, run, clock, client):
    broker.kill()
    wait_for(lambda: services.component_state["broker"] == "reconnecting", what="the lost connection to be noticed")
    assert client.get("/readyz").get_json()["broker"] == "reconnecting"
    broker.start()
    wait_for(lambda: services.component_state["broker"] == "connected", timeout_s=30, what="the watch to reconnect")
    assert client.get("/readyz").get_json()["broker"] == "connected"
    from tests.mosquitto import Publisher

    camera_again = Publisher(broker)
    try:
        someone_appears(camera_again, clock)
    finally:
        camera_again.close()
    wait_for(lambda: visits(services), what="a visit after the restart")


def test_broker_down_at_start_is_retried(services, broker, clock):
    on_broker(services, broker)
    broker.kill()
    watch = start_entrance_watch(services, reconnect_s=(1, 2))
    try:
        assert services.component_state["broker"] == "reconnecting"
        broker.start()
        wait_for(lambda: services.component_state["broker"] == "connected", timeout_s=30, what="the first connection")
    finally:
        watch.stop()
    assert services.component_state["broker"] == "off"


# --- when the watch is off -------------------------------------------------------------------------


@pytest.mark.parametrize("change", ["no MQTT_URL", "no entrance cameras", "camera off"])
def test_the_watch_is_off_without_a_broker_cameras_or_camera_api(change, config, services):
    if change == "no MQTT_URL":
        services.config = dataclasses.replace(config, env=config.env.model_copy(update={"mqtt_url": None}))
    elif change == "no entrance cameras":
        stores = tuple(s.model_copy(update={"entrance_cameras": ()}) for s in config.business.stores)
        services.config = dataclasses.replace(config, business=config.business.model_copy(update={"stores": stores}))
    else:
        services.camera = None
    assert start_entrance_watch(services) is None
    assert services.component_state["broker"] == "off"


# --- the visit step, without the broker ------------------------------------------------------------


def visit(services, clock, serial: str = DOOR) -> None:
    with UnitOfWork(services.db, write=True) as uow:
        record_visit(uow, serial=serial, at_ms=now_ms(clock), window_s=30, now=clock())
        uow.commit()


def test_no_picture_when_no_watchlist_entry_applies(services, run, clock, camera):
    visit(services, clock)
    run()
    assert camera.calls == [] and entrance_snapshots(services) == []


def test_alerts_are_unique_per_person_camera_and_cool_down(services, run, clock):
    enroll(services)
    visit(services, clock)
    run()
    clock.advance(120)
    visit(services, clock)  # same camera, same person, within the 10 m cool-down
    run()
    assert len(entrance_snapshots(services)) == 2
    assert [a.camera_serial for a in alerts(services)] == [DOOR]
    clock.advance(5)
    visit(services, clock, SIDE_DOOR)  # the other door is another place: its own alert, naming the first
    run()
    first, side = alerts(services)
    assert (first.camera_serial, side.camera_serial) == (DOOR, SIDE_DOOR)
    assert sightings_on_card(services, side) == [f"Also seen at the entrance at 17:03 (store time): A-{first.id}"]
    clock.advance(600)
    visit(services, clock)
    run()
    assert [a.camera_serial for a in alerts(services)] == [DOOR, SIDE_DOOR, DOOR]


def card_of(services, alert: Alert) -> dict:
    [card] = [m.card for m in services.messenger.sent if m.card and m.card["body"][0]["text"] == f"Alert A-{alert.id}"]
    return card


def sightings_on_card(services, alert: Alert) -> list[str]:
    body = card_of(services, alert)["body"]
    return [node["text"] for node in body if str(node.get("text", "")).startswith("Also seen")]


def pay(post_signed, clock, transaction_id: str, register_id: str = "reg-1") -> None:
    body = body_now(clock, transaction_id=transaction_id, register_id=register_id)
    assert post_signed("/api/v1/transactions", body).status_code == 202


def test_entrance_then_register_gives_the_register_its_own_card(
    services, run, clock, post_signed, client, auth, validator
):
    enroll(services)
    visit(services, clock)
    run()
    clock.advance(120)  # well within the 10 m cool-down of watchlist_match
    pay(post_signed, clock, "T-2026-000200")
    run()
    door, register = alerts(services)
    assert (door.register_id, door.camera_serial, register.register_id) == (None, DOOR, "reg-1")
    assert (door.rule, register.rule, register.person_id) == ("watchlist_match", "watchlist_match", "P-1")
    # The checkout card names the door's alert, in store time (20:03 UTC is 17:03 in São Paulo).
    assert sightings_on_card(services, register) == [f"Also seen at the entrance at 17:03 (store time): A-{door.id}"]
    assert sightings_on_card(services, door) == []
    assert validator.is_valid(card_of(services, register))
    got = client.get(f"/api/v1/alerts/A-{register.id}", headers=auth).get_json()
    assert got["related_alert_ids"] == [f"A-{door.id}"] and got["register_id"] == "reg-1"
    assert client.get(f"/api/v1/alerts/A-{door.id}", headers=auth).get_json()["related_alert_ids"] == []
    listed = {a["id"]: a["related_alert_ids"] for a in client.get("/api/v1/alerts", headers=auth).get_json()["alerts"]}
    assert listed == {f"A-{door.id}": [], f"A-{register.id}": [f"A-{door.id}"]}


def test_register_then_entrance_gives_the_door_its_own_card(services, run, clock, post_signed, validator):
    enroll(services)
    pay(post_signed, clock, "T-2026-000201")
    run()
    clock.advance(240)
    visit(services, clock)
    run()
    register, door = alerts(services)
    assert (register.register_id, door.register_id, door.camera_serial) == ("reg-1", None, DOOR)
    assert sightings_on_card(services, door) == [f"Also seen at register reg-1 at 17:03 (store time): A-{register.id}"]
    assert validator.is_valid(card_of(services, door))


def test_the_same_register_within_the_cool_down_is_still_one_alert(services, run, clock, post_signed):
    enroll(services)
    pay(post_signed, clock, "T-2026-000202")
    run()
    clock.advance(300)
    pay(post_signed, clock, "T-2026-000203")  # same person, same register, 5 min later
    run()
    assert [(a.transaction_id, a.register_id) for a in alerts(services)] == [("T-2026-000202", "reg-1")]
    clock.advance(30)
    pay(post_signed, clock, "T-2026-000204", register_id="reg-2")  # another register is another place
    run()
    first, other = alerts(services)
    assert (other.transaction_id, other.register_id) == ("T-2026-000204", "reg-2")
    assert sightings_on_card(services, other) == [f"Also seen at register reg-1 at 17:03 (store time): A-{first.id}"]


def test_an_hour_later_the_earlier_alert_is_no_longer_named(services, run, clock, post_signed, client, auth):
    enroll(services)
    visit(services, clock)
    run()
    clock.advance(3601)
    pay(post_signed, clock, "T-2026-000205")
    run()
    door, register = alerts(services)
    assert sightings_on_card(services, register) == []
    assert client.get(f"/api/v1/alerts/A-{register.id}", headers=auth).get_json()["related_alert_ids"] == []


def test_a_late_visit_gets_the_footage_of_its_moment(services, run, clock, camera):
    enroll(services)
    seen_at = clock()
    visit(services, clock)
    clock.advance(60)  # the runner was busy: a live picture now would show whoever came next
    run()
    assert camera.calls == []
    clock.advance(120)  # footage of the visit is indexed by now (camera.exact_delay_s)
    run()
    assert camera.calls == [(DOOR, "1", seen_at)]
    [snapshot] = entrance_snapshots(services)
    assert snapshot.taken_for == seen_at
    assert len(alerts(services)) == 1


def test_recognition_outage_retried_without_asking_the_camera_again(services, run, clock, camera, faces):
    enroll(services)
    real_detect, calls = faces.detect, []

    def flaky(image: bytes):
        calls.append(image)
        if len(calls) == 1:
            raise RecognitionError("Amazon Rekognition could not be reached", retry=True)
        return real_detect(image)

    faces.detect = flaky
    visit(services, clock)
    run()
    assert len(camera.calls) == 1 and alerts(services) == []
    clock.advance(60)
    run()
    assert len(camera.calls) == 1 and len(calls) == 2
    assert len(alerts(services)) == 1


# --- what the listener notices (pure) --------------------------------------------------------------


def test_someone_appears_when_the_count_rises_or_a_new_person_is_tracked():
    seen = AppearanceDetector()
    counts = [seen.observe(DOOR, "0", {"ts": 1, "counts": {"person": n}}) for n in (0, 1, 1, 2, 0, 1)]
    assert counts == [False, True, False, True, False, True]
    people = [
        seen.observe(DOOR, "raw_detections", {"ts": 1, "objects": objects})
        for objects in (
            [{"oid": 7, "type": "person"}],
            [{"oid": 7, "type": "person"}],
            [{"oid": 8, "type": "vehicle"}],
            [{"oid": 7, "type": "person"}, {"oid": 9, "type": "person"}],
        )
    ]
    assert people == [True, False, False, True]
    assert not seen.observe(DOOR, "light", {"lux": 300})
    assert not seen.observe(DOOR, "0", {"counts": {"person": "many"}})


def test_topics_times_and_broker_addresses():
    assert parse_topic(f"/merakimv/{DOOR}/raw_detections") == (DOOR, "raw_detections")
    assert parse_topic("merakimv/x/0") is None and parse_topic("/other/x/0") is None
    assert event_time_ms({"ts": 1_000_500}, 1_000_000) == 1_000_500
    assert event_time_ms({"ts": 5}, 10_000_000) == 10_000_000  # a camera clock far off: ours
    assert event_time_ms({}, 42) == 42
    secure = BrokerAddress.from_url("mqtts://cam%40store:s3cret@broker.example:9999")
    assert (secure.host, secure.port, secure.tls, secure.username, secure.password) == (
        "broker.example",
        9999,
        True,
        "cam@store",
        "s3cret",
    )
    assert BrokerAddress.from_url("mqtt://10.0.0.5").port == 1883
    with pytest.raises(ValueError):
        BrokerAddress.from_url("http://10.0.0.5")

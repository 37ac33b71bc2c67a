"""The Meraki stand-in answers as docs/services.md says Meraki does, checked through our real camera client.

Time is a fake shared by the stand-in, the floor and the client's polling, so nothing sleeps.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests

from simulation.camera_server import NO_VIDEO, CameraStandIn
from simulation.floor import Customer, Floor
from simulation.scenes import Placement
from vision.meraki import MerakiCamera
from vision.types import CameraError

SERIAL = "Q2DM-DEMO-0001"
KEY = "stand-in-key"
START = 1_800_000_000.0


class FakeTime:
    def __init__(self) -> None:
        self.now = START

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture
def floor(clock: FakeTime) -> Floor:
    return Floor([SERIAL], clock=clock.time)


@pytest.fixture
def camera(floor: Floor, clock: FakeTime):
    stand_in = CameraStandIn(floor, api_key=KEY, clock=clock.time).start()
    yield stand_in
    stand_in.stop()


def client(camera: CameraStandIn, clock: FakeTime, *, key: str = KEY) -> MerakiCamera:
    limited: list[float] = []
    meraki = MerakiCamera(
        base_url=camera.base_url,
        api_key=key,
        picture_hosts=[camera.picture_host],
        budget=lambda org: None,
        on_rate_limited=lambda org, seconds: limited.append(seconds),
        poll_initial_s=0.5,
        poll_total_s=10,
        sleep=clock.sleep,
        monotonic=clock.time,
    )
    meraki.limited = limited
    return meraki


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(START + seconds, UTC)


GRACE = Customer((Placement("grace_hopper", at=(0.3, 0.4)),))
ASTRONAUT = Customer((Placement("astronaut", at=(0.3, 0.4)),))


def test_a_live_snapshot_link_answers_404_until_the_picture_is_there(camera, floor, clock):
    floor.step_up(SERIAL, GRACE)
    picture = client(camera, clock).snapshot(SERIAL, org_id="o", at=None)
    assert picture.content_type == "image/jpeg" and picture.content == floor.picture(SERIAL)
    assert camera.counts["image_not_ready"] >= 1 and camera.counts["image"] == 1


def test_recent_footage_is_not_indexed_yet_and_older_footage_shows_who_was_there(camera, floor, clock):
    floor.step_up(SERIAL, GRACE)
    clock.now += 10
    floor.step_up(SERIAL, ASTRONAUT)
    clock.now += 1
    meraki = client(camera, clock)
    with pytest.raises(CameraError) as refused:
        meraki.snapshot(SERIAL, org_id="o", at=at(10))  # a second ago
    assert refused.value.reason == "no footage for that moment yet" and refused.value.retry
    clock.now += 5
    assert meraki.snapshot(SERIAL, org_id="o", at=at(2)).content == floor.picture(SERIAL, START + 2)
    assert floor.picture(SERIAL, START + 2) != floor.picture(SERIAL, START + 12)


def test_a_late_live_snapshot_shows_the_next_customer(floor, clock):
    floor.step_up(SERIAL, GRACE)
    clock.now += 3
    floor.step_up(SERIAL, ASTRONAUT)
    assert floor.picture(SERIAL) == floor.picture(SERIAL, START + 3.5) != floor.picture(SERIAL, START + 1)


def test_unknown_serials_and_wrong_keys_are_refused_for_good(camera, clock):
    with pytest.raises(CameraError) as unknown:
        client(camera, clock).snapshot("Q2XX-NOPE-0001", org_id="o", at=None)
    assert (unknown.value.reason, unknown.value.retry) == ("unknown camera serial", False)
    with pytest.raises(CameraError) as wrong:
        client(camera, clock, key="wrong").snapshot(SERIAL, org_id="o", at=None)
    assert (wrong.value.reason, wrong.value.retry) == ("Meraki API key refused", False)


def test_fullframe_with_a_timestamp_is_refused(camera):
    response = requests.post(
        f"{camera.base_url}/devices/{SERIAL}/camera/generateSnapshot",
        timeout=5,
        headers={"Authorization": f"Bearer {KEY}"},
        json={"timestamp": "2020-01-01T00:00:00Z", "fullframe": True},
    )
    assert response.status_code == 400 and "fullframe" in response.json()["errors"][0]


def test_bursts_over_the_rate_get_429_with_retry_after(camera, floor):
    floor.step_up(SERIAL, Customer())
    url, auth = f"{camera.base_url}/devices/{SERIAL}/camera/generateSnapshot", {"Authorization": f"Bearer {KEY}"}
    answers = [requests.post(url, headers=auth, json={}, timeout=5) for _ in range(camera.rate_per_s + 1)]
    assert [a.status_code for a in answers[:-1]] == [202] * camera.rate_per_s
    assert answers[-1].status_code == 429 and answers[-1].headers["Retry-After"] == "1"
    assert set(answers[0].json()) == {"url", "expiry"} and "expire" in answers[0].json()["expiry"]


def test_a_picture_link_expires(camera, floor, clock):
    floor.step_up(SERIAL, Customer())
    url = requests.post(
        f"{camera.base_url}/devices/{SERIAL}/camera/generateSnapshot",
        json={},
        timeout=5,
        headers={"Authorization": f"Bearer {KEY}"},
    ).json()["url"]
    clock.now += camera.link_ttl_s + 1
    assert requests.get(url, timeout=5).status_code == 403


def test_the_footage_link_opens_a_page_of_that_moment(camera, floor, clock):
    floor.step_up(SERIAL, GRACE)
    clock.now += 30
    link = client(camera, clock).video_link(SERIAL, org_id="o", at=at(5))
    page = requests.get(link, timeout=5)
    assert page.status_code == 200 and SERIAL in page.text and "<img" in page.text
    frame = requests.get(
        f"{camera.root}/footage/{SERIAL}/frame.jpg", params={"timestamp": "2027-01-15T08:00:05Z"}, timeout=5
    )
    assert frame.status_code == 200 and frame.headers["Content-Type"] == "image/jpeg"


def test_no_video_is_meraki_s_wording(camera, floor, clock):
    floor.step_up(SERIAL, Customer())
    response = requests.post(
        f"{camera.base_url}/devices/{SERIAL}/camera/generateSnapshot",
        timeout=5,
        headers={"Authorization": f"Bearer {KEY}"},
        json={"timestamp": datetime.fromtimestamp(clock.now, UTC).isoformat()},
    )
    assert response.status_code == 400 and response.json() == {"errors": [NO_VIDEO]}


def test_the_rate_is_per_organisation_as_meraki_counts_it(clock):
    other = "Q2XX-OTHR-0001"
    floor = Floor([SERIAL, other], clock=clock.time)
    for serial in (SERIAL, other):
        floor.step_up(serial, Customer())
    stand_in = CameraStandIn(floor, api_key=KEY, clock=clock.time, orgs={SERIAL: "org-a", other: "org-b"}).start()
    try:
        auth = {"Authorization": f"Bearer {KEY}"}

        def burst(serial: str) -> list[int]:
            url = f"{stand_in.base_url}/devices/{serial}/camera/generateSnapshot"
            return [
                requests.post(url, headers=auth, json={}, timeout=5).status_code for _ in range(stand_in.rate_per_s)
            ]

        assert burst(SERIAL) == [202] * stand_in.rate_per_s
        assert burst(other) == [202] * stand_in.rate_per_s  # another organisation's budget is its own
        assert burst(SERIAL)[0] == 429
    finally:
        stand_in.stop()

"""MerakiCamera against a mocked Dashboard API and image host (``responses``); nothing really sleeps."""

from __future__ import annotations

import http.server
import logging
import threading
import time
import traceback
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from tests.dripping import dripping_server
from vision.meraki import MerakiCamera
from vision.types import CameraError

BASE = "https://api.meraki.test/api/v1"
SERIAL = "Q2XX-AAAA-0001"
ORG = "org-1"
SNAP = f"{BASE}/devices/{SERIAL}/camera/generateSnapshot"
VIDEO = f"{BASE}/devices/{SERIAL}/camera/videoLink"
SECRET = "b2d123asdf423qd22d2-capability"
IMAGE_URL = f"https://spn4.snapshots.test/stream/jpeg/snapshot/{SECRET}?token=t0k3n"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
AT = datetime(2026, 11, 24, 17, 3, 12, tzinfo=timezone(timedelta(hours=-3)))


class FakeTime:
    """``sleep`` records and advances ``monotonic``: waits are checked, never spent."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


class Recorder:
    def __init__(self) -> None:
        self.budget: list[str] = []
        self.rate_limited: list[tuple[str, float]] = []


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def calls() -> Recorder:
    return Recorder()


@pytest.fixture
def camera(fake_time: FakeTime, calls: Recorder) -> MerakiCamera:
    return MerakiCamera(
        base_url=BASE + "/",
        api_key="secret-key",
        budget=calls.budget.append,
        on_rate_limited=lambda org, s: calls.rate_limited.append((org, s)),
        timeout_s=5,
        poll_initial_s=2,
        poll_total_s=30,
        sleep=fake_time.sleep,
        monotonic=fake_time.monotonic,
        picture_hosts=["127.0.0.1"],  # the loopback image hosts of the real-socket tests
    )


def snapshot_ok(mock: responses.RequestsMock, body: dict[str, Any] | None = None, status: int = 202) -> None:
    mock.post(
        SNAP,
        status=status,
        json={"url": IMAGE_URL, "expiry": "Access to the image will expire in one day."},
        match=[matchers.json_params_matcher(body or {})],
    )


def no_secret(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text and "t0k3n" not in text and IMAGE_URL not in text


def error_texts(error: CameraError) -> tuple[str, ...]:
    return str(error), repr(error), error.reason, "".join(traceback.format_exception(error))


def test_live_snapshot_polls_with_growing_waits_until_ready(mock, camera, fake_time, calls) -> None:
    snapshot_ok(mock)
    mock.get(IMAGE_URL, status=404)
    mock.get(IMAGE_URL, status=404)
    mock.get(IMAGE_URL, status=200, body=JPEG, content_type="image/jpeg")

    picture = camera.snapshot(SERIAL, org_id=ORG, at=None)

    assert picture.content == JPEG and picture.content_type == "image/jpeg"
    assert fake_time.sleeps == [2, 4, 8]
    assert calls.budget == [ORG]  # the Dashboard call only, never the image host
    post, *gets = mock.calls
    assert post.request.headers["Authorization"] == "Bearer secret-key"
    assert all("Authorization" not in g.request.headers for g in gets)


def test_png_is_accepted_whatever_the_header_says(mock, camera) -> None:
    snapshot_ok(mock, status=200)
    mock.get(IMAGE_URL, status=200, body=PNG, content_type="application/octet-stream")
    assert camera.snapshot(SERIAL, org_id=ORG, at=None).content_type == "image/png"


def test_image_never_ready_gives_up_at_the_total(mock, camera, fake_time) -> None:
    snapshot_ok(mock)
    mock.get(IMAGE_URL, status=404)
    with pytest.raises(CameraError) as caught:
        camera.snapshot(SERIAL, org_id=ORG, at=None)
    assert caught.value.reason == "snapshot image was not ready in time" and caught.value.retry
    assert fake_time.sleeps == [2, 4, 8, 16]
    assert sum(fake_time.sleeps) == 30


def test_last_wait_is_cut_to_the_total(mock, fake_time, calls) -> None:
    camera = MerakiCamera(
        base_url=BASE,
        api_key="k",
        budget=calls.budget.append,
        on_rate_limited=lambda o, s: None,
        poll_initial_s=2,
        poll_total_s=20,
        sleep=fake_time.sleep,
        monotonic=fake_time.monotonic,
    )
    snapshot_ok(mock)
    mock.get(IMAGE_URL, status=404)
    with pytest.raises(CameraError):
        camera.snapshot(SERIAL, org_id=ORG, at=None)
    assert fake_time.sleeps == [2, 4, 8, 6]


def test_exact_time_body_carries_the_timestamp_in_utc(mock, camera) -> None:
    snapshot_ok(mock, body={"timestamp": "2026-11-24T20:03:12Z"})  # -03:00 -> Z; no fullframe
    mock.get(IMAGE_URL, status=200, body=JPEG, content_type="image/jpeg")
    assert camera.snapshot(SERIAL, org_id=ORG, at=AT).content == JPEG


def test_naive_time_is_refused_before_any_request(mock, camera, calls) -> None:
    with pytest.raises(ValueError):
        camera.snapshot(SERIAL, org_id=ORG, at=datetime(2026, 11, 24, 20, 3, 12))
    assert calls.budget == []


@pytest.mark.parametrize(
    ("status", "body", "reason", "retry"),
    [
        (400, {"errors": ["No video for specified timestamp"]}, "no footage for that moment yet", True),
        (400, {"errors": ["Camera is offline"]}, "camera offline or unreachable", True),
        (404, {"errors": ["Not found"]}, "unknown camera serial", False),
        (401, {"errors": ["Invalid API key"]}, "Meraki API key refused", False),
        (403, {"errors": ["Forbidden"]}, "Meraki API key refused", False),
        (500, {"errors": ["Internal error"]}, "Meraki API unavailable", True),
        (503, None, "Meraki API unavailable", True),
    ],
)
def test_refused_snapshot_gives_plain_reason_and_retry_flag(mock, camera, calls, status, body, reason, retry) -> None:
    mock.post(
        SNAP, status=status, json=body, match=[matchers.json_params_matcher({"timestamp": "2026-11-24T20:03:12Z"})]
    )
    with pytest.raises(CameraError) as caught:
        camera.snapshot(SERIAL, org_id=ORG, at=AT)
    assert (caught.value.reason, caught.value.retry) == (reason, retry)
    assert calls.rate_limited == [] and calls.budget == [ORG]


def test_rate_limited_tells_the_budget_and_is_retryable(mock, camera, calls) -> None:
    mock.post(
        SNAP,
        status=429,
        json={"errors": ["Too many requests"]},
        headers={"Retry-After": "3"},
        match=[matchers.json_params_matcher({})],
    )
    with pytest.raises(CameraError) as caught:
        camera.snapshot(SERIAL, org_id=ORG, at=None)
    assert caught.value.retry and caught.value.retry_after_s == 3.0
    assert calls.rate_limited == [(ORG, 3.0)]


class Jitter:
    """Records the range of each randomised wait and picks its top (the longest the product may wait)."""

    def __init__(self) -> None:
        self.ranges: list[tuple[float, float]] = []

    def __call__(self, low: float, high: float) -> float:
        self.ranges.append((low, high))
        return high


def limited_camera(calls: Recorder, fake_time: FakeTime, jitter: Any = None) -> MerakiCamera:
    extra = {} if jitter is None else {"jitter": jitter}
    return MerakiCamera(
        base_url=BASE,
        api_key="secret-key",
        budget=calls.budget.append,
        on_rate_limited=lambda org, s: calls.rate_limited.append((org, s)),
        sleep=fake_time.sleep,
        monotonic=fake_time.monotonic,
        **extra,
    )


def test_429_without_retry_after_backs_off_like_the_sdk_and_grows_to_a_minute(mock, calls, fake_time) -> None:
    jitter = Jitter()
    camera = limited_camera(calls, fake_time, jitter)
    mock.post(SNAP, status=429, json={"errors": ["Too many requests"]})  # Meraki's front proxy: no Retry-After
    waits = []
    for _ in range(5):
        with pytest.raises(CameraError) as caught:
            camera.snapshot(SERIAL, org_id=ORG, at=None)
        assert caught.value.retry and caught.value.reason == "Meraki rate limit reached"
        waits.append(caught.value.retry_after_s)
    assert jitter.ranges == [(5.0, 10.0), (10.0, 20.0), (20.0, 40.0), (30.0, 60.0), (30.0, 60.0)]
    assert waits == [10.0, 20.0, 40.0, 60.0, 60.0] and calls.rate_limited == [(ORG, w) for w in waits]
    assert fake_time.sleeps == []  # the camera never sleeps on a 429: the shared budget makes everyone wait


@pytest.mark.parametrize("header", [{}, {"Retry-After": "soon"}, {"Retry-After": "nan"}])
def test_429_without_a_usable_retry_after_waits_seconds_not_one(mock, calls, fake_time, header) -> None:
    camera = limited_camera(calls, fake_time)  # the real randomness
    mock.get(VIDEO, status=429, headers=header)
    assert camera.video_link(SERIAL, org_id=ORG, at=AT) is None
    [(org, wait)] = calls.rate_limited
    assert org == ORG and 5.0 <= wait <= 10.0


def test_an_answer_other_than_429_ends_the_streak_for_that_organisation_only(mock, calls, fake_time) -> None:
    jitter = Jitter()
    camera = limited_camera(calls, fake_time, jitter)
    mock.get(VIDEO, status=429)
    for _ in range(2):
        camera.video_link(SERIAL, org_id=ORG, at=AT)
    camera.video_link(SERIAL, org_id="org-2", at=AT)  # another organisation starts its own streak
    mock.replace(responses.GET, VIDEO, json={"url": "https://dashboard.meraki.test/v"})
    assert camera.video_link(SERIAL, org_id=ORG, at=AT) == "https://dashboard.meraki.test/v"
    mock.replace(responses.GET, VIDEO, status=429)
    camera.video_link(SERIAL, org_id=ORG, at=AT)
    camera.video_link(SERIAL, org_id="org-2", at=AT)
    assert [wait for _, wait in calls.rate_limited] == [10.0, 20.0, 10.0, 10.0, 20.0]


def test_retry_after_is_honoured_as_sent_even_during_a_streak(mock, calls, fake_time) -> None:
    jitter = Jitter()
    camera = limited_camera(calls, fake_time, jitter)
    mock.get(VIDEO, status=429)
    camera.video_link(SERIAL, org_id=ORG, at=AT)
    mock.replace(responses.GET, VIDEO, status=429, headers={"Retry-After": "2"})
    camera.video_link(SERIAL, org_id=ORG, at=AT)
    assert calls.rate_limited == [(ORG, 10.0), (ORG, 2.0)] and len(jitter.ranges) == 1


@pytest.mark.parametrize(
    ("exception", "reason"),
    [
        (requests.exceptions.ConnectTimeout("connect timed out"), "Meraki API did not answer in time"),
        (requests.exceptions.ReadTimeout("read timed out"), "Meraki API did not answer in time"),
        (requests.exceptions.ConnectionError("refused"), "Meraki API unreachable"),
    ],
)
def test_network_failure_is_retryable(mock, camera, exception, reason) -> None:
    mock.post(SNAP, body=exception)
    with pytest.raises(CameraError) as caught:
        camera.snapshot(SERIAL, org_id=ORG, at=None)
    assert (caught.value.reason, caught.value.retry) == (reason, True)


def test_not_an_image_is_an_error(mock, camera) -> None:
    snapshot_ok(mock)
    mock.get(IMAGE_URL, status=200, body=b"<html>Access denied</html>", content_type="image/jpeg")
    with pytest.raises(CameraError) as caught:
        camera.snapshot(SERIAL, org_id=ORG, at=None)
    assert caught.value.reason == "camera returned something that is not a picture" and caught.value.retry


def test_expired_image_link_needs_a_new_snapshot(mock, camera) -> None:
    snapshot_ok(mock)
    mock.get(IMAGE_URL, status=403)
    with pytest.raises(CameraError) as caught:
        camera.snapshot(SERIAL, org_id=ORG, at=None)
    assert caught.value.reason == "snapshot image could not be downloaded" and caught.value.retry
    no_secret(*error_texts(caught.value))


def test_image_host_failures_keep_polling_then_say_so(mock, camera, fake_time) -> None:
    snapshot_ok(mock)
    mock.get(IMAGE_URL, body=requests.exceptions.ConnectionError(f"Max retries exceeded with url: {IMAGE_URL}"))
    with pytest.raises(CameraError) as caught:
        camera.snapshot(SERIAL, org_id=ORG, at=None)
    assert caught.value.reason == "snapshot image could not be downloaded" and caught.value.retry
    assert len(fake_time.sleeps) == 4
    no_secret(*error_texts(caught.value))
    assert caught.value.__context__ is None and caught.value.__cause__ is None


def test_answer_without_an_image_link(mock, camera) -> None:
    mock.post(SNAP, status=202, json={"expiry": "soon"}, match=[matchers.json_params_matcher({})])
    with pytest.raises(CameraError) as caught:
        camera.snapshot(SERIAL, org_id=ORG, at=None)
    assert caught.value.retry


def test_redirect_within_meraki_is_followed_and_budgeted(mock, camera, calls) -> None:
    shard = "https://n123.meraki.test/api/v1"
    mock.post(SNAP, status=308, headers={"Location": f"{shard}/devices/{SERIAL}/camera/generateSnapshot"})
    mock.post(
        f"{shard}/devices/{SERIAL}/camera/generateSnapshot",
        status=202,
        json={"url": IMAGE_URL},
        match=[matchers.json_params_matcher({}), matchers.header_matcher({"Authorization": "Bearer secret-key"})],
    )
    mock.get(IMAGE_URL, status=200, body=JPEG)
    assert camera.snapshot(SERIAL, org_id=ORG, at=None).content == JPEG
    assert calls.budget == [ORG, ORG]


def test_redirect_elsewhere_is_refused_and_the_key_stays_home(mock, camera, calls) -> None:
    mock.post(SNAP, status=307, headers={"Location": "https://evil.example/steal"})
    with pytest.raises(CameraError) as caught:
        camera.snapshot(SERIAL, org_id=ORG, at=None)
    assert not caught.value.retry and len(mock.calls) == 1


def test_image_url_never_logged_or_raised(mock, camera, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "urllib3.connectionpool", "requests", "vision.meraki"):
        caplog.set_level(logging.DEBUG, logger=name)
    snapshot_ok(mock)
    mock.get(IMAGE_URL, status=404)
    mock.get(IMAGE_URL, status=200, body=b"not an image")
    with pytest.raises(CameraError) as caught:
        camera.snapshot(SERIAL, org_id=ORG, at=None)
    assert caplog.records, "the client logs its steps (with ids)"
    assert any(SERIAL in r.getMessage() for r in caplog.records)
    no_secret(caplog.text, *(r.getMessage() for r in caplog.records), *error_texts(caught.value))


class _ImageHandler(http.server.BaseHTTPRequestHandler):
    """A real loopback image host: 404 first, then a JPEG, so urllib3's own DEBUG logging runs."""

    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        ready = type(self).hits > 1
        self.send_response(200 if ready else 404)
        self.send_header("Content-Type", "image/jpeg")
        body = JPEG if ready else b""
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_real_urllib3_debug_logs_do_not_show_the_image_url(mock, camera, caplog) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ImageHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        image_url = f"http://127.0.0.1:{server.server_port}/stream/jpeg/snapshot/{SECRET}?token=t0k3n"
        mock.add_passthru(f"http://127.0.0.1:{server.server_port}/")
        mock.post(SNAP, status=202, json={"url": image_url}, match=[matchers.json_params_matcher({})])
        caplog.set_level(logging.DEBUG)
        caplog.set_level(logging.DEBUG, logger="urllib3")
        assert camera.snapshot(SERIAL, org_id=ORG, at=None).content == JPEG
    finally:
        server.shutdown()
        server.server_close()
    urllib3_records = [r for r in caplog.records if r.name.startswith("urllib3")]
    assert urllib3_records, "urllib3 really logged the image requests"
    no_secret(caplog.text, *(r.getMessage() for r in caplog.records))
    assert "/stream/jpeg/snapshot" not in caplog.text


def test_video_link_gives_the_dashboard_url(mock, camera, calls) -> None:
    mock.get(
        VIDEO,
        json={
            "url": "https://n1.meraki.test/o/x/manage/nodes/new_list/1?timestamp=1",
            "visionUrl": "https://vision.meraki.test/n/1/cameras/1/video?timestamp=1",
        },
        match=[
            matchers.query_param_matcher({"timestamp": "2026-11-24T20:03:12Z"}),
            matchers.header_matcher({"Authorization": "Bearer secret-key"}),
        ],
    )
    assert (
        camera.video_link(SERIAL, org_id=ORG, at=AT) == "https://n1.meraki.test/o/x/manage/nodes/new_list/1?timestamp=1"
    )
    assert calls.budget == [ORG]


def test_video_link_falls_back_to_vision_url(mock, camera) -> None:
    mock.get(VIDEO, json={"visionUrl": "https://vision.meraki.test/v"})
    assert camera.video_link(SERIAL, org_id=ORG, at=AT) == "https://vision.meraki.test/v"


@pytest.mark.parametrize("status", [400, 404, 403])
def test_video_link_is_none_when_refused(mock, camera, status) -> None:
    mock.get(VIDEO, status=status, json={"errors": ["no"]})
    assert camera.video_link(SERIAL, org_id=ORG, at=AT) is None


def test_video_link_rate_limited_tells_the_budget(mock, camera, calls) -> None:
    mock.get(VIDEO, status=429, headers={"Retry-After": "2"})
    assert camera.video_link(SERIAL, org_id=ORG, at=AT) is None
    assert calls.rate_limited == [(ORG, 2.0)]


def test_video_link_server_error_is_retryable(mock, camera) -> None:
    mock.get(VIDEO, status=502)
    with pytest.raises(CameraError) as caught:
        camera.video_link(SERIAL, org_id=ORG, at=AT)
    assert caught.value.retry


def test_redirect_from_a_loopback_stand_in_stays_on_that_host(mock, calls) -> None:
    camera = MerakiCamera(
        base_url="http://127.0.0.1:9/api/v1", api_key="k", budget=calls.budget.append, on_rate_limited=lambda o, s: None
    )
    mock.post(
        f"http://127.0.0.1:9/api/v1/devices/{SERIAL}/camera/generateSnapshot",
        status=307,
        headers={"Location": "http://10.0.0.1/api/v1/elsewhere"},
    )
    with pytest.raises(CameraError) as caught:
        camera.snapshot(SERIAL, org_id=ORG, at=None)
    assert caught.value.reason == "Meraki API redirected to an unexpected host"


class _DrippingImageHandler(http.server.BaseHTTPRequestHandler):
    """An image host that answers at once and then drips the body a byte at a time (each read well within the
    socket timeout, the whole far beyond any reasonable download)."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(JPEG) * 100))
        self.end_headers()
        try:
            for byte in (JPEG * 100)[:400]:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                threading.Event().wait(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args: Any) -> None:
        pass


def test_a_dripping_image_host_cannot_hold_the_download_past_its_deadline(mock) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _DrippingImageHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    real = MerakiCamera(
        base_url=BASE + "/",
        api_key="secret-key",
        budget=lambda org: None,
        on_rate_limited=lambda org, s: None,
        timeout_s=1,
        poll_initial_s=0.01,
        poll_total_s=1,
        picture_hosts=["127.0.0.1"],
    )
    try:
        image_url = f"http://127.0.0.1:{server.server_port}/stream/jpeg/snapshot/{SECRET}"
        mock.add_passthru(f"http://127.0.0.1:{server.server_port}/")
        mock.post(SNAP, status=202, json={"url": image_url}, match=[matchers.json_params_matcher({})])
        started = time.monotonic()
        with pytest.raises(CameraError, match="took too long") as slow:
            real.snapshot(SERIAL, org_id=ORG, at=None)
        # 400 bytes at 20 a second would take 20 s; the download's own deadline (1 s) ends it.
        assert time.monotonic() - started < 5 and slow.value.retry is True
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("drip", ["headers", "body"])
def test_a_dripping_dashboard_cannot_hold_an_api_call_past_its_deadline(mock, drip: str) -> None:
    with dripping_server(drip, body=b'{"url": "https://spn4.snapshots.test/x"}') as base:
        mock.add_passthru(base + "/")
        real = MerakiCamera(
            base_url=base + "/api/v1",
            api_key="secret-key",
            budget=lambda org: None,
            on_rate_limited=lambda org, s: None,
            timeout_s=1,
        )
        started = time.monotonic()
        with pytest.raises(CameraError) as slow:
            real.snapshot(SERIAL, org_id=ORG, at=None)
        # 400 drips at 20 a second would take 20 s: the call's total deadline (1 s, JSON body included) ends it.
        assert time.monotonic() - started < 3
        assert slow.value.reason == "Meraki API did not answer in time" and slow.value.retry is True
        with dripping_server(None, body=b'{"url": "https://x.test/v"}') as quick:
            mock.add_passthru(quick + "/")
            fine = MerakiCamera(
                base_url=quick + "/api/v1", api_key="k", budget=lambda org: None, on_rate_limited=lambda o, s: None
            )
            assert fine.video_link(SERIAL, org_id=ORG, at=AT) == "https://x.test/v"

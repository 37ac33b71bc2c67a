"""Issue 17, item 3: the picture URL Meraki answers is hostile input. Real sockets on 127.0.0.1, no mocks of HTTP.

The Dashboard and the image hosts are small loopback servers; what each one was asked is recorded, so a
refused download is shown never to have reached its target, not just to have failed.
"""

from __future__ import annotations

import http.server
import io
import json
import socket
import struct
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
import yaml
from PIL import Image

from bot.app import build_services
from core.config import ConfigError, load_config
from core.http_deadline import total_deadline
from core.outbound_guard import OutboundPolicy, OutboundRefused, guarded_session
from tests.conftest import base_environ, minimal_business
from vision import image_prep
from vision.annotate import annotate
from vision.meraki import MerakiCamera
from vision.rekognition import sendable
from vision.types import CameraError, RecognitionError

SERIAL, ORG = "Q2XX-AAAA-0001", "org-1"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"\xff\xd9"
PUBLIC_ADDRESS = "93.184.215.14"  # a global address; the tests' loopback-only guard refuses to connect to it


class Host:
    """A loopback HTTP server answering every GET with ``answer(path) -> (status, headers, body)``; it records paths
    and answers ``POST …/generateSnapshot`` with ``{"url": picture_url}``, so it can play the Dashboard too."""

    def __init__(self, answer: Callable[[str], tuple[int, dict[str, str], bytes]] | None = None):
        self.answer = answer or (lambda path: (200, {"Content-Type": "image/jpeg"}, JPEG))
        self.paths: list[str] = []
        self.picture_url = ""
        host = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host.paths.append(self.path)
                status, headers, body = host.answer(self.path)
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.dumps({"url": host.picture_url}).encode()
                self.send_response(202)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def hosts(*servers: Host) -> Iterator[None]:
    threads = [threading.Thread(target=s.server.serve_forever, kwargs={"poll_interval": 0.05}) for s in servers]
    for thread in threads:
        thread.daemon = True
        thread.start()
    try:
        yield
    finally:
        for server in servers:
            server.server.shutdown()
            server.server.server_close()


def camera_for(dashboard: Host, *, picture_hosts: list[str]) -> MerakiCamera:
    return MerakiCamera(
        base_url=f"{dashboard.root}/api/v1",
        api_key="dashboard-key",
        budget=lambda org: None,
        on_rate_limited=lambda org, s: None,
        timeout_s=2,
        poll_initial_s=0.01,
        poll_total_s=3,
        picture_hosts=picture_hosts,
    )


def refused(camera: MerakiCamera) -> CameraError:
    started = time.monotonic()
    with pytest.raises(CameraError) as caught:
        camera.snapshot(SERIAL, org_id=ORG, at=None)
    assert time.monotonic() - started < 3, "a refusal is immediate, not a timeout"
    return caught.value


# --- where a picture may come from -----------------------------------------------------------------------------


def test_a_listed_loopback_host_serves_its_picture() -> None:
    dashboard, pictures = Host(), Host()
    dashboard.picture_url = f"{pictures.root}/snapshot/secret"
    with hosts(dashboard, pictures):
        picture = camera_for(dashboard, picture_hosts=[f"127.0.0.1:{pictures.port}"]).snapshot(
            SERIAL, org_id=ORG, at=None
        )
    assert picture.content == JPEG and pictures.paths == ["/snapshot/secret"]


@pytest.mark.parametrize("listed", [[], ["127.0.0.1:1"], ["localhost"]], ids=["nothing", "another-port", "a-name"])
def test_an_unlisted_http_or_loopback_link_is_never_fetched(listed: list[str]) -> None:
    """The issue's case: a link to another loopback service was fetched, stored and posted to Webex."""
    dashboard, other_service = Host(), Host()
    dashboard.picture_url = f"{other_service.root}/admin/export"
    with hosts(dashboard, other_service):
        error = refused(camera_for(dashboard, picture_hosts=listed))
    assert error.reason == "snapshot image host is not allowed" and error.retry is False
    assert other_service.paths == []


def test_a_redirect_to_a_host_that_is_not_allowed_is_not_followed() -> None:
    dashboard, pictures, other_service = Host(), Host(), Host()
    pictures.answer = lambda path: (
        (302, {"Location": "/moved"}, b"")
        if path == "/first"
        else (302, {"Location": f"{other_service.root}/admin"}, b"")
    )
    dashboard.picture_url = f"{pictures.root}/first"
    with hosts(dashboard, pictures, other_service):
        error = refused(camera_for(dashboard, picture_hosts=[f"127.0.0.1:{pictures.port}"]))
    # The hop within the listed host was followed; the one leaving it was not.
    assert pictures.paths == ["/first", "/moved"] and other_service.paths == []
    assert error.reason == "snapshot image host is not allowed"


def test_a_redirect_within_the_listed_host_is_followed_and_a_loop_ends() -> None:
    dashboard, pictures = Host(), Host()
    pictures.answer = lambda path: (
        (307, {"Location": "/there"}, b"") if path == "/here" else (200, {"Content-Type": "image/jpeg"}, JPEG)
    )
    dashboard.picture_url = f"{pictures.root}/here"
    listed = [f"127.0.0.1:{pictures.port}"]
    with hosts(dashboard, pictures):
        assert camera_for(dashboard, picture_hosts=listed).snapshot(SERIAL, org_id=ORG, at=None).content == JPEG
        pictures.answer = lambda path: (302, {"Location": "/again"}, b"")
        error = refused(camera_for(dashboard, picture_hosts=listed))
    assert error.reason == "snapshot image redirected too many times"


def test_a_declared_body_over_the_cap_is_refused_before_it_is_read() -> None:
    dashboard, pictures = Host(), Host()
    pictures.answer = lambda path: (200, {"Content-Length": str(200 * 1024 * 1024)}, JPEG)
    dashboard.picture_url = f"{pictures.root}/huge"
    with hosts(dashboard, pictures):
        error = refused(camera_for(dashboard, picture_hosts=[f"127.0.0.1:{pictures.port}"]))
    assert error.reason == "snapshot image is too large" and error.retry is False


# --- the address behind a name ---------------------------------------------------------------------------------


def resolver(*answers: str) -> tuple[Callable[[str, int], list[tuple[Any, ...]]], list[str]]:
    asked: list[str] = []

    def resolve(host: str, port: int) -> list[tuple[Any, ...]]:
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers]

    return resolve, asked


@pytest.mark.parametrize(
    "answers",
    [
        ["127.0.0.1"],
        ["10.1.2.3"],
        ["192.168.0.10"],
        ["169.254.169.254"],  # cloud metadata
        ["100.64.0.1"],  # carrier-grade NAT
        [PUBLIC_ADDRESS, "172.16.0.1"],  # one private answer among public ones is enough to refuse
    ],
)
def test_a_name_behind_a_private_loopback_or_link_local_address_is_refused(answers: list[str]) -> None:
    resolve, _ = resolver(*answers)
    policy = OutboundPolicy.of([], resolve=resolve)
    policy.check_url("https://pictures.example/x")  # the URL alone is fine: the addresses are what it is refused for
    with pytest.raises(OutboundRefused, match="private, loopback or link-local"):
        policy.addresses("pictures.example", 443)
    with pytest.raises(OutboundRefused):
        OutboundPolicy.of([]).addresses("::ffff:127.0.0.1", 443)  # an IPv4-mapped loopback, no name at all


def test_the_connection_goes_to_the_checked_address_and_dns_is_asked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: the name is resolved once, by the check, and the socket connects to that very address;
    a second lookup (which a rebinding server would answer with 127.0.0.1) never happens."""
    resolve, asked = resolver(PUBLIC_ADDRESS)
    connected: list[str] = []
    guarded_connect = socket.socket.connect

    def recording_connect(sock: socket.socket, address: Any) -> Any:
        connected.append(address[0])
        return guarded_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", recording_connect)
    monkeypatch.setattr(socket, "getaddrinfo", _no_dns(socket.getaddrinfo))
    session = guarded_session(OutboundPolicy.of([], resolve=resolve))
    with pytest.raises(requests.ConnectionError), total_deadline(3):
        session.get("https://rebinding.example/x", timeout=2)
    assert asked == ["rebinding.example"] and connected == [PUBLIC_ADDRESS]


def _no_dns(real: Callable[..., Any]) -> Callable[..., Any]:
    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in str(host) else socket.AF_INET, str(host))
        except OSError:
            raise AssertionError(f"a second name lookup for {host}") from None
        return real(host, *args, **kwargs)

    return getaddrinfo


def test_a_listed_name_may_resolve_to_loopback_and_an_environment_proxy_is_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pictures = Host()
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # would swallow the request if it were used
    resolve, asked = resolver("127.0.0.1")
    session = guarded_session(OutboundPolicy.of([f"camera-stand-in.test:{pictures.port}"], resolve=resolve))
    with hosts(pictures), total_deadline(3):
        answer = session.get(f"http://camera-stand-in.test:{pictures.port}/p", timeout=2)
    assert answer.content == JPEG and asked == ["camera-stand-in.test"] and pictures.paths == ["/p"]


def test_picture_hosts_come_from_the_environment(tmp_path) -> None:
    environ = {**base_environ(tmp_path, "sqlite://"), "MERAKI_PICTURE_HOSTS": "127.0.0.1:8081, cam.local"}
    config = load_config(environ, yaml.safe_dump(minimal_business()))
    assert config.env.meraki_picture_hosts == ("127.0.0.1:8081", "cam.local")
    with pytest.raises(ConfigError, match="MERAKI_PICTURE_HOSTS"):
        load_config({**environ, "MERAKI_PICTURE_HOSTS": "http://cam.local/path"}, yaml.safe_dump(minimal_business()))


# --- the pixel count, before decoding --------------------------------------------------------------------------


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` with a few bytes of data: the header is all a check may read."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


def real_png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (width, height), 128).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def pixel_limit() -> Iterator[Callable[[int], None]]:
    yield image_prep.limit_pixels
    image_prep.limit_pixels(image_prep.DEFAULT_MAX_PIXELS)


@pytest.mark.parametrize("side", [13000, 7000], ids=["pillow-would-refuse-too", "pillow-would-only-warn"])
def test_a_picture_over_the_pixel_limit_is_refused_without_decoding(side: int) -> None:
    """The issue's 13000x13000 PNG raised the process to 1.9 GB; 7000x7000 (49 MP) is past our 40 MP default but
    under Pillow's own refusal (twice its limit), so only our check stops it."""
    bomb = png_header_only(side, side)
    tracemalloc.start()
    try:
        with pytest.raises(image_prep.ImageRejected, match="not a readable picture"):
            image_prep.decode(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 1024 * 1024, f"decoding began: {peak} bytes held"
    assert Image.MAX_IMAGE_PIXELS == image_prep.DEFAULT_MAX_PIXELS  # Pillow's own check is on, at our limit


def test_every_place_that_decodes_a_picture_refuses_it() -> None:
    bomb = png_header_only(13000, 13000)
    with pytest.raises(image_prep.ImageRejected):
        annotate(bomb, [])  # alert pictures with boxes
    with pytest.raises(RecognitionError) as on_rekognition:
        sendable(bomb)  # camera pictures and enrollment crops sent to Rekognition
    assert on_rekognition.value.retry is False
    from vision.local_faces import LocalFaceBackend

    with pytest.raises(image_prep.ImageRejected):
        LocalFaceBackend().detect(bomb)  # camera pictures and enrollment photos on the local backend


def test_the_limit_is_configured_and_applied_by_the_composition_root(tmp_path, pixel_limit) -> None:
    business = minimal_business()
    business["recognition"] = {"max_picture_megapixels": 1}
    config = load_config(base_environ(tmp_path, f"sqlite:///{tmp_path / 'flp.db'}"), yaml.safe_dump(business))
    services = build_services(config)
    try:
        assert image_prep.max_pixels() == 1_000_000 and Image.MAX_IMAGE_PIXELS == 1_000_000
        with pytest.raises(image_prep.ImageRejected, match="over the limit"):
            image_prep.decode(real_png(1100, 1000))
        assert image_prep.decode(real_png(1000, 1000))[0].size == (1000, 1000)
    finally:
        services.close()

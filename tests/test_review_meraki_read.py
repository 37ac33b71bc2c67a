"""Review: a picture download that breaks off mid-body (or stalls past the socket timeout) is a failed poll, as it
was with iter_content: the camera keeps polling instead of an urllib3 exception escaping the step."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import responses
from responses import matchers

from vision.meraki import MerakiCamera
from vision.types import CameraError

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 200 + b"\xff\xd9"
BASE = "http://meraki.test/api/v1"
SERIAL, ORG = "Q2XX-REVW-0001", "org1"
SNAP = f"{BASE}/devices/{SERIAL}/camera/generateSnapshot"


class _Host(http.server.BaseHTTPRequestHandler):
    mode = "truncate"
    calls = 0

    def do_GET(self) -> None:
        type(self).calls += 1
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(JPEG)))
        self.end_headers()
        if type(self).calls > 1:
            self.wfile.write(JPEG)
            return
        self.wfile.write(JPEG[:50])
        self.wfile.flush()
        if self.mode == "stall":
            time.sleep(1.5)  # past the 0.5 s socket timeout
        self.close_connection = True

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.mark.parametrize("mode", ["truncate", "stall"])
def test_a_broken_off_download_is_polled_again(mock, mode) -> None:
    _Host.mode, _Host.calls = mode, 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Host)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    camera = MerakiCamera(
        base_url=BASE,
        api_key="k",
        budget=lambda org: None,
        on_rate_limited=lambda org, s: None,
        timeout_s=0.5,
        poll_initial_s=0.01,
        poll_total_s=6,
        picture_hosts=["127.0.0.1"],
    )
    try:
        image_url = f"http://127.0.0.1:{server.server_port}/stream/jpeg/snapshot/secret-token"
        mock.add_passthru(f"http://127.0.0.1:{server.server_port}/")
        mock.post(SNAP, status=202, json={"url": image_url}, match=[matchers.json_params_matcher({})])
        try:
            picture = camera.snapshot(SERIAL, org_id=ORG, at=None)
        except CameraError:
            picture = None
        assert picture is not None and picture.content == JPEG
        assert _Host.calls == 2
    finally:
        server.shutdown()
        server.server_close()

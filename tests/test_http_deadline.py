"""core.http_deadline against real loopback servers: a call ends at its deadline whatever the server drips."""

from __future__ import annotations

import time

import pytest
import requests

from core.http_deadline import DeadlineExceeded, DeadlineSession, mount_deadlines, total_deadline
from tests.dripping import dripping_server


def test_a_normal_answer_comes_back_whole_and_the_connection_is_reused() -> None:
    session = DeadlineSession(2)
    with dripping_server(None) as base:
        first, second = session.get(base + "/a"), session.post(base + "/b", json={"x": 1})
    assert first.status_code == second.status_code == 200 and first.json() == second.json() == {"id": "M-1"}


@pytest.mark.parametrize("drip", ["headers", "body"])
def test_a_dripping_server_cannot_hold_a_call_past_its_deadline(drip: str) -> None:
    session = DeadlineSession(0.5)
    with dripping_server(drip) as base:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded) as late:
            session.get(base + "/slow")
        elapsed = time.monotonic() - started
        # 400 drips at 20 a second would take 20 s; headers cut short must not read as an empty answer.
        assert 0.4 < elapsed < 2, elapsed
        assert isinstance(late.value, requests.Timeout) and "127.0.0.1" not in str(late.value)
        # The session is still good for the next call.
    with dripping_server(None) as base:
        assert session.get(base + "/next").json() == {"id": "M-1"}


def test_a_streamed_body_is_read_inside_the_callers_deadline() -> None:
    session = mount_deadlines(requests.Session())
    with dripping_server("body") as base:
        started = time.monotonic()
        with (
            pytest.raises(DeadlineExceeded),
            total_deadline(0.5),
            session.get(base + "/slow", stream=True, timeout=5) as response,
        ):
            while response.raw.read1(1024):
                pass
        assert time.monotonic() - started < 2


def test_a_call_in_time_is_not_touched_by_its_timer_later() -> None:
    session = DeadlineSession(0.3)
    with dripping_server(None) as base:
        assert session.get(base + "/a").status_code == 200
        time.sleep(0.5)  # past the first call's deadline: its timer was cancelled, its kept-alive socket intact
        assert session.get(base + "/b").json() == {"id": "M-1"}

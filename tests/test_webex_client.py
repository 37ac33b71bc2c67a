"""WebexClient against a fake Webex at the HTTP boundary (responses), on a .test base URL."""

from __future__ import annotations

import time

import pytest
import requests
import responses
from responses import matchers

from bot.webex_client import CARD_CONTENT_TYPE, CARD_FALLBACK, DEFAULT_RETRY_AFTER_S, WebexClient
from core.messenger import Attachment, OutgoingMessage, WebexError
from tests.dripping import dripping_server

BASE = "https://webex.test/v1"
TOKEN = "test-webex-token-0123456789abcdef"
ROOM = "Y2lzY29zcGFyazovL3VzL1JPT00vc3RvcmUtMDAx"
PERSON = "Y2lzY29zcGFyazovL3VzL1BFT1BMRS9hbmE"
CARD = {
    "type": "AdaptiveCard",
    "version": "1.3",
    "body": [{"type": "TextBlock", "text": "A-1042"}],
    "actions": [{"type": "Action.Submit", "title": "Confirm", "data": {"action": "confirm", "alert_id": "A-1042"}}],
}
AUTH = matchers.header_matcher({"Authorization": f"Bearer {TOKEN}"})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def monotonic() -> Clock:
    return Clock()


@pytest.fixture
def webex(monotonic: Clock) -> WebexClient:
    return WebexClient(TOKEN, base_url=BASE, deadline_s=5, email_ttl_s=3600, monotonic=monotonic)


def test_card_message_carries_the_card_and_its_markdown_under_the_base_path(rsps, webex):
    rsps.post(
        f"{BASE}/messages",
        json={"id": "M-1"},
        match=[
            AUTH,
            matchers.json_params_matcher(
                {
                    "roomId": ROOM,
                    "markdown": "Alert **A-1042**",
                    "attachments": [{"contentType": CARD_CONTENT_TYPE, "content": CARD}],
                }
            ),
        ],
    )
    assert webex.send(OutgoingMessage(room_id=ROOM, markdown="Alert **A-1042**", card=CARD)) == "M-1"


def test_card_without_markdown_gets_a_text_fallback(rsps, webex):
    rsps.post(
        f"{BASE}/messages",
        json={"id": "M-2"},
        match=[
            matchers.json_params_matcher(
                {
                    "roomId": ROOM,
                    "markdown": CARD_FALLBACK,
                    "attachments": [{"contentType": CARD_CONTENT_TYPE, "content": CARD}],
                }
            )
        ],
    )
    assert webex.send(OutgoingMessage(room_id=ROOM, card=CARD)) == "M-2"


def test_direct_threaded_reply_goes_to_the_person_email(rsps, webex):
    rsps.post(
        f"{BASE}/messages",
        json={"id": "M-3"},
        match=[
            matchers.json_params_matcher({"toPersonEmail": "ana@example.com", "parentId": "M-1", "markdown": "Done."})
        ],
    )
    assert webex.send(OutgoingMessage(to_person_email="ana@example.com", parent_id="M-1", markdown="Done.")) == "M-3"


def test_file_message_is_multipart_from_bytes_with_its_thread(rsps, webex):
    photo = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4
    rsps.post(
        f"{BASE}/messages",
        json={"id": "M-4"},
        match=[
            AUTH,
            matchers.multipart_matcher(
                {"files": ("A-1042.jpg", photo, "image/jpeg")},
                data={"roomId": ROOM, "parentId": "M-1", "markdown": "Evidence for A-1042"},
            ),
        ],
    )
    sent = webex.send(
        OutgoingMessage(
            room_id=ROOM,
            parent_id="M-1",
            markdown="Evidence for A-1042",
            attachment=Attachment("A-1042.jpg", photo, "image/jpeg"),
        )
    )
    assert sent == "M-4"
    assert rsps.calls[0].request.headers["Content-Type"].startswith("multipart/form-data; boundary=")


def test_empty_message_is_refused_without_a_call(webex):
    with pytest.raises(WebexError) as raised:
        webex.send(OutgoingMessage(room_id=ROOM))
    assert raised.value.retry is False


@pytest.mark.parametrize(("header", "expected"), [("7", 7.0), ("2.5", 2.5), (None, DEFAULT_RETRY_AFTER_S)])
def test_429_is_retryable_after_what_webex_says(rsps, webex, header, expected):
    headers = {"Retry-After": header} if header else {}
    rsps.post(f"{BASE}/messages", status=429, headers=headers, json={"message": "Too many requests"})
    with pytest.raises(WebexError) as raised:
        webex.send(OutgoingMessage(room_id=ROOM, markdown="hi"))
    assert (raised.value.retry, raised.value.retry_after_s, raised.value.status) == (True, expected, 429)


def test_429_does_not_sleep_or_repeat_the_call(rsps, webex):
    rsps.get(f"{BASE}/messages/M-1", status=429, headers={"Retry-After": "600"})
    with pytest.raises(WebexError):
        webex.message("M-1")
    assert len(rsps.calls) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retryable(rsps, webex, status):
    rsps.post(f"{BASE}/messages", status=status, json={"message": "oops"})
    with pytest.raises(WebexError) as raised:
        webex.send(OutgoingMessage(room_id=ROOM, markdown="hi"))
    assert raised.value.retry is True and raised.value.status == status


@pytest.mark.parametrize("failure", [requests.ConnectTimeout(), requests.ReadTimeout(), requests.ConnectionError()])
def test_timeouts_and_connection_failures_are_retryable(rsps, webex, failure):
    rsps.post(f"{BASE}/messages", body=failure)
    with pytest.raises(WebexError) as raised:
        webex.send(OutgoingMessage(room_id=ROOM, markdown="hi"))
    assert raised.value.retry is True and raised.value.status is None


def test_401_is_final_and_never_shows_the_token(rsps, webex):
    rsps.post(f"{BASE}/messages", status=401, json={"message": f"Invalid token {TOKEN}", "trackingId": "T1"})
    with pytest.raises(WebexError) as raised:
        webex.send(OutgoingMessage(room_id=ROOM, markdown="hi"))
    assert raised.value.retry is False and raised.value.status == 401
    assert "401" in raised.value.reason and TOKEN not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


@pytest.mark.parametrize("status", [400, 403, 404])
def test_client_errors_are_final(rsps, webex, status):
    rsps.post(f"{BASE}/messages", status=status, json={"message": "no"})
    with pytest.raises(WebexError) as raised:
        webex.send(OutgoingMessage(room_id=ROOM, markdown="hi"))
    assert raised.value.retry is False and raised.value.status == status


def test_message_and_attachment_action_are_read_as_dicts(rsps, webex):
    rsps.get(f"{BASE}/messages/M-1", json={"id": "M-1", "roomId": ROOM, "text": "alerts"}, match=[AUTH])
    rsps.get(
        f"{BASE}/attachment/actions/AA-1",
        json={
            "id": "AA-1",
            "personId": PERSON,
            "messageId": "M-1",
            "inputs": {"action": "dismiss", "alert_id": "A-1042"},
        },
    )
    assert webex.message("M-1")["text"] == "alerts"
    assert webex.attachment_action("AA-1")["inputs"] == {"action": "dismiss", "alert_id": "A-1042"}


def test_ids_that_would_change_the_path_are_refused_without_a_call(webex):
    for bad in ("../webhooks", "M-1?max=1", "", "M 1"):
        with pytest.raises(WebexError):
            webex.message(bad)


def test_person_email_is_lower_cased_and_cached_for_a_bounded_time(rsps, webex, monotonic):
    rsps.get(f"{BASE}/people/{PERSON}", json={"id": PERSON, "emails": ["Ana@Example.com"]})
    assert webex.person_email(PERSON) == "ana@example.com"
    monotonic.now += 3599
    assert webex.person_email(PERSON) == "ana@example.com"
    assert len(rsps.calls) == 1
    monotonic.now += 2
    assert webex.person_email(PERSON) == "ana@example.com"
    assert len(rsps.calls) == 2


def test_unknown_person_has_no_email(rsps, webex):
    rsps.get(f"{BASE}/people/{PERSON}", status=404, json={"message": "not found"})
    assert webex.person_email(PERSON) is None


def test_me_is_read_once(rsps, webex):
    rsps.get(f"{BASE}/people/me", json={"id": PERSON, "displayName": "LP Bot", "emails": ["lp@webex.bot"]})
    assert webex.me()["displayName"] == "LP Bot"
    assert webex.me()["id"] == PERSON
    assert len(rsps.calls) == 1


def test_register_webhooks_replaces_only_ours_with_exactly_two(rsps, webex):
    target, other = "https://flp.example.com/webex/events", "https://other.example.com/hook"
    rsps.get(
        f"{BASE}/webhooks",
        json={
            "items": [
                {"id": "W-old-1", "targetUrl": target, "resource": "messages", "event": "created"},
                {"id": "W-other", "targetUrl": other, "resource": "messages", "event": "created"},
                {"id": "W-old-2", "targetUrl": target, "resource": "attachmentActions", "event": "created"},
            ]
        },
    )
    rsps.delete(f"{BASE}/webhooks/W-old-1", status=204)
    rsps.delete(f"{BASE}/webhooks/W-old-2", status=404, json={"message": "gone already"})
    for number, resource in enumerate(("messages", "attachmentActions"), start=1):
        rsps.post(
            f"{BASE}/webhooks",
            json={"id": f"W-new-{number}"},
            match=[
                matchers.json_params_matcher(
                    {
                        "name": f"fraud-loss-prevention {resource}",
                        "targetUrl": target,
                        "resource": resource,
                        "event": "created",
                        "secret": "hook-secret",
                    }
                )
            ],
        )
    assert webex.register_webhooks(target, "hook-secret") == ["W-new-1", "W-new-2"]
    assert [c.request.method for c in rsps.calls] == ["GET", "DELETE", "DELETE", "POST", "POST"]


@pytest.mark.parametrize("drip", ["headers", "body"])
@pytest.mark.parametrize(
    "call",
    [
        lambda webex: webex.send(OutgoingMessage(room_id=ROOM, markdown="hi")),
        lambda webex: webex.send(
            OutgoingMessage(
                room_id=ROOM, attachment=Attachment(name="a.jpg", content=b"\xff\xd8", content_type="image/jpeg")
            )
        ),
        lambda webex: webex.message("M-1"),
    ],
    ids=["message", "file", "read"],
)
def test_a_dripping_webex_cannot_hold_a_call_past_its_deadline(drip, call):
    with dripping_server(drip) as base:
        webex = WebexClient(TOKEN, base_url=base + "/v1", deadline_s=1)
        started = time.monotonic()
        with pytest.raises(WebexError) as late:
            call(webex)
        # 400 drips at 20 a second would take 20 s: the call's total deadline (1 s, body included) ends it.
        assert time.monotonic() - started < 3
    assert late.value.retry is True and late.value.status is None
    assert "within 1 s" in late.value.reason and TOKEN not in late.value.reason and "127.0.0.1" not in late.value.reason


def test_the_real_client_still_talks_to_a_prompt_server():
    with dripping_server(None, body=b'{"id": "M-9", "roomId": "R"}') as base:
        webex = WebexClient(TOKEN, base_url=base + "/v1", deadline_s=2)
        assert webex.send(OutgoingMessage(room_id=ROOM, markdown="hi")) == "M-9"
        assert webex.message("M-9")["id"] == "M-9"

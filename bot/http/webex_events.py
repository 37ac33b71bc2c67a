"""Webex webhook intake: ``POST /webex/events`` (webhook transport, docs/interfaces.md "Webex").

The signature is checked on the raw bytes before anything else is read. The event is stored
with its ``handle_event`` step and answered 200 at once, a redelivery too; the runner does
the rest. Webex disables a webhook that keeps failing, so what we do not handle (other
resources, our own messages) is answered 200 and dropped rather than refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any
from urllib.parse import urljoin

from flask import Blueprint, Response, current_app, jsonify, request

from bot.http.problems import problem
from handlers.chat.webex_intake import SOURCES, WebexEventReceived, accept_webex_event, valid_event_id

log = logging.getLogger(__name__)
EVENTS_PATH = "/webex/events"
blueprint = Blueprint("webex_events", __name__)


def target_url(public_url: str) -> str:
    """The URL Webex posts to, from PUBLIC_URL (which may itself have a path prefix)."""
    return urljoin(public_url.rstrip("/") + "/", EVENTS_PATH.lstrip("/"))


def sign(body: bytes, secret: str) -> str:
    """What Webex sends in X-Spark-Signature: hex HMAC-SHA1 of the raw body keyed with the webhook secret."""
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def signature_matches(header: str | None, body: bytes, secret: str) -> bool:
    if not header:
        return False
    return hmac.compare_digest(sign(body, secret).encode(), header.strip().lower().encode())


@blueprint.post(EVENTS_PATH)
def post_event() -> Response:
    services = current_app.extensions["flp"]
    secret = services.config.env.webex_webhook_secret
    if secret is None:
        return problem(404, "Not Found", "the Webex webhook transport is not enabled here")
    raw = request.get_data(cache=True)
    if not signature_matches(request.headers.get("X-Spark-Signature"), raw, secret.get_secret_value()):
        log.warning("webex event refused: missing or wrong X-Spark-Signature")
        return problem(401, "Unauthorized", "missing or wrong X-Spark-Signature")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return problem(422, "The body is not valid JSON", "a Webex webhook body is a JSON object")
    if not isinstance(body, dict):
        return problem(422, "The body must be a JSON object", "a Webex webhook body is a JSON object")
    resource, data = body.get("resource"), body.get("data")
    if resource not in SOURCES or body.get("event") != "created":
        log.info("webex event ignored: %s/%s is not subscribed", _word(resource), _word(body.get("event")))
        return _answer("ignored")
    if not isinstance(data, dict) or not valid_event_id(data.get("id")):
        return problem(422, "Unexpected Webex event", "data.id must be a Webex id")
    if resource == "messages" and data.get("personId") and data.get("personId") == body.get("createdBy"):
        # The webhook's creator is the bot: this is our own message coming back (1:1 spaces).
        return _answer("ignored")
    event = WebexEventReceived(event_id=data["id"], source=SOURCES[resource], payload={**data, "resource": resource})
    accepted = services.handle(accept_webex_event, event, write=True)
    if accepted:
        services.wake_runner()
    log.info("webex %s event %s %s", resource, event.event_id, "accepted" if accepted else "was a redelivery")
    return _answer("accepted" if accepted else "duplicate")


def _answer(status: str) -> Response:
    return jsonify({"status": status})


def _word(value: Any) -> str:
    """A short, printable stand-in for a field from an outside body (log lines stay one line)."""
    if not isinstance(value, str):
        return type(value).__name__
    return "".join(c if c.isascii() and c.isprintable() else "?" for c in value[:40])

"""Payment-processor feeds: ``POST /api/v1/feeds/stripe`` and ``POST /api/v1/feeds/square`` (docs/api.md).

Each route checks the processor's own signature on the raw body before reading it, maps the event
(``feeds/``), validates the result as the POS intake would (card numbers, schema) and hands it to
``handlers/feeds.py``. Processors retry every non-2xx for days, so whatever we deliberately do not
store (other event types, online payments, disputes of payments we never saw) is answered 200.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
from typing import Any, Callable

import stripe
from flask import Blueprint, Response, current_app, jsonify, request
from pydantic import ValidationError

from bot.card_numbers import card_number_paths
from bot.config import BusinessConfig
from bot.http.intake import canonical_sha256
from bot.http.problems import problem
from bot.pos_schema import FraudReportBody, PosTransaction, field_errors
from feeds import square_events, stripe_events
from feeds.types import FedReport, FedTransaction, Ignored, Mapped, MappingError
from handlers.events import FraudReported, TransactionReceived
from handlers.feeds import FeedEvent, FeedResult, accept_feed_event

log = logging.getLogger(__name__)
blueprint = Blueprint("feeds", __name__)
STRIPE_TOLERANCE_S = 300
SQUARE_SIGNATURE_HEADER = "x-square-hmacsha256-signature"
_EVENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
Mapper = Callable[[dict[str, Any], BusinessConfig], Mapped]


class _Refused(Exception):
    def __init__(self, response: Response, outcome: str):
        self.response, self.outcome = response, outcome


def square_signature(body: bytes, key: str, notification_url: str) -> str:
    """Square's x-square-hmacsha256-signature: base64 HMAC-SHA256 of the notification URL followed by the body."""
    return base64.b64encode(hmac.new(key.encode(), notification_url.encode() + body, hashlib.sha256).digest()).decode()


@blueprint.post("/api/v1/feeds/stripe")
def post_stripe() -> Response:
    env = current_app.extensions["flp"].config.env
    try:
        if env.stripe_webhook_secret is None:
            raise _Refused(problem(404, "Not Found", "the Stripe feed is off: STRIPE_WEBHOOK_SECRET is not set"), "off")
        document = _stripe_event(request.get_data(cache=True), env.stripe_webhook_secret.get_secret_value())
        return _counted("stripe", *_feed("stripe", document, "id", stripe_events.map_event))
    except _Refused as refused:
        return _counted("stripe", refused.response, refused.outcome)


@blueprint.post("/api/v1/feeds/square")
def post_square() -> Response:
    env = current_app.extensions["flp"].config.env
    try:
        missing = [name for name, value in (("SQUARE_SIGNATURE_KEY", env.square_signature_key),
                                            ("SQUARE_NOTIFICATION_URL", env.square_notification_url)) if value is None]
        if missing:
            raise _Refused(problem(404, "Not Found", f"the Square feed is off: {' and '.join(missing)} not set"), "off")
        raw = request.get_data(cache=True)
        expected = square_signature(raw, env.square_signature_key.get_secret_value(), env.square_notification_url)
        if not hmac.compare_digest(expected.encode(), request.headers.get(SQUARE_SIGNATURE_HEADER, "").strip().encode()):
            log.warning("square feed: event refused: missing or wrong %s", SQUARE_SIGNATURE_HEADER)
            raise _Refused(problem(401, "Unauthorized", f"missing or wrong {SQUARE_SIGNATURE_HEADER}"), "bad_signature")
        return _counted("square", *_feed("square", _json_object(raw), "event_id", square_events.map_event))
    except _Refused as refused:
        return _counted("square", refused.response, refused.outcome)


def _stripe_event(raw: bytes, secret: str) -> dict[str, Any]:
    """The verified event as a plain dict, by Stripe's own library (signature, then a 300 s tolerance)."""
    try:
        event = stripe.Webhook.construct_event(raw, request.headers.get("Stripe-Signature"), secret,
                                               tolerance=STRIPE_TOLERANCE_S)
    except (stripe.SignatureVerificationError, UnicodeDecodeError) as exc:
        # Stripe's message names what failed (no header, no match, too old); it never includes the secret.
        reason = str(exc).split(". ")[0] if isinstance(exc, stripe.SignatureVerificationError) else "body not UTF-8"
        log.warning("stripe feed: event refused: %s", reason)
        raise _Refused(problem(401, "Unauthorized", f"Stripe-Signature refused: {reason}"), "bad_signature") from None
    except (ValueError, AttributeError, TypeError):  # after the signature: not JSON, or not an event object
        raise _Refused(_unprocessable("The body is not a Stripe event", [{"field": "(body)", "message": "not a JSON event object"}]),
                       "invalid") from None
    return event.to_dict()


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        document = None
    if not isinstance(document, dict):
        raise _Refused(_unprocessable("The body is not a Square event", [{"field": "(body)", "message": "not a JSON object"}]),
                       "invalid")
    return document


def _feed(processor: str, document: dict[str, Any], id_key: str, mapper: Mapper) -> tuple[Response, str]:
    """Map, validate, store; the response and the outcome label for the metrics."""
    services = current_app.extensions["flp"]
    event_id = document.get(id_key)
    if not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id):
        raise _Refused(_unprocessable(f"Not a {processor} event", [{"field": id_key, "message": "required: the event id"}]), "invalid")
    try:
        mapped = mapper(document, services.config.business)
    except MappingError as exc:
        raise _Refused(_unprocessable(f"The {processor} event cannot be mapped", [{"field": exc.field, "message": exc.message}]),
                       "invalid") from None
    event_type = _printable(document.get("type"))
    if isinstance(mapped, Ignored) and mapped.covered_by is None:
        log.info("%s feed: event %s (%s) ignored: %s", processor, event_id, event_type, mapped.reason)
        return _answer({"status": "ignored", "reason": mapped.reason}), "ignored"
    event = _feed_event(processor, event_id, event_type, mapped)
    result: FeedResult = services.handle(accept_feed_event, event, write=True)
    return _response(event, mapped, result)


def _feed_event(processor: str, event_id: str, event_type: str, mapped: Mapped) -> FeedEvent:
    """The mapped body checked as the POS intake checks a posted one: no card number, our schema."""
    if isinstance(mapped, Ignored):
        return FeedEvent(processor, event_id, event_type, covered_by=mapped.covered_by)
    body = mapped.body
    paths = card_number_paths(body)
    if paths:
        errors = [{"field": p, "message": "looks like a payment card number"} for p in paths]
        raise _Refused(_unprocessable("The mapped event carries a card number and was not stored", errors), "card_number")
    try:
        if isinstance(mapped, FedTransaction):
            received = TransactionReceived(PosTransaction.model_validate(body), json.dumps(body, ensure_ascii=False),
                                           canonical_sha256(body), mapped.unplaced_reason)
            return FeedEvent(processor, event_id, event_type, transaction=received)
        return FeedEvent(processor, event_id, event_type,
                         report=FraudReported(FraudReportBody.model_validate(body), canonical_sha256(body)))
    except ValidationError as exc:
        raise _Refused(_unprocessable(f"The {processor} event maps to an invalid body; nothing was stored",
                                      field_errors(exc)), "invalid") from None


def _response(event: FeedEvent, mapped: Mapped, result: FeedResult) -> tuple[Response, str]:
    services = current_app.extensions["flp"]
    tag = f"{event.processor} feed: event {event.event_id} ({event.event_type})"
    if result.outcome == "duplicate":
        log.info("%s was a duplicate", tag)
        return _answer({"status": "duplicate"}), "duplicate"
    if result.outcome == "ignored":
        return _answer({"status": "ignored", "reason": mapped.reason}), "ignored"  # type: ignore[union-attr]
    transaction_id = mapped.body["transaction_id"]  # type: ignore[union-attr]
    if result.outcome == "unknown_transaction":
        # 200, not 404: a processor retries a refusal for days; the event is kept for a replay.
        log.warning("%s: fraud report for transaction %s, which was never received here or is purged", tag, transaction_id)
        return _answer({"status": "unknown_transaction", "transaction_id": transaction_id}), "unknown_transaction"
    services.wake_runner()
    if isinstance(mapped, FedReport):
        log.info("%s: fraud report for %s accepted", tag, transaction_id)
        return _answer({"transaction_id": transaction_id, "source": "chargeback", "status": "accepted"}, 202), "accepted"
    if result.skipped_reason:
        log.warning("%s: transaction %s stored as skipped: %s", tag, transaction_id, result.skipped_reason)
        return _answer({"transaction_id": transaction_id, "status": "accepted"}, 202), "unplaced"
    log.info("%s: transaction %s accepted", tag, transaction_id)
    return _answer({"transaction_id": transaction_id, "status": "accepted"}, 202), "accepted"


def _counted(processor: str, response: Response, outcome: str) -> Response:
    current_app.extensions["flp"].metrics.feeds.labels(processor, outcome).inc()
    return response


def _answer(body: dict[str, Any], status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def _unprocessable(title: str, errors: list[dict[str, str]]) -> Response:
    return problem(422, title, "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors)


def _printable(value: Any) -> str:
    """A short, printable stand-in for a field from an outside body (log lines stay one line)."""
    if not isinstance(value, str):
        return type(value).__name__
    return "".join(c if c.isascii() and c.isprintable() else "?" for c in value[:60])

"""Payment-processor feeds: ``POST /api/v1/feeds/stripe`` and ``POST /api/v1/feeds/square`` (docs/api.md).

Each route checks the processor's own signature on the raw body before reading it, maps the event
(``feeds/``), validates the result as the POS intake would (card numbers, schema) and hands it to
``handlers/pipeline/feeds.py``. Processors retry every non-2xx for days and then disable the endpoint, so
every correctly signed event is answered 200 or 202: what we deliberately do not store (other event
types, online payments) is ``ignored``, and what we cannot use (a field the mapping or our schema
refuses, a card number) is kept as ``skipped`` with the reason naming the field.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import stripe
from flask import Blueprint, Response, current_app, jsonify, request
from pydantic import SecretStr, ValidationError

from bot.http.intake import canonical_sha256
from bot.http.problems import problem
from core.card_numbers import card_number_paths
from core.config import BusinessConfig
from core.events import FraudReported, TransactionReceived
from core.pos_schema import FraudReportBody, PosTransaction, field_errors
from feeds import square_events, stripe_events
from feeds.types import FedReport, FedStatus, FedTransaction, Ignored, Inquiry, Mapped, MappingError
from handlers.pipeline.feeds import FeedEvent, FeedResult, Skip, accept_feed_event

log = logging.getLogger(__name__)
blueprint = Blueprint("feeds", __name__)
STRIPE_TOLERANCE_S = 300
SQUARE_SIGNATURE_HEADER = "x-square-hmacsha256-signature"
_EVENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
Mapper = Callable[[dict[str, Any], BusinessConfig], Mapped]


class _Refused(Exception):
    def __init__(self, response: Response, outcome: str):
        self.response, self.outcome = response, outcome


class _Unusable(Exception):
    """A signed event we cannot use: kept as skipped, answered 200 (a 4xx would be retried for days)."""

    def __init__(self, reason: str, errors: list[dict[str, str]], transaction_id: str | None = None):
        super().__init__(reason)
        self.reason, self.errors, self.transaction_id = reason, errors, transaction_id


def square_signature(body: bytes, key: str, notification_url: str) -> str:
    """Square's x-square-hmacsha256-signature: base64 HMAC-SHA256 of the notification URL followed by the body."""
    return base64.b64encode(hmac.new(key.encode(), notification_url.encode() + body, hashlib.sha256).digest()).decode()


@blueprint.post("/api/v1/feeds/stripe")
def post_stripe() -> Response:
    env = current_app.extensions["flp"].config.env
    try:
        if env.stripe_webhook_secret is None:
            raise _Refused(problem(404, "Not Found", "the Stripe feed is off: STRIPE_WEBHOOK_SECRET is not set"), "off")
        raw = request.get_data(cache=True)
        return _counted(
            "stripe",
            *_feed("stripe", raw, lambda: _stripe_event(raw, env.stripe_webhook_secret), "id", stripe_events.map_event),
        )
    except _Refused as refused:
        return _counted("stripe", refused.response, refused.outcome)


@blueprint.post("/api/v1/feeds/square")
def post_square() -> Response:
    env = current_app.extensions["flp"].config.env
    try:
        missing = [
            name
            for name, value in (
                ("SQUARE_SIGNATURE_KEY", env.square_signature_key),
                ("SQUARE_NOTIFICATION_URL", env.square_notification_url),
            )
            if value is None
        ]
        if missing:
            raise _Refused(problem(404, "Not Found", f"the Square feed is off: {' and '.join(missing)} not set"), "off")
        raw = request.get_data(cache=True)
        expected = square_signature(raw, env.square_signature_key.get_secret_value(), env.square_notification_url)
        if not hmac.compare_digest(
            expected.encode(), request.headers.get(SQUARE_SIGNATURE_HEADER, "").strip().encode()
        ):
            log.warning("square feed: event refused: missing or wrong %s", SQUARE_SIGNATURE_HEADER)
            raise _Refused(problem(401, "Unauthorized", f"missing or wrong {SQUARE_SIGNATURE_HEADER}"), "bad_signature")
        return _counted("square", *_feed("square", raw, lambda: _json_object(raw), "event_id", square_events.map_event))
    except _Refused as refused:
        return _counted("square", refused.response, refused.outcome)


def _stripe_event(raw: bytes, secret: SecretStr) -> dict[str, Any]:
    """The verified event as a plain dict, by Stripe's own library (signature, then a 300 s tolerance)."""
    header = request.headers.get("Stripe-Signature")
    try:
        event = stripe.Webhook.construct_event(raw, header, secret.get_secret_value(), tolerance=STRIPE_TOLERANCE_S)
    except (stripe.SignatureVerificationError, UnicodeDecodeError) as exc:
        # Stripe's message names what failed (no header, no match, too old); it never includes the secret.
        reason = str(exc).split(". ")[0] if isinstance(exc, stripe.SignatureVerificationError) else "body not UTF-8"
        _refuse_signature(reason)
    except (ValueError, AttributeError, TypeError):  # after the signature: not JSON, or not an event object
        raise _Unusable(
            "the body is not a Stripe event", [{"field": "(body)", "message": "not a JSON event object"}]
        ) from None
    signed_at = _stripe_timestamp(header or "")
    if signed_at > time.time() + STRIPE_TOLERANCE_S:
        # Stripe's library refuses only old timestamps; a future one would let a captured body replay for longer.
        _refuse_signature(f"Timestamp in the future, outside the tolerance zone ({signed_at})")
    return event.to_dict()


def _stripe_timestamp(header: str) -> int:
    """The ``t=`` of a header the library already verified (so it is there and an integer)."""
    return int(next(part[2:] for part in header.split(",") if part.startswith("t=")))


def _refuse_signature(reason: str) -> None:
    log.warning("stripe feed: event refused: %s", reason)
    raise _Refused(problem(401, "Unauthorized", f"Stripe-Signature refused: {reason}"), "bad_signature")


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        document = None
    if not isinstance(document, dict):
        raise _Unusable("the body is not a Square event", [{"field": "(body)", "message": "not a JSON object"}])
    return document


def _feed(
    processor: str, raw: bytes, parse: Callable[[], dict[str, Any]], id_key: str, mapper: Mapper
) -> tuple[Response, str]:
    """Parse, map, validate, store (the signature is already checked); the response and the metrics outcome."""
    services = current_app.extensions["flp"]
    # Keyed by the body's hash until the event's own id is known, so a redelivery is still one event.
    event_id, event_type = f"sha256-{hashlib.sha256(raw).hexdigest()}", "(unknown)"
    try:
        document = parse()
        event_type = _printable(document.get("type"))
        named = document.get(id_key)
        if not isinstance(named, str) or not _EVENT_ID.fullmatch(named):
            raise _Unusable(
                f"not a {processor} event: no event id", [{"field": id_key, "message": "required: the event id"}]
            )
        event_id = named
        try:
            mapped = mapper(document, services.config.business)
        except MappingError as exc:
            raise _Unusable(
                f"the {processor} event cannot be mapped", [{"field": exc.field, "message": exc.message}]
            ) from None
        if isinstance(mapped, Ignored) and mapped.covered_by is None:
            log.info("%s feed: event %s (%s) ignored: %s", processor, event_id, event_type, mapped.reason)
            return _answer({"status": "ignored", "reason": mapped.reason}), "ignored"
        event = _feed_event(processor, event_id, event_type, mapped)
    except _Unusable as unusable:
        mapped = Ignored(unusable.reason)
        event = FeedEvent(
            processor, event_id, event_type, skipped=Skip(_reason(unusable), unusable.errors, unusable.transaction_id)
        )
    result: FeedResult = services.handle(accept_feed_event, event, write=True)
    return _response(event, mapped, result)


def _reason(unusable: _Unusable) -> str:
    """Plain words that name each refused field (never its value: it may be personal or a card number)."""
    return f"{unusable.reason}: " + "; ".join(f"{e['field']}: {e['message']}" for e in unusable.errors)


def _feed_event(processor: str, event_id: str, event_type: str, mapped: Mapped) -> FeedEvent:
    """The mapped body checked as the POS intake checks a posted one: no card number, our schema."""
    if isinstance(mapped, Ignored):
        return FeedEvent(processor, event_id, event_type, covered_by=mapped.covered_by)
    if isinstance(mapped, (FedStatus, Inquiry)):
        _check_id(mapped.transaction_id)
        if isinstance(mapped, FedStatus):
            return FeedEvent(processor, event_id, event_type, status=mapped)
        return FeedEvent(processor, event_id, event_type, inquiry=mapped)
    body = mapped.body
    transaction_id = body["transaction_id"] if _EVENT_ID.fullmatch(str(body["transaction_id"])) else None
    paths = card_number_paths(body)
    if paths:
        errors = [{"field": p, "message": "looks like a payment card number"} for p in paths]
        raise _Unusable("the mapped event carries a card number", errors, transaction_id)
    try:
        if isinstance(mapped, FedTransaction):
            received = TransactionReceived(
                PosTransaction.model_validate(body),
                json.dumps(body, ensure_ascii=False),
                canonical_sha256(body),
                mapped.unplaced_reason,
                mapped.status_at,
                mapped.status_version,
            )
            return FeedEvent(processor, event_id, event_type, transaction=received)
        return FeedEvent(
            processor,
            event_id,
            event_type,
            report=FraudReported(FraudReportBody.model_validate(body), canonical_sha256(body)),
        )
    except ValidationError as exc:
        raise _Unusable("our schema refuses the mapped event", field_errors(exc), transaction_id) from None


def _check_id(transaction_id: str) -> None:
    """A status change or inquiry names a transaction by an id our schema must accept, like a report's."""
    if not _EVENT_ID.fullmatch(transaction_id):
        raise _Unusable(
            "our schema refuses the mapped event",
            [{"field": "transaction_id", "message": "must be 1-128 of A-Z a-z 0-9 _ . : -"}],
        )


def _response(event: FeedEvent, mapped: Mapped, result: FeedResult) -> tuple[Response, str]:
    services = current_app.extensions["flp"]
    tag = f"{event.processor} feed: event {event.event_id} ({event.event_type})"
    if result.outcome == "duplicate":
        log.info("%s was a duplicate", tag)
        return _answer({"status": "duplicate"}), "duplicate"
    if result.outcome == "ignored":
        if not isinstance(mapped, Ignored):  # only an event another one covers is ignored after it is stored
            raise TypeError(f"{tag}: ignored, but mapped to a {type(mapped).__name__}")
        return _answer({"status": "ignored", "reason": mapped.reason}), "ignored"
    if result.outcome == "skipped":
        skipped = event.skipped
        assert skipped is not None  # only a skipped event is answered so
        log.warning("%s stored as skipped: %s", tag, result.skipped_reason)
        return _answer(
            {
                "status": "skipped",
                "reason": result.skipped_reason,
                "errors": skipped.errors,
                "transaction_id": skipped.transaction_id,
            }
        ), "skipped"
    if isinstance(mapped, Ignored):  # its outcomes (ignored, skipped, a duplicate) are all answered above
        raise TypeError(f"{tag}: {result.outcome}, but the event was ignored")
    transaction_id = (
        mapped.transaction_id if isinstance(mapped, (FedStatus, Inquiry)) else mapped.body["transaction_id"]
    )
    if isinstance(mapped, (FedStatus, Inquiry)):
        return _changed(tag, mapped, result, transaction_id)
    if result.outcome == "unknown_transaction":
        # 200, not 404: a processor retries a refusal for days; the event is kept for a replay.
        log.warning(
            "%s: fraud report for transaction %s, which was never received here or is purged", tag, transaction_id
        )
        return _answer({"status": "unknown_transaction", "transaction_id": transaction_id}), "unknown_transaction"
    services.wake_runner()
    if isinstance(mapped, FedReport):
        log.info("%s: fraud report for %s accepted", tag, transaction_id)
        return _answer(
            {"transaction_id": transaction_id, "source": "chargeback", "status": "accepted"}, 202
        ), "accepted"
    if result.skipped_reason:
        log.warning("%s: transaction %s stored as skipped: %s", tag, transaction_id, result.skipped_reason)
        return _answer({"transaction_id": transaction_id, "status": "accepted"}, 202), "unplaced"
    log.info("%s: transaction %s accepted", tag, transaction_id)
    return _answer({"transaction_id": transaction_id, "status": "accepted"}, 202), "accepted"


def _changed(tag: str, mapped: FedStatus | Inquiry, result: FeedResult, transaction_id: str) -> tuple[Response, str]:
    """A status change or an inquiry: recorded, 200 whatever became of it (nothing for a runner to do)."""
    said = mapped.said
    if result.outcome == "unknown_transaction":
        log.warning("%s: %s, for transaction %s, which was never received here or is purged", tag, said, transaction_id)
    else:
        log.info("%s: %s: %s", tag, said, result.outcome)
    body: dict[str, Any] = {"status": result.outcome, "transaction_id": transaction_id, "reason": said}
    if isinstance(mapped, FedStatus):
        body["payment_status"] = mapped.status
    return _answer(body), result.outcome


def _counted(processor: str, response: Response, outcome: str) -> Response:
    current_app.extensions["flp"].metrics.feeds.labels(processor, outcome).inc()
    return response


def _answer(body: dict[str, Any], status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def _printable(value: Any) -> str:
    """A short, printable stand-in for a field from an outside body (log lines stay one line)."""
    if not isinstance(value, str):
        return type(value).__name__
    return "".join(c if c.isascii() and c.isprintable() else "?" for c in value[:60])

"""POS intake: ``POST /api/v1/transactions`` and ``POST /api/v1/fraud-reports`` (docs/interfaces.md).

The route only checks the envelope (size, signature, type, JSON, card numbers, schema), calls
the handler and maps its outcome to a status. Order matters: the signature is checked before
anything about the body is said, so an unauthenticated caller learns nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Callable, Iterator
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from pydantic import BaseModel, ValidationError

from bot.http.problems import problem
from core import signatures
from core.card_numbers import card_number_paths
from core.events import FraudReported, TransactionReceived
from core.pos_schema import FraudReportBody, PosTransaction, field_errors
from core.steps import StepKind
from handlers.pipeline.intake import IntakeResult, accept_fraud_report, accept_transaction

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 256 * 1024
MAX_DEPTH = 32  # a transaction is 4 levels deep; vendors' extra fields get room, recursion does not
_SURROGATE = re.compile("[\ud800-\udfff]")
blueprint = Blueprint("intake", __name__)


class Refused(Exception):
    def __init__(self, response: Response, outcome: str):
        self.response, self.outcome = response, outcome


@blueprint.post("/api/v1/transactions")
def post_transaction() -> Response:
    return _intake("transactions", PosTransaction, _store_transaction)


@blueprint.post("/api/v1/fraud-reports")
def post_fraud_report() -> Response:
    return _intake("fraud_reports", FraudReportBody, _store_fraud_report)


def _over_quota(store_id: str) -> Response | None:
    """429 with Retry-After when this store posted more than its quota; nothing is stored then.

    Stores the configuration does not know share one bucket: made-up ids cannot crowd real stores' buckets out."""
    known = current_app.extensions["flp"].config.business.store(store_id) is not None
    wait = current_app.extensions["flp_quota"].take(store_id if known else "(unknown stores)")
    if not wait:
        return None
    log.warning("store %s over its intake quota: 429 for %d s", store_id, wait)
    response = problem(429, "Too many requests", f"store {store_id} posted more than its quota; try again later")
    response.headers["Retry-After"] = str(wait)
    return response


def _store_transaction(body: PosTransaction, raw: str, digest: str) -> Response:
    services = current_app.extensions["flp"]
    if (refused := _over_quota(body.store_id)) is not None:
        return refused
    result: IntakeResult = services.handle(accept_transaction, TransactionReceived(body, raw, digest), write=True)
    if result.outcome == "accepted":
        services.wake_runner([StepKind.TRIAGE])
        log.info(
            "transaction %s accepted%s",
            body.transaction_id,
            f" (skipped: {result.skipped_reason})" if result.skipped_reason else "",
        )
        return _json({"transaction_id": body.transaction_id, "status": "accepted"}, 202)
    return _repeat_response(result, f"transaction {body.transaction_id}")


def _store_fraud_report(body: FraudReportBody, raw: str, digest: str) -> Response:
    services = current_app.extensions["flp"]
    result: IntakeResult = services.handle(accept_fraud_report, FraudReported(body, digest), write=True)
    if result.outcome == "unknown_transaction":
        return problem(
            404,
            "Unknown transaction",
            f"transaction {body.transaction_id} was never received here or has already been purged",
        )
    if result.outcome == "accepted":
        services.wake_runner([StepKind.FRAUD_REPORT])
        log.info("fraud report for %s from %s accepted", body.transaction_id, body.source)
        return _json({"transaction_id": body.transaction_id, "source": body.source, "status": "accepted"}, 202)
    return _repeat_response(result, f"fraud report for {body.transaction_id} from {body.source}")


def _intake(endpoint: str, schema: type[BaseModel], store: Callable[[Any, str, str], Response]) -> Response:
    metrics = current_app.extensions["flp"].metrics
    try:
        raw = _checked_body()
        document, digest = _parsed(raw)
        try:
            body = schema.model_validate(document)
        except ValidationError as exc:
            raise Refused(_unprocessable("The body does not match the schema", field_errors(exc)), "invalid") from None
    except Refused as refused:
        metrics.intake.labels(endpoint, refused.outcome).inc()
        return refused.response
    response = store(body, raw.decode("utf-8"), digest)
    metrics.intake.labels(endpoint, _outcome_label(response.status_code)).inc()
    return response


def _checked_body() -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise Refused(problem(413, "Payload Too Large", f"the body is over {MAX_BODY_BYTES // 1024} KiB"), "too_large")
    raw = request.get_data(cache=True)  # MAX_CONTENT_LENGTH also bounds bodies sent without a length
    secret = current_app.extensions["flp"].config.env.pos_webhook_secret
    try:
        signatures.verify(
            request.headers.get("X-Signature"),
            raw,
            secret.get_secret_value(),
            now=current_app.extensions["flp"].clock().timestamp(),
        )
    except signatures.SignatureError as exc:
        raise Refused(problem(401, "Unauthorized", str(exc)), "bad_signature") from None
    if request.mimetype != "application/json":
        detail = f"Content-Type must be application/json, not {request.mimetype or 'missing'}"
        raise Refused(problem(415, "Unsupported Media Type", detail), "bad_type")
    return raw


def _parsed(raw: bytes) -> tuple[dict[str, Any], str]:
    """The JSON object and its canonical SHA-256, or a 422 naming what is wrong."""
    try:
        document = json.loads(
            raw.decode("utf-8"), parse_constant=_no_constants, parse_float=_finite, object_pairs_hook=_unique_keys
        )
    except _DuplicateKey as exc:
        # Refused rather than "last one wins": the value we checked must be the only one we store.
        raise Refused(
            _unprocessable("The body repeats a key", [{"field": exc.key, "message": "duplicate key"}]), "invalid"
        ) from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = "not UTF-8" if isinstance(exc, UnicodeDecodeError) else "not valid JSON"
        raise Refused(
            _unprocessable("The body is not valid JSON", [{"field": "(body)", "message": reason}]), "invalid"
        ) from None
    if not isinstance(document, dict):
        raise Refused(
            _unprocessable("The body must be a JSON object", [{"field": "(body)", "message": "must be an object"}]),
            "invalid",
        )
    if _depth(document) > MAX_DEPTH:
        errors = [{"field": "(body)", "message": f"nested deeper than {MAX_DEPTH} levels"}]
        raise Refused(_unprocessable("The body is nested too deeply", errors), "invalid")
    paths = _unpaired_surrogate_paths(document)
    if paths:
        # A \ud800-style escape without its pair is no character: it cannot be stored or shown.
        errors = [{"field": p, "message": "contains an unpaired UTF-16 surrogate escape"} for p in paths]
        raise Refused(_unprocessable("The body is not valid Unicode", errors), "invalid")
    paths = card_number_paths(document)
    if paths:
        errors = [
            {"field": p, "message": "looks like a payment card number; send card_fingerprint, never the number"}
            for p in paths
        ]
        raise Refused(_unprocessable("The body carries a card number and was not stored", errors), "card_number")
    return document, canonical_sha256(document)


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise _DuplicateKey(key)
        document[key] = value
    return document


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not a number in JSON")


def _finite(text: str) -> float:
    """A JSON number as a float, refused when it overflows (``1e999`` would be stored and served as Infinity)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is too large a number")
    return value


def _walk(document: Any) -> Iterator[tuple[str, Any, int]]:
    """Every key and value as ``(dotted path, value, depth)``, without recursion."""
    stack: list[tuple[str, Any, int]] = [("", document, 1)]
    while stack:
        path, node, depth = stack.pop()
        yield path, node, depth
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in children:
            child = f"{path}.{key}" if path else str(key)
            if isinstance(key, str):
                yield child, key, depth
            stack.append((child, value, depth + 1))


def _depth(document: Any) -> int:
    return max(depth for _, _, depth in _walk(document))


def _unpaired_surrogate_paths(document: Any) -> list[str]:
    return sorted(
        {path or "(body)" for path, value, _ in _walk(document) if isinstance(value, str) and _SURROGATE.search(value)}
    )


def canonical_sha256(document: dict[str, Any]) -> str:
    """The same JSON sent again with other spacing or key order is the same body."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _repeat_response(result: IntakeResult, what: str) -> Response:
    if result.outcome == "duplicate":
        return _json({"status": "duplicate"}, 200)
    return problem(409, "Conflict", f"{what} was already received with a different body")


def _unprocessable(title: str, errors: list[dict[str, str]]) -> Response:
    return problem(422, title, "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors)


def _json(body: dict[str, Any], status: int) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def _outcome_label(status: int) -> str:
    return {202: "accepted", 200: "duplicate", 409: "conflict", 404: "unknown_transaction"}.get(status, str(status))

"""The paths of the OpenAPI document, with the answers of docs/interfaces.md's tables."""

from __future__ import annotations

from typing import Any

from bot.http.openapi_examples import FRAUD_REPORT_EXAMPLE, TRANSACTION_EXAMPLES

_SCHEMA = "#/components/schemas/"
_POS: list[dict[str, list[str]]] = [{"posSignature": []}]
_BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def paths() -> dict[str, Any]:
    return {
        "/api/v1/transactions": {"post": _transactions()},
        "/api/v1/fraud-reports": {"post": _fraud_reports()},
        "/api/v1/transactions/{transaction_id}": {
            "get": _read(
                "One transaction, as posted, with its correlation",
                "TransactionView",
                params=(_path_param("transaction_id"),),
                not_found="never received, or purged",
            )
        },
        "/api/v1/alerts": {
            "get": _read(
                "Alerts, newest first",
                None,
                body={"type": "object", "properties": {"alerts": _list("Alert")}},
                params=(
                    {
                        "name": "status",
                        "in": "query",
                        "required": False,
                        "schema": {"enum": ["open", "confirmed", "dismissed"]},
                    },
                ),
                extra={"422": _problem("status is not one of open, confirmed, dismissed")},
            )
        },
        "/api/v1/alerts/{alert_id}": {
            "get": _read("One alert", "Alert", params=(_path_param("alert_id"),), not_found="no such alert")
        },
        "/api/v1/watchlist": {
            "get": _read(
                "Watchlist entries with their precision",
                None,
                body={"type": "object", "properties": {"watchlist": _list("WatchlistEntry")}},
            )
        },
        "/api/v1/audit.csv": {"get": _audit_csv()},
        "/api/v1/feeds/stripe": {"post": _feed("Stripe", "stripeSignature", "STRIPE_WEBHOOK_SECRET")},
        "/api/v1/feeds/square": {
            "post": _feed("Square", "squareSignature", "SQUARE_SIGNATURE_KEY or SQUARE_NOTIFICATION_URL")
        },
        "/healthz": {"get": _ops("The process is up", {"200": _json_answer("ok")})},
        "/readyz": {
            "get": _ops(
                "Ready unless the database is unreachable",
                {
                    "200": _json_answer("ready; the body reports the runner, Webex, camera and broker state"),
                    "503": _json_answer("the database is unreachable"),
                },
            )
        },
        "/metrics": {
            "get": _ops(
                "Prometheus metrics",
                {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            )
        },
        "/api/v1/openapi.json": {"get": _ops("This document", {"200": _json_answer("OpenAPI 3.1")})},
    }


def _transactions() -> dict[str, Any]:
    return {
        "summary": "The POS webhook: a payment (or refund, void, no-sale, override, discount) completed",
        "security": _POS,
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": f"{_SCHEMA}PosTransaction"},
                    "examples": {kind: {"summary": kind, "value": body} for kind, body in TRANSACTION_EXAMPLES.items()},
                }
            },
        },
        "responses": {
            "202": _json_answer("new and valid: stored durably with its first step", "Accepted"),
            "200": _json_answer("same id, same body again: nothing more happens", "Duplicate"),
            "409": _problem("same id, different body"),
            **_envelope_refusals(),
        },
    }


def _fraud_reports() -> dict[str, Any]:
    return {
        "summary": "A chargeback or processor fraud report; it never changes an alert's status",
        "security": _POS,
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"{_SCHEMA}FraudReportBody"}, "example": FRAUD_REPORT_EXAMPLE}
            },
        },
        "responses": {
            "202": _json_answer("recorded", "Accepted"),
            "200": _json_answer("the same transaction_id and source again", "Duplicate"),
            "404": _problem("the transaction was never received here or has been purged"),
            **_envelope_refusals(),
        },
    }


def _feed(name: str, scheme: str, variables: str) -> dict[str, Any]:
    return {
        "summary": f"{name}'s own webhook events: in-person payments become transactions, fraud disputes "
        "chargebacks (docs/api.md has the mappings)",
        "security": [{scheme: []}],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "object", "description": f"a {name} event, as {name} sends it"}}
            },
        },
        "responses": {
            "202": _json_answer(
                "a transaction or fraud report stored (an unmapped reader or location: stored "
                "as skipped, with the reason)",
                "Accepted",
            ),
            "200": _json_answer(
                "every other correctly signed event: duplicate, ignored, skipped (kept, errors name "
                "the field), inquiry, updated, stale or unknown_transaction",
                "FeedAnswer",
            ),
            "401": _problem(
                "bad or missing signature (for Stripe: a timestamp over 300 s old or ahead); nothing stored"
            ),
            "404": _problem(f"the feed is off: {variables} not set"),
            "429": _held_back(),
            "413": _problem("body over 256 KiB"),
        },
    }


def _audit_csv() -> dict[str, Any]:
    moment = {"type": "string", "format": "date-time"}
    return {
        "summary": "The audit log as CSV (ids and reason codes only), in id order",
        "security": _BEARER,
        "parameters": [{"name": n, "in": "query", "required": False, "schema": moment} for n in ("since", "until")],
        "responses": {
            "200": {"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}},
            "401": _problem("no or wrong bearer token"),
            "422": _problem("since or until is not ISO 8601 with an offset"),
            "429": _held_back(),
        },
    }


def _read(
    summary: str,
    schema: str | None,
    *,
    body: dict[str, Any] | None = None,
    params: tuple[dict[str, Any], ...] = (),
    not_found: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    content = {"$ref": f"{_SCHEMA}{schema}"} if schema else body
    responses = {
        "200": {"description": "OK", "content": {"application/json": {"schema": content}}},
        "401": _problem("no or wrong bearer token, or API_TOKEN unset"),
        "429": _held_back(),
    }
    if not_found:
        responses["404"] = _problem(not_found)
    return {
        "summary": summary,
        "security": _BEARER,
        "parameters": list(params),
        "responses": {**responses, **(extra or {})},
    }


def _ops(summary: str, responses: dict[str, Any]) -> dict[str, Any]:
    return {"summary": summary, "security": [], "responses": responses}


def _envelope_refusals() -> dict[str, Any]:
    return {
        "401": _problem("bad or missing signature, or a timestamp more than 300 s off"),
        "413": _problem("body over 256 KiB"),
        "415": _problem("Content-Type is not application/json"),
        "422": _problem("not JSON, fails the schema, or carries a card number; errors name each field; not stored"),
        "429": _held_back(),
    }


def _json_answer(description: str, schema: str | None = None) -> dict[str, Any]:
    content = {"$ref": f"{_SCHEMA}{schema}"} if schema else {"type": "object"}
    return {"description": description, "content": {"application/json": {"schema": content}}}


def _held_back() -> dict[str, Any]:
    answer = _problem(
        "this address failed this kind of credential ten times in 60 s (or, at the POS intake, the store is over "
        "its quota): wait Retry-After seconds"
    )
    answer["headers"] = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
    return answer


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": f"{_SCHEMA}Problem"}}},
    }


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _list(schema: str) -> dict[str, Any]:
    return {"type": "array", "items": {"$ref": f"{_SCHEMA}{schema}"}}

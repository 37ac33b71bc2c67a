"""``GET /api/v1/openapi.json``: the HTTP API as OpenAPI 3.1, its bodies generated from the pydantic models.

Documentation only (no auth, nothing acts on it). The schemas come from ``core/pos_schema.py`` so they
cannot drift from what the intake validates; what pydantic cannot express (the fields a ``type``
requires, checked in a model validator) is added here as JSON Schema ``if``/``then``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from flask import Blueprint, Response, jsonify

from bot.http.openapi_paths import paths
from core.pos_schema import FraudReportBody, PosTransaction

blueprint = Blueprint("openapi", __name__)
PATH = "/api/v1/openapi.json"
REF = "#/components/schemas/{model}"
# Mirrors PosTransaction._check_type_fields.
TYPE_REQUIRES = {("refund", "void"): "original_transaction_id", ("price_override", "discount"): "approver_id"}


@blueprint.get(PATH)
def openapi_json() -> Response:
    return jsonify(document())


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document (built once: it depends only on the code)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "fraud-loss-prevention",
            "version": "1",
            "description": "POS intake, payment-processor feeds, the read-only API and operations. "
            "See docs/api.md; the fixed edges are in docs/interfaces.md.",
        },
        "paths": paths(),
        "components": {"schemas": schemas(), "securitySchemes": SECURITY_SCHEMES},
    }


def schemas() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for model in (PosTransaction, FraudReportBody):
        schema = model.model_json_schema(ref_template=REF)
        found.update(schema.pop("$defs", {}))
        found[model.__name__] = schema
    transaction = found["PosTransaction"]
    transaction["description"] = (
        "A payment as the POS posts it. Extra fields are kept with the stored body. A body holding a card number "
        "(14-19 digits with a network prefix passing Luhn, in any string but items[].sku and *_id values) is refused."
    )
    transaction["properties"]["type"]["description"] = (
        "refund and void need original_transaction_id; price_override and discount need approver_id; "
        "a price_override needs original_unit_price on the overridden line(s), a discount needs discount."
    )
    transaction["allOf"] = [
        *(
            {
                "if": {"properties": {"type": {"enum": list(types)}}, "required": ["type"]},
                "then": {"required": [name], "properties": {name: {"type": "string"}}},
            }
            for types, name in TYPE_REQUIRES.items()
        ),
        {
            "if": {"properties": {"type": {"const": "price_override"}}, "required": ["type"]},
            "then": {
                "properties": {
                    "items": {
                        "contains": {
                            "required": ["original_unit_price"],
                            "properties": {"original_unit_price": {"type": "string"}},
                        }
                    }
                }
            },
        },
        {
            "if": {"properties": {"type": {"const": "discount"}}, "required": ["type"]},
            "then": {"required": ["discount"], "properties": {"discount": {"type": "object"}}},
        },
    ]
    found.update(RESPONSE_SCHEMAS)
    return found


SECURITY_SCHEMES: dict[str, Any] = {
    "posSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Signature",
        "description": 't=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed with POS_WEBHOOK_SECRET>; '
        "refused more than 300 s from the server's time either way; several v1 values may be sent "
        "during a key rotation.",
    },
    "bearerAuth": {"type": "http", "scheme": "bearer", "description": "API_TOKEN; unset: every call is refused."},
    "stripeSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "Stripe-Signature",
        "description": "Stripe's webhook signature with STRIPE_WEBHOOK_SECRET, checked by Stripe's library "
        "(older than 300 s: refused).",
    },
    "squareSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "x-square-hmacsha256-signature",
        "description": "base64 HMAC-SHA256 of SQUARE_NOTIFICATION_URL followed by the raw body, keyed with "
        "SQUARE_SIGNATURE_KEY.",
    },
}

_ID = {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,128}$"}
_NULLABLE_TEXT = {"type": ["string", "null"]}
RESPONSE_SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details (application/problem+json).",
        "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {
                "type": "array",
                "description": "each failing field (422)",
                "items": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        },
    },
    "Accepted": {
        "type": "object",
        "required": ["transaction_id", "status"],
        "properties": {
            "transaction_id": _ID,
            "status": {"const": "accepted"},
            "source": {"enum": ["chargeback", "processor", "manual"]},
        },
    },
    "Duplicate": {"type": "object", "required": ["status"], "properties": {"status": {"const": "duplicate"}}},
    "FeedAnswer": {
        "type": "object",
        "required": ["status"],
        "description": "duplicate: the event id (or its payment) was seen before; ignored: not stored, with the "
        "reason; skipped: signed but unusable (the mapping or our schema refuses a field, or it "
        "carries a card number), kept with the reason and errors naming each field; inquiry: a "
        "bank's inquiry, recorded, never a chargeback; updated / stale: a payment's later status, "
        "applied / older than the one held; unknown_transaction: for a payment never received "
        "(event kept).",
        "properties": {
            "status": {
                "enum": ["duplicate", "ignored", "skipped", "inquiry", "updated", "stale", "unknown_transaction"]
            },
            "reason": {"type": "string"},
            "transaction_id": {"type": ["string", "null"]},
            "payment_status": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}},
            },
        },
    },
    "TransactionView": {
        "type": "object",
        "required": ["transaction", "correlation"],
        "properties": {
            "transaction": {"type": "object", "description": "the body as posted (a feed's adds source), plus fraud"},
            "correlation": {
                "type": "object",
                "properties": {
                    "status": {"enum": ["pending", "capturing", "analyzing", "done", "skipped", "failed"]},
                    "reason": _NULLABLE_TEXT,
                    "triage": {"type": ["object", "null"]},
                    "snapshots": {"type": "array"},
                    "faces": {"type": "array"},
                    "reconciliation": {"type": "object"},
                    "rule_results": {"type": "array"},
                    "alert_ids": {"type": "array", "items": {"type": "string"}},
                    "steps": {"type": "array"},
                },
            },
        },
    },
    "Alert": {
        "type": "object",
        "required": ["id", "status", "rule", "severity"],
        "properties": {
            "id": {"type": "string"},
            "status": {"enum": ["open", "confirmed", "dismissed"]},
            "rule": {"type": "string"},
            "severity": {"enum": ["low", "medium", "high", "critical"]},
            "message": {"type": "string"},
            "store_id": {"type": "string"},
            "register_id": _NULLABLE_TEXT,
            "transaction_id": _NULLABLE_TEXT,
            "person_id": _NULLABLE_TEXT,
            "similarity": {"type": ["number", "null"]},
            "created_at": _NULLABLE_TEXT,
            "decided_by": _NULLABLE_TEXT,
            "decided_at": _NULLABLE_TEXT,
            "reason": _NULLABLE_TEXT,
            "related_alert_ids": {
                "type": "array",
                "items": {"type": "string"},
                "description": "the same watchlist person's earlier alerts in the store within the hour "
                "before, at any register or entrance camera, newest first",
            },
        },
    },
    "WatchlistEntry": {
        "type": "object",
        "required": ["id", "status"],
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string"},
            "store_id": {"type": "string"},
            "expires_at": _NULLABLE_TEXT,
            "flagged_for_review": {"type": "boolean"},
            "precision": {"type": "object"},
        },
    },
}

"""One example body per transaction ``type`` (docs/interfaces.md), served in the OpenAPI document and tested against it."""

from __future__ import annotations

from typing import Any

_SALE: dict[str, Any] = {
    "transaction_id": "T-2026-000123",
    "store_id": "store-001",
    "register_id": "reg-2",
    "occurred_at": "2026-11-24T17:03:12-03:00",
    "total": {"amount": "149.90", "currency": "BRL"},
    "payment": {
        "method": "card",
        "entry_mode": "contactless",
        "card_fingerprint": "fp_8d1c",
        "status": "approved",
        "risk_score": 72,
    },
    "items": [{"sku": "7891000100103", "name": "Whisky 1L", "quantity": 2, "unit_price": "74.95"}],
    "cashier_id": "c-17",
}


def _like_sale(transaction_id: str, **changes: Any) -> dict[str, Any]:
    return {**_SALE, "transaction_id": transaction_id, **changes}


TRANSACTION_EXAMPLES: dict[str, dict[str, Any]] = {
    "sale": _SALE,
    "refund": _like_sale(
        "T-2026-000124",
        type="refund",
        original_transaction_id="T-2026-000123",
        total={"amount": "74.95", "currency": "BRL"},
        items=[{"sku": "7891000100103", "name": "Whisky 1L", "quantity": 1, "unit_price": "74.95"}],
    ),
    "void": _like_sale("T-2026-000125", type="void", original_transaction_id="T-2026-000123"),
    "no_sale": _like_sale(
        "T-2026-000126",
        type="no_sale",
        total={"amount": "0.00", "currency": "BRL"},
        payment={"method": "cash"},
        items=[],
    ),
    "price_override": _like_sale(
        "T-2026-000127",
        type="price_override",
        approver_id="m-3",
        total={"amount": "49.90", "currency": "BRL"},
        items=[
            {
                "sku": "7891000100103",
                "name": "Whisky 1L",
                "quantity": 1,
                "unit_price": "49.90",
                "original_unit_price": "74.95",
            }
        ],
    ),
    "discount": _like_sale(
        "T-2026-000128",
        type="discount",
        approver_id="m-3",
        total={"amount": "134.90", "currency": "BRL"},
        discount={"amount": "15.00", "currency": "BRL"},
    ),
}

FRAUD_REPORT_EXAMPLE: dict[str, Any] = {
    "transaction_id": "T-2026-000123",
    "reason": "cardholder denies",
    "source": "chargeback",
    "reported_at": "2026-12-01T10:00:00-03:00",
}

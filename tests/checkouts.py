"""Checkouts for tests to send: the POS body at the test clock's time, a crafted transaction through intake,
a watchlist entry to be recognised, and where faces stand at reg-1 (its customer zone is [0, 0, 0.6, 1])."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from core.events import TransactionReceived
from core.pos_schema import PosTransaction
from handlers.pipeline.intake import accept_transaction
from tests import factories
from tests.conftest import transaction_body

URL = "/api/v1/transactions"
CUSTOMER = (0.1, 0.2, 0.3, 0.5)  # inside reg-1's customer zone [0, 0, 0.6, 1]
CASHIER = (0.7, 0.2, 0.9, 0.5)  # outside it


def body_now(clock, **changes):
    """transaction_body() as it occurs now by the test clock, written with São Paulo's offset."""
    local = clock().astimezone(timezone(timedelta(hours=-3)))
    return transaction_body(occurred_at=local.isoformat(), **changes)


def enroll(services, person_id: str = "P-1", *, expires_in_days: int = 30) -> None:
    """An active watchlist entry of store-001, enrolled now."""
    now = services.clock()
    factories.add(
        services.db, factories.watchlist_person(at=now, id=person_id, expires_at=now + timedelta(days=expires_in_days))
    )


_sequence = iter(range(1, 1_000_000))


def post(
    services,
    *,
    at: datetime,
    type: str = "sale",
    cashier: str | None = "c-1",
    register: str = "reg-1",
    card: str | None = "fp_1",
    store: str = "store-001",
    original: str | None = None,
    approver: str | None = None,
    amount: str = "10.00",
) -> str:
    """A crafted transaction accepted through the real intake handler (no HTTP, no signature); its id."""
    transaction_id = f"T-{next(_sequence)}"
    body = transaction_body(
        transaction_id=transaction_id,
        store_id=store,
        register_id=register,
        occurred_at=at.isoformat(),
        type=type,
        cashier_id=cashier,
        total={"amount": amount, "currency": "BRL"},
        payment={"method": "card", "entry_mode": "contactless", "card_fingerprint": card, "risk_score": 10},
    )
    if original is not None:
        body["original_transaction_id"] = original
    if approver is not None:
        body["approver_id"] = approver
    if type == "price_override":
        body["items"] = [{"sku": "7891000100103", "quantity": 1, "unit_price": amount, "original_unit_price": "12.50"}]
    if type == "discount":
        body["discount"] = {"amount": "1.50", "currency": "BRL"}
    event = TransactionReceived(PosTransaction.model_validate(body), "{}", transaction_id)
    assert services.handle(accept_transaction, event, write=True).outcome == "accepted"
    return transaction_id

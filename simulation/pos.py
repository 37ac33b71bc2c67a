"""A stand-in point of sale: a scripted day of checkouts, posted as signed transactions over HTTP.

Each checkout first steps its customer up to the register (the floor the simulated camera
pictures), then posts the payment at a whole second, as a POS would, signed with
POS_WEBHOOK_SECRET. Fraud reports (a chargeback, days later in real life) go to the fraud-report
webhook the same way. Everything is deterministic: the same day every run, ids apart.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import requests

from core import signatures
from simulation.floor import Customer, Floor
from simulation.products import Placement as Package
from simulation.scenes import Placement as Person

BOTTLE = ("7891000100103", "Whisky 1L", "74.95")
BOX = ("7891000200200", "Chocolates 500g", "19.90")
COFFEE = ("7891000300307", "Coffee 250g", "12.50")  # not in the catalog: the camera cannot vouch for it


@dataclass(frozen=True)
class Checkout:
    """One payment of the script: what is billed, how it is paid, and what the camera sees."""

    key: str  # short name in the script, e.g. "under-rung"
    register_id: str
    items: tuple[tuple[tuple[str, str, str], int], ...]  # ((sku, name, unit price), quantity)
    entry_mode: str | None = "contactless"
    risk_score: int | None = 10
    fingerprint: str = "fp_0000"
    customer: Customer = Customer()
    decision: tuple[str, str | None] | None = None  # what the manager of the demo decides on its alerts
    note: str = ""  # what the narration says about it
    kind: str = "sale"  # or refund|void|… (the POS `type`)
    undoes: str | None = None  # a refund's or void's original: the key of an earlier checkout

    def total(self) -> str:
        return f"{sum(float(price) * quantity for (_, _, price), quantity in self.items):.2f}"


@dataclass
class Rung:
    transaction_id: str
    checkout: Checkout
    status: int | None
    occurred_at: datetime


def _at_till(register_id: str, person: str, *, face_px: int = 130, brightness: float = 1.0) -> Person:
    """The customer's side of each register (reg-1: left of the till, reg-2: right), as customer_zone says."""
    x = 0.3 if register_id == "reg-1" else 0.7
    return Person(person, at=(x, 0.36), face_px=face_px, brightness=brightness)


def _on_counter(register_id: str, *labels: str) -> tuple[Package, ...]:
    """Packages side by side on the counter in front of the customer (the reference packaging: seed 0)."""
    left = 220 if register_id == "reg-1" else 700
    return tuple(Package(label, (left + 165 * i, 600), 0.55, (-4, 3, 6, -2)[i % 4]) for i, label in enumerate(labels))


def demo_day() -> tuple[list[Checkout], Checkout, str]:
    """The day's checkouts, the later return visit, and the key of the checkout that is charged back."""
    astronaut, grace = "astronaut", "grace_hopper"
    day = [
        Checkout("clean", "reg-1", ((COFFEE, 2),), "contactless", 8, "fp_a101"),
        Checkout("sold by c-22", "reg-2", ((BOX, 1), (COFFEE, 1)), "chip", 12, "fp_a102"),
        Checkout(
            "under-rung",
            "reg-1",
            ((BOTTLE, 1),),
            "contactless",
            64,
            "fp_a103",
            Customer((_at_till("reg-1", astronaut),), _on_counter("reg-1", "Bottle", "Bottle", "Bottle")),
            decision=("confirm", None),
            note="3 bottles on the counter, 1 billed",
        ),
        Checkout("clean", "reg-2", ((COFFEE, 3),), "chip", 5, "fp_a104"),
        Checkout("clean", "reg-1", ((BOX, 2),), "contactless", 15, "fp_a106"),
        Checkout(
            "keyed card",
            "reg-2",
            ((BOTTLE, 4), (BOX, 2)),
            "manual",
            88,
            "fp_b666",
            Customer((_at_till("reg-2", grace),), _on_counter("reg-2", "Box", "Bottle")),
            decision=("confirm", None),
            note="card number typed in by hand, risk 88",
        ),
        Checkout(
            "pictured, clean",
            "reg-1",
            ((BOX, 2),),
            "swipe",
            30,
            "fp_a107",
            Customer((_at_till("reg-1", astronaut, brightness=0.9),), _on_counter("reg-1", "Box", "Box")),
            note="magstripe: pictured, and everything billed",
        ),
        Checkout("clean", "reg-2", ((COFFEE, 1),), "contactless", 9, "fp_a108"),
        Checkout(
            "keyed, cardholder",
            "reg-1",
            ((BOX, 3),),
            "manual",
            83,
            "fp_a109",
            Customer((_at_till("reg-1", astronaut),), _on_counter("reg-1", "Box")),
            decision=("dismiss", "no_loss"),
            note="keyed in, but the bank confirms the cardholder",
        ),
        Checkout("clean", "reg-2", ((BOX, 1),), "chip", 20, "fp_a110"),
        Checkout("clean", "reg-1", ((COFFEE, 2), (BOX, 1)), "contactless", 11, "fp_a111"),
        # No customer at the till: the cashier refunds a sale of their own (a classic till skim).
        Checkout(
            "own-sale refund",
            "reg-2",
            ((BOX, 1), (COFFEE, 1)),
            "chip",
            None,
            "fp_a102",
            kind="refund",
            undoes="sold by c-22",
            decision=("confirm", None),
            note="cashier c-22 refunds their own sale, nobody at the till",
        ),
    ]
    # Weeks later she comes back, pays by tap with a clean card, at the other register.
    return_visit = Checkout(
        "return visit",
        "reg-1",
        ((COFFEE, 1),),
        "contactless",
        7,
        "fp_c777",
        Customer((_at_till("reg-1", grace, face_px=120, brightness=0.95),)),
        decision=("confirm", None),
        note="the charged-back shopper, another register, another card",
    )
    return day, return_visit, "keyed card"


@dataclass
class PosStandIn:
    """Posts the script to ``base_url`` (the service), stepping customers up on ``floor`` first."""

    base_url: str
    secret: str
    floor: Floor
    serials: dict[str, str]  # register id -> camera serial
    store_id: str = "store-001"
    timezone: str = "America/Sao_Paulo"
    currency: str = "BRL"
    prefix: str = field(default_factory=lambda: datetime.now().strftime("T%H%M%S"))
    turnover_s: float = 0.0  # a register's next customer steps up at least this long after the last payment
    session: requests.Session = field(default_factory=requests.Session)
    on_rung: Callable[[Rung], None] = lambda rung: None
    rung: list[Rung] = field(default_factory=list)
    _free_at: dict[str, float] = field(default_factory=dict)

    def ring(self, checkout: Checkout) -> Rung:
        """The customer steps up (once the register is free), pays at the next whole second; the signed
        transaction is posted."""
        time.sleep(max(0.0, self._free_at.get(checkout.register_id, 0.0) - time.time()))
        self.floor.step_up(self.serials[checkout.register_id], checkout.customer)
        paid = int(time.time()) + 1
        time.sleep(max(0.0, paid - time.time()))
        self._free_at[checkout.register_id] = paid + self.turnover_s
        transaction_id = f"{self.prefix}-{len(self.rung) + 1:02d}"
        occurred = datetime.fromtimestamp(paid, UTC).astimezone(ZoneInfo(self.timezone))
        body = {
            "transaction_id": transaction_id,
            "store_id": self.store_id,
            "register_id": checkout.register_id,
            "occurred_at": occurred.isoformat(),
            "total": {"amount": checkout.total(), "currency": self.currency},
            "payment": {
                "method": "card",
                "entry_mode": checkout.entry_mode,
                "card_fingerprint": checkout.fingerprint,
                "status": "approved",
                "risk_score": checkout.risk_score,
            },
            "items": [
                {"sku": sku, "name": name, "quantity": quantity, "unit_price": price}
                for (sku, name, price), quantity in checkout.items
            ],
            "cashier_id": "c-17" if checkout.register_id == "reg-1" else "c-22",
        }
        if checkout.kind != "sale":
            body["type"] = checkout.kind
        if checkout.undoes is not None:
            body["original_transaction_id"] = next(
                r.transaction_id for r in reversed(self.rung) if r.checkout.key == checkout.undoes
            )
        rung = Rung(transaction_id, checkout, self._post("/api/v1/transactions", body), occurred)
        self.rung.append(rung)
        self.on_rung(rung)
        return rung

    def report_fraud(self, transaction_id: str, reason: str, *, source: str = "chargeback") -> int | None:
        body = {
            "transaction_id": transaction_id,
            "reason": reason,
            "source": source,
            "reported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        return self._post("/api/v1/fraud-reports", body)

    def _post(self, path: str, body: dict) -> int | None:
        raw = json.dumps(body).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Signature": signatures.sign(raw, self.secret, int(time.time())),
        }
        try:
            return self.session.post(self.base_url + path, data=raw, headers=headers, timeout=30).status_code
        except requests.RequestException:
            return None

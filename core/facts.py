"""The facts a rule can see: one frozen record per evaluation, documented field by field.

The schema lives here, beside the fields, so the rule compiler, the message templates,
docs/rules.md and the stored ``facts_seen`` can never disagree about a name or a type.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

FactKind = Literal["number", "string", "boolean"]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _fact(
    kind: FactKind, meaning: str, example: Any, *, nullable: bool = False, money: bool = False, default: Any = None
) -> Any:
    """A dataclass field carrying its rule type, meaning and example (read by FACT_SCHEMA and the docs)."""
    metadata = {"kind": kind, "nullable": nullable, "meaning": meaning, "example": example, "money": money}
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Facts:
    """What was known when the rules ran. At the entrance there is no payment: amount is 0 and the
    payment facts are null. Numbers are plain floats/ints so the stored copy is JSON as it is."""

    # where and when
    store_id: str = _fact("string", "Store id as the POS sends it.", "store-001", default="")
    register_id: str | None = _fact("string", "Register id; null at an entrance camera.", "reg-1", nullable=True)
    snapshot_kind: str = _fact(
        "string",
        "Which picture: 'live', 'exact' (footage at the payment time), 'entrance', or 'none' when no picture of the checkout was analysed (triage skipped it, the camera is off, or no picture could be taken or analysed).",
        "live",
        default="live",
    )
    hour: int = _fact("number", "Store-local hour of the payment (or entrance event), 0–23.", 22, default=0)
    weekday: str = _fact(
        "string", "Store-local day: 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or 'sun'.", "sat", default="mon"
    )
    # the payment
    amount: float = _fact("number", "Transaction total; 0 at the entrance.", 149.9, money=True, default=0.0)
    currency: str | None = _fact("string", "ISO 4217 currency of amount; null at the entrance.", "BRL", nullable=True)
    payment_method: str | None = _fact(
        "string", "'card', 'cash', 'wallet' or 'other'; null at the entrance.", "card", nullable=True
    )
    transaction_type: str | None = _fact(
        "string",
        "'sale', 'refund', 'void', 'no_sale', 'price_override' or 'discount'; null at the entrance.",
        "sale",
        nullable=True,
    )
    entry_mode: str | None = _fact(
        "string",
        "'chip', 'contactless', 'swipe', 'manual' or 'online'; null when the POS did not say.",
        "manual",
        nullable=True,
    )
    risk_score: int | None = _fact(
        "number", "Processor's risk score 0–100; null when the processor gave none.", 72, nullable=True
    )
    card_fingerprint_in_fraud: bool = _fact(
        "boolean", "This card's fingerprint belongs to a transaction reported as fraud.", False, default=False
    )
    card_fingerprint_seen_before: int = _fact(
        "number",
        "Earlier transactions with the same card fingerprint in the last 24 hours, in any store; 0 without a fingerprint.",
        3,
        default=0,
    )
    # the faces
    faces_count: int = _fact(
        "number", "Faces found in the customer zone and searched against the watchlist.", 1, default=0
    )
    matched: bool = _fact(
        "boolean", "The best face similarity is at or above recognition.match_threshold.", True, default=False
    )
    match_similarity: float | None = _fact(
        "number",
        "Best watchlist similarity 0–100 if at or above recognition.review_threshold, else null (never a match).",
        93.5,
        nullable=True,
    )
    match_person_id: str | None = _fact(
        "string", "Watchlist person of that best similarity; null when match_similarity is null.", "P-7", nullable=True
    )
    # the products
    surplus_count: int = _fact(
        "number", "Items seen beyond those billed, summed over the checked labels (never negative).", 2, default=0
    )
    surplus_value: float = _fact(
        "number",
        "Value of the surplus: per label, surplus × the lowest unit price billed (or in the catalog) for it.",
        149.9,
        money=True,
        default=0.0,
    )
    unchecked_count: int = _fact(
        "number",
        "Receipt lines and labels that could not be checked (not in the catalog, weighed, not countable).",
        0,
        default=0,
    )

    # patterns (docs/rules.md "Pattern facts"; windows in the config's patterns section). At the
    # entrance there is no transaction: counts are 0 and the rest null or false.
    refund_of_own_sale: bool = _fact(
        "boolean", "A refund or void of a sale rung by the same cashier.", False, default=False
    )
    minutes_since_original: float | None = _fact(
        "number",
        "Minutes from the original sale to this refund or void; null for other kinds or an original never seen.",
        12.5,
        nullable=True,
    )
    adjustment_amount: float = _fact(
        "number",
        "What a price override ((original − charged unit price) × quantity, summed) or a discount gave away; 0 for other kinds.",
        25.05,
        money=True,
        default=0.0,
    )
    approver_is_cashier: bool = _fact(
        "boolean", "A price override or discount approved by the cashier who rang it.", False, default=False
    )
    cashier_transactions_shift: int = _fact(
        "number",
        "This cashier's transactions of any kind in the last patterns.shift_hours, this one included.",
        41,
        default=0,
    )
    cashier_voids_shift: int = _fact(
        "number", "This cashier's voids in the last patterns.shift_hours, this one included.", 4, default=0
    )
    cashier_refunds_shift: int = _fact(
        "number", "This cashier's refunds in the last patterns.shift_hours, this one included.", 2, default=0
    )
    cashier_no_sales_shift: int = _fact(
        "number",
        "This cashier's no-sale drawer openings in the last patterns.shift_hours, this one included.",
        1,
        default=0,
    )
    cashier_overrides_shift: int = _fact(
        "number",
        "This cashier's price overrides and discounts in the last patterns.shift_hours, this one included.",
        3,
        default=0,
    )
    register_exceptions_shift: int = _fact(
        "number",
        "Refunds, voids, no-sales, overrides and discounts at this register in the last patterns.shift_hours.",
        5,
        default=0,
    )
    store_exceptions_shift: int = _fact(
        "number",
        "Refunds, voids, no-sales, overrides and discounts in this store in the last patterns.shift_hours.",
        12,
        default=0,
    )
    card_uses_window: int = _fact(
        "number",
        "Transactions with this card in the last patterns.card_velocity_minutes in any store, this one included; 0 without a fingerprint.",
        3,
        default=0,
    )
    card_stores_window: int = _fact(
        "number", "Different stores among those transactions; 0 without a fingerprint.", 2, default=0
    )
    card_refunds_window: int = _fact(
        "number",
        "Refunds to this card in the last patterns.card_refund_days in any store, this one included; 0 without a fingerprint.",
        2,
        default=0,
    )
    cashier_transactions_baseline: int = _fact(
        "number",
        "This cashier's transactions in the baseline (the patterns.baseline_days completed days before today).",
        640,
        default=0,
    )
    cashier_own_refunds_baseline: int = _fact(
        "number", "Refunds and voids of the cashier's own sales in the baseline.", 1, default=0
    )
    cashier_under_rung_baseline: int = _fact(
        "number", "The cashier's transactions in the baseline whose picture showed more than was billed.", 0, default=0
    )
    cashier_exception_z: float | None = _fact(
        "number",
        "z-score of the cashier's exception rate (non-sales per transaction) against the store's other cashiers in the baseline; null for a new cashier or too few peers.",
        3.2,
        nullable=True,
    )
    cashier_void_z: float | None = _fact("number", "The same z-score for voids.", 2.1, nullable=True)
    cashier_refund_z: float | None = _fact("number", "The same z-score for refunds.", 0.4, nullable=True)
    cashier_no_sale_z: float | None = _fact("number", "The same z-score for no-sales.", -0.3, nullable=True)
    cashier_override_z: float | None = _fact(
        "number", "The same z-score for price overrides and discounts.", 1.0, nullable=True
    )
    cashier_under_rung_z: float | None = _fact(
        "number", "The same z-score for transactions whose picture showed more than was billed.", 0.0, nullable=True
    )

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe copy, stored with every evaluation so an alert can be explained later."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class FactSpec:
    name: str
    kind: FactKind
    nullable: bool
    meaning: str
    example: Any
    money: bool


FACT_SCHEMA: tuple[FactSpec, ...] = tuple(
    FactSpec(
        f.name,
        f.metadata["kind"],
        f.metadata["nullable"],
        f.metadata["meaning"],
        f.metadata["example"],
        f.metadata["money"],
    )
    for f in fields(Facts)
)
FACT_NAMES: frozenset[str] = frozenset(spec.name for spec in FACT_SCHEMA)

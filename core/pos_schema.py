"""The POS webhook bodies (docs/interfaces.md) as pydantic models; errors name each failing field.

Unknown extra fields are accepted and kept in the stored raw body: a POS vendor adding a field
must not stop fraud monitoring of a whole chain. Everything we read is strictly typed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

# A bounded range: far from datetime's limits, so converting to UTC or adding a delay never overflows.
_EARLIEST, _LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)


def _in_range(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+05:00 is before year 1 in UTC
        utc = None
    if utc is None or not _EARLIEST <= utc < _LATEST:
        raise ValueError("must be between 1970-01-01 and 9000-01-01 (UTC)")
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:  # PostgreSQL text cannot hold it
        raise ValueError("must not contain a NUL character")
    return value


Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]
ShortId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
# [0-9], not \d: the regex engine's \d also matches other scripts' digits ("١٢").
Money = Annotated[str, Field(pattern=r"^[0-9]{1,12}(\.[0-9]{1,4})?$", description="Decimal string, e.g. 149.90")]
Instant = Annotated[AwareDatetime, AfterValidator(_in_range)]
MAX_ADJUSTMENT = Decimal("1000000000000")  # transactions.adjustment_amount is Numeric(18, 4)
TransactionType = Literal["sale", "refund", "void", "no_sale", "price_override", "discount"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, strict=False)


class Total(_Body):
    amount: Money
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class Payment(_Body):
    method: Literal["card", "cash", "wallet", "other"]
    entry_mode: Literal["chip", "contactless", "swipe", "manual", "online"] | None = None
    card_fingerprint: Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_no_nul)] | None = None
    status: Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")] = "approved"
    risk_score: Annotated[int, Field(ge=0, le=100, strict=True)] | None = None


class Item(_Body):
    sku: Annotated[str, Field(min_length=1, max_length=64)]
    name: Annotated[str, Field(max_length=200)] = ""
    quantity: Annotated[Decimal, Field(gt=0, le=100_000, max_digits=12, decimal_places=4, allow_inf_nan=False)]
    unit_price: Money
    original_unit_price: Money | None = Field(
        default=None, description="A price_override's line: the price before the override."
    )


class PosTransaction(_Body):
    transaction_id: Id
    store_id: ShortId
    register_id: ShortId
    occurred_at: Instant
    total: Total
    payment: Payment
    items: Annotated[list[Item], Field(max_length=1000)] = []
    cashier_id: ShortId | None = None
    type: TransactionType = "sale"
    original_transaction_id: Id | None = None
    approver_id: ShortId | None = None
    discount: Total | None = Field(default=None, description="A discount's amount off the receipt.")

    @model_validator(mode="after")
    def _check_type_fields(self) -> PosTransaction:
        if self.type in ("refund", "void") and self.original_transaction_id is None:
            raise ValueError(f"original_transaction_id: required for type {self.type}")
        if self.type in ("price_override", "discount") and self.approver_id is None:
            raise ValueError(f"approver_id: required for type {self.type}")
        if self.type == "price_override" and not any(i.original_unit_price is not None for i in self.items):
            raise ValueError("items: a price_override needs original_unit_price on the line(s) it overrode")
        if self.type == "discount" and self.discount is None:
            raise ValueError("discount: required for type discount")
        if self.discount is not None and self.discount.currency != self.total.currency:
            raise ValueError(f"discount.currency: must be the total's currency ({self.total.currency})")
        if self.adjustment() >= MAX_ADJUSTMENT:
            raise ValueError("items: the overridden amounts add up to more than 999999999999.9999")
        return self

    def adjustment(self) -> Decimal:
        """What an override or discount gave away: (original − charged) × quantity per line, or the discount.
        A line whose price was raised gives nothing away (never negative); 4 decimals, as stored."""
        if self.type == "discount" and self.discount is not None:
            return Decimal(self.discount.amount)
        if self.type != "price_override":
            return Decimal(0)
        given = sum(
            (
                max(Decimal(0), Decimal(i.original_unit_price) - Decimal(i.unit_price)) * i.quantity
                for i in self.items
                if i.original_unit_price is not None
            ),
            Decimal(0),
        )
        return given.quantize(Decimal("0.0001"))


class FraudReportBody(_Body):
    transaction_id: Id
    reason: Annotated[str, Field(max_length=500), AfterValidator(_no_nul)] | None = None
    source: Literal["chargeback", "processor", "manual"]
    reported_at: Instant


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """pydantic errors as ``[{"field": "payment.risk_score", "message": …}]`` for problem+json."""
    errors = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(p) for p in error["loc"]) or "(body)"
        message = error["msg"].removeprefix("Value error, ")
        if ": " in message and field == "(body)":
            field, message = message.split(": ", 1)
        errors.append({"field": field, "message": "required" if error["type"] == "missing" else message})
    return errors


def occurred_utc(transaction: PosTransaction) -> datetime:
    return transaction.occurred_at.astimezone(UTC)

"""The receipt against what the camera counted, per visual label of the catalog.

Pure: receipt lines, catalog and counts in, a ``Reconciliation`` out. The camera cannot tell
SKUs that look alike apart, so billed quantities are summed per label. What cannot be compared
honestly (a SKU outside the catalog, goods billed by weight, a label the backend cannot count)
is listed in ``not_checked`` with the reason, never guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

from vision.types import ProductCount


class BilledItem(NamedTuple):
    sku: str
    name: str
    quantity: Decimal
    unit_price: Decimal


class CatalogEntry(Protocol):
    """What reconcile needs of a catalog item (``core.config.CatalogItem`` fits); ``unit_price`` is optional.

    Read-only properties, not attributes: the configuration's items are frozen."""

    @property
    def sku(self) -> str: ...

    @property
    def label(self) -> str: ...


@dataclass(frozen=True)
class ReconciledLine:
    label: str
    skus: tuple[str, ...]  # the SKUs of this label on the receipt (none when only the camera saw it)
    billed: int
    seen: int
    confidence: float | None
    unit_price: Decimal | None  # lowest price for this label on the receipt, else in the catalog, else unknown

    @property
    def surplus(self) -> int:
        return max(self.seen - self.billed, 0)

    @property
    def surplus_value(self) -> Decimal | None:
        """None when there is a surplus but no price for it (not billed here, no catalog price)."""
        if not self.surplus:
            return Decimal("0")
        return self.surplus * self.unit_price if self.unit_price is not None else None

    def to_dict(self) -> dict[str, Any]:
        value = self.surplus_value
        return {
            "label": self.label,
            "skus": list(self.skus),
            "billed": self.billed,
            "seen": self.seen,
            "surplus": self.surplus,
            "surplus_value": _money(value) if value is not None else None,
            "confidence": self.confidence,
        }


@dataclass(frozen=True)
class NotChecked:
    reason: str
    sku: str | None = None
    name: str | None = None
    label: str | None = None

    def to_dict(self) -> dict[str, Any]:
        keys = ("sku", "name", "label")
        return {**{k: getattr(self, k) for k in keys if getattr(self, k) is not None}, "reason": self.reason}


@dataclass(frozen=True)
class Reconciliation:
    lines: tuple[ReconciledLine, ...] = ()
    not_checked: tuple[NotChecked, ...] = ()

    @property
    def surplus_count(self) -> int:
        return sum(line.surplus for line in self.lines)

    @property
    def surplus_value(self) -> Decimal:
        """Surplus of a label without a known price adds nothing: the count still tells it."""
        return sum((line.surplus_value for line in self.lines if line.surplus_value is not None), Decimal("0"))

    @property
    def confidence(self) -> float | None:
        """The weakest line's confidence: a comparison is only as sure as its least sure count."""
        known = [line.confidence for line in self.lines if line.confidence is not None]
        return min(known) if known else None

    def to_dict(self) -> dict[str, Any]:
        """The read API's ``reconciliation`` (money as decimal strings, as in the POS contract)."""
        return {
            "lines": [line.to_dict() for line in self.lines],
            "not_checked": [item.to_dict() for item in self.not_checked],
            "surplus_count": self.surplus_count,
            "surplus_value": _money(self.surplus_value),
            "confidence": self.confidence,
        }


def reconcile(
    items: Iterable[Sequence[Any]], catalog: Iterable[CatalogEntry], counts: Iterable[ProductCount]
) -> Reconciliation:
    """Billed against seen per label, for every catalog label the receipt or the camera involves.

    ``items`` are (sku, name, quantity, unit_price) receipt lines; a quantity with a fraction is
    a weighed good. ``counts`` come from the ProductCounter for the catalog's labels."""
    catalog = tuple(catalog)
    label_of = {entry.sku: entry.label for entry in catalog}
    catalog_price = _catalog_prices(catalog)
    counted = {count.label: count for count in counts}
    skipped: list[NotChecked] = []
    billed: dict[str, list[BilledItem]] = {}
    weighed: dict[str, list[BilledItem]] = {}
    for raw in items:
        sku, name, quantity, unit_price = raw
        item = BilledItem(str(sku), str(name), Decimal(str(quantity)), Decimal(str(unit_price)))
        label = label_of.get(item.sku)
        if label is None:
            skipped.append(NotChecked("not in the catalog", sku=item.sku, name=item.name))
        elif item.quantity != item.quantity.to_integral_value():
            skipped.append(NotChecked("billed by weight: never counted by the camera", sku=item.sku, name=item.name))
            weighed.setdefault(label, []).append(item)
        else:
            billed.setdefault(label, []).append(item)
    involved = list(
        dict.fromkeys([*billed, *weighed, *(c.label for c in counted.values() if c.seen and c.label in catalog_price)])
    )
    lines = []
    for label in involved:
        line, problem = _line(
            label, billed.get(label, []), weighed.get(label, []), counted.get(label), catalog_price[label]
        )
        if line is not None:
            lines.append(line)
        if problem is not None:
            skipped.append(problem)
    return Reconciliation(tuple(lines), tuple(skipped))


def _line(
    label: str,
    items: list[BilledItem],
    weighed: list[BilledItem],
    count: ProductCount | None,
    catalog_price: Decimal | None,
) -> tuple[ReconciledLine | None, NotChecked | None]:
    """One label's comparison, or the reason it cannot be made."""
    skus = tuple(dict.fromkeys(item.sku for item in items))
    if weighed and items or weighed and count is not None and count.seen:
        # Units of this label billed by weight are in the picture too: any count would mislead.
        return None, NotChecked("some of this label is billed by weight: the count cannot be compared", label=label)
    if weighed:
        return None, None  # only weighed goods, already listed per SKU
    if count is None:
        return None, NotChecked("the camera did not report this label", label=label)
    if count.seen is None:
        return None, NotChecked("this recognition backend cannot count this label", label=label)
    prices = [item.unit_price for item in items]
    unit_price = min(prices) if prices else catalog_price  # the lowest: a surplus is never overvalued
    quantity = sum((int(item.quantity) for item in items), 0)
    return ReconciledLine(label, skus, quantity, count.seen, count.confidence, unit_price), None


def _catalog_prices(catalog: Iterable[CatalogEntry]) -> dict[str, Decimal | None]:
    """Per label, the lowest optional reference price in the catalog (None when no entry has one)."""
    prices: dict[str, Decimal | None] = {}
    for entry in catalog:
        price = getattr(entry, "unit_price", None)
        current = prices.get(entry.label)
        if price is None:
            prices.setdefault(entry.label, None)
        else:
            prices[entry.label] = Decimal(price) if current is None else min(current, Decimal(price))
    return prices


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))

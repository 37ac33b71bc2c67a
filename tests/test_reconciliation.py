"""The receipt against the camera's counts: what is compared, what is left unchecked and why."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

from core.config import CatalogItem
from vision.reconciliation import reconcile
from vision.types import ProductCount

WHISKY, GIN, CEREAL, APPLES, GUM = "7891000100103", "7891000100104", "7891000200200", "2000000000011", "7890000000999"
CATALOG = [
    CatalogItem(sku=WHISKY, label="Bottle"),
    CatalogItem(sku=GIN, label="Bottle"),
    CatalogItem(sku=CEREAL, label="Box"),
    CatalogItem(sku=APPLES, label="Fruit"),
]


def item(sku: str, quantity: str, price: str, name: str = "item") -> tuple[str, str, Decimal, Decimal]:
    return (sku, name, Decimal(quantity), Decimal(price))


def test_exact_match():
    result = reconcile(
        [item(WHISKY, "2", "74.95")], CATALOG, [ProductCount("Bottle", 2, 0.9), ProductCount("Box", 0, None)]
    )
    assert result.to_dict() == {
        "lines": [
            {
                "label": "Bottle",
                "skus": [WHISKY],
                "billed": 2,
                "seen": 2,
                "surplus": 0,
                "surplus_value": "0.00",
                "confidence": 0.9,
            }
        ],
        "not_checked": [],
        "surplus_count": 0,
        "surplus_value": "0.00",
        "confidence": 0.9,
    }


def test_surplus_is_valued_at_the_lowest_price_of_the_label():
    result = reconcile([item(WHISKY, "1", "74.95"), item(GIN, "1", "50.00")], CATALOG, [ProductCount("Bottle", 5, 0.8)])
    [line] = result.lines
    assert (line.label, line.skus, line.billed, line.seen, line.surplus) == ("Bottle", (WHISKY, GIN), 2, 5, 3)
    assert result.surplus_count == 3 and result.surplus_value == Decimal("150.00")


def test_under_seen_is_not_a_surplus():
    """Fewer seen than billed: hidden behind a bag, most likely; never an alert by itself."""
    result = reconcile([item(WHISKY, "3", "74.95")], CATALOG, [ProductCount("Bottle", 1, 0.7)])
    assert (result.lines[0].billed, result.lines[0].seen, result.surplus_count) == (3, 1, 0)


def test_sku_not_in_the_catalog_is_not_checked():
    result = reconcile(
        [item(GUM, "4", "2.50", "Gum"), item(CEREAL, "1", "12.00")], CATALOG, [ProductCount("Box", 1, 0.9)]
    )
    assert [line.label for line in result.lines] == ["Box"]
    assert result.to_dict()["not_checked"] == [{"sku": GUM, "name": "Gum", "reason": "not in the catalog"}]


def test_weighed_goods_are_never_counted():
    result = reconcile([item(APPLES, "1.235", "9.90", "Apples")], CATALOG, [ProductCount("Fruit", 0, None)])
    assert result.lines == ()
    assert result.to_dict()["not_checked"] == [
        {"sku": APPLES, "name": "Apples", "reason": "billed by weight: never counted by the camera"}
    ]


def test_a_label_also_billed_by_weight_cannot_be_compared():
    catalog = CATALOG + [CatalogItem(sku="2000000000028", label="Fruit")]
    result = reconcile(
        [item(APPLES, "0.800", "9.90", "Apples"), item("2000000000028", "2", "3.00", "Melon")],
        catalog,
        [ProductCount("Fruit", 4, 0.9)],
    )
    assert result.lines == () and result.surplus_count == 0
    assert [(n.sku, n.label) for n in result.not_checked] == [(APPLES, None), (None, "Fruit")]
    assert "billed by weight" in result.not_checked[1].reason


def test_a_whole_quantity_written_as_a_decimal_is_counted():
    result = reconcile([item(WHISKY, "2.000", "74.95")], CATALOG, [ProductCount("Bottle", 2, 0.9)])
    assert result.lines[0].billed == 2 and result.not_checked == ()


def test_a_label_the_backend_cannot_count_is_not_checked_never_guessed():
    result = reconcile([item(WHISKY, "1", "74.95")], CATALOG, [ProductCount("Bottle", None)])
    assert result.lines == () and result.surplus_count == 0
    assert result.to_dict()["not_checked"] == [
        {"label": "Bottle", "reason": "this recognition backend cannot count this label"}
    ]


def test_a_label_the_camera_did_not_report_is_not_checked():
    result = reconcile([item(CEREAL, "1", "12.00")], CATALOG, [])
    assert result.to_dict()["not_checked"] == [{"label": "Box", "reason": "the camera did not report this label"}]


def test_several_skus_share_one_label():
    result = reconcile(
        [item(WHISKY, "1", "74.95"), item(GIN, "2", "50.00"), item(WHISKY, "1", "74.95")],
        CATALOG,
        [ProductCount("Bottle", 4, 0.95)],
    )
    [line] = result.lines
    assert (line.skus, line.billed, line.seen, line.surplus) == ((WHISKY, GIN), 4, 4, 0)


def test_seen_but_not_billed_uses_the_catalog_price_or_says_it_is_unknown():
    @dataclass(frozen=True)
    class PricedItem:
        sku: str
        label: str
        unit_price: Decimal | None = None

    counts = [ProductCount("Bottle", 2, 0.9), ProductCount("Box", 1, 0.6)]
    priced = [
        PricedItem(WHISKY, "Bottle", Decimal("80.00")),
        PricedItem(GIN, "Bottle", Decimal("45.00")),
        PricedItem(CEREAL, "Box"),
    ]
    result = reconcile([], priced, counts)
    assert [(line.label, line.billed, line.seen) for line in result.lines] == [("Bottle", 0, 2), ("Box", 0, 1)]
    assert result.surplus_count == 3 and result.surplus_value == Decimal("90.00")  # Box has no price: adds nothing
    assert result.to_dict()["lines"][1]["surplus_value"] is None
    assert result.confidence == 0.6


def test_labels_nobody_involves_are_left_out():
    counts = [ProductCount("Bottle", 0, None), ProductCount("Box", None), ProductCount("Umbrella", 3, 0.9)]
    result = reconcile([], CATALOG, counts)
    assert result.lines == () and result.not_checked == () and result.confidence is None


def test_to_dict_is_json_and_matches_the_read_api_shape():
    result = reconcile([item(WHISKY, "1", "74.95"), item(GUM, "1", "2.50")], CATALOG, [ProductCount("Bottle", 3, 0.91)])
    data = json.loads(json.dumps(result.to_dict()))
    assert set(data) >= {"lines", "not_checked"}
    assert {"label", "billed", "seen"} <= set(data["lines"][0])
    assert data["lines"][0]["surplus_value"] == "149.90" and data["surplus_value"] == "149.90"
    assert data["not_checked"][0]["reason"] == "not in the catalog"

"""core/card_numbers.py: a PAN (network prefix, 14–19 digits, Luhn) is found wherever it hides; ids are not PANs."""

from __future__ import annotations

import json

import pytest

from core.card_numbers import card_number_paths, looks_like_card_number, luhn_ok


def with_check_digit(prefix: str, length: int) -> str:
    """A Luhn-valid number of ``length`` digits starting with ``prefix`` (zeros in between)."""
    body = prefix.ljust(length - 1, "0")
    return next(body + d for d in "0123456789" if luhn_ok(body + d))


def grouped(digits: str, separator: str = " ") -> str:
    return separator.join(digits[i : i + 4] for i in range(0, len(digits), 4))


# Published test numbers of each network prefix family in docs/interfaces.md.
KNOWN_TEST_PANS = {
    "4 (Visa)": "4111111111111111",
    "4 (Visa, 19 digits)": "4111111111111111110",
    "51 (Mastercard)": "5105105105105100",
    "55 (Mastercard)": "5555555555554444",
    "2221-2720 (Mastercard 2-series)": "2223003122003222",
    "34 (Amex)": "343434343434343",
    "37 (Amex)": "378282246310005",
    "36 (Diners, 14 digits)": "36227206271667",
    "38 (Diners)": "38520000023237",
    "30 (Diners)": "30569309025904",
    "6011 (Discover)": "6011111111111117",
    "65 (Discover)": "6555900000604105",
    "644-649 (Discover)": "6445644564456445",
    "35 (JCB)": "3530111333300000",
}


@pytest.mark.parametrize("pan", KNOWN_TEST_PANS.values(), ids=KNOWN_TEST_PANS.keys())
def test_known_test_pans_are_found_in_every_spelling(pan):
    assert luhn_ok(pan)
    assert looks_like_card_number(pan)
    assert looks_like_card_number(grouped(pan, " "))
    assert looks_like_card_number(grouped(pan, "-"))
    assert looks_like_card_number(f"Paid with card {grouped(pan)}, thanks!")


@pytest.mark.parametrize("prefix", ["51", "55", "2221", "2720", "644", "649", "6011", "65", "35", "30"])
def test_range_boundaries_are_card_prefixes(prefix):
    assert looks_like_card_number(with_check_digit(prefix, 16))


@pytest.mark.parametrize("prefix", ["50", "56", "2220", "2721", "640", "643", "66", "6010", "39", "31", "1", "9", "0"])
def test_luhn_valid_numbers_without_a_network_prefix_are_not_card_numbers(prefix):
    number = with_check_digit(prefix, 16)
    assert luhn_ok(number)
    assert not looks_like_card_number(number)


@pytest.mark.parametrize("length", [14, 15, 16, 17, 18, 19])
def test_every_card_length_is_found(length):
    assert looks_like_card_number(with_check_digit("4", length))


@pytest.mark.parametrize("length", [13, 20])
def test_13_or_20_digit_runs_are_not_card_numbers(length):
    number = with_check_digit("4", length)
    assert luhn_ok(number)
    assert not looks_like_card_number(number)


def test_a_20_digit_run_starting_with_a_valid_pan_is_not_a_card_number():
    # A long barcode is one run: a PAN-shaped prefix inside it does not make it a card.
    number = "4111111111111111" + with_check_digit("4111111111111111", 20)[16:]
    assert len(number) == 20 and luhn_ok(number)
    assert not looks_like_card_number(number)


def test_luhn_failing_number_is_not_a_card_number():
    assert not luhn_ok("4111111111111112")
    assert not looks_like_card_number("4111 1111 1111 1112")


def test_pan_hidden_after_or_before_other_digit_groups_is_found():
    assert looks_like_card_number("12 4111 1111 1111 1111")
    assert looks_like_card_number("qty 3-4111-1111-1111-1111")
    assert looks_like_card_number("4111 1111 1111 1111 7 units")


@pytest.mark.parametrize(
    "text",
    [
        "4111    1111 1111 1111",
        "4111_1111_1111_1111",
        "4111x1111x1111x1111",
        "4111, 1111, 1111, 1111",
    ],
)
def test_long_gaps_or_other_characters_break_the_run(text):
    assert not looks_like_card_number(text)


@pytest.mark.parametrize(
    "text",
    [
        "order 2026-11-24 17:03:12, total 149.90",
        "EAN 7891000100103 x 2",
        "phone +55 11 91234-5678",
        "",
    ],
)
def test_ordinary_text_with_numbers_is_not_a_card_number(text):
    assert not looks_like_card_number(text)


def test_sku_and_the_contract_id_fields_are_exempt_but_names_fingerprints_and_other_ids_are_not():
    document = {
        "transaction_id": "4111111111111111",
        "cashier_id": "4111111111111111",
        "payment": {"card_fingerprint": "4111111111111111", "approval_id": "5555555555554444"},
        "items": [
            {"sku": "4111111111111111", "name": "Whisky"},
            {"sku": "7891000100103", "name": "gift for 5555 5555 5555 4444"},
        ],
        "note": "no card here",
    }
    # Only the contract's named id fields are ids: a key that merely ends in _id is searched.
    assert card_number_paths(document) == ["payment.card_fingerprint", "payment.approval_id", "items.1.name"]


def test_sku_outside_items_is_not_exempt():
    assert card_number_paths({"extra": {"sku": "4111111111111111"}}) == ["extra.sku"]


def test_pan_sent_as_a_json_integer_is_found():
    document = json.loads('{"payment": {"reference": 4111111111111111, "risk_score": 72}, "flag": true}')
    assert card_number_paths(document) == ["payment.reference"]


def test_pan_as_a_key_or_inside_nested_lists_is_found():
    assert card_number_paths({"4111111111111111": "x"}) == ["4111111111111111"]
    assert card_number_paths({"notes": [["ok", "card 4111-1111-1111-1111"]]}) == ["notes.0.1"]
    assert card_number_paths(["4111111111111111"]) == ["0"]


def test_clean_document_has_no_paths():
    assert card_number_paths({"total": {"amount": "149.90"}, "items": [], "ok": True, "n": None, "x": 1.5}) == []

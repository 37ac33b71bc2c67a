"""Processor amounts (integers in the currency's minor unit) as our decimal-string money."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from feeds.types import MappingError

# Stripe's own table (docs.stripe.com/currencies): its zero-decimal list, its three-decimal list,
# two decimals for every other currency, including ISK, HUF and TWD, which Stripe keeps two-decimal
# although ISO 4217 gives ISK none.
STRIPE_EXPONENTS: Mapping[str, int] = {
    **dict.fromkeys(
        (
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "JPY",
            "KMF",
            "KRW",
            "MGA",
            "PYG",
            "RWF",
            "UGX",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "JOD", "KWD", "OMR", "TND"), 3),
}
# ISO 4217 minor units, which Square's Money follows ("the smallest denomination of the currency").
ISO_EXPONENTS: Mapping[str, int] = {
    **dict.fromkeys(
        (
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    "CLF": 4,
    "UYW": 4,
}


def decimal_money(amount: object, currency: object, exponents: Mapping[str, int], *, field: str) -> tuple[str, str]:
    """``(amount, CURRENCY)`` as the POS sends them: 14990 JPY → "14990", 1490 USD → "14.90", 1500 KWD → "1.500"."""
    # bool is an int in Python; a processor never sends one as an amount.
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
        raise MappingError(field, "must be a non-negative integer amount in the currency's minor unit")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isascii() or not currency.isalpha():
        raise MappingError(f"{field} currency", "must be a three-letter ISO 4217 code")
    code = currency.upper()
    exponent = exponents.get(code, 2)
    value = Decimal(amount).scaleb(-exponent)
    return f"{value:.{exponent}f}", code

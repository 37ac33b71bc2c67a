"""Refuse text that carries a payment card number (PAN), so none is ever stored or logged.

A PAN is 14–19 digits with a card network prefix, passing the Luhn check, written as one run or
in groups. Digits are any script's (``٤١١١``, fullwidth ``４１１１``, NFKC folds the rest), and
what splits groups is any short run (up to ``MAX_SEPARATOR`` characters) of spaces, dashes, dots,
slashes and invisible characters (zero-width space, word joiner, soft hyphen…): a person pasting a
number, or a POS that formats one, must not slip it past us by spelling it differently.

In a POS body, the contract's named id fields (docs/interfaces.md) and ``items[].sku`` are exempt:
barcodes and ids pass Luhn about one time in ten by chance. Any other key, even one ending in
``_id``, is searched.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from typing import Any

MAX_SEPARATOR = 3  # "4111 - 1111": a short run splits groups; a longer gap separates two numbers
# Characters that draw nothing (Unicode format characters, Cf) are invisible separators wherever they are.
_DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d"
_SEPARATOR_CLASS = rf"[\s./\\{re.escape(_DASHES)}]"
_DIGIT_GROUPS = re.compile(rf"[0-9]+(?:{_SEPARATOR_CLASS}{{1,{MAX_SEPARATOR}}}[0-9]+)*")
_SEPARATORS = re.compile(rf"{_SEPARATOR_CLASS}+")
_PREFIXES = (
    ("4", "34", "37", "36", "38", "30", "6011", "65", "35")
    + tuple(str(p) for p in range(51, 56))
    + tuple(str(p) for p in range(644, 650))
)
# The POS contract's id fields, at the top of a transaction or fraud report body (core/pos_schema.py).
POS_ID_FIELDS = frozenset(
    {"transaction_id", "store_id", "register_id", "cashier_id", "original_transaction_id", "approver_id"}
)
_EXEMPT_PATH = re.compile(r"^items\.\d+\.sku$")


def luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _has_network_prefix(digits: str) -> bool:
    return digits.startswith(_PREFIXES) or 2221 <= int(digits[:4]) <= 2720


def normalised(text: str) -> str:
    """``text`` with every digit as an ASCII digit and every invisible character as a space, one character for
    one (so a position in it is the same position in ``text``)."""
    return text if text.isascii() else "".join(_plain_char(char) for char in text)


def _plain_char(char: str) -> str:
    if char.isascii():
        return char
    folded = unicodedata.normalize("NFKC", char)  # fullwidth and other compatibility forms
    if len(folded) == 1 and folded.isascii():
        return folded
    digit = unicodedata.digit(char, None)
    if digit is not None:
        return str(digit)
    return " " if unicodedata.category(char) == "Cf" else char


def card_number_spans(text: str) -> list[tuple[int, int]]:
    """Where in ``text`` runs of digit groups hold a plausible PAN: (start, end) of each whole run."""
    return [run.span() for run in _DIGIT_GROUPS.finditer(normalised(text)) if _holds_pan(run.group())]


def looks_like_card_number(text: str) -> bool:
    """True if any run of digit groups in ``text`` (or a contiguous part of one) is a plausible PAN."""
    return bool(card_number_spans(text))


def _holds_pan(run: str) -> bool:
    groups = _SEPARATORS.split(run)
    for start in range(len(groups)):
        digits = ""
        for group in groups[start:]:
            digits += group
            if len(digits) > 19:
                break
            if len(digits) >= 14 and _has_network_prefix(digits) and luhn_ok(digits):
                return True
    return False


def card_number_fields(fields: Mapping[str, object]) -> list[str]:
    """The names of the free-text fields (a reason, a note) whose value looks like a card number."""
    return [name for name, value in fields.items() if value is not None and looks_like_card_number(str(value))]


def card_number_paths(document: Any, *, exempt_ids: frozenset[str] = POS_ID_FIELDS) -> list[str]:
    """Dotted paths of every value (or key) in a parsed JSON document that looks like a card number.

    ``exempt_ids`` are the top-level keys whose (plain) values are ids, not text."""
    return [path for path, text in _strings(document, "", exempt_ids) if looks_like_card_number(text)]


def _is_exempt(path: str, exempt_ids: frozenset[str]) -> bool:
    return path in exempt_ids or bool(_EXEMPT_PATH.match(path))


def _strings(node: Any, path: str, exempt_ids: frozenset[str]) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            child = f"{path}.{key}" if path else str(key)
            yield child, str(key)
            # Only an id itself is exempt: an object or list under an id key is still searched.
            if isinstance(value, (dict, list)) or not _is_exempt(child, exempt_ids):
                yield from _strings(value, child, exempt_ids)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, f"{path}.{index}" if path else str(index), exempt_ids)
    elif isinstance(node, str):
        yield path, node
    elif isinstance(node, int) and not isinstance(node, bool):
        # A PAN sent as a JSON number is still a PAN.
        yield path, str(node)
    elif isinstance(node, float) and node.is_integer() and abs(node) < 1e20:
        # ... and so is one sent as 4111111111111111.0 (exact up to 2**53, which covers 16-digit PANs).
        yield path, str(int(node))

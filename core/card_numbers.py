"""Refuse bodies that carry a payment card number (PAN), so none is ever stored or logged.

A PAN is 14–19 digits, optionally in groups split by single spaces or dashes, with a card
network prefix, passing the Luhn check. ``items[].sku`` and id fields are exempt: barcodes and
ids pass Luhn about one time in ten by chance (docs/interfaces.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

_DIGIT_GROUPS = re.compile(r"\d+(?:[ -]\d+)*")
_SEPARATOR = re.compile(r"[ -]")
_PREFIXES = (
    ("4", "34", "37", "36", "38", "30", "6011", "65", "35")
    + tuple(str(p) for p in range(51, 56))
    + tuple(str(p) for p in range(644, 650))
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


def looks_like_card_number(text: str) -> bool:
    """True if any run of digit groups in ``text`` (or a contiguous part of one) is a plausible PAN."""
    for run in _DIGIT_GROUPS.finditer(text):
        groups = _SEPARATOR.split(run.group())
        for start in range(len(groups)):
            digits = ""
            for group in groups[start:]:
                digits += group
                if len(digits) > 19:
                    break
                if len(digits) >= 14 and _has_network_prefix(digits) and luhn_ok(digits):
                    return True
    return False


def card_number_paths(document: Any) -> list[str]:
    """Dotted paths of every value (or key) in a parsed JSON document that looks like a card number."""
    return [path for path, text in _strings(document, "") if looks_like_card_number(text)]


def _is_exempt(path: str, key: str) -> bool:
    return key.endswith("_id") or bool(_EXEMPT_PATH.match(path))


def _strings(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            child = f"{path}.{key}" if path else str(key)
            yield child, str(key)
            # Only an id itself is exempt: an object or list under an id key is still searched.
            if isinstance(value, (dict, list)) or not _is_exempt(child, str(key)):
                yield from _strings(value, child)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, f"{path}.{index}" if path else str(index))
    elif isinstance(node, str):
        yield path, node
    elif isinstance(node, int) and not isinstance(node, bool):
        # A PAN sent as a JSON number is still a PAN.
        yield path, str(node)
    elif isinstance(node, float) and node.is_integer() and abs(node) < 1e20:
        # ... and so is one sent as 4111111111111111.0 (exact up to 2**53, which covers 16-digit PANs).
        yield path, str(int(node))

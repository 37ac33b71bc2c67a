"""Small builders of Adaptive Card 1.3 elements and the plain-words formats the cards share.

Every card goes through ``card()`` so version, $schema and the five-action limit are set in one
place. Times and dates are spelled here without the C library's locale, so a card reads the
same on every host.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

VERSION = "1.3"  # the highest Webex renders (docs/services.md)
SCHEMA_URL = "http://adaptivecards.io/schemas/adaptive-card.json"
MAX_ACTIONS = 5  # Webex shows at most five top-level actions
CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

Element = dict[str, Any]


def card(body: Sequence[Element], actions: Sequence[Element] = (), *, fallback_text: str | None = None) -> Element:
    """A top-level AdaptiveCard 1.3; refuses more actions than Webex shows."""
    if len(actions) > MAX_ACTIONS:
        raise ValueError(f"{len(actions)} actions: Webex shows at most {MAX_ACTIONS}")
    built: Element = {"type": "AdaptiveCard", "$schema": SCHEMA_URL, "version": VERSION, "body": list(body)}
    if actions:
        built["actions"] = list(actions)
    if fallback_text:
        built["fallbackText"] = fallback_text
    return built


def sub_card(body: Sequence[Element], actions: Sequence[Element] = ()) -> Element:
    """A card nested in an Action.ShowCard (no version: it takes its parent's)."""
    built: Element = {"type": "AdaptiveCard", "body": list(body)}
    if actions:
        built["actions"] = list(actions)
    return built


def attachment(content: Element) -> Element:
    """The Webex message attachment that carries a card."""
    return {"contentType": CONTENT_TYPE, "content": content}


def text(
    value: str,
    *,
    size: str | None = None,
    weight: str | None = None,
    color: str | None = None,
    subtle: bool = False,
    spacing: str | None = None,
    separator: bool = False,
    monospace: bool = False,
) -> Element:
    """A wrapping TextBlock (wrap matters on a phone: unwrapped text is cut off)."""
    block: Element = {"type": "TextBlock", "text": value, "wrap": True}
    optional = {"size": size, "weight": weight, "color": color, "spacing": spacing}
    block.update({key: val for key, val in optional.items() if val is not None})
    if subtle:
        block["isSubtle"] = True
    if separator:
        block["separator"] = True
    if monospace:
        block["fontType"] = "monospace"
    return block


def heading(value: str, *, separator: bool = False) -> Element:
    """A section title."""
    return text(value, weight="bolder", spacing="medium", separator=separator)


def fact_set(pairs: Iterable[tuple[str, str | None]]) -> Element:
    """A FactSet of the pairs whose value is known."""
    return {"type": "FactSet", "facts": [{"title": title, "value": value} for title, value in pairs if value]}


def column(items: Sequence[Element], width: str | int = "stretch") -> Element:
    return {"type": "Column", "width": width, "items": list(items)}


def column_set(columns: Sequence[Element], *, spacing: str | None = None, separator: bool = False) -> Element:
    built: Element = {"type": "ColumnSet", "columns": list(columns)}
    if spacing:
        built["spacing"] = spacing
    if separator:
        built["separator"] = True
    return built


def container(items: Sequence[Element], *, separator: bool = False, spacing: str | None = None) -> Element:
    built: Element = {"type": "Container", "items": list(items)}
    if separator:
        built["separator"] = True
    if spacing:
        built["spacing"] = spacing
    return built


def image(url: str, alt_text: str, *, size: str = "auto") -> Element:
    return {"type": "Image", "url": url, "altText": alt_text, "size": size}


def local_time(moment: datetime, zone: str, *, seconds: bool = False) -> str:
    """'Sat 14 Jun 2025, 22:41 -03': the store's wall clock, with the zone's abbreviation."""
    local = _local(moment, zone)
    clock = f"{local:%H:%M:%S}" if seconds else f"{local:%H:%M}"
    return f"{_DAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {local.year}, {clock} {local.tzname()}"


def local_clock(moment: datetime, zone: str) -> str:
    """'22:41': the store's wall clock alone, for a moment on a day the card already names."""
    return f"{_local(moment, zone):%H:%M}"


def local_date(moment: datetime, zone: str) -> str:
    """'14 Jun 2025' in the given zone."""
    local = _local(moment, zone)
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year}"


def day(value: date) -> str:
    """'Mon 16 Nov 2026': a calendar day (a store-local one; dates carry no zone)."""
    return f"{_DAYS[value.weekday()]} {value.day} {_MONTHS[value.month - 1]} {value.year}"


def duration(seconds: float) -> str:
    """'45 s', '12 min', '3 h 5 min', '2 d 4 h': an age people read at a glance."""
    whole = max(int(seconds), 0)
    if whole < 60:
        return f"{whole} s"
    minutes = whole // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def money(amount: str | None, currency: str | None) -> str | None:
    """'149.90 BRL'; None when there is no amount (the entrance)."""
    if amount is None:
        return None
    return f"{amount} {currency}" if currency else amount


def percent(ratio: float) -> str:
    return f"{ratio * 100:.0f}%"


def _local(moment: datetime, zone: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to a card; views carry aware times")
    return moment.astimezone(ZoneInfo(zone))

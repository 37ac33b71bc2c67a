"""The events handlers receive: frozen dataclasses, built at the edges (HTTP, Webex, runner)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.pos_schema import FraudReportBody, PosTransaction


@dataclass(frozen=True)
class TransactionReceived:
    transaction: PosTransaction
    raw_body: str
    body_sha256: str
    unplaced_reason: str | None = None  # a feed's own words for a reader or location it could not place
    # A feed's order of the payment's states (Square's updated_at, version): later changes compare to them.
    payment_status_at: datetime | None = None
    payment_version: int | None = None


@dataclass(frozen=True)
class FraudReported:
    report: FraudReportBody
    body_sha256: str | None
    reported_by: str | None = None


@dataclass(frozen=True)
class ChatCommand:
    """A message to the bot, mention stripped: ``word`` is the first word lower-cased, ``args`` the rest."""

    event_id: str
    message_id: str
    room_id: str
    room_type: str  # "direct" or "group"
    person_id: str
    person_email: str
    text: str
    word: str
    args: tuple[str, ...]
    thread_id: str  # the thread root to answer in (the message itself when it is not in a thread)


@dataclass(frozen=True)
class CardAction:
    """A card button press: the Submit ``data`` merged with the card's input values."""

    event_id: str
    action: str
    data: dict
    person_id: str
    person_email: str
    room_id: str
    message_id: str  # the card's message: replies thread under it


def parse_command(text: str, *, bot_names: tuple[str, ...] = ()) -> tuple[str, tuple[str, ...]]:
    """First word lower-cased and the rest, after stripping a leading @mention of the bot.

    In group spaces Webex puts the bot's display name first (``Loss Bot alerts open``); its
    words are removed only at the start, so a command can never be matched by substring."""
    stripped = text.strip()
    for name in sorted(bot_names, key=len, reverse=True):
        if name and stripped.lower().startswith(name.lower()):
            stripped = stripped[len(name) :].lstrip(" ,:")
            break
    words = stripped.split()
    return (words[0].lower(), tuple(words[1:])) if words else ("", ())


@dataclass(frozen=True)
class ConsoleRequest:
    """A signed-in console person asking to see something by id (an alert, its photo or footage, a face crop)."""

    person_email: str
    subject_id: str


@dataclass(frozen=True)
class ConsolePress:
    """A button pressed in the console: the browser's own event id, the button's Submit data and its title."""

    event_id: str
    data: dict[str, Any]
    title: str
    person_email: str


@dataclass(frozen=True)
class ConsoleCommand:
    """A chat command as a console page runs it (``stats 7d``)."""

    word: str
    args: tuple[str, ...]
    person_email: str

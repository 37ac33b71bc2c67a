"""Watchlist cards: one entry with its track record and a Remove button, and the list `watchlist` answers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cards import elements as el
from cards.actions import BUTTON_TITLES, WATCHLIST_APPROVE, WATCHLIST_REMOVE, submit
from cards.text import for_card
from cards.views import WatchlistEntryView

STATUS_WORDS = {
    "pending_approval": "waiting for approval",
    "active": "active",
    "expired": "expired",
    "removed": "removed",
}
LIST_LIMIT = 25  # a card is a message: keep it short enough to read and under Webex's size limit


def watchlist_entry_card(entry: WatchlistEntryView, *, now: datetime | None = None) -> dict[str, Any]:
    """One entry: why, by whom, until when, how its matches have gone; Remove (and Approve when pending)."""
    body = [
        el.text(f"Watchlist {entry.id}", size="medium", weight="bolder"),
        el.text(
            STATUS_WORDS.get(entry.status, entry.status).capitalize(),
            spacing="none",
            color="good" if entry.status == "active" else "warning",
        ),
        el.text(f"Enrolled for: {for_card(entry.reason)}"),
        el.fact_set(_facts(entry, now)),
    ]
    if entry.flagged_for_review:
        body.append(
            el.text("Flagged for review: its matches have often been wrong. Consider removing it.", color="warning")
        )
    actions = []
    if entry.status == "pending_approval":
        actions.append(
            submit(BUTTON_TITLES[WATCHLIST_APPROVE], WATCHLIST_APPROVE, person_id=entry.id, style="positive")
        )
    if entry.status != "removed":
        actions.append(
            submit(BUTTON_TITLES[WATCHLIST_REMOVE], WATCHLIST_REMOVE, person_id=entry.id, style="destructive")
        )
    return el.card(body, actions, fallback_text=f"Watchlist entry {entry.id} ({entry.status})")


def _facts(entry: WatchlistEntryView, now: datetime | None) -> list[tuple[str, str | None]]:
    expires = el.local_date(entry.expires_at, entry.timezone)
    if now is not None and entry.expires_at > now:
        expires += f" (in {el.duration((entry.expires_at - now).total_seconds())})"
    return [
        ("Store", entry.store_id),
        ("Enrolled", f"{el.local_date(entry.enrolled_at, entry.timezone)} by {entry.enrolled_by}"),
        ("Approved by", entry.approved_by),
        ("Expires", expires),
        ("Faces", str(entry.faces_count)),
        ("Wrong matches", str(entry.wrong_match_count)),
        ("Alerts confirmed", el.percent(entry.precision) if entry.precision is not None else "none decided yet"),
    ]


def watchlist_list_card(
    entries: Sequence[WatchlistEntryView],
    *,
    total: int | None = None,
    more: int | None = None,
    next_page: str | None = None,
    limit: int = LIST_LIMIT,
) -> dict[str, Any]:
    """The entries as short rows (id, status, reason, expiry); details and removal by command.

    ``entries`` may be one page of ``total``, with ``more`` after it and ``next_page`` what to type for them.
    """
    body = [el.text("Watchlist", size="medium", weight="bolder")]
    total = len(entries) if total is None else total
    if not entries:
        body.append(el.text("Nobody is on the watchlist."))
        return el.card(body, fallback_text="The watchlist is empty.")
    body.append(el.text(f"{total} entr{'y' if total == 1 else 'ies'}", subtle=True, spacing="none"))
    body += [_row(entry) for entry in entries[:limit]]
    beyond = max(len(entries) - limit, 0) + (more or 0)
    if beyond:
        hint = f": type {next_page}" if next_page and len(entries) <= limit else ""
        body.append(el.text(f"And {beyond} more{hint}.", subtle=True))
    body.append(el.text(f"To remove an entry, say: watchlist remove {entries[0].id}", subtle=True, separator=True))
    return el.card(body, fallback_text=f"Watchlist: {total} entries")


def _row(entry: WatchlistEntryView) -> dict[str, Any]:
    status = STATUS_WORDS.get(entry.status, entry.status)
    flag = " · flagged for review" if entry.flagged_for_review else ""
    return el.container(
        [
            el.text(f"{entry.id} · {status}{flag}", weight="bolder", color="warning" if flag else None),
            el.text(for_card(entry.reason), spacing="none"),
            el.text(
                f"{entry.store_id} · expires {el.local_date(entry.expires_at, entry.timezone)}",
                subtle=True,
                spacing="none",
            ),
        ],
        separator=True,
    )

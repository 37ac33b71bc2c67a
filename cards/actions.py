"""The card actions: the one builder of Action.Submit, so the {"action", "<id>"} data shape lives here only.

Handlers route a press on ``data["action"]`` (one of the names below) and find what it is about in
``alert_id``, ``transaction_id`` or ``person_id``; input values (reason, note, face, expiry_days)
arrive merged into the same dict by Webex.
"""

from __future__ import annotations

from typing import Any

CONFIRM = "confirm"  # alert_id: the alert is fraud; files a manual fraud report and proposes enrollment
DISMISS = "dismiss"  # alert_id + inputs reason, note
ENROLL_PROPOSAL = "enroll_proposal"  # transaction_id (+ alert_id): post the enrollment proposal card
ENROLL = "enroll"  # transaction_id (+ alert_id, face_ids) + inputs face, reason, expiry_days
WATCHLIST_REMOVE = "watchlist_remove"  # person_id
WATCHLIST_APPROVE = "watchlist_approve"  # person_id: the second person under enrollment.two_person_rule

# The words on each action's button, as our cards show them (what the console's threads say was pressed).
BUTTON_TITLES: dict[str, str] = {
    CONFIRM: "Confirm",
    DISMISS: "Dismiss alert",
    ENROLL_PROPOSAL: "Enroll a face",
    ENROLL: "Enroll",
    WATCHLIST_REMOVE: "Remove",
    WATCHLIST_APPROVE: "Approve",
}
ACTIONS: frozenset[str] = frozenset({CONFIRM, DISMISS, ENROLL_PROPOSAL, ENROLL, WATCHLIST_REMOVE, WATCHLIST_APPROVE})
ID_KEYS: tuple[str, ...] = ("alert_id", "transaction_id", "person_id")
STYLES = frozenset({"default", "positive", "destructive"})

# Input ids the cards use; the handlers read the same names from the submitted data.
INPUT_REASON = "reason"
INPUT_NOTE = "note"
INPUT_FACE = "face"
INPUT_EXPIRY_DAYS = "expiry_days"

# docs/interfaces.md's dismiss reasons, in the order shown, with the words people read.
DISMISS_REASONS: tuple[tuple[str, str], ...] = (
    ("not_same_person", "Not the same person"),
    ("billed_correctly", "Billed correctly"),
    ("no_loss", "No loss"),
    ("other", "Other (explain in the note)"),
)


def button_title(action: str) -> str:
    """The title our cards give the button of ``action``; one we do not know is not named in the client's words."""
    return BUTTON_TITLES.get(action, "Unknown button")


def submit(title: str, action: str, *, style: str | None = None, **data: Any) -> dict[str, Any]:
    """An Action.Submit whose data is {"action": action, **data}; None values are left out.

    Refuses an unknown action or data without any of alert_id, transaction_id, person_id, so a
    button can never arrive that the handlers cannot place. ``style`` is not a data key."""
    if action not in ACTIONS:
        raise ValueError(f"unknown card action {action!r}")
    if "action" in data:
        raise ValueError("'action' is set by the action argument, not in the data")
    fixed = {key: value for key, value in data.items() if value is not None}
    if not any(fixed.get(key) for key in ID_KEYS):
        raise ValueError(f"a {action!r} button needs one of {', '.join(ID_KEYS)}")
    button: dict[str, Any] = {"type": "Action.Submit", "title": title, "data": {"action": action, **fixed}}
    return _styled(button, style)


def open_url(title: str, url: str) -> dict[str, Any]:
    """An Action.OpenUrl (e.g. the Meraki footage link)."""
    if not url:
        raise ValueError("an Open URL button needs a URL")
    return {"type": "Action.OpenUrl", "title": title, "url": url}


def show_card(title: str, card: dict[str, Any], *, style: str | None = None) -> dict[str, Any]:
    """An Action.ShowCard revealing ``card`` (a nested AdaptiveCard, e.g. the dismiss form)."""
    return _styled({"type": "Action.ShowCard", "title": title, "card": card}, style)


def _styled(action: dict[str, Any], style: str | None) -> dict[str, Any]:
    if style is None:
        return action
    if style not in STYLES:
        raise ValueError(f"unknown action style {style!r}")
    return {**action, "style": style}

"""The interface to Webex that handlers and steps use: send a message, read what people did.

Implemented over the Webex REST API (WEBEX_BASE_URL) by bot/webex_client.py, and by fakes in
tests. Handlers never send directly: replies go through the outbox (storage) and the delivery
step sends them, so a Webex outage delays messages and loses none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

# Webex refuses a message whose text or markdown is longer than this, in UTF-8 bytes, with a 400
# (docs/services.md). Listings page under it (handlers/chat/listing.py); the client refuses before sending.
MAX_TEXT_BYTES = 7439


class WebexError(Exception):
    """A Webex call failed. ``retry`` says whether trying later can help; ``retry_after_s`` comes from a 429."""

    def __init__(self, reason: str, *, retry: bool, retry_after_s: float | None = None, status: int | None = None):
        super().__init__(reason)
        self.reason, self.retry, self.retry_after_s, self.status = reason, retry, retry_after_s, status


@dataclass(frozen=True)
class Attachment:
    name: str  # file name shown in Webex, e.g. "A-1042.jpg"
    content: bytes
    content_type: str


@dataclass(frozen=True)
class OutgoingMessage:
    """One Webex message: markdown and at most one card or one file (Webex allows one of each, and
    a local file with a card in one call is unreliable, so we never combine them)."""

    room_id: str | None = None
    to_person_email: str | None = None  # 1:1 answers
    markdown: str = ""
    card: dict[str, Any] | None = None
    attachment: Attachment | None = None
    parent_id: str | None = None  # thread root (Webex threads are one level deep)

    def __post_init__(self) -> None:
        if (self.room_id is None) == (self.to_person_email is None):
            raise ValueError("a message goes to exactly one of room_id or to_person_email")
        if self.card is not None and self.attachment is not None:
            raise ValueError("a message carries a card or a file, not both")


def text_too_long(message: OutgoingMessage) -> WebexError | None:
    """The error Webex would answer for markdown over its limit (a 400: sending again cannot help); else None."""
    size = len(message.markdown.encode("utf-8"))
    if size <= MAX_TEXT_BYTES:
        return None
    return WebexError(
        f"send a message: markdown is {size} bytes, more than Webex's {MAX_TEXT_BYTES}", retry=False, status=400
    )


class Messenger(Protocol):
    def send(self, message: OutgoingMessage) -> str:
        """Post the message; returns the Webex message id. Raises WebexError."""

    def message(self, message_id: str) -> dict[str, Any]:
        """GET /messages/{id}: id, roomId, roomType, personId, personEmail, text, parentId."""

    def attachment_action(self, action_id: str) -> dict[str, Any]:
        """GET /attachment/actions/{id}: id, personId, roomId, messageId, inputs (Submit data + input values)."""

    def person_email(self, person_id: str) -> str | None:
        """GET /people/{id}: the person's primary email, lower-cased (cached by the caller)."""

    def me(self) -> dict[str, Any]:
        """GET /people/me: the bot's own id and display name (to ignore its own messages, strip mentions)."""

    def register_webhooks(self, target_url: str, secret: str) -> list[str]:
        """WEBEX_TRANSPORT=webhook: replace our webhooks (same target URL) with one per resource; the new ids."""

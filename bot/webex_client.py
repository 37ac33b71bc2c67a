"""The Webex REST client behind the ``Messenger`` protocol, over WEBEX_BASE_URL with webexpythonsdk.

Every HTTP call ends within its deadline, body included, whatever the server does (the SDK's session is
swapped for a ``DeadlineSession``), and the SDK's rate-limit sleeping is off:
a 429 becomes ``WebexError(retry=True, retry_after_s=…)`` and the outbox decides when to try
again, so no thread ever sleeps for as long as Webex asks. Errors carry plain reasons, never
the token or a URL (ids of people are in the paths).
"""

from __future__ import annotations

import email.utils
import functools
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from webexpythonsdk import WebexAPI
from webexpythonsdk.exceptions import ApiError, MalformedResponse, RateLimitError

from core.http_deadline import DeadlineExceeded, DeadlineSession
from core.messenger import Attachment, OutgoingMessage, WebexError, text_too_long

log = logging.getLogger(__name__)

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
# Shown by clients that cannot render cards, and in notifications (a card message needs text).
CARD_FALLBACK = "This message holds a card: open it in a Webex app to see it."
WEBHOOK_RESOURCES = ("messages", "attachmentActions")
DEFAULT_RETRY_AFTER_S = 15.0  # what Webex and the SDK assume when a 429 names no time
MAX_RETRY_AFTER_S = 3600.0
_RETRY_STATUSES = {408, 423, 429}  # 423: a file is still being scanned; Webex sends Retry-After
_ID = re.compile(r"[A-Za-z0-9_=-]{1,400}")
T = TypeVar("T")


class WebexClient:
    """Messenger over the Webex REST API; thread-safe (requests sessions are, for these calls)."""

    def __init__(
        self,
        access_token: str,
        *,
        base_url: str,
        deadline_s: int = 20,
        email_ttl_s: float = 3600,
        email_cache_size: int = 2048,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._token = access_token
        self._deadline_s = int(deadline_s)  # the SDK refuses a float timeout
        # urljoin drops the last path segment of a base without a trailing slash ("/v1" + "messages" -> "/messages").
        self._api = WebexAPI(
            access_token=access_token,
            base_url=str(base_url).rstrip("/") + "/",
            single_request_timeout=self._deadline_s,
            wait_on_rate_limit=False,
        )
        # The SDK's own session bounds each socket read only (a dripping server would hold a call for ever).
        rest = self._api._session
        bounded = DeadlineSession(self._deadline_s)
        sdk = rest._req_session
        bounded.headers, bounded.proxies, bounded.verify = sdk.headers, sdk.proxies, sdk.verify
        rest._req_session = bounded
        self._emails: OrderedDict[str, tuple[float, str | None]] = OrderedDict()
        self._email_ttl_s, self._email_cache_size, self._monotonic = email_ttl_s, email_cache_size, monotonic
        self._lock = threading.Lock()
        self._me: dict[str, Any] | None = None

    def send(self, message: OutgoingMessage) -> str:
        """Post one message (markdown with a card, or with one file); returns its Webex id."""
        too_long = text_too_long(message)
        if too_long is not None:  # Webex would answer 400; say why here, and spend no call on it
            log.error("message to Webex refused before sending: %s", too_long.reason)
            raise too_long
        addressed = {"roomId": message.room_id, "toPersonEmail": message.to_person_email, "parentId": message.parent_id}
        fields: dict[str, Any] = {k: v for k, v in addressed.items() if v is not None}
        attachment = message.attachment
        if attachment is not None:
            if message.markdown:
                fields["markdown"] = message.markdown
            uploaded = self._call("send a file", lambda: self._post_file(fields, attachment))
            return str(uploaded["id"])
        if message.card is not None:
            fields["markdown"] = message.markdown or CARD_FALLBACK
            fields["attachments"] = [{"contentType": CARD_CONTENT_TYPE, "content": message.card}]
        elif not message.markdown:
            raise WebexError("send a message: nothing to send (no markdown, card or file)", retry=False)
        else:
            fields["markdown"] = message.markdown
        created = self._call("send a message", lambda: self._api.messages.create(**fields))
        return str(created.id)

    def message(self, message_id: str) -> dict[str, Any]:
        _check_id(message_id, "message")
        return self._call("read a message", lambda: self._api.messages.get(message_id).to_dict())

    def attachment_action(self, action_id: str) -> dict[str, Any]:
        _check_id(action_id, "attachment action")
        return self._call("read a card action", lambda: self._api.attachment_actions.get(action_id).to_dict())

    def person_email(self, person_id: str) -> str | None:
        """The person's primary email, lower-cased; None when Webex does not know them. Cached for a bounded time."""
        _check_id(person_id, "person")
        now = self._monotonic()
        with self._lock:
            cached = self._emails.get(person_id)
            if cached is not None and cached[0] > now:
                return cached[1]
        # Not under the lock: a slow lookup must not hold up other people's cached answers.
        email_address = self._lookup_email(person_id)
        with self._lock:
            self._emails[person_id] = (now + self._email_ttl_s, email_address)
            self._emails.move_to_end(person_id)
            while len(self._emails) > self._email_cache_size:
                self._emails.popitem(last=False)
        return email_address

    def me(self) -> dict[str, Any]:
        """The bot's own person (id, displayName, emails); it never changes while the token lives."""
        if self._me is None:
            self._me = self._call("read the bot's own person", lambda: self._api.people.me().to_dict())
        return dict(self._me)

    def register_webhooks(self, target_url: str, secret: str) -> list[str]:
        """Replace our webhooks (same target URL) with one per resource; returns the new ids.

        Replacing rather than adding: each start that adds would multiply deliveries.
        """
        existing = self._call("list webhooks", lambda: [h.to_dict() for h in self._api.webhooks.list()])
        ours = [h["id"] for h in existing if h.get("targetUrl") == target_url]
        for webhook_id in ours:
            self._delete_webhook(webhook_id)
        created = []
        for resource in WEBHOOK_RESOURCES:
            create = functools.partial(
                self._api.webhooks.create,
                name=f"fraud-loss-prevention {resource}",
                targetUrl=target_url,
                resource=resource,
                event="created",
                secret=secret,
            )
            hook = self._call(f"create the {resource} webhook", create)
            created.append(str(hook.id))
        log.info("webex webhooks registered: %d replaced, %d created (%s)", len(ours), len(created), ", ".join(created))
        return created

    def _lookup_email(self, person_id: str) -> str | None:
        try:
            person = self._call("look up a person", lambda: self._api.people.get(person_id).to_dict())
        except WebexError as exc:
            if exc.status == 404:
                return None
            raise
        emails = person.get("emails") or []
        return str(emails[0]).lower() if emails else None

    def _delete_webhook(self, webhook_id: str) -> None:
        try:
            self._call("delete an old webhook", lambda: self._api.webhooks.delete(webhook_id))
        except WebexError as exc:
            if exc.status != 404:  # already gone (another process starting at the same time): fine
                raise

    def _post_file(self, fields: dict[str, str], attachment: Attachment) -> dict[str, Any]:
        """Multipart POST /messages from bytes, through the SDK's own session (same base URL, token, deadline).

        The SDK only uploads from a file path; writing evidence photos to a temporary file just
        to upload them would leave faces on disk. ``Content-type: None`` drops the session's JSON
        default so requests sets the multipart boundary itself.
        """
        files = {"files": (attachment.name, attachment.content, attachment.content_type)}
        return self._api._session.post("messages", data=fields, files=files, headers={"Content-type": None})

    def _call(self, what: str, call: Callable[[], T]) -> T:
        """Run one SDK call, turning every failure into a WebexError that says whether to retry."""
        try:
            return call()
        except RateLimitError as exc:
            raise WebexError(
                f"{what}: Webex rate limit (429)", retry=True, retry_after_s=retry_after(exc.response), status=429
            ) from None
        except ApiError as exc:
            raise self._api_error(what, exc) from None
        except DeadlineExceeded:
            raise WebexError(
                f"{what}: Webex did not finish answering within {self._deadline_s} s", retry=True
            ) from None
        except requests.Timeout:
            raise WebexError(f"{what}: no answer from Webex within {self._deadline_s} s", retry=True) from None
        except requests.ConnectionError:
            raise WebexError(f"{what}: could not connect to Webex", retry=True) from None
        except (requests.RequestException, MalformedResponse, ValueError) as exc:
            # ValueError: a 2xx whose body is not JSON (a proxy's page); str(exc) may hold a URL, so only the type.
            raise WebexError(f"{what}: unreadable answer from Webex ({type(exc).__name__})", retry=True) from None

    def _api_error(self, what: str, exc: ApiError) -> WebexError:
        status = exc.status_code
        detail = exc.message or exc.description or exc.status or "error"
        reason = f"{what}: Webex answered {status} ({detail})".replace(self._token, "[secret]")
        if status in _RETRY_STATUSES:
            return WebexError(reason, retry=True, retry_after_s=retry_after(exc.response), status=status)
        return WebexError(reason, retry=status >= 500, status=status)


def retry_after(response: requests.Response) -> float:
    """Seconds from a Retry-After header (seconds or an HTTP date), bounded; Webex's default when absent."""
    value = (response.headers.get("Retry-After") or "").strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError):
            return DEFAULT_RETRY_AFTER_S
    if seconds != seconds:  # NaN
        return DEFAULT_RETRY_AFTER_S
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _check_id(value: str, what: str) -> None:
    """Ids go into REST paths unquoted by the SDK: refuse anything but base64url (no '/', '?', '..')."""
    if not isinstance(value, str) or _ID.fullmatch(value) is None:
        raise WebexError(f"not a Webex {what} id", retry=False)

"""The Meraki MV camera client (Dashboard API v1) behind the ``Camera`` protocol.

A snapshot is two steps: ``generateSnapshot`` answers with a short-lived, unauthenticated
image URL, which returns 404 for a few seconds before the image is there. ``snapshot_waits`` yields
those waits, so the runner can park the step instead of holding a worker (core/waiting.py). That URL is a
capability: it lives in one local variable of that generator while polling and is never logged (urllib3 logs
request paths at DEBUG, so its records from the polling thread are scrubbed), stored, raised
or returned. Every Dashboard request first takes a token from the organisation's budget, and
every 429 blocks that budget (so all workers of the organisation wait), for ``Retry-After`` or,
without one, for a randomised back-off that grows with the organisation's consecutive 429s.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import requests
import urllib3.exceptions
from urllib3.util.retry import Retry

from core.http_deadline import DeadlineAdapter, DeadlineExceeded, mount_deadlines, total_deadline
from core.outbound_guard import OutboundPolicy, OutboundRefused, guarded_session
from core.waiting import Waits, wait_through
from vision.types import CameraError, Picture

log = logging.getLogger(__name__)

USER_AGENT = "FraudLossPrevention/1.0 FLP"  # Meraki asks integrations for "Application/version Vendor"
MAX_IMAGE_BYTES = 25 * 1024 * 1024
MAX_REDIRECTS = 3
# A 429 without Retry-After comes from Meraki's front proxy, not the API's own limiter; the official
# SDK then waits random.randint(1, nginx_429_retry_wait_time=60) s. Ours: the first waits 5-10 s, each
# consecutive one doubles the range, capped at 30-60 s (never near-zero, as a full 1..60 draw can be).
NO_RETRY_AFTER_FIRST_S = 10.0
NO_RETRY_AFTER_CAP_S = 60.0
_REDIRECTS = {301, 302, 303, 307, 308}
_JPEG, _PNG = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"
# Loggers that may name the image URL's path while it is being fetched.
_URL_LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.util.retry",
    "urllib3.response",
    "urllib3.poolmanager",
    "requests",
)


class _ImageFetchFilter(logging.Filter):
    """Withholds what HTTP libraries log from a thread while it fetches a camera image (the path is the secret)."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread in self.threads:
            record.msg, record.args = "camera image HTTP traffic (details withheld: the URL is a secret)", ()
        return True


_image_filter = _ImageFetchFilter()
for _name in _URL_LOGGERS:
    logging.getLogger(_name).addFilter(_image_filter)


def default_session() -> requests.Session:
    """A session that retries only connection failures (the request never reached Meraki) and no statuses.

    Its adapter lets ``total_deadline`` end a call at its deadline, whatever the server sends."""
    retry = Retry(
        total=2,
        connect=2,
        read=0,
        status=0,
        redirect=0,
        other=0,
        backoff_factor=0.5,
        raise_on_status=False,
        respect_retry_after_header=False,
    )
    return mount_deadlines(requests.Session(), DeadlineAdapter(max_retries=retry))


def picture_session(policy: OutboundPolicy) -> requests.Session:
    """The image host's session: ``policy`` checked on every connection, connection failures retried as above."""
    retry = Retry(total=2, connect=2, read=0, status=0, redirect=0, other=0, backoff_factor=0.5, raise_on_status=False)
    return guarded_session(policy, max_retries=retry)


def iso_utc(at: datetime) -> str:
    """Meraki's timestamp form: ISO 8601 in UTC with a 'Z'."""
    if at.tzinfo is None:
        raise ValueError("a naive datetime cannot name a moment of footage; use an aware one")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def picture_type(content: bytes) -> str | None:
    """The picture's type from its magic bytes (headers from a CDN are not to be trusted)."""
    if content.startswith(_JPEG):
        return "image/jpeg"
    if content.startswith(_PNG):
        return "image/png"
    return None


class MerakiCamera:
    """``Camera`` over the Meraki Dashboard API with ``requests``; every call ends within ``timeout_s``, body included."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        budget: Callable[[str], None],
        on_rate_limited: Callable[[str, float], None],
        timeout_s: float = 10.0,
        poll_initial_s: float = 2.0,
        poll_total_s: float = 30.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        jitter: Callable[[float, float], float] = random.uniform,
        picture_hosts: Sequence[str] = (),
    ):
        self._base = base_url.rstrip("/")
        # Per request, never on the session: the image host must not receive the key.
        self._auth = {"Authorization": f"Bearer {api_key}", "Accept": "application/json", "User-Agent": USER_AGENT}
        self._budget, self._on_rate_limited = budget, on_rate_limited
        self._timeout_s, self._poll_initial_s, self._poll_total_s = timeout_s, poll_initial_s, poll_total_s
        self._session = session or default_session()
        # The image URL is chosen by whoever answers generateSnapshot: https to public addresses only, but
        # for the listed hosts (a loopback stand-in). Never the Dashboard session: that one carries no check.
        self._pictures_policy = OutboundPolicy.of(picture_hosts)
        self._pictures = picture_session(self._pictures_policy)
        self._sleep, self._monotonic, self._jitter = sleep, monotonic, jitter
        # Consecutive 429s per organisation in this process (the wait itself is shared through the budget).
        self._streaks: dict[str, int] = {}
        self._streaks_lock = threading.Lock()

    def snapshot(self, serial: str, *, org_id: str, at: datetime | None) -> Picture:
        """Ask for a snapshot (live when ``at`` is None), poll its image URL, download and check it."""
        return wait_through(self.snapshot_waits(serial, org_id=org_id, at=at), self._sleep)

    def snapshot_waits(self, serial: str, *, org_id: str, at: datetime | None) -> Waits[Picture]:
        """``snapshot`` that yields its waits for the picture to become ready, so its caller may do other work.

        The image URL lives only in this generator's frame, between ``generateSnapshot`` and the last poll."""
        # fullframe is never sent: Meraki refuses it together with a timestamp.
        body = {} if at is None else {"timestamp": iso_utc(at)}
        kind = "live" if at is None else "exact"
        log.info("Meraki snapshot requested serial=%s org=%s kind=%s", serial, org_id, kind)
        response = self._dashboard(
            "POST", f"/devices/{quote(serial, safe='')}/camera/generateSnapshot", org_id=org_id, json=body
        )
        if response.status_code not in (200, 202):
            raise self._snapshot_error(response, serial=serial, org_id=org_id)
        image_url = _json(response).get("url")
        if not isinstance(image_url, str) or not image_url:
            raise CameraError("camera API answered without an image link", retry=True)
        picture = yield from self._download(image_url, serial=serial)
        log.info("Meraki snapshot ready serial=%s org=%s kind=%s bytes=%d", serial, org_id, kind, len(picture.content))
        return picture

    def video_link(self, serial: str, *, org_id: str, at: datetime) -> str | None:
        """Dashboard link to the footage (needs a login); None when Meraki refuses (4xx)."""
        response = self._dashboard(
            "GET",
            f"/devices/{quote(serial, safe='')}/camera/videoLink",
            org_id=org_id,
            params={"timestamp": iso_utc(at)},
        )
        if response.status_code == 429:
            self._rate_limited(org_id, response)
        if 400 <= response.status_code < 500:
            log.info("Meraki video link refused serial=%s org=%s status=%d", serial, org_id, response.status_code)
            return None
        if response.status_code != 200:
            raise CameraError("Meraki API unavailable", retry=True)
        data = _json(response)
        link = data.get("url") or data.get("visionUrl")
        return link if isinstance(link, str) and link else None

    def _dashboard(self, method: str, path: str, *, org_id: str, **kwargs: Any) -> requests.Response:
        """One budgeted Dashboard call; redirects are followed by hand so the key only goes to Meraki's hosts."""
        url = self._base + path
        for _ in range(MAX_REDIRECTS + 1):
            self._budget(org_id)
            failure = None
            try:
                # Not streamed: the JSON body is read inside the call's total deadline.
                with total_deadline(self._timeout_s):
                    response = self._session.request(
                        method, url, headers=self._auth, timeout=self._timeout_s, allow_redirects=False, **kwargs
                    )
            except requests.Timeout:
                failure = "Meraki API did not answer in time"
            except requests.RequestException:
                failure = "Meraki API unreachable"
            if failure:
                log.warning("Meraki request failed org=%s path=%s reason=%s", org_id, path, failure)
                raise CameraError(failure, retry=True)
            if response.status_code != 429:
                with self._streaks_lock:
                    self._streaks.pop(org_id, None)  # any other answer ends the organisation's 429 streak
            if response.status_code not in _REDIRECTS:
                return response
            url = self._redirect_target(url, response.headers.get("Location", ""))
        raise CameraError("Meraki API redirected too many times", retry=True)

    def _rate_limited(self, org_id: str, response: requests.Response) -> float:
        """Block the organisation's budget after a 429; returns the wait in seconds."""
        with self._streaks_lock:
            streak = self._streaks[org_id] = self._streaks.get(org_id, 0) + 1
        wait = _retry_after_s(response)
        if wait is None:
            ceiling = min(NO_RETRY_AFTER_CAP_S, NO_RETRY_AFTER_FIRST_S * 2 ** min(streak - 1, 8))
            # Jitter in the upper half: workers of many stores do not come back in step, and none too soon.
            wait = round(self._jitter(ceiling / 2, ceiling), 3)
            log.info("Meraki 429 without Retry-After org=%s streak=%d wait_s=%.1f", org_id, streak, wait)
        self._on_rate_limited(org_id, wait)
        return wait

    def _redirect_target(self, current: str, location: str) -> str:
        """Where a redirect may go: within the base URL's parent domain (api.meraki.com -> n123.meraki.com)."""
        target = urljoin(current, location)
        base, new = urlsplit(self._base), urlsplit(target)
        labels = (base.hostname or "").split(".")
        # Only a named host of 3+ labels has a parent domain to share (not 127.0.0.1, not "localhost").
        parent = ".".join(labels[1:]) if len(labels) >= 3 and not labels[-1].isdigit() else None
        host = new.hostname or ""
        if new.scheme != base.scheme or not (host == base.hostname or (parent and host.endswith("." + parent))):
            raise CameraError("Meraki API redirected to an unexpected host", retry=False)
        return target

    def _snapshot_error(self, response: requests.Response, *, serial: str, org_id: str) -> CameraError:
        """Plain words and the right retry flag for a refused generateSnapshot."""
        status = response.status_code
        if status == 429:
            retry_after = self._rate_limited(org_id, response)
            error = CameraError("Meraki rate limit reached", retry=True, retry_after_s=retry_after)
        elif status == 400:
            # Footage of the last ~2-3 minutes is not indexed yet; any other 400 is an offline camera.
            text = " ".join(_errors(response)).lower()
            if "no video" in text or "footage" in text:
                error = CameraError("no footage for that moment yet", retry=True)
            else:
                error = CameraError("camera offline or unreachable", retry=True)
        elif status == 404:
            error = CameraError("unknown camera serial", retry=False)
        elif status in (401, 403):
            error = CameraError("Meraki API key refused", retry=False)
        elif status >= 500:
            error = CameraError("Meraki API unavailable", retry=True)
        else:
            error = CameraError(f"Meraki API refused the snapshot (HTTP {status})", retry=False)
        log.warning(
            "Meraki snapshot refused serial=%s org=%s status=%d reason=%s", serial, org_id, status, error.reason
        )
        return error

    def _download(self, image_url: str, *, serial: str) -> Waits[Picture]:
        """Poll the image URL with doubling waits (yielded) until it gives a picture or the time is up."""
        deadline = self._monotonic() + self._poll_total_s
        wait, attempts, last = self._poll_initial_s, 0, "snapshot image was not ready in time"
        while (remaining := deadline - self._monotonic()) > 0:
            yield min(wait, remaining)
            wait *= 2
            attempts += 1
            status, content = self._fetch(image_url)
            if content is not None:
                content_type = picture_type(content)
                if content_type is None:
                    raise CameraError("camera returned something that is not a picture", retry=True)
                return Picture(content=content, content_type=content_type)
            log.debug("Meraki snapshot not ready serial=%s attempt=%d status=%s", serial, attempts, status)
            if status == TOO_SLOW:
                # A slow host (or one dripping bytes) may do better on the next poll, inside the polling window.
                last = "snapshot image download took too long"
                continue
            if status is not None and status != 404 and status < 500:
                # Expired or refused: only a new snapshot can help.
                raise CameraError("snapshot image could not be downloaded", retry=True)
            # The reason names what the last attempt saw: not there yet, or no answer at all.
            last = (
                "snapshot image could not be downloaded" if status is None else "snapshot image was not ready in time"
            )
        raise CameraError(last, retry=True)

    def _fetch(self, image_url: str) -> tuple[int | None, bytes | None]:
        """One GET of the image URL, redirects followed by hand: (status, body of a 200 or None); None on a
        network error. A link or hop the picture policy refuses raises a non-retryable CameraError."""
        thread = threading.get_ident()
        _image_filter.threads.add(thread)
        url = image_url
        try:
            # No API key here: the URL is its own credential and another host. One deadline for every hop and body.
            with total_deadline(self._timeout_s):
                for _ in range(MAX_REDIRECTS + 1):
                    self._pictures_policy.check_url(url)
                    with self._pictures.get(
                        url,
                        timeout=self._timeout_s,
                        stream=True,
                        allow_redirects=False,
                        headers={"User-Agent": USER_AGENT},
                    ) as response:
                        if response.status_code in _REDIRECTS:
                            url = urljoin(url, response.headers.get("Location", ""))
                            continue
                        if response.status_code != 200:
                            return response.status_code, None
                        return 200, _read_capped(
                            response, deadline=self._monotonic() + self._timeout_s, now=self._monotonic
                        )
                raise CameraError("snapshot image redirected too many times", retry=False)
        except OutboundRefused as refused:
            log.warning("Meraki snapshot image refused: %s", refused)
            raise CameraError("snapshot image host is not allowed", retry=False) from None
        except (DeadlineExceeded, _TooSlow):
            return TOO_SLOW, None
        except (requests.RequestException, urllib3.exceptions.HTTPError):
            # The exception names the URL: keep it here, and keep polling. The body is read from ``raw``
            # (urllib3), whose errors requests does not wrap: a body broken off or stalled is a failed poll too.
            return None, None
        finally:
            _image_filter.threads.discard(thread)


TOO_SLOW = -1  # _fetch's status for a download cut at its deadline


class _TooSlow(Exception):
    """The body did not arrive within the download's deadline."""


def _read_capped(response: requests.Response, *, deadline: float, now: Callable[[], float]) -> bytes:
    """The body, refused past MAX_IMAGE_BYTES (no camera picture is that large) or past ``deadline``.

    The socket timeout bounds each read, not the download: a host that drips a byte every few seconds would
    hold the camera lane for ever. ``read1`` returns what has arrived, so the deadline is checked between reads
    (and ``total_deadline`` around the call ends a read still blocked at the deadline)."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_IMAGE_BYTES:
        raise CameraError("snapshot image is too large", retry=False)
    chunks, size = [], 0
    while chunk := response.raw.read1(64 * 1024, decode_content=True):
        size += len(chunk)
        if size > MAX_IMAGE_BYTES:
            raise CameraError("snapshot image is too large", retry=False)
        if now() > deadline:
            raise _TooSlow
        chunks.append(chunk)
    return b"".join(chunks)


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise CameraError("camera API gave an unexpected answer", retry=True)
    return data


def _errors(response: requests.Response) -> list[str]:
    """Meraki's ``{"errors": [...]}`` messages, or the raw text when it is not that shape."""
    try:
        errors = response.json().get("errors", [])
        return [str(e) for e in errors] if isinstance(errors, list) else [str(errors)]
    except (ValueError, AttributeError):
        return [response.text[:500]]


def _retry_after_s(response: requests.Response) -> float | None:
    """Retry-After in seconds (Meraki sends an integer); None when absent or unreadable."""
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return max(seconds, 0.0) if math.isfinite(seconds) else None

"""Failed credentials per client address: after ``limit`` failures in ``window_s`` seconds an address gets 429
with ``Retry-After`` on that kind of credential until the oldest of them is ``window_s`` old.

Three kinds, counted apart: console sign-ins, the read API's bearer token, and webhook signatures (POS intake,
fraud reports, Stripe, Square, Webex). While an address is held back its attempts are refused before the
credential is looked at, so a right guess answers the same 429 as a wrong one. Every failure is logged with
its kind and address, never with what was presented. The counts live in this process (no database write per
refusal): N web processes allow N times as many guesses, still far too few to matter against 32 characters.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from flask import Flask, Response, current_app, request

from bot.http.problems import problem

log = logging.getLogger(__name__)
FAILURES_ALLOWED = 10
WINDOW_S = 60.0
MAX_ADDRESSES = 10_000  # a flood from many addresses cannot grow the table without bound
EXTENSION = "flp_credential_failures"

# Which credential a request presents, by blueprint (or endpoint, for the console's sign-in form).
_KIND_OF_BLUEPRINT = {
    "read_api": "bearer token",
    "audit_export": "bearer token",
    "intake": "webhook signature",
    "feeds": "webhook signature",
    "webex_events": "webhook signature",
}
_KIND_OF_ENDPOINT = {"console.signin": "console sign-in"}


class CredentialFailures:
    def __init__(
        self,
        limit: int = FAILURES_ALLOWED,
        window_s: float = WINDOW_S,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._limit, self._window_s, self._monotonic = limit, window_s, monotonic
        self._failures: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def wait(self, kind: str, address: str) -> int:
        """0 when ``address`` may present a credential of ``kind`` now, else the whole seconds until it may."""
        now = self._monotonic()
        with self._lock:
            times = self._failures.get((kind, address))
            if times is None or len(times) < self._limit:
                return 0
            left = self._window_s - (now - times[0])
            return max(1, math.ceil(left)) if left > 0 else 0

    def failed(self, kind: str, address: str) -> int:
        """Count a failure; how many ``address`` has had in the window, this one included."""
        now = self._monotonic()
        with self._lock:
            times = self._failures.pop((kind, address), None) or deque(maxlen=self._limit)
            while times and now - times[0] >= self._window_s:
                times.popleft()
            times.append(now)
            self._failures[(kind, address)] = times  # most recently failed last: the oldest go first
            while len(self._failures) > MAX_ADDRESSES:
                self._failures.popitem(last=False)
            return len(times)


def install(app: Flask, failures: CredentialFailures | None = None) -> None:
    """Hold back addresses over their failures before a guarded request runs; count its 401s after."""
    app.extensions[EXTENSION] = failures or CredentialFailures()

    @app.before_request
    def _held_back() -> Response | None:
        kind = _kind()
        if kind is None:
            return None
        wait = app.extensions[EXTENSION].wait(kind, _address())
        if not wait:
            return None
        response = problem(429, "Too many requests", f"too many failed attempts ({kind}); try again later")
        response.headers["Retry-After"] = str(wait)
        return response

    @app.after_request
    def _count_failure(response: Response) -> Response:
        kind = _kind()
        if kind is not None and response.status_code == 401:
            failures: CredentialFailures = current_app.extensions[EXTENSION]
            count = failures.failed(kind, _address())
            # The address and the kind, never the credential that was presented.
            log.warning("%s refused from %s (%d failed in the window)", kind, _address(), count)
            if failures.wait(kind, _address()):
                log.warning("%s: %s is held back with 429 until its failures age out", kind, _address())
        return response


def _kind() -> str | None:
    if request.endpoint in _KIND_OF_ENDPOINT and request.method == "POST":
        return _KIND_OF_ENDPOINT[request.endpoint]
    return _KIND_OF_BLUEPRINT.get(request.blueprint or "")


def _address() -> str:
    return request.remote_addr or "(unknown)"

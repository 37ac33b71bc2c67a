"""Per-store quota of the POS intake: a token bucket per store, in this process.

One store's misbehaving POS (400 ``no_sale`` posts in a minute) must not fill the queue that every
other store's captures wait in. Above the store's rate and burst the answer is 429 with
``Retry-After`` and nothing is stored; a POS retries. The buckets live in the process (no database
write per request on the hot path), so N web processes allow N times the rate: the limit is a
guard against runaway clients, not an exact contract.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_STORES = 10_000  # signed posts naming made-up stores cannot grow the table without bound


class StoreQuota:
    def __init__(self, per_s: float, burst: int, *, monotonic: Callable[[], float] = time.monotonic):
        self._per_s, self._burst, self._monotonic = per_s, float(burst), monotonic
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # store -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, store_id: str) -> int:
        """0 when the post may go on (a token is taken), else the whole seconds to wait for one."""
        now = self._monotonic()
        with self._lock:
            tokens, at = self._buckets.pop(store_id, (self._burst, now))
            tokens = min(self._burst, tokens + (now - at) * self._per_s)
            if tokens >= 1:
                self._buckets[store_id] = (tokens - 1, now)
                wait = 0
            else:
                self._buckets[store_id] = (tokens, now)
                wait = max(1, math.ceil((1 - tokens) / self._per_s))
            while len(self._buckets) > MAX_STORES:
                self._buckets.popitem(last=False)
            return wait

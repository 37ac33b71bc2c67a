"""Where a lane's steps wait (a picture becoming ready) without holding a worker.

A worker parks a step with how long it waits; one thread per room keeps the parked steps in a heap of
due times and, as each comes due, moves it to the ready queue and wakes the lane, whose workers take
ready steps before they claim new ones. The room holds only objects in memory (a step's ``Waits``
holds the camera's image URL, which must never reach the database); the steps' leases are renewed
meanwhile by the runner's heartbeat, so if the process dies, each lease runs out and the step runs
again from its start.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class WaitingRoom(Generic[T]):
    def __init__(self, name: str, *, on_ready: Callable[[], None], monotonic: Callable[[], float] = time.monotonic):
        self._name, self._on_ready, self._monotonic = name, on_ready, monotonic
        self._waiting: list[tuple[float, int, T]] = []  # (due, arrival, step): a heap
        self._ready: deque[T] = deque()
        self._arrivals = itertools.count()
        self._changed = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def park(self, step: T, wait_s: float) -> bool:
        """Keep ``step`` until ``wait_s`` from now; False when the room has closed (the caller gives it back)."""
        with self._changed:
            if self._closed:
                return False
            heapq.heappush(self._waiting, (self._monotonic() + wait_s, next(self._arrivals), step))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"{self._name}-waiting", daemon=True)
                self._thread.start()
            self._changed.notify()
        return True

    def take(self) -> T | None:
        """A step whose wait is over, oldest first, if any."""
        with self._changed:
            return self._ready.popleft() if self._ready else None

    def __len__(self) -> int:
        with self._changed:
            return len(self._waiting) + len(self._ready)

    def close(self) -> list[T]:
        """Park nothing more; returns every step still waiting or ready, for the caller to give back."""
        with self._changed:
            self._closed = True
            left = [step for _due, _n, step in sorted(self._waiting)] + list(self._ready)
            self._waiting.clear()
            self._ready.clear()
            self._changed.notify()
        if self._thread is not None:
            self._thread.join(5)
        return left

    def _run(self) -> None:
        while True:
            with self._changed:
                if self._closed:
                    return
                now, moved = self._monotonic(), 0
                while self._waiting and self._waiting[0][0] <= now:
                    self._ready.append(heapq.heappop(self._waiting)[2])
                    moved += 1
                next_due = self._waiting[0][0] if self._waiting else None
                if not moved:
                    self._changed.wait(None if next_due is None else next_due - now)
                    continue
            for _ in range(moved):
                self._on_ready()  # outside the lock: waking a worker may make it take at once

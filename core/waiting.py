"""Work that waits without holding a thread: a generator that yields how many seconds to wait before it goes on.

A camera's picture becomes ready seconds after it is asked for. Written as ``Waits``, the asking, the waiting
and the fetching stay one linear function (its locals, the image URL among them, stay in its frame, in memory),
while whoever drives it chooses how to wait: ``wait_through`` sleeps in the calling thread; the runner
(bot/runner.py) parks the step and gives its worker to other work meanwhile. A ``Waits`` must not yield inside
a database transaction: it may be resumed seconds later, on another thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import TypeVar

T = TypeVar("T")
Waits = Generator[float, None, T]  # yields seconds to wait; returns its result


def wait_through(waits: Waits[T], sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``waits`` to its end in this thread, sleeping through each wait."""
    while True:
        try:
            wait_s = next(waits)
        except StopIteration as end:
            return end.value
        sleep(wait_s)


def at_once(value: T) -> Waits[T]:
    """``value`` as work that never waits (a stand-in camera whose pictures are ready when asked for)."""
    yield from ()
    return value

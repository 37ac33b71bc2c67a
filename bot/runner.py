"""The background runner: claims due work items with a lease and runs their steps.

A step's effects and the completion of its row commit in one database transaction (the step
commits through ``StepUnitOfWork``), so a process killed at any moment either did the step or
will do it again after the lease runs out — never half, never twice.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bot.waiting_room import WaitingRoom
from core.clock import Clock
from core.injection import call_with, wanted
from core.steps import RetryLater
from core.waiting import Waits
from storage.db import Database
from storage.uow import UnitOfWork
from storage.work_queue import ClaimedItem

log = logging.getLogger(__name__)
Step = Callable[..., None | Waits[None]]


class LeaseLost(Exception):
    """Another runner took this step over (our lease ran out); our effects are rolled back."""


class StepUnitOfWork(UnitOfWork):
    def __init__(self, db: Database, item: ClaimedItem, clock: Clock, on_complete: Callable[[set[str]], None]):
        super().__init__(db, write=True)
        self._item, self._clock, self._on_complete = item, clock, on_complete

    def commit(self) -> None:
        if not self.work.complete(self._item, now=self._clock()):
            raise LeaseLost(f"work item {self._item.id} ({self._item.kind})")
        super().commit()
        self._on_complete(self.work.enqueued)


# ``settle(work, item, error, now)``, and by keyword any of the runner's dependencies it names (``config``).
DeadLetter = Callable[..., None]


@dataclass(eq=False)
class RunningStep:
    """A claimed step between its start and its end, which may span several workers when it waits."""

    item: ClaimedItem
    done: threading.Event  # its own transaction committed the completion
    heartbeat: object  # its key in _HEARTBEATS
    waits: Waits[None] | None = None  # what is left of a step that waits (core/waiting.py)


@dataclass
class RunnerSettings:
    lease_s: float = 120.0
    batch: int = 20
    max_attempts: int = 8
    backoff_base_s: float = 5.0
    backoff_cap_s: float = 900.0
    idle_wait_s: float = 1.0


@dataclass
class Runner:
    db: Database
    steps: Mapping[str, Step]
    dependencies: Mapping[str, Any]
    clock: Clock
    settings: RunnerSettings = field(default_factory=RunnerSettings)
    on_step: Callable[[str, str], None] = lambda kind, outcome: None
    # kind -> what a dead-lettered step leaves to settle, in the same database transaction as the burial
    # (a correlation step that died must not leave its transaction "capturing" for ever).
    on_dead: Mapping[str, DeadLetter] = field(default_factory=dict)
    on_enqueued: Callable[[set[str]], None] = lambda kinds: None  # a step committed work of these kinds
    on_full_batch: Callable[[], None] = lambda: None  # a claim took all it could: more may be due
    # Where a step waits for a picture without holding this worker (shared by the lane's workers); without one
    # the worker sleeps through the wait.
    waiting_room: WaitingRoom[RunningStep] | None = None
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self.idle = False  # waiting for work (run_forever): the one to wake for a new step
        self._wake = threading.Event()
        self._stop = threading.Event()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run_due(self) -> int:
        """Go on with the steps whose wait is over, then claim and run one batch of due steps; returns how many
        steps it ran or claimed."""
        resumed = self._resume_ready()
        with UnitOfWork(self.db, write=True) as work:
            claimed = work.work.claim_due(
                kinds=set(self.steps),
                now=self.clock(),
                lease_s=self.settings.lease_s,
                limit=self.settings.batch,
            )
            work.commit()
        if claimed and len(claimed) == self.settings.batch:
            self.on_full_batch()  # there may be more: a sibling starts on it instead of waiting for its poll
        for index, item in enumerate(claimed):
            if self._stop.is_set():
                self._release(claimed[index:])
                break
            resumed += self._resume_ready()  # a picture that is ready goes before the next new step
            self.run_step(item)
        return len(claimed) + resumed

    def _resume_ready(self) -> int:
        resumed = 0
        while self.waiting_room is not None and not self._stop.is_set():
            running = self.waiting_room.take()
            if running is None:
                break
            self.resume(running)
            resumed += 1
        return resumed

    def run_until_idle(self, max_rounds: int = 1000) -> None:
        """Run every due step, including those the steps enqueue (tests, the demo)."""
        for _ in range(max_rounds):
            if self.run_due() == 0:
                return

    def run_forever(self) -> None:
        log.info("runner started: steps %s", ", ".join(sorted(self.steps)))
        while not self._stop.is_set():
            try:
                claimed = self.run_due()
            except Exception:
                # Database unreachable: wait and try again; the queue is the database, nothing is lost.
                log.exception("runner could not claim work; retrying")
                claimed = 0
            if claimed == 0:
                self.idle = True
                self._wake.wait(self.settings.idle_wait_s)
                self._wake.clear()
                self.idle = False
        log.info("runner stopped")

    def run_step(self, item: ClaimedItem) -> None:
        if item.attempts > self.settings.max_attempts:
            # Every counted failure below the limit was rescheduled, so only a step that crashed its process
            # or outlived its lease gets here: it must not run, and crash, forever.
            self._retry(
                item,
                f"attempt {item.attempts - 1} never finished (the process stopped, or the step "
                f"outlived its {self.settings.lease_s:.0f} s lease)",
                0,
                counts_as_failure=True,
            )
            return
        if not self._lease_fresh(item):
            log.warning("step %s #%s: lease lost before it started; another runner has it", item.kind, item.id)
            self.on_step(item.kind, "lease_lost")
            return
        done = threading.Event()

        def completed(enqueued: set[str]) -> None:
            done.set()
            if enqueued:
                self.on_enqueued(enqueued)  # the next step of a checkout starts now, not at the next idle poll

        def renew() -> bool:
            return self._finish(item, lambda w: w.work.renew(item, now=self.clock(), lease_s=self.settings.lease_s))

        running = RunningStep(item, done, _HEARTBEATS.start(renew, every_s=self.settings.lease_s / 3))
        deps = {**self.dependencies, "uow": lambda: StepUnitOfWork(self.db, item, self.clock, completed)}
        self._run(running, lambda: call_with(self.steps[item.kind], item, deps))

    def resume(self, running: RunningStep) -> None:
        """Go on with a step whose wait in the waiting room is over (in this worker, which may not be its first)."""
        self._run(running, lambda: None)

    def give_back(self, running: RunningStep) -> None:
        """Release a parked step (this process stops): another runner starts it again from the beginning."""
        _HEARTBEATS.end(running.heartbeat)
        if running.waits is not None:
            running.waits.close()
        self._release([running.item])
        self.on_step(running.item.kind, "released")

    def _run(self, running: RunningStep, start: Callable[[], object]) -> None:
        """Run a step (``start`` calls it) until it ends, or until it waits in the waiting room."""
        item, done = running.item, running.done
        try:
            parked = False
            try:
                parked = not self._go_on(running, start)
            finally:
                if not parked:  # its lease is renewed until it ends, parked or not; then no longer
                    _HEARTBEATS.end(running.heartbeat)
            if parked:
                return  # a worker resumes it when its wait is over (or the room gives it back)
            if not done.is_set() and not self._finish(item, lambda w: w.work.complete(item, now=self.clock())):
                raise LeaseLost(f"work item {item.id} ({item.kind})")
            self.on_step(item.kind, "done")
        except RetryLater as later:
            log.info(
                "step %s #%s of %s waits %.0f s: %s", item.kind, item.id, item.transaction_id, later.delay_s, later
            )
            self._retry(item, str(later), later.delay_s, counts_as_failure=not later.waiting, outcome="waiting")
        except LeaseLost:
            log.warning("step %s #%s lost its lease; another runner has it", item.kind, item.id)
            self.on_step(item.kind, "lease_lost")
        except Exception as exc:  # one failing step must not stop the runner
            self._failed(item, exc, committed=done.is_set())

    def _go_on(self, running: RunningStep, start: Callable[[], object]) -> bool:
        """True when the step has ended; False when it waits, parked in the waiting room.

        A step that returns ``Waits`` (core/waiting.py) yields how long to wait: with a waiting room its worker is
        free meanwhile; without one (tests, the demo's ``run_until_idle``) the worker sleeps through the wait."""
        started = start()
        if isinstance(started, Generator):
            running.waits = started
        while running.waits is not None:
            try:
                wait_s = next(running.waits)
            except StopIteration:
                return True
            if self.waiting_room is None:
                self.sleep(wait_s)
                continue
            if not self.waiting_room.park(running, wait_s):
                self.give_back(running)  # the room has closed: this process is stopping
            return False
        return True

    def _failed(self, item: ClaimedItem, exc: Exception, *, committed: bool) -> None:
        if committed:
            # Its work and the completion are already committed: retrying would only find it done.
            log.exception(
                "step %s #%s of transaction %s failed after committing", item.kind, item.id, item.transaction_id
            )
            self.on_step(item.kind, "done")
            return
        log.exception(
            "step %s #%s of transaction %s failed (attempt %d)",
            item.kind,
            item.id,
            item.transaction_id,
            item.attempts,
        )
        error = f"{type(exc).__name__}: {exc}"
        if getattr(exc, "retry", None) is False:
            # The outside service refused for good (no face, bad id): trying again cannot help.
            self._bury(item, error)
            return
        self._retry(item, error, self._backoff(item.attempts), counts_as_failure=True)

    def _lease_fresh(self, item: ClaimedItem) -> bool:
        """A step late in a batch would start on a lease nearly run out (another runner could take it
        mid-step and repeat its calls to the camera or Webex): renew it first, or skip a lost one."""
        if item.lease_until is None or self.clock() < item.lease_until - timedelta(seconds=self.settings.lease_s / 2):
            return True
        return self._finish(item, lambda w: w.work.renew(item, now=self.clock(), lease_s=self.settings.lease_s))

    def _retry(
        self, item: ClaimedItem, error: str, delay_s: float, *, counts_as_failure: bool, outcome: str = "retry"
    ) -> None:
        if counts_as_failure and item.attempts >= self.settings.max_attempts:
            self._bury(item, error)
            log.error("step %s #%s dead-lettered after %d attempts: %s", item.kind, item.id, item.attempts, error)
            return
        run_at = self.clock() + timedelta(seconds=delay_s)
        self._finish(item, lambda w: w.work.reschedule(item, run_at=run_at, error=error, counts=counts_as_failure))
        self.on_step(item.kind, outcome)

    def _bury(self, item: ClaimedItem, error: str) -> None:
        settle = self.on_dead.get(item.kind)

        def bury(work: UnitOfWork, settle: DeadLetter | None = settle) -> bool:
            if not work.work.bury(item, now=self.clock(), error=error):
                return False
            if settle is not None:
                named = {n: self.dependencies[n] for n in wanted(settle) if n in self.dependencies}
                settle(work, item, error, self.clock(), **named)
            return True

        try:
            self._finish(item, bury)
        except Exception:
            # A settlement that fails must not keep the step undead (claimed again at every lease, for ever):
            # the step is buried without it, and the log says its subject was left as it was.
            log.exception("step %s #%s: its subject could not be settled; burying it alone", item.kind, item.id)
            self._finish(item, functools.partial(bury, settle=None))
        self.on_step(item.kind, "dead")

    def _backoff(self, attempts: int) -> float:
        # The exponent is capped so a large max_attempts cannot overflow the float.
        ceiling = min(self.settings.backoff_cap_s, self.settings.backoff_base_s * 2 ** min(attempts - 1, 64))
        return random.uniform(ceiling / 2, ceiling)  # jitter: retries of one outage spread out

    def _release(self, items: list[ClaimedItem]) -> None:
        for item in items:
            self._finish(item, functools.partial(_release, item=item))

    def _finish(self, item: ClaimedItem, change: Callable[[UnitOfWork], bool]) -> bool:
        with UnitOfWork(self.db, write=True) as work:
            if change(work):
                work.commit()
                return True
        log.warning("work item %s: lease lost before it could be updated", item.id)
        return False


def _release(work: UnitOfWork, *, item: ClaimedItem) -> bool:
    return work.work.release(item)


class _Heartbeats:
    """Renews the lease of every running step of this process every third of its lease, so a long step (a look-back,
    a purge, a digest) is not taken over and run twice by another runner; a lost lease stops its renewals.

    One thread for the whole process, started with the first step: a thread per step would cost every step its
    start and join, and nearly every step ends long before its first beat."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._beats: dict[object, tuple[float, float, Callable[[], bool]]] = {}  # key -> (due, every_s, renew)
        self._changed = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, renew: Callable[[], bool], *, every_s: float) -> object:
        """Renew a step's lease from now on, until ``end`` with the key this returns."""
        key = object()
        with self._lock:
            self._beats[key] = (time.monotonic() + every_s, every_s, renew)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lease-heartbeat", daemon=True)
                self._thread.start()
        self._changed.set()  # the thread may be asleep until a later beat than this one's
        return key

    def end(self, key: object) -> None:
        with self._lock:
            self._beats.pop(key, None)

    def _run(self) -> None:
        while True:
            self._changed.clear()  # before looking: a beat added from now on wakes the wait below
            now = time.monotonic()
            with self._lock:
                due = [(key, renew) for key, (at, _every, renew) in self._beats.items() if at <= now]
                for key, _ in due:
                    _at, every_s, renew = self._beats[key]
                    self._beats[key] = (now + every_s, every_s, renew)
            for key, renew in due:
                if not self._beat(renew):
                    with self._lock:
                        self._beats.pop(key, None)
            with self._lock:
                next_at = min((at for at, _every, _renew in self._beats.values()), default=now + 60.0)
            self._changed.wait(max(0.0, next_at - time.monotonic()))

    @staticmethod
    def _beat(renew: Callable[[], bool]) -> bool:
        try:
            return renew()
        except Exception:  # the database is away for a moment: the next beat tries again
            log.warning("could not renew a running step's lease", exc_info=True)
            return True


_HEARTBEATS = _Heartbeats()

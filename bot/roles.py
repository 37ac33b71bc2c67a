"""Roles only one process may play at a time, elected through lease rows in the database.

The Webex websocket is one role: two processes holding it would replace each other (close code 4000), so
exactly one holds it, and when that process dies another takes over within ``LEASE_S + RENEW_S``. The entrance
cameras are ``camera.entrance_shares`` interchangeable roles: each share is listened to by one process, and
every process plays its fair share (the shares divided by the processes alive, rounded up), so a second worker
takes half of the first one's cameras and a dead worker's shares are taken over by the living.

One thread per process renews ``member:<process>`` and the roles it plays every ``RENEW_S``. A role whose
renewal fails (the database unreachable) is stopped ``LEASE_S − RENEW_S`` after its last renewal, before its
lease can run out, so no two processes play it at once while their clocks agree within ``RENEW_S``.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from core.clock import Clock
from storage.db import Database
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

LEASE_S = 15.0
RENEW_S = 5.0
MEMBER = "member:"
FORGET_AFTER_S = 3600.0  # run-out leases of dead processes are deleted after this


@dataclass(frozen=True)
class RoleGroup:
    """``count`` interchangeable roles named ``<name>:<k>``; ``play(ks)`` is told whenever the set it plays changes
    (an empty set: stop). It runs on the roles thread and must not block for long."""

    name: str
    count: int
    play: Callable[[frozenset[int]], None]

    def lease(self, k: int) -> str:
        return f"{self.name}:{k}"


def process_identity() -> str:
    """host:pid:token — the token tells a restarted process with a reused pid from its predecessor."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{secrets.token_hex(4)}"


class Roles:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        groups: Sequence[RoleGroup],
        *,
        identity: str | None = None,
        lease_s: float = LEASE_S,
        renew_s: float = RENEW_S,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.identity = identity or process_identity()
        self._db, self._clock, self._groups = db, clock, list(groups)
        self._lease_s, self._renew_s, self._monotonic = lease_s, renew_s, monotonic
        # Per group: the roles played and when each was last renewed (monotonic, taken before the renewal began).
        self._held: dict[str, dict[int, float]] = {group.name: {} for group in self._groups}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="roles", daemon=True)

    def playing(self, group: str) -> frozenset[int]:
        return frozenset(self._held[group])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop playing every role and give the leases back, so another process takes over at once."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self._lease_s)
        names = [MEMBER + self.identity]
        for group in self._groups:
            if self._held[group.name]:
                self._play(group, {})
            names += [group.lease(k) for k in range(group.count)]
        try:
            with UnitOfWork(self._db, write=True) as work:
                work.leases.let_go(names, holder=self.identity)
                work.commit()
        except SQLAlchemyError as exc:
            log.warning("roles: leases not given back (%s); they run out in %.0f s", type(exc).__name__, self._lease_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # a bug here must not end the thread: the roles it plays would run out unseen
                log.exception("roles: a renewal failed; roles whose lease may run out are stopped")
                self._stop_stale()
            self._stop.wait(self._renew_s)

    def tick(self) -> None:
        """Renew what is played, hand over what is above the fair share, take free roles up to it."""
        try:
            members = self._renew()
            for group in self._groups:
                self._rebalance(group, math.ceil(group.count / members))
        except SQLAlchemyError as exc:
            log.warning(
                "roles: database unreachable (%s); roles whose lease may run out are stopped", type(exc).__name__
            )
            self._stop_stale()

    def _renew(self) -> int:
        began, now = self._monotonic(), self._clock()
        with UnitOfWork(self._db, write=True) as work:
            work.leases.hold(MEMBER + self.identity, holder=self.identity, now=now, lease_s=self._lease_s)
            work.leases.forget(ran_out_before=now - timedelta(seconds=FORGET_AFTER_S))
            kept = {
                group.name: {
                    k
                    for k in self._held[group.name]
                    if work.leases.hold(group.lease(k), holder=self.identity, now=now, lease_s=self._lease_s)
                }
                for group in self._groups
            }
            members = max(1, work.leases.live(MEMBER, now=now))
            work.commit()
        for group in self._groups:
            held = self._held[group.name]
            lost = set(held) - kept[group.name]
            if lost:
                log.warning("roles: %s taken over by another process", ", ".join(group.lease(k) for k in sorted(lost)))
            self._play(group, dict.fromkeys(kept[group.name], began))
        return members

    def _rebalance(self, group: RoleGroup, share: int) -> None:
        held = self._held[group.name]
        if len(held) > share:
            extra = sorted(held)[share:]
            self._play(group, {k: at for k, at in held.items() if k not in extra})  # stop first, then hand over
            with UnitOfWork(self._db, write=True) as work:
                work.leases.let_go([group.lease(k) for k in extra], holder=self.identity)
                work.commit()
        elif len(held) < share:
            began, now = self._monotonic(), self._clock()
            taken: dict[int, float] = {}
            start = zlib.crc32(self.identity.encode()) % group.count  # processes try different shares first
            with UnitOfWork(self._db, write=True) as work:
                for k in [(start + i) % group.count for i in range(group.count)]:
                    if len(held) + len(taken) >= share:
                        break
                    if k not in held and work.leases.hold(
                        group.lease(k), holder=self.identity, now=now, lease_s=self._lease_s
                    ):
                        taken[k] = began
                work.commit()
            if taken:
                self._play(group, {**held, **taken})

    def _stop_stale(self) -> None:
        deadline = self._monotonic() - (self._lease_s - self._renew_s)
        for group in self._groups:
            held = self._held[group.name]
            self._play(group, {k: at for k, at in held.items() if at > deadline})

    def _play(self, group: RoleGroup, held: dict[int, float]) -> None:
        before = frozenset(self._held[group.name])
        self._held[group.name] = held
        if frozenset(held) != before:
            try:
                group.play(frozenset(held))
            except Exception:
                # A role that fails to start (a broker down) is retried by its own reconnect logic, not here.
                log.exception("roles: %s could not change to %s", group.name, sorted(held))

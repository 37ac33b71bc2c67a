"""The Meraki request budget: one token bucket per organisation, kept in ``rate_buckets``.

Meraki allows ~10 requests/s per organisation, shared by every application of that
organisation, so the bucket lives in the database where every thread and process sees the
same one. Each ``try_take`` is one short write transaction with no network call inside: on
PostgreSQL the row is locked with ``SELECT … FOR UPDATE``; on SQLite the writer lock and
``BEGIN IMMEDIATE`` serialise takers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.db import Database, upsert_insert
from storage.models import RateBucket
from storage.uow import UnitOfWork
from vision.types import CameraError

log = logging.getLogger(__name__)

# A wait below this is rounded up, so a caller never spins on float dust.
MIN_WAIT_S = 0.001


class RateBudget:
    """Shared token buckets: ``burst`` tokens at most, refilled at ``rate_per_s``."""

    def __init__(self, db: Database, *, rate_per_s: float, burst: int, clock: Callable[[], datetime]):
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be positive and burst at least 1")
        self._db = db
        self._rate = float(rate_per_s)
        self._burst = int(burst)
        self._clock = clock

    def try_take(self, org_id: str) -> float:
        """Take one token: 0.0 when taken, else the seconds to wait before one may be there."""
        with UnitOfWork(self._db, write=True) as uow:
            bucket = self._locked_bucket(uow.session, org_id)
            # Read the time only once the row is ours, so no taker works from a stale "now".
            now = self._clock()
            if bucket.blocked_until is not None and now < bucket.blocked_until:
                return max((bucket.blocked_until - now).total_seconds(), MIN_WAIT_S)
            # A bucket dated in the future (set by block()) has not started refilling yet.
            elapsed = max((now - bucket.updated_at).total_seconds(), 0.0)
            tokens = min(float(self._burst), bucket.tokens + elapsed * self._rate)
            start = max(now, bucket.updated_at)
            if tokens < 1.0:
                # Nothing is written: (tokens, updated_at) already imply the same refill.
                wait = (start - now).total_seconds() + (1.0 - tokens) / self._rate
                return max(wait, MIN_WAIT_S)
            bucket.tokens, bucket.updated_at = tokens - 1.0, start
            uow.commit()
            return 0.0

    def block(self, org_id: str, until: datetime) -> None:
        """Stop every taker until ``until`` (a 429's Retry-After), then refill from empty."""
        with UnitOfWork(self._db, write=True) as uow:
            bucket = self._locked_bucket(uow.session, org_id)
            if bucket.blocked_until is None or bucket.blocked_until < until:
                bucket.blocked_until = until
            # Empty at the end of the block: a full burst right after a 429 would earn another.
            bucket.tokens = 0.0
            bucket.updated_at = max(bucket.updated_at, bucket.blocked_until)
            uow.commit()
        log.info("Meraki rate budget blocked org=%s until=%s", org_id, until.isoformat())

    def block_for(self, org_id: str, seconds: float) -> None:
        """``block`` for a Retry-After given in seconds (the shape ``MerakiCamera.on_rate_limited`` passes)."""
        self.block(org_id, self._clock() + timedelta(seconds=max(seconds, 0.0)))

    def acquire(self, org_id: str, *, max_wait_s: float, sleep: Callable[[float], None] = time.sleep) -> None:
        """Wait for a token, at most ``max_wait_s`` in all; past that, a retryable CameraError."""
        waited = 0.0
        while True:
            wait = self.try_take(org_id)
            if wait == 0.0:
                return
            if waited + wait > max_wait_s:
                log.warning("Meraki rate budget exhausted org=%s wait_s=%.3f max_wait_s=%.3f", org_id, wait, max_wait_s)
                raise CameraError("camera API rate budget exhausted", retry=True, retry_after_s=wait)
            sleep(wait)
            waited += wait

    def _locked_bucket(self, session: Session, org_id: str) -> RateBucket:
        """The organisation's row, created full if missing, locked for this transaction."""
        session.execute(
            upsert_insert(session, RateBucket)
            .values(org_id=org_id, tokens=float(self._burst), updated_at=self._clock(), blocked_until=None)
            .on_conflict_do_nothing(index_elements=["org_id"])
        )
        # FOR UPDATE is rendered on PostgreSQL only; on SQLite BEGIN IMMEDIATE already holds the write lock.
        query = select(RateBucket).where(RateBucket.org_id == org_id).with_for_update()
        return session.scalars(query).one()

"""Capture steps: the register camera's live picture at once, the exact-time picture a few minutes later.

The camera call happens outside any database transaction (it can take seconds of polling, during which
the step is parked and yields its worker: core/waiting.py);
the picture is stored as an evidence file first, then the snapshot row and the next step are
committed together with the completion of this step.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from core.clock import Clock
from core.config import Config
from core.correlation import CorrelationStatus
from core.steps import StepKind, policy
from core.waiting import Waits
from handlers.pipeline.seeing import StoredPicture, add_snapshot, take_picture
from handlers.pipeline.triage import schedule_unpictured_decision
from storage.evidence import EvidenceStore
from storage.models import Transaction
from storage.rows import present
from storage.uow import UnitOfWork
from storage.work_queue import ClaimedItem
from vision.types import Camera

log = logging.getLogger(__name__)
ANALYZE_LIVE_PRIORITY, ANALYZE_EXACT_PRIORITY = 3, 6  # around the analysis lane's middle (5)
# Below the runner's dead-letter limit, so a camera that stays down ends as a recorded failure.


@dataclass(frozen=True)
class _Target:
    transaction_id: str
    store_id: str
    serial: str
    org_id: str
    at: datetime | None
    occurred_at: datetime


def job_capture_live(
    item: ClaimedItem,
    *,
    read_uow: Callable[[], UnitOfWork],
    uow: Callable[[], UnitOfWork],
    camera: Camera | None,
    evidence: EvidenceStore,
    config: Config,
    clock: Clock,
) -> Waits[None]:
    """Picture the register now, but only while the payment is fresh: later it would show the next customer."""
    yield from _capture(
        item, "live", read_uow=read_uow, uow=uow, camera=camera, evidence=evidence, config=config, clock=clock
    )


def job_capture_exact(
    item: ClaimedItem,
    *,
    read_uow: Callable[[], UnitOfWork],
    uow: Callable[[], UnitOfWork],
    camera: Camera | None,
    evidence: EvidenceStore,
    config: Config,
    clock: Clock,
) -> Waits[None]:
    """Picture the register at the payment's exact time, once the camera has indexed that footage."""
    yield from _capture(
        item, "exact", read_uow=read_uow, uow=uow, camera=camera, evidence=evidence, config=config, clock=clock
    )


def _capture(
    item: ClaimedItem,
    kind: str,
    *,
    read_uow: Callable[[], UnitOfWork],
    uow: Callable[[], UnitOfWork],
    camera: Camera | None,
    evidence: EvidenceStore,
    config: Config,
    clock: Clock,
) -> Waits[None]:
    with read_uow() as work:
        transaction = work.transactions.get(item.transaction_id or "")
        existing = work.snapshots.of_transaction(item.transaction_id or "", kind)
        if transaction is None or existing is not None:
            return  # purged, or this picture was already taken or given up
        target, problem = _target(transaction, kind, config)
    if problem is None and camera is None:
        problem = "camera off: MERAKI_DASHBOARD_API_KEY is not set"
    if problem is None and kind == "live" and _age_s(target, clock) > config.business.camera.live_max_age_s:
        problem = "too late for a live picture (it would show the next customer); the exact-time picture is used"
    if problem is not None or camera is None:  # (a missing camera always has its problem, set above)
        _record(uow, item, kind, target, clock, failure=problem)
        return
    taken = yield from take_picture(
        camera,
        evidence,
        serial=target.serial,
        org_id=target.org_id,
        at=target.at,
        attempt=item.attempts,
        retry=policy(StepKind(item.kind)),
    )
    if isinstance(taken, str):
        _record(uow, item, kind, target, clock, failure=taken)
        return
    _record(uow, item, kind, target, clock, picture=taken)
    log.info("snapshot %s of transaction %s stored", kind, target.transaction_id)


def _target(transaction: Transaction, kind: str, config: Config) -> tuple[_Target, str | None]:
    store = config.business.store(transaction.store_id)
    register = store.register(transaction.register_id) if store else None
    target = _Target(
        transaction.transaction_id,
        transaction.store_id,
        register.camera_serial if register else "",
        store.meraki_org_id if store else "",
        None if kind == "live" else transaction.occurred_at,
        transaction.occurred_at,
    )
    if register is None:
        return target, "the register is no longer in the configuration"
    return target, None


def _age_s(target: _Target, clock: Clock) -> float:
    return (clock() - target.occurred_at).total_seconds()


def _record(
    uow: Callable[[], UnitOfWork],
    item: ClaimedItem,
    kind: str,
    target: _Target,
    clock: Clock,
    *,
    picture: StoredPicture | None = None,
    failure: str | None = None,
) -> None:
    """Store the snapshot (ready or failed) and what follows from it, in the step's own transaction."""
    now = clock()
    with uow() as work:
        snapshot = add_snapshot(
            work,
            snapshot_id=f"S-{secrets.token_hex(5)}",
            transaction_id=target.transaction_id,
            store_id=target.store_id,
            serial=target.serial or "-",
            kind=kind,
            taken_for=target.at,
            now=now,
            picture=picture,
            failure=failure,
        )
        # Locked: the live and the exact capture of one checkout may finish at once on two workers, and each moves
        # the status from what it reads. Only retention deletes transactions, long after their pictures.
        transaction = present(
            work.transactions.get_for_update(target.transaction_id), f"transaction {target.transaction_id}"
        )
        if picture is not None:
            if transaction.status in (CorrelationStatus.PENDING, CorrelationStatus.CAPTURING):
                transaction.move_to(CorrelationStatus.ANALYZING)
            work.work.enqueue(
                kind=StepKind.ANALYZE,
                key=snapshot.id,
                transaction_id=target.transaction_id,
                ref_id=snapshot.id,
                store_id=target.store_id,
                # The customer may still be at the till for a live picture; an exact one is minutes old already.
                priority=ANALYZE_LIVE_PRIORITY if kind == "live" else ANALYZE_EXACT_PRIORITY,
                run_at=now,
                now=now,
            )
        else:
            _settle_after_failure(transaction, kind, failure or "")
            if transaction.status == CorrelationStatus.FAILED:
                schedule_unpictured_decision(work, target.transaction_id, run_at=now, now=now)
        work.commit()


def _settle_after_failure(transaction: Transaction, kind: str, reason: str) -> None:
    """With no picture at all there is nothing to analyse: the correlation failed, and says why."""
    pictures = [s for s in transaction.snapshots if s.status == "ready"]
    if (
        kind == "exact"
        and not pictures
        and transaction.status in (CorrelationStatus.PENDING, CorrelationStatus.CAPTURING)
    ):
        transaction.move_to(CorrelationStatus.FAILED, f"no picture of this checkout: {reason}")

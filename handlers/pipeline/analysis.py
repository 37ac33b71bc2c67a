"""Analysis step: find every face in the customer zone, search each against the watchlist, count products.

Recognition runs outside any database transaction. Only faces inside the register's customer
zone are kept (as boxes and a crop for a possible enrollment later); no descriptor of any face
is stored, and faces outside the zone (the cashier) are neither searched nor kept.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from core.clock import Clock
from core.config import Config
from core.correlation import CorrelationStatus
from core.steps import StepKind, policy
from handlers.pipeline.seeing import keep_face, retry_recognition, search_face
from handlers.pipeline.triage import schedule_unpictured_decision
from storage.evidence import EvidenceStore
from storage.rows import present
from storage.uow import UnitOfWork
from storage.work_queue import ClaimedItem
from vision.image_prep import ImageRejected
from vision.reconciliation import reconcile
from vision.types import Box, DetectedFace, FaceBackend, FaceMatch, ProductCounter, RecognitionError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Work:
    snapshot_id: str
    transaction_id: str
    image_sha256: str
    content_type: str
    zone: Box
    scope: list[str]
    items: list[dict]


@dataclass(frozen=True)
class _FoundFace:
    face: DetectedFace
    crop_sha256: str
    matches: list[FaceMatch]


def job_analyze(
    item: ClaimedItem,
    *,
    read_uow: Callable[[], UnitOfWork],
    uow: Callable[[], UnitOfWork],
    evidence: EvidenceStore,
    faces: FaceBackend,
    products: ProductCounter | None,
    config: Config,
    clock: Clock,
) -> None:
    with read_uow() as work:
        todo = _what_to_analyze(work, item.ref_id or "", config, clock)
    if todo is None:
        return
    image = evidence.read(todo.image_sha256, todo.content_type)
    try:
        found = [
            _look(face, todo, faces, evidence, config) for face in faces.detect(image) if _in_zone(face.box, todo.zone)
        ]
        catalog = config.business.catalog
        labels = sorted({c.label for c in catalog})
        counts = products.count(image, labels) if products is not None and labels else []
    except RecognitionError as exc:
        retry_recognition(exc, item.attempts, gives_up=policy(StepKind.ANALYZE), waits=policy(StepKind.ANALYZE))
        _give_up(uow, todo, exc.reason, clock, config)
        return
    except ImageRejected as exc:
        _give_up(uow, todo, f"the picture cannot be analysed: {exc}", clock, config)
        return
    reconciliation = reconcile(_receipt(todo.items), catalog, counts).to_dict()
    _store(uow, todo, found, reconciliation, clock)
    log.info(
        "snapshot %s of transaction %s analysed: %d faces in the customer zone, %d matched",
        todo.snapshot_id,
        todo.transaction_id,
        len(found),
        sum(1 for f in found if f.matches),
    )


def _what_to_analyze(work: UnitOfWork, snapshot_id: str, config: Config, clock: Clock) -> _Work | None:
    snapshot = work.snapshots.get(snapshot_id)
    if snapshot is None or snapshot.analyzed_at is not None or snapshot.evidence_sha256 is None:
        return None
    transaction = snapshot.transaction
    store = config.business.store(snapshot.store_id)
    register = store.register(transaction.register_id) if store and transaction else None
    region = next((r for r in config.business.regions if store and r.id == store.region), None)
    scope = work.snapshots.watchlist_scope(
        snapshot.store_id,
        store.region if store else None,
        regional=bool(region and region.share_watchlist),
        now=clock(),
    )
    file = work.snapshots.file(snapshot.evidence_sha256)
    return _Work(
        snapshot_id=snapshot.id,
        transaction_id=snapshot.transaction_id or "",
        image_sha256=snapshot.evidence_sha256,
        content_type=file.content_type if file else "image/jpeg",
        zone=register.customer_zone if register else (0.0, 0.0, 1.0, 1.0),
        scope=scope,
        items=json.loads(transaction.body).get("items", []) if transaction else [],
    )


def _look(face: DetectedFace, todo: _Work, faces: FaceBackend, evidence: EvidenceStore, config: Config) -> _FoundFace:
    matches = search_face(face, faces=faces, scope=todo.scope, recognition=config.business.recognition)
    return _FoundFace(face, evidence.put(face.crop, "image/jpeg"), matches)


def _in_zone(box: Box, zone: Box) -> bool:
    """A face belongs to the customer side when its centre is inside the register's customer zone."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return zone[0] <= cx <= zone[2] and zone[1] <= cy <= zone[3]


def _receipt(items: list[dict]) -> list[tuple[str, str, Decimal, Decimal]]:
    return [(i["sku"], i.get("name", ""), Decimal(str(i["quantity"])), Decimal(i["unit_price"])) for i in items]


def _store(
    uow: Callable[[], UnitOfWork], todo: _Work, found: list[_FoundFace], reconciliation: dict, clock: Clock
) -> None:
    now = clock()
    with uow() as work:
        snapshot = present(work.snapshots.get(todo.snapshot_id), f"snapshot {todo.snapshot_id}")
        for result in found:
            keep_face(work, todo.snapshot_id, result.face, result.crop_sha256, result.matches, now)
        snapshot.analyzed_at = now
        snapshot.reconciliation = reconciliation
        transaction = snapshot.transaction
        if transaction is not None:
            transaction.reconciliation = reconciliation
        work.work.enqueue(
            kind=StepKind.DECIDE,
            key=todo.snapshot_id,
            transaction_id=todo.transaction_id,
            ref_id=todo.snapshot_id,
            store_id=snapshot.store_id,
            run_at=now,
            now=now,
        )
        work.commit()


def _give_up(uow: Callable[[], UnitOfWork], todo: _Work, reason: str, clock: Clock, config: Config) -> None:
    """Record why this picture could not be analysed; with no other analysed picture the correlation failed."""
    now = clock()
    with uow() as work:
        snapshot = present(work.snapshots.get(todo.snapshot_id), f"snapshot {todo.snapshot_id}")
        snapshot.analyzed_at, snapshot.reason = now, f"analysis failed: {reason}"
        transaction = snapshot.transaction
        if (
            transaction is not None
            and transaction.status == CorrelationStatus.ANALYZING
            and not transaction.rule_results
        ):
            transaction.move_to(CorrelationStatus.FAILED, f"picture {snapshot.kind}: {reason}")
        if transaction is not None and transaction.status == CorrelationStatus.FAILED:
            # After the exact-time picture's chance, so that one, if it can be analysed, is evaluated with its
            # photo instead (the unpictured step then does nothing).
            camera = config.business.camera
            wait_s = camera.exact_delay_s + camera.poll_total_s if snapshot.kind == "live" else 0
            schedule_unpictured_decision(
                work, transaction.transaction_id, run_at=now + timedelta(seconds=wait_s), now=now
            )
        work.commit()
    log.warning("snapshot %s of transaction %s not analysed: %s", todo.snapshot_id, todo.transaction_id, reason)

"""What an enrollment proposal is about, read in one short transaction: the faces in order, or why there are none.

Faces are numbered as on the alert's evidence photo first (the picture the alert was raised on,
its faces in the order the photo numbers them), then the faces of the other picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from cards.views import EnrollmentProposalView, ProposedFace
from core.config import Config
from core.correlation import CorrelationStatus
from storage.models import Alert, Snapshot, Transaction
from storage.uow import UnitOfWork

SOURCE_WORDS = {"chargeback": "chargeback", "processor": "payment processor", "manual": "reported by hand"}
KIND_WORDS = {"live": "the live picture", "exact": "the exact-time picture", "manual": "a picture on request"}


@dataclass(frozen=True)
class Candidate:
    number: int
    face_id: str
    crop_sha256: str | None
    content_type: str
    snapshot_kind: str


@dataclass(frozen=True)
class ProposalPlan:
    transaction_id: str
    store_id: str
    room_id: str | None  # the store's space, when there is no alert card to thread under
    alert_id: str | None  # "A-12": the alert whose card the proposal threads under
    alert_card_key: str | None
    candidates: tuple[Candidate, ...]
    scope: tuple[str, ...]  # watchlist entries a face may already resemble
    reasons: tuple[str, ...]
    gone: str | None = None  # why there is no face to offer, in plain words
    waiting: bool = False  # a picture is still being analysed


def plan_proposal(work: UnitOfWork, transaction_id: str, config: Config, now: datetime) -> ProposalPlan | None:
    transaction = work.transactions.with_evidence(transaction_id)
    if transaction is None:
        return None
    store = config.business.store(transaction.store_id)
    region = next((r for r in config.business.regions if store and r.id == store.region), None)
    alert = _thread_alert(work, transaction_id)
    ready = [s for s in transaction.snapshots if s.status == "ready" and s.evidence_sha256]
    ready.sort(key=lambda s: (alert is None or s.id != alert.snapshot_id, s.created_at))
    candidates = tuple(_numbered(work, ready))
    waiting = (
        CorrelationStatus(transaction.status).in_progress
        or any(s.analyzed_at is None for s in ready)
        or any(s.status == "pending" for s in transaction.snapshots)
    )
    scope = work.snapshots.watchlist_scope(
        transaction.store_id, store.region if store else None, regional=bool(region and region.share_watchlist), now=now
    )
    return ProposalPlan(
        transaction_id=transaction_id,
        store_id=transaction.store_id,
        room_id=store.webex_room_id if store else None,
        alert_id=alert.public_id if alert else None,
        alert_card_key=f"alert:{alert.id}:card" if alert else None,
        candidates=candidates,
        scope=tuple(scope),
        reasons=_reasons(transaction, config, candidates),
        gone=None if candidates else _gone(transaction, config),
        waiting=waiting,
    )


def _thread_alert(work: UnitOfWork, transaction_id: str) -> Alert | None:
    """The alert people decided on (Confirm files the report), else the transaction's first alert."""
    alerts = [a for a in (work.alerts.get(i) for i in work.alerts.ids_for_transaction(transaction_id)) if a]
    confirmed = [(a.decided_at, a) for a in alerts if a.status == "confirmed" and a.decided_at is not None]
    if confirmed:
        return max(confirmed, key=lambda pair: pair[0])[1]
    return alerts[0] if alerts else None


def _numbered(work: UnitOfWork, snapshots: list[Snapshot]) -> list[Candidate]:
    found, number = [], 0
    for snapshot in snapshots:
        for face in snapshot.faces:  # ordered as the evidence photo numbers them
            number += 1
            file = work.snapshots.file(face.crop_sha256) if face.crop_sha256 else None
            found.append(
                Candidate(number, face.id, face.crop_sha256, file.content_type if file else "image/jpeg", snapshot.kind)
            )
    return found


def _reasons(transaction: Transaction, config: Config, candidates: tuple[Candidate, ...]) -> tuple[str, ...]:
    store = config.business.store(transaction.store_id)
    zone = ZoneInfo(store.timezone if store else "UTC")
    lines = [
        f"Reported as fraud ({SOURCE_WORDS.get(r.source, r.source)}) on "
        f"{r.reported_at.astimezone(zone):%d %b %Y}{': ' + r.reason if r.reason else ''}."
        for r in transaction.fraud_reports
    ]
    if not lines:
        lines.append("No fraud report has been filed for this transaction.")
    kinds: dict[str, list[int]] = {}
    for candidate in candidates:
        kinds.setdefault(candidate.snapshot_kind, []).append(candidate.number)
    if len(kinds) > 1:
        lines.append(
            "; ".join(
                f"face{'s' if len(n) > 1 else ''} {', '.join(map(str, n))} from {KIND_WORDS.get(kind, kind)}"
                for kind, n in kinds.items()
            ).capitalize()
            + "."
        )
    return tuple(lines)


def _gone(transaction: Transaction, config: Config) -> str:
    """Why a reported transaction has no face to offer, said plainly."""
    if transaction.triage_decision == "skip" or transaction.status == CorrelationStatus.SKIPPED:
        return f"no picture was taken of this checkout ({transaction.triage_reason or transaction.status_reason})."
    failed = [s for s in transaction.snapshots if s.status == "failed"]
    if failed and len(failed) == len(transaction.snapshots):
        return f"the camera gave no picture of this checkout ({failed[-1].reason or 'no reason given'})."
    if any(s.status == "pending" for s in transaction.snapshots) or transaction.status in ("pending", "capturing"):
        return f"its pictures are still being taken; ask again later with `enroll {transaction.transaction_id}`."
    if not transaction.snapshots:
        days = config.business.retention.snapshots_days
        return f"its pictures are no longer kept (pictures without a fraud report or alert are kept {days} days)."
    return "no face was found in the customer zone of its pictures."


def proposal_view(
    plan: ProposalPlan, faces: tuple[ProposedFace, ...], config: Config, *, with_sheet: bool
) -> EnrollmentProposalView:
    """An enrollment proposal (handlers/learning/proposal_plan.py) with each face as the backend judged it."""
    enrollment = config.business.enrollment
    reasons = plan.reasons + (("The faces, numbered as here, follow in this thread.",) if with_sheet else ())
    return EnrollmentProposalView(
        transaction_id=plan.transaction_id,
        store_id=plan.store_id,
        faces=faces,
        reasons=reasons,
        default_expiry_days=enrollment.default_expiry_days,
        max_expiry_days=enrollment.max_expiry_days,
        alert_id=plan.alert_id,
    )

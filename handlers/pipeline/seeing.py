"""The pieces of seeing shared by the checkout and the entrance: take a picture, store its snapshot, search a face,
keep a face. The two pipelines differ in what they ask for and decide, not in how they look.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from core.config import RecognitionConfig
from core.steps import RetryLater, RetryPolicy
from core.waiting import Waits
from storage.evidence import EvidenceStore
from storage.models import Face, Snapshot
from storage.uow import UnitOfWork
from vision.types import Camera, CameraError, DetectedFace, FaceBackend, FaceMatch, RecognitionError


@dataclass(frozen=True)
class StoredPicture:
    sha256: str
    content_type: str
    size: int


def take_picture(
    camera: Camera,
    evidence: EvidenceStore,
    *,
    serial: str,
    org_id: str,
    at: datetime | None,
    attempt: int,
    retry: RetryPolicy,
) -> Waits[StoredPicture | str]:
    """The camera's picture of ``serial`` (live when ``at`` is None) in the evidence store, or why there is none.

    Yields the camera's waits for the picture, so the runner parks the step meanwhile (core/waiting.py).
    A camera that may answer later (busy, footage not indexed yet) raises ``RetryLater`` as the step's policy says;
    the image URL never leaves the camera client."""
    try:
        picture = yield from camera.snapshot_waits(serial, org_id=org_id, at=at)
    except CameraError as exc:
        if exc.retry and not retry.gives_up(attempt):
            raise RetryLater(exc.reason, retry.delay_s(attempt, exc.retry_after_s)) from None
        return f"{exc.reason} (after {attempt} attempts)"
    return StoredPicture(
        evidence.put(picture.content, picture.content_type), picture.content_type, len(picture.content)
    )


def add_snapshot(
    work: UnitOfWork,
    *,
    snapshot_id: str,
    transaction_id: str | None,
    store_id: str,
    serial: str,
    kind: str,
    taken_for: datetime | None,
    now: datetime,
    picture: StoredPicture | None,
    failure: str | None,
) -> Snapshot:
    """The snapshot row, ready with its evidence file or failed with its reason."""
    snapshot = Snapshot(
        id=snapshot_id,
        transaction_id=transaction_id,
        store_id=store_id,
        camera_serial=serial,
        kind=kind,
        taken_for=taken_for,
        created_at=now,
        status="ready" if picture else "failed",
        reason=failure,
        ready_at=now if picture else None,
    )
    if picture is not None:
        work.snapshots.record_file(
            picture.sha256, kind="snapshot", content_type=picture.content_type, size_bytes=picture.size, now=now
        )
        snapshot.evidence_sha256 = picture.sha256
    work.snapshots.add(snapshot)
    return snapshot


def search_face(
    face: DetectedFace, *, faces: FaceBackend, scope: list[str] | None, recognition: RecognitionConfig
) -> list[FaceMatch]:
    """The watchlist entries this face resembles; a face too small to judge is not searched.

    Below the review threshold a resemblance is never shown as a match (docs/product.md)."""
    if not scope or face.size_px < recognition.min_face_px:
        return []
    return faces.search(face, person_ids=scope, min_similarity=recognition.review_threshold)


def retry_recognition(exc: RecognitionError, attempt: int, *, gives_up: RetryPolicy, waits: RetryPolicy) -> None:
    """Raise ``RetryLater`` when a busy backend may answer later; return when the step must give its reason up."""
    if exc.retry and not gives_up.gives_up(attempt):
        raise RetryLater(exc.reason, waits.delay_s(attempt)) from None


def keep_face(
    work: UnitOfWork, snapshot_id: str, face: DetectedFace, crop_sha256: str, matches: list[FaceMatch], now: datetime
) -> None:
    """A face of a picture with its crop and its matches (never its descriptor: see docs/product.md)."""
    work.snapshots.record_file(crop_sha256, kind="crop", content_type="image/jpeg", size_bytes=len(face.crop), now=now)
    work.snapshots.add_face(
        Face(
            id=f"F-{secrets.token_hex(5)}",
            snapshot_id=snapshot_id,
            box=list(face.box),
            quality=round(face.quality, 3),
            in_customer_zone=True,
            crop_sha256=crop_sha256,
        ),
        [(m.person_id, round(m.similarity, 1)) for m in matches],
    )

"""Which evidence files rows still refer to, so retention and erasure delete only what nothing needs.

Files are content-addressed: one crop may be a checkout face's crop and an enrollment photo at
once. A file is deleted only when no snapshot, face, enrolled face or outbox message names it.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from storage.models import EvidenceFile, Face, OutboxMessage, Snapshot, WatchlistFace

_REFERENCES = (
    Snapshot.evidence_sha256,
    Face.crop_sha256,
    WatchlistFace.enrollment_image_sha256,
    OutboxMessage.file_sha256,
)


def unreferenced(session: Session, candidates: Iterable[str]) -> list[tuple[str, str]]:
    """(sha256, content type) of the candidate files no row refers to any more."""
    wanted = {c for c in candidates if c}
    if not wanted:
        return []
    used: set[str] = set()
    for column in _REFERENCES:
        used.update(session.scalars(select(column).where(column.in_(wanted))))
    free = wanted - used
    rows = session.execute(select(EvidenceFile.sha256, EvidenceFile.content_type).where(EvidenceFile.sha256.in_(free)))
    known = dict(rows.all())
    # A file with no row (a crash between writing it and recording it) is still ours to delete.
    return [(sha, known.get(sha, "image/jpeg")) for sha in sorted(free)]


def forget_files(session: Session, digests: Iterable[str]) -> None:
    """Delete the evidence rows (the caller deletes the files themselves)."""
    names = list(digests)
    if names:
        session.execute(delete(EvidenceFile).where(EvidenceFile.sha256.in_(names)))


def mark_enrollment(session: Session, digest: str) -> None:
    """A crop chosen for enrollment is kept as the enrollment photo (to rebuild a backend's collection)."""
    file = session.get(EvidenceFile, digest)
    if file is not None:
        file.kind = "enrollment"


class EvidenceRefs:
    """Which evidence files rows still need, for one unit of work (``uow.evidence_refs``)."""

    def __init__(self, session: Session):
        self._session = session

    def unreferenced(self, candidates: Iterable[str]) -> list[tuple[str, str]]:
        return unreferenced(self._session, candidates)

    def forget_files(self, digests: Iterable[str]) -> None:
        forget_files(self._session, digests)

    def mark_enrollment(self, digest: str) -> None:
        mark_enrollment(self._session, digest)

"""Snapshots, their evidence files, the faces found in them and the watchlist scope they are searched against."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from storage.models import EvidenceFile, Face, FaceMatch, Snapshot, WatchlistPerson


class SnapshotRepository:
    def __init__(self, session: Session):
        self._session = session

    def face(self, face_id: str) -> Face | None:
        return self._session.get(Face, face_id)

    def get(self, snapshot_id: str) -> Snapshot | None:
        return self._session.get(Snapshot, snapshot_id)

    def of_transaction(self, transaction_id: str, kind: str) -> Snapshot | None:
        query = select(Snapshot).where(Snapshot.transaction_id == transaction_id, Snapshot.kind == kind)
        return self._session.scalar(query)

    def add(self, snapshot: Snapshot) -> None:
        self._session.add(snapshot)
        self._session.flush()

    def record_file(self, sha256: str, *, kind: str, content_type: str, size_bytes: int, now: datetime) -> None:
        """One row per stored file; the same content stored twice is one file and one row."""
        if self._session.get(EvidenceFile, sha256) is None:
            self._session.add(
                EvidenceFile(sha256=sha256, kind=kind, content_type=content_type, size_bytes=size_bytes, created_at=now)
            )
            self._session.flush()

    def file(self, sha256: str) -> EvidenceFile | None:
        return self._session.get(EvidenceFile, sha256)

    def add_face(self, face: Face, matches: list[tuple[str, float]]) -> None:
        self._session.add(face)
        for person_id, similarity in matches:
            face.matches.append(FaceMatch(person_id=person_id, similarity=similarity))
        self._session.flush()

    def watchlist_scope(self, store_id: str, region_id: str | None, *, regional: bool, now: datetime) -> list[str]:
        """Active, unexpired watchlist people whose faces apply at this store (its own, or its region's when shared)."""
        scope = WatchlistPerson.store_id == store_id
        if regional and region_id is not None:
            scope = or_(scope, WatchlistPerson.region_id == region_id)
        query = select(WatchlistPerson.id).where(
            scope, WatchlistPerson.status == "active", WatchlistPerson.expires_at > now
        )
        return list(self._session.scalars(query))

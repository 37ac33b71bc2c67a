"""Watchlist entries as governance sees them: enrolment, listing, expiry, precision and erasure.

The local backend's gallery (descriptors only) is ``storage/watchlist.py``; this module owns the
rows people decide about. Erasure deletes rows here and hands back the evidence files that were
the person's, for the caller to delete from disk once nothing else refers to them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.orm import Session, selectinload

from storage.models import Alert, Face, FaceMatch, WatchlistFace, WatchlistPerson
from storage.rows import rows_affected

LISTED = ("enrolling", "pending_approval", "active")  # what `watchlist` shows; ended entries only by id
LIVE = LISTED  # entries that can still expire


class WatchlistRepository:
    def __init__(self, session: Session):
        self._session = session

    def get(self, person_id: str) -> WatchlistPerson | None:
        return self._session.get(WatchlistPerson, person_id)

    def add(self, person: WatchlistPerson, face: WatchlistFace) -> None:
        self._session.add(person)
        self._session.flush()  # the person first: the face refers to it
        self._session.add(face)
        self._session.flush()

    def face(self, face_id: str) -> WatchlistFace | None:
        return self._session.get(WatchlistFace, face_id)

    def enrolled_from(self, photo_sha256: str) -> WatchlistFace | None:
        """The enrolled face made from this crop, if any entry still holds it (to refuse enrolling it twice)."""
        query = (
            select(WatchlistFace)
            .join(WatchlistPerson)
            .where(WatchlistFace.enrollment_image_sha256 == photo_sha256, WatchlistPerson.status.in_(LISTED))
        )
        return self._session.scalars(query).first()

    def listed(self, store_ids: Iterable[str], region_ids: Iterable[str] = ()) -> list[WatchlistPerson]:
        """Entries enrolled at these stores, or shared in these regions, newest first, faces loaded."""
        scope: ColumnElement[bool] = WatchlistPerson.store_id.in_(list(store_ids))
        regions = list(region_ids)
        if regions:
            scope = or_(scope, WatchlistPerson.region_id.in_(regions))
        query = (
            select(WatchlistPerson)
            .where(scope, WatchlistPerson.status.in_(LISTED))
            .order_by(WatchlistPerson.enrolled_at.desc(), WatchlistPerson.id)
            .options(selectinload(WatchlistPerson.faces))
        )
        return list(self._session.scalars(query))

    def due_to_expire(self, now: datetime, *, limit: int = 200) -> list[WatchlistPerson]:
        query = (
            select(WatchlistPerson)
            .where(WatchlistPerson.status.in_(LIVE), WatchlistPerson.expires_at <= now)
            .order_by(WatchlistPerson.expires_at)
            .limit(limit)
        )
        return list(self._session.scalars(query))

    def ended_before(self, cutoff: datetime, *, limit: int) -> list[WatchlistPerson]:
        """Expired or removed entries whose end lies before ``cutoff`` (retention erases them)."""
        query = (
            select(WatchlistPerson)
            .where(WatchlistPerson.status.in_(("expired", "removed")), WatchlistPerson.expires_at < cutoff)
            .limit(limit)
        )
        return list(self._session.scalars(query))

    def backend_face_ids(self, person_id: str) -> list[str]:
        query = select(WatchlistFace.backend_face_id).where(
            WatchlistFace.person_id == person_id, WatchlistFace.backend_face_id.is_not(None)
        )
        return list(self._session.scalars(query))

    def clear_templates(self, person_id: str) -> int:
        """Drop descriptors and backend face ids (the backend has forgotten them); photos stay for the record."""
        result = self._session.execute(
            update(WatchlistFace)
            .where(WatchlistFace.person_id == person_id)
            .values(descriptor=None, backend_face_id=None)
        )
        return int(rows_affected(result) or 0)

    def precision(
        self,
        person_ids: Iterable[str] | None = None,
        *,
        store_ids: Iterable[str] | None = None,
        since: datetime | None = None,
    ) -> dict[str, tuple[int, int]]:
        """Per person: (confirmed, decided) alerts that named them. Open alerts are not counted."""
        query = (
            select(Alert.person_id, Alert.status, func.count())
            .where(Alert.person_id.is_not(None), Alert.status.in_(("confirmed", "dismissed")))
            .group_by(Alert.person_id, Alert.status)
        )
        if person_ids is not None:
            query = query.where(Alert.person_id.in_(list(person_ids)))
        if store_ids is not None:
            query = query.where(Alert.store_id.in_(list(store_ids)))
        if since is not None:
            query = query.where(Alert.created_at >= since)
        result: dict[str, tuple[int, int]] = {}
        for person_id, status, n in self._session.execute(query):
            if person_id is None:  # excluded by the query (is_not(None)); for the type checker
                continue
            confirmed, decided = result.get(person_id, (0, 0))
            result[person_id] = (confirmed + (n if status == "confirmed" else 0), decided + n)
        return result

    def erase(self, person_id: str) -> set[str]:
        """Delete the person's rows and detach their crops; return the evidence files that were theirs.

        Theirs: the enrollment photos and the crops of every checkout face matched to them. The
        checkout pictures themselves stay (they are the transaction's evidence, under retention)."""
        photos = set(
            self._session.scalars(
                select(WatchlistFace.enrollment_image_sha256).where(WatchlistFace.person_id == person_id)
            )
        )
        crops = {
            crop
            for crop in self._session.scalars(
                select(Face.crop_sha256)
                .join(FaceMatch, FaceMatch.face_id == Face.id)
                .where(FaceMatch.person_id == person_id, Face.crop_sha256.is_not(None))
            )
            if crop is not None  # (the query's condition too): a set of files, never of None
        }
        files = photos | crops
        if files:
            self._session.execute(update(Face).where(Face.crop_sha256.in_(files)).values(crop_sha256=None))
        self._session.execute(delete(FaceMatch).where(FaceMatch.person_id == person_id))
        self._session.execute(delete(WatchlistFace).where(WatchlistFace.person_id == person_id))
        self._session.execute(delete(WatchlistPerson).where(WatchlistPerson.id == person_id))
        self._session.expire_all()  # loaded objects of the person must not be flushed back
        return files

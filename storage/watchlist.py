"""The local backend's view of the watchlist: enrolled descriptors, and a cheap version that changes with them."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import func, select

from storage.db import Database
from storage.models import WatchlistFace


def gallery_rows(db: Database) -> Iterator[tuple[str, bytes]]:
    """(person id, descriptor) of every enrolled local face. Who may be matched where (status, expiry,
    store or region) is decided per search by the caller's person ids, not here."""
    with db.session(write=False) as session:
        query = select(WatchlistFace.person_id, WatchlistFace.descriptor).where(WatchlistFace.descriptor.is_not(None))
        rows = session.execute(query).all()
    # `is not None` as in the query, for the type checker: every row has a descriptor.
    return iter([(person_id, bytes(descriptor)) for person_id, descriptor in rows if descriptor is not None])


def gallery_version(db: Database) -> tuple[int, object]:
    """Changes on every enrollment (a newer face) and every erasure (fewer faces): one small query."""
    with db.session(write=False) as session:
        count, newest = session.execute(select(func.count(), func.max(WatchlistFace.created_at))).one()
    return int(count), newest

"""The steps that end watchlist entries: expiry (a periodic sweep), forgetting templates, erasure.

Backend first, then our rows, then the files (docs/services.md: disassociate faces / delete the
user, delete the faces, then your own records and photos). The backend call happens outside any
database transaction; a failure there leaves the rows in place, so the step simply runs again.
The audit log keeps the fact of each end with ids and reason codes only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from core.clock import Clock
from core.config import Config
from core.messenger import Messenger
from core.steps import StepKind
from handlers.conversation.threads import post_in_thread
from storage.evidence import EvidenceStore
from storage.models import WatchlistPerson
from storage.uow import UnitOfWork
from storage.work_queue import ClaimedItem
from vision.types import FaceBackend

log = logging.getLogger(__name__)
# An erasure (or a forgetting of templates) that died runs again this many times, this far apart, before a
# person must look: a biometric template must not stay on the backend because one run met an outage.
RUNS_AGAIN = 3
AGAIN_AFTER = timedelta(hours=6)


def erasure_anchor(person_id: str) -> str:
    return f"forget:{person_id}"


def job_expire_watchlist(
    item: ClaimedItem, *, uow: Callable[[], UnitOfWork], messenger: Messenger | None, config: Config, clock: Clock
) -> None:
    """Entries past their expiry stop matching, their templates are forgotten, and the store is told."""
    now = clock()
    with uow() as work:
        ended = []
        for person in work.watchlist.due_to_expire(now, limit=10_000):
            person.status = "expired"
            work.audit.record(
                at=now,
                actor="system",
                action="watchlist_expire",
                subject_type="watchlist",
                subject_id=person.id,
                store_id=person.store_id,
                reason_code="expired",
            )
            work.work.enqueue(kind=StepKind.FORGET_TEMPLATES, key=person.id, ref_id=person.id, run_at=now, now=now)
            _notice(work, person, messenger, config, now)
            ended.append(person.id)
        work.commit()
    if ended:
        log.info("watchlist entries expired: %s", ", ".join(ended))


def _notice(
    work: UnitOfWork, person: WatchlistPerson, messenger: Messenger | None, config: Config, now: datetime
) -> None:
    store = config.business.store(person.store_id)
    if messenger is None or store is None or not store.webex_room_id:
        return
    work.outbox.add(
        key=f"expired:{person.id}",
        room_id=store.webex_room_id,
        now=now,
        markdown=f"⌛ Watchlist entry **{person.id}** has expired and is no longer matched "
        f"(enrolled by {person.enrolled_by} for: {person.reason}). To watch for this person "
        "again, enroll a new picture after a new fraud report.",
    )


def job_forget_templates(
    item: ClaimedItem,
    *,
    read_uow: Callable[[], UnitOfWork],
    uow: Callable[[], UnitOfWork],
    faces: FaceBackend,
    clock: Clock,
) -> None:
    """An ended entry's faces leave the backend and its descriptors the database; its photos stay on record."""
    person_id = item.ref_id or ""
    with read_uow() as work:
        person = work.watchlist.get(person_id)
        if person is None or person.status not in ("removed", "expired"):
            return
        face_ids = work.watchlist.backend_face_ids(person_id)
    faces.forget(person_id, face_ids)
    with uow() as work:
        cleared = work.watchlist.clear_templates(person_id)
        work.audit.record(
            at=clock(),
            actor="system",
            action="watchlist_forget",
            subject_type="watchlist",
            subject_id=person_id,
            reason_code="templates_deleted",
        )
        work.commit()
    log.info("watchlist %s: %d template(s) forgotten", person_id, cleared)


def job_erase_person(
    item: ClaimedItem,
    *,
    read_uow: Callable[[], UnitOfWork],
    uow: Callable[[], UnitOfWork],
    faces: FaceBackend,
    evidence: EvidenceStore,
    config: Config,
    clock: Clock,
) -> None:
    """`forget <person>`: backend faces and user, descriptors, enrollment photos, matched crops, rows."""
    person_id = item.ref_id or ""
    with read_uow() as work:
        person = work.watchlist.get(person_id)
        if person is None:
            return
        face_ids = work.watchlist.backend_face_ids(person_id)
    faces.forget(person_id, face_ids)
    now = clock()
    with uow() as work:
        store_id = erase(work, evidence, person_id)
        work.audit.record(
            at=now,
            actor="system",
            action="erasure",
            subject_type="watchlist",
            subject_id=person_id,
            store_id=store_id,
            reason_code="forget",
        )
        post_in_thread(
            work,
            anchor_key=erasure_anchor(person_id),
            key=f"{erasure_anchor(person_id)}:done",
            now=now,
            markdown=f"🧹 **{person_id}** is erased: {len(face_ids)} face(s) removed from recognition, "
            "its enrollment photos, crops and entry deleted. The audit log keeps the fact, "
            "with ids only.",
            fallback_room=_room(config, store_id),
        )
        work.commit()
    log.info("watchlist %s erased (%d backend face id(s))", person_id, len(face_ids))


def settle_dead_erasure(work: UnitOfWork, item: ClaimedItem, error: str, now: datetime, *, config: Config) -> None:
    """`forget` must not silently stop: the erasure runs again later, and security is told in the request's thread.
    The entry stays ``removed`` meanwhile (never matched); ``error`` stays on the work item."""
    person = work.watchlist.get(item.ref_id or "")
    if person is not None:
        _again_or_report(work, item, person.id, person.store_id, "Erasing", config, now)


def settle_dead_forget(work: UnitOfWork, item: ClaimedItem, error: str, now: datetime, *, config: Config) -> None:
    """An ended entry whose templates could not be forgotten: as for an erasure, run again later and say so."""
    person = work.watchlist.get(item.ref_id or "")
    if person is not None and person.status in ("removed", "expired"):
        what = "Deleting from recognition the faces of"
        _again_or_report(work, item, person.id, person.store_id, what, config, now)


def _again_or_report(
    work: UnitOfWork, item: ClaimedItem, person_id: str, store_id: str, what: str, config: Config, now: datetime
) -> None:
    runs = work.work.count(kind=item.kind, ref_id=person_id)  # this one included
    again = runs <= RUNS_AGAIN
    if again:
        at = now + AGAIN_AFTER
        work.work.enqueue(kind=item.kind, key=f"{person_id}:again:{runs}", ref_id=person_id, run_at=at, now=now)
        next_step = f"trying again at {at:%H:%M} UTC"
    else:
        next_step = "it has stopped: an operator must look (`python -m bot work list`)"
    work.audit.record(
        at=now,
        actor="system",
        action=f"{item.kind}_failed",
        subject_type="watchlist",
        subject_id=person_id,
        store_id=store_id,
        reason_code="retrying" if again else "given_up",
    )
    post_in_thread(
        work,
        anchor_key=erasure_anchor(person_id),
        key=f"{erasure_anchor(person_id)}:{item.kind}:failed:{runs}",
        now=now,
        markdown=f"⚠️ {what} **{person_id}** did not finish (run {runs}, {item.attempts} attempt(s)); {next_step}. "
        "It is never matched meanwhile.",
        fallback_room=_room(config, store_id),
    )
    log.error("watchlist %s: %s did not finish (run %d); %s", person_id, item.kind, runs, next_step)


def _room(config: Config, store_id: str | None) -> str | None:
    store = config.business.store(store_id) if store_id else None
    return store.webex_room_id if store else None


def erase(work: UnitOfWork, evidence: EvidenceStore, person_id: str) -> str | None:
    """Delete the person's rows and every file that was theirs (the backend must have forgotten them first)."""
    person = work.watchlist.get(person_id)
    store_id = person.store_id if person else None
    photos = [f.enrollment_image_sha256 for f in person.faces] if person else []
    pictured = {t for photo in photos for t in work.lookback.transactions_pictured_by(photo)}
    # The numbered sheets posted with the proposals of those checkouts show the person's face too.
    sheets = {f for t in pictured for f in work.threads.detach_files(f"proposal:{t}")}
    drop_files(work, evidence, work.watchlist.erase(person_id) | sheets)
    return store_id


def drop_files(work: UnitOfWork, evidence: EvidenceStore, candidates: Iterable[str]) -> int:
    """Delete the candidate files nothing refers to any more: rows in this transaction, files on disk.

    The files go before the commit: should the commit fail, the rows that remain are deleted on the
    next run, whereas a file left behind by a crash after the commit would never be found again."""
    work.flush()
    free = work.evidence_refs.unreferenced(candidates)
    work.evidence_refs.forget_files([digest for digest, _ in free])
    for digest, content_type in free:
        evidence.delete(digest, content_type)
    return len(free)

"""Look-back: after an enrollment, find the person's earlier visits in the pictures still kept.

No descriptor of an unmatched shopper is stored (docs/product.md), so this re-scans the retained
pictures of the enrolling store (and of its region when the watchlist is shared) over
``enrollment.lookback_days``, a page at a time, at low priority: each page is a work item due a
little later than the checkout steps waiting now. Earlier visits are replied in the enrollment's
thread; the visit the enrollment is about is not one of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from core.clock import Clock
from core.config import Config
from core.steps import RetryLater, StepKind
from handlers.conversation.threads import post_in_thread
from storage import lookback
from storage.evidence import EvidenceMissing, EvidenceStore
from storage.models import Snapshot
from storage.uow import UnitOfWork
from storage.work_queue import ClaimedItem
from vision.image_prep import ImageRejected
from vision.types import Box, FaceBackend, RecognitionError

log = logging.getLogger(__name__)
DELAY_S = 10.0  # behind the checkout steps that are due now
PAGE = 20  # about this many pictures per step (whole hours of visits): one step stays well inside its lease


@dataclass(frozen=True)
class _Cursor:
    face_id: str
    since: int = 0  # where this page starts, Unix seconds; 0: the window's start
    scanned: int = 0
    found: int = 0

    @classmethod
    def parse(cls, ref: str) -> _Cursor:
        face_id, since, scanned, found = (ref.split("|") + ["0", "0", "0"])[:4]
        return cls(face_id, int(since or 0), int(scanned or 0), int(found or 0))

    def ref(self) -> str:
        return f"{self.face_id}|{self.since}|{self.scanned}|{self.found}"


@dataclass(frozen=True)
class _Picture:
    snapshot_id: str
    visit: str  # storage.lookback.visit_key
    sha256: str
    content_type: str
    zone: Box
    when: datetime
    where: str  # "Centro, reg-2, transaction T-0"
    timezone: str


@dataclass(frozen=True)
class _Page:
    person_id: str
    pictures: tuple[_Picture, ...]
    next_since: datetime | None  # where the next page starts; None: this is the last
    days: int
    room_id: str | None  # the enrolling store's space, when the enrollment was not asked in Webex


def schedule_lookback(work: UnitOfWork, face_id: str, now: datetime) -> None:
    work.work.enqueue(
        kind=StepKind.LOOKBACK, key=face_id, ref_id=face_id, run_at=now + timedelta(seconds=DELAY_S), now=now
    )


def job_lookback(
    item: ClaimedItem,
    *,
    read_uow: Callable[[], UnitOfWork],
    uow: Callable[[], UnitOfWork],
    faces: FaceBackend,
    evidence: EvidenceStore,
    config: Config,
    clock: Clock,
) -> None:
    cursor = _Cursor.parse(item.ref_id or "")
    with read_uow() as work:
        page = _page(work, cursor, config)
    if page is None:
        return
    visits: dict[str, tuple[_Picture, float]] = {}
    for picture in page.pictures:
        similarity = _similarity(picture, page.person_id, faces, evidence, config)
        if similarity is not None and similarity > visits.get(picture.visit, (picture, -1.0))[1]:
            visits[picture.visit] = (picture, similarity)
    now = clock()
    following = _Cursor(
        cursor.face_id,
        int(page.next_since.timestamp()) if page.next_since else cursor.since,
        cursor.scanned + len(page.pictures),
        cursor.found + len(visits),
    )
    with uow() as work:
        lines = [f"- {_local(p.when, p.timezone)}, {p.where} (similarity {s:.1f})" for p, s in visits.values()]
        if page.next_since is not None:
            work.work.enqueue(
                kind=StepKind.LOOKBACK,
                key=f"{cursor.face_id}:{following.since}",
                ref_id=following.ref(),
                run_at=now + timedelta(seconds=DELAY_S),
                now=now,
            )
        else:
            lines.append(_summary(page, following))
            work.audit.record(
                at=now,
                actor="system",
                action="watchlist_lookback",
                subject_type="watchlist",
                subject_id=page.person_id,
                reason_code="found" if following.found else "none",
            )
        if visits or page.next_since is None:
            heading = f"**Earlier visits of {page.person_id}**\n" if visits else ""
            post_in_thread(
                work,
                anchor_key=f"enroll:{cursor.face_id}",
                key=f"lookback:{cursor.face_id}:{cursor.since}",
                now=now,
                markdown=heading + "\n".join(lines),
                fallback_room=page.room_id,
            )
        work.commit()
    log.info("look-back for watchlist face %s: %d pictures, %d visits", cursor.face_id, len(page.pictures), len(visits))


def settle_dead_lookback(work: UnitOfWork, item: ClaimedItem, error: str, now: datetime, *, config: Config) -> None:
    """A look-back whose page step died ends there, said in the enrollment's thread with what it had scanned,
    so nobody waits for a "Look-back done" that never comes. ``error`` stays on the work item."""
    cursor = _Cursor.parse(item.ref_id or "")
    face = work.watchlist.face(cursor.face_id)
    if face is None or face.person.status != "active":
        return  # erased, removed or expired meanwhile: the step had nobody to look for
    person = face.person
    store = config.business.store(person.store_id)
    work.audit.record(
        at=now,
        actor="system",
        action="watchlist_lookback",
        subject_type="watchlist",
        subject_id=person.id,
        reason_code="step_failed",
    )
    post_in_thread(
        work,
        anchor_key=f"enroll:{cursor.face_id}",
        key=f"lookback:{cursor.face_id}:failed",
        now=now,
        markdown=f"⚠️ Look-back for {person.id} stopped: something went wrong after {cursor.scanned} picture(s) "
        f"({cursor.found} earlier visit(s) found before that). New visits are still matched as they happen.",
        fallback_room=store.webex_room_id if store else None,
    )


def _summary(page: _Page, total: _Cursor) -> str:
    if total.found:
        return f"Look-back done: {total.found} earlier visit(s) in {total.scanned} picture(s) of the last {page.days} days."
    return f"Look-back done: no earlier visit in {total.scanned} picture(s) of the last {page.days} days."


def _page(work: UnitOfWork, cursor: _Cursor, config: Config) -> _Page | None:
    face = work.watchlist.face(cursor.face_id)
    if face is None or face.person.status != "active":
        return None  # erased, removed or expired meanwhile: nobody to look for
    person, days = face.person, config.business.enrollment.lookback_days
    start = face.created_at - timedelta(days=days)
    since = max(start, datetime.fromtimestamp(cursor.since, UTC)) if cursor.since else start
    found, next_since = work.lookback.pictures(
        store_ids=_stores(config, person.store_id),
        since=since,
        until=face.created_at,
        skip_transactions=work.lookback.transactions_pictured_by(face.enrollment_image_sha256),
        limit=PAGE,
    )
    store = config.business.store(person.store_id)
    return _Page(
        person.id,
        tuple(_picture(work, s, config) for s in found),
        next_since,
        days,
        store.webex_room_id if store else None,
    )


def _stores(config: Config, store_id: str) -> list[str]:
    business = config.business
    store = business.store(store_id)
    region = next((r for r in business.regions if store and r.id == store.region), None)
    if region is None or not region.share_watchlist:
        return [store_id]
    return [s.id for s in business.stores if s.region == region.id]


def _picture(work: UnitOfWork, snapshot: Snapshot, config: Config) -> _Picture:
    store = config.business.store(snapshot.store_id)
    transaction = snapshot.transaction
    register = store.register(transaction.register_id) if store and transaction else None
    file = work.snapshots.file(snapshot.evidence_sha256 or "")
    where = f"{store.name if store else snapshot.store_id}, " + (
        f"{transaction.register_id}, transaction {transaction.transaction_id}" if transaction else "entrance"
    )
    return _Picture(
        snapshot.id,
        lookback.visit_key(snapshot),
        snapshot.evidence_sha256 or "",
        file.content_type if file else "image/jpeg",
        register.customer_zone if register else (0.0, 0.0, 1.0, 1.0),
        transaction.occurred_at if transaction else snapshot.created_at,
        where,
        store.timezone if store else "UTC",
    )


def _similarity(
    picture: _Picture, person_id: str, faces: FaceBackend, evidence: EvidenceStore, config: Config
) -> float | None:
    """The best similarity of a customer-zone face in the picture to the person, at the match threshold."""
    recognition = config.business.recognition
    try:
        found = faces.detect(evidence.read(picture.sha256, picture.content_type))
        best = None
        for face in found:
            cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
            zone = picture.zone
            if not (zone[0] <= cx <= zone[2] and zone[1] <= cy <= zone[3]) or face.size_px < recognition.min_face_px:
                continue  # the cashier's side, or too small to say
            for match in faces.search(face, person_ids=[person_id], min_similarity=recognition.match_threshold):
                best = max(best or 0.0, match.similarity)
        return best
    except (EvidenceMissing, ImageRejected):
        return None  # purged or unreadable since the page was read
    except RecognitionError as exc:
        if exc.retry:
            raise RetryLater(exc.reason, 60.0) from None
        log.info("look-back: picture %s not searched: %s", picture.snapshot_id, exc.reason)
        return None


def _local(moment: datetime, timezone: str) -> str:
    return f"{moment.astimezone(ZoneInfo(timezone)):%a %d %b %H:%M}"

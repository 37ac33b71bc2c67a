"""Enrollment: a manager picks a face with a reason and an expiry; a step enrolls it on the backend.

The press only records the decision (an entry ``enrolling``, or ``pending_approval`` under the
two-person rule, and the chosen crop as its enrollment photo) and leaves an anchor message in the
thread. The backend work happens in ``job_enroll_face``, outside any database transaction: the
quality gates on the stored crop, a search for an entry this face already is (it then joins that
entry instead of creating a duplicate), ``faces.enroll``, then the template is stored and the
entry activated. Person ids are opaque ("P-" and random hex), never names.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from cards.actions import ENROLL, INPUT_EXPIRY_DAYS, INPUT_FACE, INPUT_REASON, WATCHLIST_APPROVE
from cards.watchlist import watchlist_entry_card
from core.clock import Clock
from core.config import Config, EnrollmentConfig
from core.events import CardAction
from core.router import UserError, entry_stores, refuse_card_numbers, require_role, require_visible
from core.routes import router
from core.steps import RetryLater, StepKind, policy
from handlers.conversation.reply import Answer
from handlers.conversation.threads import open_thread, post_in_thread
from handlers.conversation.views import entry_view
from handlers.learning import gates
from handlers.learning.lookback import schedule_lookback
from handlers.learning.proposals import transaction_to_act_on
from storage.evidence import EvidenceMissing, EvidenceStore
from storage.models import Face, WatchlistFace, WatchlistPerson
from storage.rows import present
from storage.uow import UnitOfWork
from storage.work_queue import ClaimedItem
from vision.image_prep import ImageRejected
from vision.types import DetectedFace, EnrolledFace, FaceBackend, RecognitionError

log = logging.getLogger(__name__)


QUALITY_ADVICE = "Pick a larger, sharper, frontal face."


def anchor_key(face_id: str) -> str:
    """The thread message every later word about this enrollment (done, refused, look-back) goes beside."""
    return f"enroll:{face_id}"


@router.action(ENROLL, role="manager")
def act_enroll(
    press: CardAction, *, uow: UnitOfWork, reply: Answer, config: Config, faces: FaceBackend, now: datetime
) -> None:
    transaction = transaction_to_act_on(uow, str(press.data.get("transaction_id") or ""), config, press.person_email)
    rules = config.business.enrollment
    reason, days = _reason(press.data), _expiry_days(press.data, rules)
    face = _chosen_face(uow, press.data, transaction.transaction_id)
    already = uow.watchlist.enrolled_from(face.crop_sha256 or "")
    if already is not None:
        raise UserError(f"That face is already on the watchlist as {already.person_id}.")
    store = config.business.store(transaction.store_id)
    person = WatchlistPerson(
        id=f"P-{secrets.token_hex(4)}",
        store_id=transaction.store_id,
        region_id=store.region if store else None,
        status="pending_approval" if rules.two_person_rule else "enrolling",
        reason=reason,
        source_transaction_id=transaction.transaction_id,
        enrolled_by=press.person_email,
        enrolled_at=now,
        expires_at=now + timedelta(days=days),
    )
    photo = WatchlistFace(
        id=f"WF-{secrets.token_hex(5)}",
        person_id=person.id,
        backend=faces.name,
        enrollment_image_sha256=face.crop_sha256,
        created_at=now,
    )
    uow.watchlist.add(person, photo)
    uow.audit.record(
        at=now,
        actor=press.person_email,
        action="enroll_request",
        subject_type="watchlist",
        subject_id=person.id,
        store_id=person.store_id,
        reason_code=person.status,
    )
    if rules.two_person_rule:
        open_thread(
            uow,
            reply,
            key=anchor_key(photo.id),
            now=now,
            markdown=f"**{person.id}** waits for approval by a security person other than "
            f"{press.person_email} before it is enrolled.",
            card=watchlist_entry_card(entry_view(person, config), now=now),
        )
        return
    open_thread(
        uow,
        reply,
        key=anchor_key(photo.id),
        now=now,
        markdown=f"Enrolling the face from **{transaction.transaction_id}** as **{person.id}** for {days} days "
        f"(by {press.person_email}); I'll confirm here.",
    )
    _schedule(uow, photo.id, transaction.transaction_id, now)


@router.action(WATCHLIST_APPROVE, role="security")
def act_watchlist_approve(press: CardAction, *, uow: UnitOfWork, reply: Answer, config: Config, now: datetime) -> None:
    person = uow.watchlist.get(str(press.data.get("person_id") or ""))
    unknown = "That watchlist entry no longer exists."
    if person is None:
        raise UserError(unknown)
    require_visible(
        config.business, press.person_email, entry_stores(config.business, person.store_id, person.region_id), unknown
    )
    require_role(config.business, press.person_email, person.store_id, "security")
    if person.status != "pending_approval":
        approved = f" (approved by {person.approved_by})" if person.approved_by else ""
        reply(f"{person.id} is {person.status}{approved}; nothing to approve.")
        return
    if person.enrolled_by == press.person_email:
        uow.audit.record(
            at=now,
            actor=press.person_email,
            action="watchlist_approve",
            subject_type="watchlist",
            subject_id=person.id,
            store_id=person.store_id,
            reason_code="same_person",
            outcome="refused",
        )
        raise UserError(f"{person.id} needs a second person: whoever enrolls cannot also approve.")
    person.status, person.approved_by = "enrolling", press.person_email
    for face in person.faces:
        _schedule(uow, face.id, person.source_transaction_id, now)
    uow.audit.record(
        at=now,
        actor=press.person_email,
        action="watchlist_approve",
        subject_type="watchlist",
        subject_id=person.id,
        store_id=person.store_id,
        reason_code="approved",
    )
    reply(f"👍 **{person.id}** approved by {press.person_email}; enrolling it now.")


def _schedule(uow: UnitOfWork, face_id: str, transaction_id: str | None, now: datetime) -> None:
    uow.work.enqueue(
        kind=StepKind.ENROLL_FACE, key=face_id, transaction_id=transaction_id, ref_id=face_id, run_at=now, now=now
    )


def _reason(data: dict) -> str:
    reason = " ".join(str(data.get(INPUT_REASON) or "").split())
    if not reason:
        raise UserError("Please give the reason for enrolling (it is shown on every alert).")
    refuse_card_numbers(reason=data.get(INPUT_REASON))
    return reason[:500]


def _expiry_days(data: dict, rules: EnrollmentConfig) -> int:
    raw = data.get(INPUT_EXPIRY_DAYS)
    try:
        days = rules.default_expiry_days if raw in (None, "") else int(float(str(raw)))
    except ValueError:
        days = 0
    if not 1 <= days <= rules.max_expiry_days:
        raise UserError(f"The expiry must be 1 to {rules.max_expiry_days} days.")
    return days


def _chosen_face(uow: UnitOfWork, data: dict, transaction_id: str) -> Face:
    """The face picked on the card, checked to be one of this transaction's (the card's data is not trusted)."""
    listed = data.get("face_ids")
    face_ids = listed if isinstance(listed, dict) else {}
    face_id = str(face_ids.get(str(data.get(INPUT_FACE) or ""), ""))
    face = uow.snapshots.face(face_id) if face_id else None
    if face is None or face.snapshot.transaction_id != transaction_id:
        raise UserError(f"Please pick one of the faces on the card (or ask again with `enroll {transaction_id}`).")
    if face.crop_sha256 is None:
        raise UserError("That face's picture is no longer kept, so it cannot be enrolled.")
    return face


@dataclass(frozen=True)
class _Todo:
    face_id: str
    person_id: str
    store_id: str
    photo_sha256: str
    content_type: str
    scope: tuple[str, ...]  # entries this face may already be


def job_enroll_face(
    item: ClaimedItem,
    *,
    read_uow: Callable[[], UnitOfWork],
    uow: Callable[[], UnitOfWork],
    faces: FaceBackend,
    evidence: EvidenceStore,
    config: Config,
    clock: Clock,
) -> None:
    with read_uow() as work:
        todo = _todo(work, item.ref_id or "", config, clock())
    if todo is None:
        return
    try:
        crop = evidence.read(todo.photo_sha256, todo.content_type)
        result = gates.check(faces.detect(crop), config.business.enrollment)
        if result.problem is not None:
            _refuse(uow, todo, result.problem, result.code or "quality", config, clock)
            return
        face = result.face
        if face is None:  # gates.check always names the face it judged once every gate has passed
            raise ValueError(f"enrollment of face {todo.face_id}: the gates passed without a face")
        target = _existing_entry(faces, face, todo, config)
        enrolled = faces.enroll(target[0] if target else todo.person_id, face)
    except EvidenceMissing:
        _refuse(uow, todo, "its picture is no longer kept", "picture_gone", config, clock)
        return
    except ImageRejected as exc:
        _refuse(uow, todo, str(exc), "unreadable", config, clock)
        return
    except RecognitionError as exc:
        # A busy backend is retried as the policy says, then the enrollment is refused with its reason.
        if exc.retry and not policy(StepKind.ENROLL_FACE).gives_up(item.attempts):
            raise RetryLater(exc.reason, policy(StepKind.ENROLL_FACE).delay_s(item.attempts)) from None
        _refuse(uow, todo, exc.reason, "backend_refused", config, clock)
        return
    if not _store(uow, todo, enrolled, target, faces.name, config, clock) and target is None:
        faces.forget(todo.person_id, [enrolled.backend_face_id] if enrolled.backend_face_id else [])


def _todo(work: UnitOfWork, face_id: str, config: Config, now: datetime) -> _Todo | None:
    face = work.watchlist.face(face_id)
    if face is None or face.descriptor is not None or face.backend_face_id is not None:
        return None  # erased meanwhile, or already enrolled
    person = face.person
    if person.status != "enrolling":
        return None  # removed or forgotten before the backend was asked
    store = config.business.store(person.store_id)
    region = next((r for r in config.business.regions if store and r.id == store.region), None)
    scope = work.snapshots.watchlist_scope(
        person.store_id, person.region_id, regional=bool(region and region.share_watchlist), now=now
    )
    file = work.snapshots.file(face.enrollment_image_sha256)
    return _Todo(
        face.id,
        person.id,
        person.store_id,
        face.enrollment_image_sha256,
        file.content_type if file else "image/jpeg",
        tuple(p for p in scope if p != person.id),
    )


def _existing_entry(faces: FaceBackend, face: DetectedFace, todo: _Todo, config: Config) -> tuple[str, float] | None:
    """An active entry this face already is (at the match threshold): enrolling it again would split a person in two."""
    if not todo.scope:
        return None
    matches = faces.search(face, person_ids=todo.scope, min_similarity=config.business.recognition.match_threshold)
    return (matches[0].person_id, matches[0].similarity) if matches else None


def _store(
    uow: Callable[[], UnitOfWork],
    todo: _Todo,
    enrolled: EnrolledFace,
    target: tuple[str, float] | None,
    backend: str,
    config: Config,
    clock: Clock,
) -> bool:
    """Keep the template and activate; False when the entry was removed or erased while the backend worked."""
    now = clock()
    with uow() as work:
        face, person = work.watchlist.face(todo.face_id), work.watchlist.get(todo.person_id)
        if face is None or person is None or person.status != "enrolling":
            # Undone on the backend by the caller; a face added to another entry can only be named here.
            log.warning(
                "watchlist face %s: its entry changed while enrolling (backend face %s, person %s)",
                todo.face_id,
                enrolled.backend_face_id,
                target[0] if target else todo.person_id,
            )
            work.commit()
            return False
        face.descriptor, face.backend_face_id, face.backend = enrolled.descriptor, enrolled.backend_face_id, backend
        face.created_at = now  # the gallery's version moves, so every process reloads the new descriptor
        work.evidence_refs.mark_enrollment(face.enrollment_image_sha256)
        store = config.business.store(person.store_id)
        zone = store.timezone if store else "UTC"
        if target is None:
            person.status = "active"
            work.audit.record(
                at=now,
                actor=person.enrolled_by,
                action="watchlist_enroll",
                subject_type="watchlist",
                subject_id=person.id,
                store_id=person.store_id,
                reason_code="active",
            )
            text = (
                f"✅ **{person.id}** is on the watchlist until {_date(person.expires_at, zone)}. "
                f"Reason: {person.reason}"
            )
        else:
            text = _merge(work, face, person, target, now, zone)
        days = config.business.enrollment.lookback_days
        if days:
            text += f"\nLooking back over the last {days} days of pictures for earlier visits…"
            schedule_lookback(work, face.id, now)
        post_in_thread(
            work,
            anchor_key=anchor_key(face.id),
            key=f"enroll:{face.id}:done",
            now=now,
            markdown=text,
            fallback_room=store.webex_room_id if store else None,
        )
        work.commit()
    log.info("watchlist face %s enrolled for person %s", todo.face_id, target[0] if target else todo.person_id)
    return True


def _merge(
    work: UnitOfWork, face: WatchlistFace, person: WatchlistPerson, target: tuple[str, float], now: datetime, zone: str
) -> str:
    """The face joins the entry it already is; the request's own entry (with no other face) goes."""
    # The search that found the entry ran in this step; entries go only by someone's removal or expiry.
    existing = present(work.watchlist.get(target[0]), f"watchlist entry {target[0]}")
    existing.faces.append(face)
    existing.expires_at = max(existing.expires_at, person.expires_at)
    work.flush()
    work.delete(person)
    work.audit.record(
        at=now,
        actor=person.enrolled_by,
        action="watchlist_merge",
        subject_type="watchlist",
        subject_id=existing.id,
        store_id=existing.store_id,
        reason_code="duplicate",
    )
    return (
        f"This face is already on the watchlist as **{existing.id}** ({target[1]:.1f}): it was added to that "
        f"entry instead of creating a second one ({person.id} is not kept). {existing.id} now expires "
        f"{_date(existing.expires_at, zone)}."
    )


def _refuse(uow: Callable[[], UnitOfWork], todo: _Todo, problem: str, code: str, config: Config, clock: Clock) -> None:
    with uow() as work:
        refuse(work, todo.face_id, todo.person_id, todo.store_id, problem, code, config, clock(), advice=QUALITY_ADVICE)
        work.commit()
    log.info("watchlist face %s of %s refused: %s", todo.face_id, todo.person_id, code)


def settle_dead_enrollment(work: UnitOfWork, item: ClaimedItem, error: str, now: datetime, *, config: Config) -> None:
    """An enrollment whose step died is refused as the step refuses one, so it never stays ``enrolling``.
    ``error`` stays on the work item only: it may name a URL or a backend's internals."""
    face = work.watchlist.face(item.ref_id or "")
    if face is None or face.descriptor is not None or face.person.status != "enrolling":
        return  # erased, enrolled or removed meanwhile: nothing waits on this step
    problem = f"something went wrong while enrolling (tried {item.attempts} time(s))"
    person = face.person
    refuse(work, face.id, person.id, person.store_id, problem, "step_failed", config, now, advice="")


def refuse(
    work: UnitOfWork,
    face_id: str,
    person_id: str,
    store_id: str,
    problem: str,
    code: str,
    config: Config,
    now: datetime,
    *,
    advice: str,
) -> None:
    """The face (and its entry, when it has no other) goes, the refusal is audited and told in the thread."""
    face, person = work.watchlist.face(face_id), work.watchlist.get(person_id)
    transaction_id = person.source_transaction_id if person else None
    if face is not None:
        work.delete(face)
    if person is not None and len([f for f in person.faces if f.id != face_id]) == 0:
        work.delete(person)
    work.audit.record(
        at=now,
        actor="system",
        action="enroll_refused",
        subject_type="watchlist",
        subject_id=person_id,
        store_id=store_id,
        reason_code=code,
    )
    again = f"Ask for a new proposal with `enroll {transaction_id}`." if transaction_id else ""
    store = config.business.store(store_id)
    post_in_thread(
        work,
        anchor_key=anchor_key(face_id),
        key=f"enroll:{face_id}:done",
        now=now,
        markdown=" ".join(part for part in (f"❌ Not enrolled: {problem}.", advice, again) if part),
        fallback_room=store.webex_room_id if store else None,
    )


def _date(moment: datetime, timezone: str) -> str:
    return f"{moment.astimezone(ZoneInfo(timezone)):%d %b %Y}"

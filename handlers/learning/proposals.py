"""Enrollment proposals: the faces of a checkout offered on a card, numbered, with their quality.

A fraud report (webhook, `fraud`, Confirm) leads to one proposal per transaction, threaded under
the alert's card when there was one; `enroll <transaction>` and the Enroll button ask for one on
demand, in their own thread. Each stored crop is looked at again by the backend (outside any
database transaction) for the quality gates and for a resemblance to someone already enrolled.
Nothing is enrolled here: a person picks the face (handlers/learning/enrollment.py).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime

from cards.actions import ENROLL_PROPOSAL
from cards.enrollment import enrollment_card
from cards.views import ProposedFace, Resemblance
from core.clock import Clock
from core.config import Config
from core.events import CardAction, ChatCommand
from core.messenger import Messenger
from core.router import UserError, require_role, require_visible
from core.routes import router
from core.steps import RetryLater, StepKind, policy
from handlers.conversation.reply import Answer
from handlers.conversation.threads import open_thread, post_under
from handlers.learning import gates
from handlers.learning.proposal_plan import Candidate, ProposalPlan, plan_proposal, proposal_view
from storage.evidence import EvidenceMissing, EvidenceStore
from storage.models import OutboxMessage, Transaction
from storage.rows import MissingRow
from storage.uow import UnitOfWork
from storage.work_queue import ClaimedItem
from vision.contact_sheet import contact_sheet
from vision.image_prep import ImageRejected
from vision.types import FaceBackend, RecognitionError

log = logging.getLogger(__name__)
CROP_GONE = "its picture is no longer kept"
TRANSACTION_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def job_fraud_report(
    item: ClaimedItem,
    *,
    read_uow: Callable[[], UnitOfWork],
    uow: Callable[[], UnitOfWork],
    messenger: Messenger | None,
    faces: FaceBackend,
    evidence: EvidenceStore,
    config: Config,
    clock: Clock,
) -> None:
    """One proposal per reported transaction, however many reports (sources) arrive for it."""
    _propose(
        item,
        key=_keys(item)[0],
        anchor_key=None,
        read_uow=read_uow,
        uow=uow,
        messenger=messenger,
        faces=faces,
        evidence=evidence,
        config=config,
        clock=clock,
    )


def job_propose_enrollment(
    item: ClaimedItem,
    *,
    read_uow: Callable[[], UnitOfWork],
    uow: Callable[[], UnitOfWork],
    messenger: Messenger | None,
    faces: FaceBackend,
    evidence: EvidenceStore,
    config: Config,
    clock: Clock,
) -> None:
    """A proposal asked for by a person: answered in the thread of their request."""
    key, anchor_key = _keys(item)
    _propose(
        item,
        key=key,
        anchor_key=anchor_key,
        read_uow=read_uow,
        uow=uow,
        messenger=messenger,
        faces=faces,
        evidence=evidence,
        config=config,
        clock=clock,
    )


def _keys(item: ClaimedItem) -> tuple[str, str | None]:
    """The proposal's outbox key and the anchor it answers beside: a report's has none, a request's is its answer."""
    if item.kind == StepKind.FRAUD_REPORT:
        return f"proposal:{item.transaction_id}", None
    return f"proposal:{item.transaction_id}:{item.ref_id}", f"proposal-ask:{item.ref_id}"


def settle_dead_proposal(work: UnitOfWork, item: ClaimedItem, error: str, now: datetime, *, config: Config) -> None:
    """A proposal whose step died is answered where the proposal would have gone, with the way to ask again,
    so a fraud report or a request never ends in silence. ``error`` stays on the work item."""
    key, anchor_key = _keys(item)
    if work.outbox.by_key(key) is not None:
        return  # the proposal went out (the step died after that)
    plan = plan_proposal(work, item.transaction_id or "", config, now)
    anchor = _anchor(work, anchor_key, plan)
    room = anchor.room_id if anchor is not None else plan.room_id if plan is not None else None
    if plan is None or room is None:
        return  # purged meanwhile, or nowhere to say it (the console shows the faces itself)
    text = (
        f"⚠️ No enrollment proposal for **{plan.transaction_id}**: something went wrong looking at its faces "
        f"(tried {item.attempts} time(s)). Ask again with `enroll {plan.transaction_id}`."
    )
    _put(work, anchor, key=f"{key}:failed", room_id=room, now=now, markdown=text)
    work.audit.record(
        at=now,
        actor="system",
        action="enroll_proposal",
        subject_type="transaction",
        subject_id=plan.transaction_id,
        store_id=plan.store_id,
        reason_code="step_failed",
    )


@router.action(ENROLL_PROPOSAL, role="manager")
def act_enroll_proposal(press: CardAction, *, uow: UnitOfWork, reply: Answer, config: Config, now: datetime) -> None:
    transaction = transaction_to_act_on(uow, str(press.data.get("transaction_id") or ""), config, press.person_email)
    _ask(uow, reply, transaction, press.event_id, press.person_email, now)


@router.command(
    "enroll", role="manager", usage="enroll <transaction>", summary="offer a checkout's faces for enrollment"
)
def cmd_enroll(cmd: ChatCommand, *, uow: UnitOfWork, reply: Answer, config: Config, now: datetime) -> None:
    if len(cmd.args) != 1:
        raise UserError("Usage: `enroll <transaction id>`.")
    transaction = transaction_to_act_on(uow, cmd.args[0], config, cmd.person_email)
    _ask(uow, reply, transaction, cmd.event_id, cmd.person_email, now)


def transaction_to_act_on(uow: UnitOfWork, transaction_id: str, config: Config, email: str) -> Transaction:
    """The transaction, if it exists and the person is a manager (or more) at its store."""
    found = uow.transactions.get(transaction_id) if TRANSACTION_ID.match(transaction_id) else None
    unknown = f"I know no transaction `{transaction_id}` (never received, or purged)."
    if found is None:
        raise UserError(unknown)
    require_visible(config.business, email, found.store_id, unknown)
    require_role(config.business, email, found.store_id, "manager")
    return found


def _ask(uow: UnitOfWork, reply: Answer, transaction: Transaction, event_id: str, email: str, now: datetime) -> None:
    """Answer at once (the anchor the proposal will thread beside), and leave the looking to a step."""
    open_thread(
        uow,
        reply,
        key=f"proposal-ask:{event_id}",
        now=now,
        markdown=f"Looking at the faces of **{transaction.transaction_id}** for an enrollment proposal…",
    )
    uow.work.enqueue(
        kind=StepKind.PROPOSE_ENROLLMENT,
        key=event_id,
        transaction_id=transaction.transaction_id,
        ref_id=event_id,
        run_at=now,
        now=now,
    )
    uow.audit.record(
        at=now,
        actor=email,
        action="enroll_proposal_request",
        subject_type="transaction",
        subject_id=transaction.transaction_id,
        store_id=transaction.store_id,
    )


def _propose(
    item: ClaimedItem,
    *,
    key: str,
    anchor_key: str | None,
    read_uow: Callable[[], UnitOfWork],
    uow: Callable[[], UnitOfWork],
    messenger: Messenger | None,
    faces: FaceBackend,
    evidence: EvidenceStore,
    config: Config,
    clock: Clock,
) -> None:
    if messenger is None:
        return  # Webex off: the console reads fraud reports and faces from the database
    with read_uow() as work:
        if work.outbox.by_key(key) is not None:
            return
        plan = plan_proposal(work, item.transaction_id or "", config, clock())
        anchor = _anchor(work, anchor_key, plan)
    if plan is None:
        return
    if anchor is None and plan.room_id is None:
        log.info(
            "transaction %s: no Webex space for store %s; no enrollment proposal", plan.transaction_id, plan.store_id
        )
        return
    # Wait a few times for pictures still being analysed, then propose what there is.
    if plan.waiting and not policy(StepKind.PROPOSE_ENROLLMENT).gives_up(item.attempts):
        raise RetryLater("the checkout's pictures are still being analysed", 60.0)
    offered = tuple(assess_face(c, plan, faces, evidence, config) for c in plan.candidates)
    sheet = contact_sheet([(c.number, crop) for c in plan.candidates if (crop := _crop(c, evidence)) is not None])
    picture = (evidence.put(sheet, "image/jpeg"), len(sheet)) if sheet is not None else None
    now = clock()
    with uow() as work:
        anchor = work.outbox.get(anchor.id) if anchor is not None else None
        room = anchor.room_id if anchor is not None else plan.room_id
        if room is None:  # the anchor was there when read above, and is gone now (retention)
            raise MissingRow(
                f"transaction {plan.transaction_id}: its thread anchor, and store {plan.store_id} has no space"
            )
        _post(work, anchor, room, key, plan, offered, picture, config, now)
        work.audit.record(
            at=now,
            actor="system",
            action="enroll_proposal",
            subject_type="transaction",
            subject_id=plan.transaction_id,
            store_id=plan.store_id,
            reason_code="nothing_to_offer" if plan.gone else "offered",
        )
        work.commit()
    log.info(
        "enrollment proposal for transaction %s: %d face(s), %d offered",
        plan.transaction_id,
        len(offered),
        sum(1 for f in offered if f.problem is None),
    )


def _anchor(work: UnitOfWork, anchor_key: str | None, plan: ProposalPlan | None) -> OutboxMessage | None:
    """Where the proposal goes: beside the request's answer, else under the alert's card (None: the store's space)."""
    for key in (anchor_key, plan.alert_card_key if plan else None):
        found = work.outbox.by_key(key) if key else None
        if found is not None:
            return found
    return None


def assess_face(
    candidate: Candidate,
    plan: ProposalPlan,
    faces: FaceBackend,
    evidence: EvidenceStore,
    config: Config,
    *,
    retry_later: bool = True,
) -> ProposedFace:
    """The face as the backend sees it in its crop now: the gates, and who it may already be.

    A background step waits out a recognition outage (``retry_later``); a person waiting in the
    console is told the reason instead."""
    crop = _crop(candidate, evidence)
    if crop is None:
        return ProposedFace(candidate.number, candidate.face_id, 0.0, 0, 0.0, problem=CROP_GONE)
    try:
        result = gates.check(faces.detect(crop), config.business.enrollment)
        resembles = None
        if result.face is not None and plan.scope:
            matches = faces.search(
                result.face, person_ids=plan.scope, min_similarity=config.business.recognition.review_threshold
            )
            resembles = Resemblance(matches[0].person_id, round(matches[0].similarity, 1)) if matches else None
    except RecognitionError as exc:
        if exc.retry and retry_later:
            raise RetryLater(exc.reason, 60.0) from None
        return ProposedFace(candidate.number, candidate.face_id, 0.0, 0, 0.0, problem=exc.reason)
    except ImageRejected as exc:
        return ProposedFace(candidate.number, candidate.face_id, 0.0, 0, 0.0, problem=str(exc))
    face = result.face
    return ProposedFace(
        candidate.number,
        candidate.face_id,
        round(face.quality, 2) if face else 0.0,
        face.size_px if face else 0,
        round(face.sharpness, 2) if face else 0.0,
        resembles=resembles,
        problem=result.problem,
    )


def _crop(candidate: Candidate, evidence: EvidenceStore) -> bytes | None:
    if candidate.crop_sha256 is None:
        return None
    try:
        return evidence.read(candidate.crop_sha256, candidate.content_type)
    except EvidenceMissing:
        return None


def _post(
    work: UnitOfWork,
    anchor: OutboxMessage | None,
    room_id: str,
    key: str,
    plan: ProposalPlan,
    offered: tuple[ProposedFace, ...],
    picture: tuple[str, int] | None,
    config: Config,
    now: datetime,
) -> None:
    """The card (or the plain reason there is nothing to offer), then the numbered crops beside it."""
    if plan.gone or all(face.problem == CROP_GONE for face in offered):
        text = f"Enrollment for **{plan.transaction_id}**: {plan.gone or 'its pictures are no longer kept.'}"
        _put(work, anchor, key=key, room_id=room_id, now=now, markdown=text + " There is no face to enroll.")
        return
    usable = sum(1 for face in offered if face.problem is None)
    view = proposal_view(plan, offered, config, with_sheet=picture is not None)
    proposal = _put(
        work,
        anchor,
        key=key,
        room_id=room_id,
        now=now,
        card=enrollment_card(view),
        markdown=f"**Enrollment proposal** for {plan.transaction_id}: {usable} of {len(offered)} "
        "face(s) can be enrolled; pick one on the card.",
    )
    if picture is not None:
        digest, size = picture
        # A picture of faces: kept as a crop, so it follows the snapshot retention (and erasure).
        work.snapshots.record_file(digest, kind="crop", content_type="image/jpeg", size_bytes=size, now=now)
        post_under(
            work,
            anchor or proposal,
            key=f"{key}:sheet",
            now=now,
            markdown=f"The faces of {plan.transaction_id}, numbered as on the proposal.",
            file={"sha256": digest, "content_type": "image/jpeg", "name": f"{plan.transaction_id}-faces.jpg"},
        )


def _put(
    work: UnitOfWork,
    anchor: OutboxMessage | None,
    *,
    key: str,
    room_id: str,
    now: datetime,
    markdown: str,
    card: dict | None = None,
) -> OutboxMessage:
    if anchor is not None:
        return post_under(work, anchor, key=key, now=now, markdown=markdown, card=card)
    return work.outbox.add(key=key, room_id=room_id, now=now, markdown=markdown, card=card)

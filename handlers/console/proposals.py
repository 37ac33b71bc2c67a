"""Enrollment proposals in the console: the card Webex gets (plan_proposal, the quality gates, enrollment_card),
answered in the thread when someone presses "Enroll a face" in the console.

The proposal step (handlers/learning/proposals.py) posts to Webex only; the console makes its own, from the
same plan and gates, after the press has been handled and committed (the face backend looks at each
crop, which takes a moment: never inside the writer's transaction). The crops are shown through
the console, behind its session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from cards.enrollment import enrollment_card
from core.config import Config
from core.steps import StepKind
from handlers.console.presses import SOURCE
from handlers.learning.proposal_plan import ProposalPlan, plan_proposal, proposal_view
from handlers.learning.proposals import assess_face
from storage.db import Database
from storage.evidence import EvidenceStore
from storage.uow import UnitOfWork
from vision.types import FaceBackend


def answer_request(
    event_id: str,
    *,
    db: Database,
    faces: FaceBackend,
    evidence: EvidenceStore,
    config: Config,
    now: datetime,
    crop_url: Callable[[str], str],
) -> dict[str, Any] | None:
    """If this console press asked for a proposal (the handler queued one), add the proposal to its thread."""
    with UnitOfWork(db) as work:
        asked = work.work.first(kind=StepKind.PROPOSE_ENROLLMENT, ref_id=event_id)
        plan = plan_proposal(work, asked.transaction_id or "", config, now) if asked is not None else None
    if plan is None:
        return None
    reply = proposal_reply(plan, faces=faces, evidence=evidence, config=config, crop_url=crop_url)
    with UnitOfWork(db, write=True) as work:
        stored = work.inbound.get(event_id)
        if stored is None or stored.source != SOURCE:
            return None
        stored.payload = {**stored.payload, "replies": [*stored.payload.get("replies", []), reply]}
        work.commit()
    return reply


def proposal_reply(
    plan: ProposalPlan, *, faces: FaceBackend, evidence: EvidenceStore, config: Config, crop_url: Callable[[str], str]
) -> dict[str, Any]:
    if plan.gone or not plan.candidates:
        return {
            "markdown": f"Enrollment for **{plan.transaction_id}**: {plan.gone or 'no face was found.'} "
            "There is no face to enroll.",
            "card": None,
        }
    offered = tuple(
        replace(
            assess_face(candidate, plan, faces, evidence, config, retry_later=False),
            image_url=crop_url(candidate.face_id),
        )
        for candidate in plan.candidates
    )
    usable = sum(1 for face in offered if face.problem is None)
    card = enrollment_card(proposal_view(plan, offered, config, with_sheet=False))
    return {
        "markdown": f"**Enrollment proposal** for {plan.transaction_id}: {usable} of {len(offered)} face(s) "
        "can be enrolled; pick one on the card.",
        "card": card,
    }

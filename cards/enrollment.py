"""The enrollment proposal card: the faces of a fraud checkout, numbered as on the photo, to pick one from.

Enrollment is never automatic: a person picks the face, writes the reason and sets an expiry
within the configured maximum. Faces failing the quality gates are listed with the reason but
not offered; a face that already resembles a watchlist entry says so, to avoid a duplicate.
"""

from __future__ import annotations

from typing import Any

from cards import elements as el
from cards.actions import BUTTON_TITLES, ENROLL, INPUT_EXPIRY_DAYS, INPUT_FACE, INPUT_REASON, submit
from cards.text import for_card
from cards.views import EnrollmentProposalView, ProposedFace

ENROLL_CAUTION = (
    "Enroll only the person a fraud report is about. They will be recognised at every "
    "register and at the entrance until the expiry; the reason is shown on every alert."
)


def enrollment_card(proposal: EnrollmentProposalView) -> dict[str, Any]:
    """The proposal posted in the alert's thread (or in answer to `enroll <transaction>`)."""
    offered = [face for face in proposal.faces if face.problem is None]
    body = [
        el.text("Enrollment proposal", size="medium", weight="bolder"),
        el.text(f"Transaction {for_card(proposal.transaction_id)} at {proposal.store_id}", spacing="none", subtle=True),
        *[el.text(for_card(reason), spacing="small") for reason in proposal.reasons],
        *[_face_row(face) for face in proposal.faces],
    ]
    if not offered:
        body.append(
            el.text(
                "No face in this picture passes the quality gates, so none can be enrolled.",
                color="warning",
                separator=True,
            )
        )
        return el.card(body, fallback_text=f"No face of transaction {proposal.transaction_id} can be enrolled.")
    body += [el.text(ENROLL_CAUTION, color="warning", separator=True), *_inputs(proposal, offered)]
    face_ids = {str(face.number): face.face_id for face in offered}
    button = submit(
        BUTTON_TITLES[ENROLL],
        ENROLL,
        transaction_id=proposal.transaction_id,
        alert_id=proposal.alert_id,
        face_ids=face_ids,
    )
    return el.card(body, [button], fallback_text=f"Enrollment proposal for transaction {proposal.transaction_id}")


def _face_row(face: ProposedFace) -> dict[str, Any]:
    """'Face 1: quality 0.82 (96 px, sharpness 0.71)', a resemblance or problem below, the crop beside it if public."""
    lines = [
        el.text(f"Face {face.number}", weight="bolder"),
        el.text(f"Quality {face.quality:.2f} ({face.size_px} px, sharpness {face.sharpness:.2f})", spacing="none"),
    ]
    if face.resembles is not None:
        lines.append(
            el.text(
                f"Resembles {face.resembles.person_id} ({face.resembles.similarity:.1f}): may already be enrolled",
                color="warning",
                spacing="none",
            )
        )
    if face.problem is not None:
        lines.append(el.text(f"Not offered: {face.problem}", color="attention", spacing="none"))
    columns = [el.column(lines)]
    if face.image_url:
        columns.insert(0, el.column([el.image(face.image_url, f"Face {face.number}", size="small")], width="auto"))
    return el.column_set(columns, separator=True)


def _inputs(proposal: EnrollmentProposalView, offered: list[ProposedFace]) -> list[dict[str, Any]]:
    """Which face, why, and for how long (1.3 validates required and range on the client; the handler again)."""
    face: dict[str, Any] = {
        "type": "Input.ChoiceSet",
        "id": INPUT_FACE,
        "label": "Which face? (numbered as on the photo)",
        "style": "expanded",
        "isRequired": True,
        "errorMessage": "Pick the face to enroll.",
        "choices": [{"title": f"Face {f.number}", "value": str(f.number)} for f in offered],
    }
    if len(offered) == 1:
        face["value"] = str(offered[0].number)
    reason = {
        "type": "Input.Text",
        "id": INPUT_REASON,
        "label": "Reason (shown on every alert)",
        "isRequired": True,
        "errorMessage": "Give the reason for enrolling.",
        "placeholder": "e.g. chargeback on a cloned card",
        "isMultiline": True,
        "maxLength": 500,
    }
    expiry = {
        "type": "Input.Number",
        "id": INPUT_EXPIRY_DAYS,
        "label": f"Expires after (days, at most {proposal.max_expiry_days})",
        "value": proposal.default_expiry_days,
        "min": 1,
        "max": proposal.max_expiry_days,
        "isRequired": True,
        "errorMessage": f"A number of days from 1 to {proposal.max_expiry_days}.",
    }
    return [face, reason, expiry]

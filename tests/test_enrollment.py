"""Fraud reports to enrollment proposals to enrolled entries, governed: one proposal per transaction,
threads, roles, quality gates, duplicates joining their entry, the two-person rule. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from storage.models import Face
from storage.uow import UnitOfWork
from tests.fakes import face
from tests.learning_fixtures import (  # noqa: F401  (fixtures)
    CUSTOMER,
    active_entry,
    business,
    chat,
    checkout,
    environ,
    faces,
    messenger,
    proposed,
    services,
)
from tests.learning_helpers import ROOM, audit, card_texts, cards_titled, enroll_inputs, people
from vision.types import DetectedFace


def texts_of(messages: list) -> list[str]:
    return [m.markdown for m in messages]


def test_fraud_command_webhook_and_confirm_lead_to_one_proposal(post_signed, chat, clock, services):
    checkout(post_signed, chat, clock)
    sent = chat.say("P-ana", "fraud T-1 stolen card")
    assert sent[0].markdown == "Fraud report filed for **T-1** by ana@example.com."
    (proposal,) = cards_titled(sent, "Enrollment proposal")
    assert proposal.room_id == ROOM and proposal.parent_id is None  # no alert: its own message in the store's space
    texts = card_texts(proposal.card)
    assert "Face 1" in texts and "Quality 0.90 (120 px, sharpness 0.80)" in texts
    assert any("Reported as fraud (reported by hand)" in t and "stolen card" in t for t in texts)
    report = {"transaction_id": "T-1", "reason": "denied", "source": "chargeback", "reported_at": clock().isoformat()}
    assert post_signed("/api/v1/fraud-reports", report).status_code == 202
    assert chat.run() == []  # a second source for the same transaction: the same state, no second proposal
    # The card fingerprint of a reported transaction is now a fact for the rules.
    checkout(post_signed, chat, clock, "T-9")
    with UnitOfWork(services.db) as uow:
        assert [a.rule for a in uow.alerts.list() if a.transaction_id == "T-9"] == ["known_fraud_card"]


def test_confirm_and_the_enroll_button_post_the_proposal_in_the_alert_thread(post_signed, chat, clock, services, faces):
    active_entry(services, "P-7")
    faces.similarity[("shopper", "P-7")] = 95.0
    sent = checkout(post_signed, chat, clock)
    card = next(m for m in sent if m.card is not None)
    root = chat.message_id(card)
    confirmed = chat.press("P-ana", {"action": "confirm", "alert_id": "A-1"}, on=root)
    assert "A-1 confirmed" in confirmed[0].markdown
    (proposal,) = cards_titled(confirmed, "Enrollment proposal")
    assert proposal.parent_id == root
    assert "Resembles P-7 (95.0): may already be enrolled" in card_texts(proposal.card)
    (button,) = [a for a in card.card["actions"] if a.get("data", {}).get("action") == "enroll_proposal"]
    again = chat.press("P-ana", button["data"], on=root)
    assert again[0].markdown.startswith("Looking at the faces of **T-1**") and again[0].parent_id == root
    (on_demand,) = cards_titled(again, "Enrollment proposal")
    assert on_demand.parent_id == root
    assert chat.press("P-bruno", button["data"], on=root)[0].markdown.startswith("Sorry")


def test_enroll_command_answers_in_its_own_thread(post_signed, chat, clock):
    checkout(post_signed, chat, clock)
    sent = chat.say("P-ana", "enroll T-1")
    (proposal,) = cards_titled(sent, "Enrollment proposal")
    assert proposal.parent_id == sent[0].parent_id == f"MSG-{chat.n}"
    assert "needs the manager role" in chat.say("P-bruno", "enroll T-1")[0].markdown
    assert "I know no transaction `T-404`" in chat.say("P-ana", "enroll T-404")[0].markdown


def test_a_report_whose_pictures_are_gone_says_so(post_signed, chat, clock, services):
    checkout(post_signed, chat, clock, "T-cash", payment={"method": "cash", "status": "approved"})
    sent = chat.say("P-ana", "fraud T-cash")
    assert sent[-1].card is None and "no picture was taken of this checkout" in sent[-1].markdown
    checkout(post_signed, chat, clock, "T-1")
    with UnitOfWork(services.db, write=True) as uow:
        for snapshot in uow.transactions.with_evidence("T-1").snapshots:
            uow.session.delete(snapshot)
        uow.commit()
    sent = chat.say("P-ana", "fraud T-1")
    assert "its pictures are no longer kept" in sent[-1].markdown and "no face to enroll" in sent[-1].markdown


def test_staff_cannot_enroll_a_manager_can(post_signed, chat, clock, services, faces):
    proposal = proposed(post_signed, chat, clock)
    on = chat.message_id(proposal)
    (refusal,) = chat.press("P-bruno", enroll_inputs(proposal.card), on=on)
    assert refusal.markdown.startswith("Sorry") and "manager" in refusal.markdown
    assert people(services) == [] and ("bruno@example.com", "enroll", "T-1", "role", "refused") in audit(services)

    sent = chat.press("P-ana", enroll_inputs(proposal.card, days=None), on=on)
    (person,) = people(services)
    assert sent[0].markdown.startswith("Enrolling the face from **T-1** as **" + person.id)
    assert sent[0].parent_id == on and f"✅ **{person.id}** is on the watchlist" in sent[1].markdown
    assert (person.status, person.enrolled_by, person.expires_at - person.enrolled_at) == (
        "active",
        "ana@example.com",
        timedelta(days=180),
    )  # the configured default expiry
    assert faces.enrolled == {person.id: ["shopper"]}
    with UnitOfWork(services.db) as uow:
        (crop,) = [f.crop_sha256 for f in uow.session.query(Face)]
        assert person.faces[0].enrollment_image_sha256 == crop and uow.snapshots.file(crop).kind == "enrollment"
    assert ("ana@example.com", "watchlist_enroll", person.id, "active", "ok") in audit(services)
    again = chat.press("P-ana", enroll_inputs(proposal.card), on=on)
    assert f"already on the watchlist as {person.id}" in again[0].markdown


@pytest.mark.parametrize(
    "inputs, answer",
    [
        ({"reason": ""}, "Please give the reason"),
        ({"expiry_days": "400"}, "The expiry must be 1 to 365 days."),
        ({"face": "7"}, "Please pick one of the faces on the card"),
    ],
)
def test_enrollment_needs_a_reason_an_expiry_within_the_maximum_and_a_face(
    post_signed, chat, clock, services, inputs, answer
):
    proposal = proposed(post_signed, chat, clock)
    sent = chat.press("P-ana", {**enroll_inputs(proposal.card), **inputs}, on=chat.message_id(proposal))
    assert sent[0].markdown.startswith(answer) and people(services) == []


@pytest.mark.parametrize(
    "detected, problem, code",
    [
        (face(CUSTOMER, name="shopper", size_px=52), "too small: 52 px, at least 80 px", "too_small"),
        (
            DetectedFace(CUSTOMER, 0.4, 120, 0.1, b"\xff\xd8\xff\xe0fake-jpegshopper", "shopper"),
            "not sharp enough: 0.10, at least 0.30",
            "blurred",
        ),
    ],
)
def test_a_poor_face_is_not_offered_and_refused_if_pressed_anyway(
    post_signed, chat, clock, services, faces, detected, problem, code
):
    faces.faces = [detected]
    proposal = proposed(post_signed, chat, clock)
    texts = card_texts(proposal.card)
    assert f"Not offered: {problem}" in texts and "actions" not in proposal.card
    with UnitOfWork(services.db) as uow:
        (face_id,) = [f.id for f in uow.session.query(Face)]
    forged = {
        "action": "enroll",
        "transaction_id": "T-1",
        "face_ids": {"1": face_id},
        "face": "1",
        "reason": "r",
        "expiry_days": "30",
    }
    sent = chat.press("P-ana", forged, on=chat.message_id(proposal))
    assert sent[-1].markdown.startswith(f"❌ Not enrolled: {problem}.") and sent[-1].parent_id == chat.message_id(
        proposal
    )
    assert people(services) == [] and faces.enrolled == {}
    assert any(a[1] == "enroll_refused" and a[3] == code for a in audit(services))


def test_two_faces_in_the_crop_are_refused(post_signed, chat, clock, services, faces):
    other = face((0.2, 0.25, 0.35, 0.55), name="neighbour")
    faces.detect = lambda image: [faces.faces[0], other]  # the crop shows two people
    proposal = proposed(post_signed, chat, clock)
    assert "Not offered: 2 faces in the crop; exactly one is needed" in card_texts(proposal.card)


def test_a_face_already_on_the_watchlist_joins_that_entry(post_signed, chat, clock, services, faces):
    active_entry(services, "P-7", days=10)
    faces.similarity[("shopper", "P-7")] = 95.0
    proposal = proposed(post_signed, chat, clock)
    assert "Resembles P-7 (95.0): may already be enrolled" in card_texts(proposal.card)
    sent = chat.press("P-ana", enroll_inputs(proposal.card, days=90), on=chat.message_id(proposal))
    assert "already on the watchlist as **P-7** (95.0)" in sent[-1].markdown
    (person,) = people(services)  # no duplicate person
    assert person.id == "P-7" and len(person.faces) == 2
    assert person.expires_at == clock() + timedelta(days=90)  # the later of the two expiries
    assert faces.enrolled == {"P-7": ["shopper"]}
    assert ("ana@example.com", "watchlist_merge", "P-7", "duplicate", "ok") in audit(services)


@pytest.fixture
def two_person(business: dict) -> None:
    business["enrollment"] = {"two_person_rule": True}


@pytest.mark.usefixtures("two_person")
def test_two_person_rule_waits_for_a_second_security_person(post_signed, chat, clock, services, faces):
    proposal = proposed(post_signed, chat, clock)
    sent = chat.press("P-carla", enroll_inputs(proposal.card), on=chat.message_id(proposal))
    (person,) = people(services)
    assert person.status == "pending_approval" and faces.enrolled == {}
    (entry,) = cards_titled(sent, f"Watchlist {person.id}")
    assert "waits for approval by a security person other than carla@example.com" in entry.markdown
    approve = next(a["data"] for a in entry.card["actions"] if a["data"]["action"] == "watchlist_approve")
    on = chat.message_id(entry)

    root = chat.message_id(proposal)
    (same_person,) = chat.press("P-carla", approve, on=on)
    (wrong_role,) = chat.press("P-ana", approve, on=on)  # the router's own role refusal
    assert "needs a second person" in same_person.markdown and "needs the security role" in wrong_role.markdown
    assert same_person.parent_id == wrong_role.parent_id == root  # refusals too: never a reply to a reply
    assert people(services)[0].status == "pending_approval"
    assert ("carla@example.com", "watchlist_approve", person.id, "same_person", "refused") in audit(services)

    sent = chat.press("P-dora", approve, on=on)
    assert f"**{person.id}** approved by dora@example.com" in sent[0].markdown
    assert sent[0].parent_id == chat.message_id(proposal)  # answered under the thread's root, not the reply
    (person,) = people(services)
    assert (person.status, person.approved_by) == ("active", "dora@example.com")
    assert faces.enrolled == {person.id: ["shopper"]}
    assert "nothing to approve" in chat.press("P-dora", approve, on=on)[0].markdown

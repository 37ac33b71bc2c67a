"""Chat commands and card buttons through the stored-event step: roles, replies, double presses, redelivery."""

from __future__ import annotations

import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from PIL import Image

from storage import inbound
from storage.models import Alert, WatchlistPerson
from storage.uow import UnitOfWork
from tests import factories
from tests.conversations import ROOM, chat, messenger  # noqa: F401  (fixtures)


@pytest.fixture
def business(business: dict) -> dict:
    business["stores"][0].update(webex_room_id=ROOM, region="south")
    business["regions"] = [{"id": "south", "webex_room_id": "ROOM-SOUTH"}]
    business["people"] = [
        {"email": "ana@example.com", "role": "manager", "stores": ["store-001"]},
        {"email": "bruno@example.com", "role": "staff", "stores": ["store-001"]},
        {"email": "carla@example.com", "role": "security", "stores": ["*"]},
    ]
    business["rules"] = [{"name": "product_mismatch", "when": "surplus_count >= 1", "message": "More seen than billed"}]
    return business


def test_command_answers_carry_cards(chat, alert_id, messenger):
    for text in ("help", "status", "stats", "dance"):
        chat.say("P-carla", text)
        assert messenger.sent[-1].card is not None and messenger.sent[-1].card["version"] == "1.3", text


def test_status_counts_the_webex_messages_that_failed_today_with_the_newest_reason(chat, services, messenger):
    now = services.clock()
    with UnitOfWork(services.db, write=True) as uow:
        for n, reason in enumerate(["Webex refused the message (400): room not found", "its card could not be built"]):
            uow.outbox.add_failed(key=f"old-{n}", room_id=ROOM, now=now - timedelta(days=2), markdown="x", error="old")
            uow.outbox.add_failed(key=f"today-{n}", room_id=ROOM, now=now, markdown="x", error=reason)
        uow.commit()
    (text,) = chat.say("P-carla", "status")
    assert "- Webex messages failed in the last 24 h: 2 (newest: its card could not be built)" in text
    card = messenger.sent[-1].card
    facts = [f for b in card["body"] if b["type"] == "FactSet" for f in b["facts"]]
    assert {"title": "Failed (last 24 h)", "value": "2"} in facts
    assert any(b.get("text") == "Newest: its card could not be built" for b in card["body"])


def test_status_says_when_face_matching_was_never_evaluated_or_the_thresholds_moved(chat, services, messenger):
    (text,) = chat.say("P-carla", "status")
    assert "- face matching accuracy: **needs attention**: face matching on local was never evaluated" in text
    factories.add(services.db, factories.face_evaluation(at=services.clock(), match=95))
    (text,) = chat.say("P-carla", "status")
    assert "the thresholds changed since face matching was last evaluated" in text
    assert "(match 95 / review 80 then, 90 / 80 now)" in text
    card_text = " ".join(b.get("text", "") for b in messenger.sent[-1].card["body"])
    assert "Face matching accuracy" in card_text and "thresholds changed" in card_text
    factories.add(services.db, factories.face_evaluation(at=services.clock() + timedelta(minutes=1)))
    (text,) = chat.say("P-carla", "status")
    assert "- face matching accuracy: evaluated" in text and "false matches 2.5 % (up to 12.9 %)" in text


def test_status_counts_a_message_by_when_it_failed_not_when_it_was_queued(chat, services, messenger):
    now = services.clock()
    with UnitOfWork(services.db, write=True) as uow:
        queued_long_ago = uow.outbox.add(key="slow", room_id=ROOM, now=now - timedelta(days=2), markdown="x")
        queued_long_ago.fail("the delivery step failed for good after 8 attempt(s)", now - timedelta(minutes=5))
        failed_long_ago = uow.outbox.add(key="old", room_id=ROOM, now=now - timedelta(hours=1), markdown="x")
        failed_long_ago.fail("Webex refused the message (400): room not found", now - timedelta(hours=30))
        uow.commit()
    (text,) = chat.say("P-carla", "status")
    assert (
        "- Webex messages failed in the last 24 h: 1 (newest: the delivery step failed for good after 8 attempt(s))"
        in text
    )


@pytest.fixture
def alert_id(services) -> str:
    now = services.clock()
    with UnitOfWork(services.db, write=True) as uow:
        uow.session.add(factories.transaction(at=now, total_amount=Decimal("149.90")))
        uow.session.add(factories.watchlist_person(at=now, id="P-7", expires_at=now + timedelta(days=9)))
        alert = factories.alert(at=now, person_id="P-7", similarity=91.0)
        uow.session.add(alert)
        uow.commit()
        return alert.public_id


def alert_row(services, public_id: str) -> Alert:
    with UnitOfWork(services.db) as uow:
        return uow.alerts.get(public_id)


def audit(services) -> list[tuple]:
    with UnitOfWork(services.db) as uow:
        return [(e.actor, e.action, e.subject_id, e.reason_code, e.outcome) for e in uow.audit.entries()]


def test_help_lists_what_the_role_allows(chat):
    staff = chat.say("P-bruno", "help")[0]
    assert "`alerts [open|today] [page]`" in staff and "`fraud" not in staff and "`rules" not in staff
    assert "`patterns" not in staff and "`patterns [7d]`" in chat.say("P-ana", "help")[0]
    security = chat.say("P-carla", "help")[0]
    assert "`fraud <transaction> [reason]`" in security and "`rules [page]`" in security


def test_unknown_command_gets_help_not_silence(chat):
    (answer,) = chat.say("P-bruno", "dance now")
    assert answer.startswith("I don't know `dance`.") and "`help`" in answer


def test_command_is_matched_by_first_word_not_substring(chat):
    (answer,) = chat.say("P-bruno", "please show alerts")
    assert answer.startswith("I don't know `please`.")


def test_person_not_in_the_config_is_refused_and_audited(chat, services):
    (answer,) = chat.say("P-dave", "alerts")
    assert answer.startswith("Sorry, `alerts [open|today] [page]` needs the staff role")
    assert ("dave@example.com", "alerts", "MSG-1", "role", "refused") in audit(services)


def test_alerts_lists_open_alerts(chat, alert_id):
    (answer,) = chat.say("P-bruno", "alerts")
    assert alert_id in answer and "product_mismatch" in answer
    assert chat.say("P-bruno", "alerts sideways")[0].startswith("Usage:")


def test_show_alert_and_transaction(chat, alert_id, services):
    assert "More seen than billed" in chat.say("P-bruno", f"show {alert_id.lower()}")[0]
    assert "**T-1** 149.90 BRL" in chat.say("P-bruno", "show T-1")[0]
    assert "no alert or transaction `T-404`" in chat.say("P-bruno", "show T-404")[0]
    assert ("bruno@example.com", "view", alert_id, None, "ok") in audit(services)


def test_staff_cannot_confirm_manager_can_and_a_second_press_changes_nothing(chat, alert_id, services, clock):
    (refusal,) = chat.press("P-bruno", {"action": "confirm", "alert_id": alert_id})
    assert refusal.startswith("Sorry") and "manager" in refusal
    assert alert_row(services, alert_id).status == "open"
    assert ("bruno@example.com", "confirm", alert_id, "role", "refused") in audit(services)

    # Confirm files a fraud report; its step then says there is no picture to offer for enrollment.
    (confirmed, proposal) = chat.press("P-ana", {"action": "confirm", "alert_id": alert_id})
    assert proposal.startswith("Enrollment for **T-1**") and "no face to enroll" in proposal
    assert f"{alert_id} confirmed** by ana@example.com" in confirmed and "Fraud report filed for T-1" in confirmed
    row = alert_row(services, alert_id)
    assert (row.status, row.decided_by) == ("confirmed", "ana@example.com")

    clock.advance(60)
    (again,) = chat.press("P-carla", {"action": "dismiss", "alert_id": alert_id, "reason": "no_loss"})
    assert "already confirmed by ana@example.com" in again and "nothing changed" in again
    assert alert_row(services, alert_id).status == "confirmed"
    with UnitOfWork(services.db) as uow:
        assert [r.source for r in uow.transactions.get("T-1").fraud_reports] == ["manual"]


def test_dismiss_needs_a_known_reason_and_a_note_for_other(chat, alert_id, services):
    assert chat.press("P-bruno", {"action": "dismiss", "alert_id": alert_id})[0].startswith("Please choose why")
    assert "note" in chat.press("P-bruno", {"action": "dismiss", "alert_id": alert_id, "reason": "other"})[0]
    (done,) = chat.press("P-bruno", {"action": "dismiss", "alert_id": alert_id, "reason": "not_same_person"})
    assert "dismissed** by bruno@example.com" in done and "not the same person" in done
    row = alert_row(services, alert_id)
    assert (row.status, row.reason) == ("dismissed", "not_same_person")
    with UnitOfWork(services.db) as uow:
        assert uow.session.get(WatchlistPerson, "P-7").wrong_match_count == 1
    assert ("bruno@example.com", "alert_dismiss", alert_id, "not_same_person", "ok") in audit(services)


def test_redelivered_press_is_handled_once(chat, alert_id, services):
    first = chat.press("P-ana", {"action": "confirm", "alert_id": alert_id}, event_id="ACT-X")
    again = chat.press("P-ana", {"action": "confirm", "alert_id": alert_id}, event_id="ACT-X")
    assert len(first) == 2 and again == []  # the answer, and the fraud report's enrollment proposal
    assert [a for a in audit(services) if a[1] == "alert_confirm"] == [
        ("ana@example.com", "alert_confirm", alert_id, "confirmed", "ok")
    ]


def test_replies_are_threaded_where_the_event_came_from(chat, alert_id, messenger):
    before = len(messenger.sent)
    chat.press("P-ana", {"action": "confirm", "alert_id": alert_id})
    reply = messenger.sent[before]
    assert (reply.room_id, reply.parent_id) == (ROOM, "CARD-MSG")
    chat.say("P-bruno", "alerts", event_id="MSG-T")
    assert (messenger.sent[-1].room_id, messenger.sent[-1].parent_id) == (ROOM, "MSG-T")


def test_fraud_command_for_managers_only_and_once(chat, alert_id, services):
    assert "manager" in chat.say("P-bruno", "fraud T-1 stolen card")[0]
    assert "Fraud report filed for **T-1**" in chat.say("P-ana", "fraud T-1 stolen card")[0]
    assert "already reported" in chat.say("P-ana", "fraud T-1")[0]
    assert "never received transaction `T-9`" in chat.say("P-ana", "fraud T-9")[0]
    assert alert_row(services, alert_id).status == "open"  # a fraud report never changes an alert


def test_rules_and_stats(chat, alert_id):
    assert "needs the security role" in chat.say("P-ana", "rules")[0]
    assert "**product_mismatch** (medium" in chat.say("P-carla", "rules")[0]
    stats = chat.say("P-bruno", "stats 7d")[0]
    assert "**store-001**: 1 transactions, 0 pictures" in stats and "product_mismatch 1" in stats and "1 open" in stats
    assert chat.say("P-bruno", "stats forever")[0].startswith("Usage:")


def test_the_bots_own_messages_are_ignored(chat, messenger, services):
    messenger.messages["MSG-BOT"] = {"id": "MSG-BOT", "roomId": ROOM, "personId": "BOT", "text": "alerts"}
    before = len(messenger.sent)
    chat._deliver("MSG-BOT", "webex_message")
    assert len(messenger.sent) == before


def test_checkout_posts_a_picture_of_the_register_in_the_thread(chat, services, messenger, clock):
    from tests.fakes import FakeCamera
    from vision.types import Picture

    camera = FakeCamera(script=[Picture(b"\xff\xd8\xff\xe0 register now", "image/jpeg")])
    services.camera = camera
    assert "needs the manager role" in chat.say("P-bruno", "checkout reg-1")[0]
    assert "no register `reg-9`" in chat.say("P-ana", "checkout reg-9")[0]
    answers = chat.say("P-ana", "checkout reg-1", event_id="MSG-C")
    assert answers[0].startswith("📷 Taking a picture at Centro, reg-1")
    photo = messenger.sent[-1]
    assert camera.calls == [("Q2XX-AAAA-0001", "1", None)]
    assert photo.attachment.content == b"\xff\xd8\xff\xe0 register now" and photo.parent_id == "MSG-C"
    assert ("ana@example.com", "checkout", "store-001/reg-1", None, "ok") in audit(services)


def test_checkout_with_the_camera_off_says_so(chat, services, messenger):
    answers = chat.say("P-ana", "checkout reg-1")
    assert answers[-1].startswith("No picture: the camera is off")


def test_a_confirmed_incident_is_told_to_the_regions_security_space(chat, alert_id, messenger):
    chat.press("P-ana", {"action": "confirm", "alert_id": alert_id})
    regional = [m for m in messenger.sent if m.room_id == "ROOM-SOUTH"]
    assert len(regional) == 1 and f"Confirmed incident {alert_id}" in regional[0].markdown
    chat.press("P-carla", {"action": "confirm", "alert_id": alert_id})  # a second press tells nobody again
    assert len([m for m in messenger.sent if m.room_id == "ROOM-SOUTH"]) == 1


def test_patterns_answers_a_manager_with_the_card_and_its_chart_in_the_commands_thread(chat, services, messenger):
    with UnitOfWork(services.db, write=True) as uow:  # today in São Paulo is 24 Nov: in the last 7 days
        for dimension, subject in (("cashier", "c-17"), ("register", "reg-1")):
            uow.session.add(
                factories.pattern_count(
                    dimension=dimension, subject=subject, day=date(2026, 11, 24), kind="void", count=4
                )
            )
        uow.commit()
    answers = chat.say("P-ana", "patterns 7d", event_id="MSG-P")
    assert answers[0].startswith(
        "**Patterns, Centro, Wed 18 Nov 2026 – Tue 24 Nov 2026 (7 days)**: 4 transactions, 4 exceptions"
    )
    card_message, chart_message = messenger.sent
    assert card_message.card["body"][0]["text"] == "Patterns, Centro (store-001)"
    assert "c-17 · new" in [item["text"] for block in card_message.card["body"] for item in block.get("items", [])]
    assert chart_message.card is None and chart_message.attachment.content_type == "image/png"
    assert Image.open(io.BytesIO(chart_message.attachment.content)).size == (800, 400)
    assert card_message.parent_id == chart_message.parent_id == "MSG-P"  # one thread: Webex's are one level deep
    assert ("ana@example.com", "view", "store-001", None, "ok") in audit(services)


def test_patterns_is_refused_to_staff_plainly_and_audited(chat, services, messenger):
    (answer,) = chat.say("P-bruno", "patterns", event_id="MSG-S")
    assert answer == "Sorry, `patterns [7d]` needs the manager role here (yours is staff)."
    assert ("bruno@example.com", "patterns", "MSG-S", "role", "refused") in audit(services)
    assert [m for m in messenger.sent if m.card is not None or m.attachment is not None] == []


def test_patterns_says_what_period_it_takes(chat, messenger):
    assert chat.say("P-ana", "patterns 400d") == ["Usage: `patterns` or `patterns 7d` (1 to 365 days)."]
    assert chat.say("P-ana", "patterns 7d now") == ["Usage: `patterns` or `patterns 7d` (1 to 365 days)."]


# --- Webex threads are one level deep; vanished messages --------------------------------------------


def test_the_stand_in_refuses_a_reply_to_a_reply_as_webex_does() -> None:
    from core.messenger import OutgoingMessage, WebexError
    from tests.fakes import FakeMessenger

    webex = FakeMessenger(messages={"MSG-IN": {"id": "MSG-IN", "parentId": "MSG-ROOT"}})
    root = webex.send(OutgoingMessage(room_id="R", markdown="root"))
    reply = webex.send(OutgoingMessage(room_id="R", markdown="reply", parent_id=root))
    for parent in (reply, "MSG-IN"):
        with pytest.raises(WebexError) as refused:
            webex.send(OutgoingMessage(room_id="R", markdown="reply to a reply", parent_id=parent))
        assert refused.value.status == 400 and refused.value.retry is False
    with pytest.raises(WebexError) as gone:
        webex.message("MSG-DELETED")
    assert gone.value.status == 404


def test_a_press_on_a_card_inside_a_thread_we_no_longer_know_is_answered_under_the_root(chat, alert_id, messenger):
    # Our outbox row of that card was purged; Webex still knows the card is a reply to ROOT-OLD.
    messenger.messages["CARD-OLD"] = {"id": "CARD-OLD", "roomId": ROOM, "parentId": "ROOT-OLD"}
    before = len(messenger.sent)
    refusal = chat.press("P-bruno", {"action": "confirm", "alert_id": alert_id}, on="CARD-OLD")
    assert "needs the manager role" in refusal[0]
    assert [m.parent_id for m in messenger.sent[before:]] == ["ROOT-OLD"]


def test_a_message_that_can_no_longer_be_read_ends_quietly(chat, messenger, services):
    # Deleted before we fetched it, or a group message not meant for the bot: Webex answers 404.
    before = len(messenger.sent)
    chat._deliver("MSG-GONE", "webex_message")
    assert len(messenger.sent) == before
    with UnitOfWork(services.db) as uow:
        assert inbound.get(uow.session, "MSG-GONE").handled_at is not None
        assert uow.work.counts().get("dead", 0) == 0 and uow.work.counts().get("pending", 0) == 0

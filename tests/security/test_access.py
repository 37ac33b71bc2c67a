"""Issue 17, items 4–6 (access): what a person may not see answers as what does not exist and leaves no trace in
its store's thread, space or audit; button titles are our cards'; listings show the asker's stores only, in a
regional space too; card numbers are refused in every free text, however they are spelt.

Stores 001 and 002 share region south and its space ROOM-SOUTH; ana manages 001, dora manages 002, bruno is
staff at 001. Webex is the fake messenger; the console is driven over HTTP as a browser does.
"""

from __future__ import annotations

import hashlib
import re

import pytest

from bot.logs import Redactor
from bot.runner import Runner
from bot.steps import STEPS
from core.card_numbers import looks_like_card_number
from storage import inbound
from storage.models import Alert, AuditEntry, FraudReport, InboundEvent, OutboxMessage, WatchlistPerson
from storage.uow import UnitOfWork
from tests import factories
from tests.conftest import transaction_body
from tests.fakes import FakeMessenger

TOKENS = {"ana@example.com": "ana-console-token-0123456789", "dora@example.com": "dora-console-token-0123456789"}
PEOPLE = {"P-ana": "ana@example.com", "P-dora": "dora@example.com", "P-bruno": "bruno@example.com"}
ROOMS = {"store-001": "ROOM-1", "store-002": "ROOM-2"}
PAN = "4111 1111 1111 1111"
MISSING = "That alert no longer exists (it may have been purged)."


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@pytest.fixture
def business(business: dict) -> dict:
    business["stores"][0].update(webex_room_id=ROOMS["store-001"], region="south")
    business["stores"].append(
        {
            "id": "store-002",
            "name": "Sul",
            "timezone": "America/Sao_Paulo",
            "region": "south",
            "webex_room_id": ROOMS["store-002"],
            "registers": [{"id": "reg-1", "camera_serial": "Q2XX-BBBB-0001"}],
        }
    )
    business["regions"] = [{"id": "south", "webex_room_id": "ROOM-SOUTH"}]
    business["people"] = [
        {
            "email": "ana@example.com",
            "role": "manager",
            "stores": ["store-001"],
            "console_token_sha256": _sha(TOKENS["ana@example.com"]),
        },
        {
            "email": "dora@example.com",
            "role": "manager",
            "stores": ["store-002"],
            "console_token_sha256": _sha(TOKENS["dora@example.com"]),
        },
        {"email": "bruno@example.com", "role": "staff", "stores": ["store-001"]},
    ]
    business["rules"] = [{"name": "product_mismatch", "when": "surplus_count >= 1", "message": "More seen than billed"}]
    return business


@pytest.fixture
def messenger() -> FakeMessenger:
    return FakeMessenger(emails=dict(PEOPLE))


@pytest.fixture
def alerts(services) -> dict[str, str]:
    """An open alert in each store (its card posted in the store's space), by store id."""
    now = services.clock()
    found = {}
    with UnitOfWork(services.db, write=True) as uow:
        for n, store_id in enumerate(ROOMS, start=1):
            uow.session.add(factories.transaction(at=now, transaction_id=f"T-{n}", store_id=store_id))
            alert = factories.alert(at=now, transaction_id=f"T-{n}", store_id=store_id)
            uow.session.add(alert)
            uow.session.flush()
            uow.outbox.add(
                key=f"alert:{alert.id}:card", room_id=ROOMS[store_id], now=now, markdown="alert", alert_id=alert.id
            )
            found[store_id] = alert.public_id
        uow.commit()
    _run(services)  # the cards are posted: what a test sees sent afterwards are answers
    return found


def _run(services) -> None:
    Runner(db=services.db, steps=STEPS, dependencies=services.dependencies(), clock=services.clock).run_until_idle(
        max_rounds=50
    )


def _deliver(services, event_id: str, source: str) -> None:
    with UnitOfWork(services.db, write=True) as uow:
        now = services.clock()
        assert inbound.record_event(uow.session, event_id=event_id, source=source, payload={}, now=now)
        uow.work.enqueue(kind="handle_event", key=event_id, ref_id=event_id, run_at=now, now=now)
        uow.commit()
    _run(services)


def say(services, messenger, room: str, person: str, text: str) -> list[str]:
    """A message in ``room``; the answers the bot posted."""
    event_id = f"MSG-{len(messenger.messages) + 1}"
    messenger.messages[event_id] = {
        "id": event_id,
        "roomId": room,
        "roomType": "group",
        "personId": person,
        "personEmail": PEOPLE[person],
        "text": f"Loss Bot {text}",
    }
    before = len(messenger.sent)
    _deliver(services, event_id, "webex_message")
    return [m.markdown for m in messenger.sent[before:]]


def press_in_webex(services, messenger, room: str, person: str, inputs: dict) -> list:
    event_id = f"ACT-{len(messenger.actions) + 1}"
    messenger.actions[event_id] = {
        "id": event_id,
        "personId": person,
        "roomId": room,
        "messageId": "CARD",
        "inputs": inputs,
    }
    before = len(messenger.sent)
    _deliver(services, event_id, "webex_action")
    return messenger.sent[before:]


def sign_in(client, email: str) -> str:
    page = client.get("/console/signin").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    response = client.post("/console/signin", data={"token": TOKENS[email], "csrf": csrf, "next": "/console"})
    assert response.status_code == 302
    page = client.get("/console").get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def press_in_console(client, csrf: str, data: dict, *, event: str, title: str = "Confirm") -> dict:
    response = client.post(
        "/console/api/actions",
        json={"event_id": f"console:{event * 32}", "data": data, "title": title},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status_code == 200
    return response.get_json()


def _rows(services, model) -> list:
    with UnitOfWork(services.db) as uow:
        rows = list(uow.session.query(model))
        uow.session.expunge_all()
        return rows


# --- item 4: an action on an alert the person may not see ------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [{"action": "confirm"}, {"action": "dismiss", "reason": "no_loss"}],
    ids=["confirm", "dismiss"],
)
def test_a_console_press_on_another_stores_alert_answers_as_a_missing_one_and_leaves_no_trace(
    client, services, alerts, data
):
    csrf = sign_in(client, "dora@example.com")
    theirs = press_in_console(client, csrf, {**data, "alert_id": alerts["store-001"]}, event="a", title="<b>Fired!</b>")
    missing = press_in_console(client, csrf, {**data, "alert_id": "A-999"}, event="b")
    assert theirs["replies"] == missing["replies"] == [{"markdown": MISSING, "card": None}]

    outbox = _rows(services, OutboxMessage)
    assert sorted(m.dedupe_key for m in outbox) == sorted(f"alert:{a.id}:card" for a in _rows(services, Alert))
    assert [(e.action, e.subject_id) for e in _rows(services, AuditEntry)] == []
    (alert,) = [a for a in _rows(services, Alert) if a.public_id == alerts["store-001"]]
    assert alert.status == "open"
    # The alert's thread, as its own store sees it, has no press and no title of dora's.
    sign_in(client, "ana@example.com")
    item = client.get(f"/console/api/alerts/{alerts['store-001']}").get_json()["items"][0]
    assert item["thread"] == []


def test_a_webex_press_on_another_stores_alert_answers_as_a_missing_one_in_the_pressers_space_only(
    services, messenger, alerts
):
    inputs = {"action": "confirm", "alert_id": alerts["store-001"]}
    theirs = press_in_webex(services, messenger, ROOMS["store-002"], "P-dora", inputs)
    missing = press_in_webex(services, messenger, ROOMS["store-002"], "P-dora", {**inputs, "alert_id": "A-999"})
    assert [m.markdown for m in theirs] == [m.markdown for m in missing] == [MISSING]
    assert {m.room_id for m in theirs} == {ROOMS["store-002"]}
    assert _rows(services, AuditEntry) == []


@pytest.mark.parametrize("region_id", [None, "south"], ids=["store-only", "shared-in-region"])
def test_another_stores_watchlist_entry_is_unknown_unless_its_region_shares_it(services, messenger, alerts, region_id):
    factories.add(services.db, factories.watchlist_person(at=services.clock(), id="P-1", region_id=region_id))
    (theirs,) = say(services, messenger, ROOMS["store-002"], "P-dora", "watchlist show P-1")
    (missing,) = say(services, messenger, ROOMS["store-002"], "P-dora", "watchlist show P-2")
    if region_id is None:
        assert theirs == missing.replace("P-2", "P-1") == "I know no watchlist entry `P-1` (never enrolled, or erased)."
        assert _rows(services, AuditEntry) == []
    else:  # dora's `watchlist` lists the region's entry: naming the role it needs tells her nothing new
        assert theirs == "Sorry, that needs the staff role at store-001."


def test_the_title_others_read_in_the_thread_is_our_cards_not_the_browsers(client, services, alerts):
    csrf = sign_in(client, "ana@example.com")
    press_in_console(
        client, csrf, {"action": "confirm", "alert_id": alerts["store-001"]}, event="c", title="Approved by the CEO"
    )
    item = client.get(f"/console/api/alerts/{alerts['store-001']}").get_json()["items"][0]
    assert [entry["title"] for entry in item["thread"]] == ["Confirm"]
    (stored,) = _rows(services, InboundEvent)
    assert stored.payload["title"] == "Confirm"


# --- item 5: listings show the asker's stores only ----------------------------------------------------------------


def test_listings_in_a_regional_space_show_only_the_askers_stores(services, messenger, alerts):
    (listed,) = say(services, messenger, "ROOM-SOUTH", "P-ana", "alerts")
    assert alerts["store-001"] in listed and alerts["store-002"] not in listed
    (stats,) = say(services, messenger, "ROOM-SOUTH", "P-ana", "stats")
    assert "**store-001**" in stats and "store-002" not in stats
    (listed,) = say(services, messenger, "ROOM-SOUTH", "P-dora", "alerts")
    assert alerts["store-002"] in listed and alerts["store-001"] not in listed


def test_a_person_without_a_role_in_the_regions_stores_is_refused_there(services, messenger, alerts):
    messenger.emails["P-eve"] = "eve@example.com"
    PEOPLE["P-eve"] = "eve@example.com"
    try:
        (answer,) = say(services, messenger, "ROOM-SOUTH", "P-eve", "alerts")
    finally:
        del PEOPLE["P-eve"]
    assert "needs the staff role" in answer and "A-" not in answer


# --- item 6: card numbers in every free text -----------------------------------------------------------------------


SPELLINGS = {
    "dots": "4111.1111.1111.1111",
    "slashes": "4111/1111/1111/1111",
    "double spaces": "4111  1111  1111  1111",
    "spaced dashes": "4111 - 1111 - 1111 - 1111",
    "en dashes": "4111\u20131111\u20131111\u20131111",
    "no-break spaces": "4111\u00a01111\u00a01111\u00a01111",
    "zero-width spaces": "4111\u200b1111\u200b1111\u200b1111",
    "word joiners and soft hyphens": "4111\u20601111\u00ad1111\ufeff1111",
    "fullwidth digits": "\uff14\uff11\uff11\uff11 \uff11\uff11\uff11\uff11 \uff11\uff11\uff11\uff11 \uff11\uff11\uff11\uff11",
    "Arabic-Indic digits": "\u0664\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661",
    "Devanagari digits": "\u096a\u0967\u0967\u0967 \u0967\u0967\u0967\u0967 \u0967\u0967\u0967\u0967 \u0967\u0967\u0967\u0967",
}


@pytest.mark.parametrize("text", SPELLINGS.values(), ids=SPELLINGS.keys())
def test_a_card_number_is_found_however_it_is_spelt(text):
    assert looks_like_card_number(f"paid with {text} at the till")


@pytest.mark.parametrize("text", SPELLINGS.values(), ids=SPELLINGS.keys())
def test_the_log_redactor_cuts_out_the_same_spellings(text):
    assert Redactor().redact(f"declined {text} at reg-1") == "declined [card number] at reg-1"


def test_long_gaps_and_other_punctuation_still_separate_numbers():
    assert not looks_like_card_number("4111     1111 1111 1111")
    assert not looks_like_card_number("4111_1111_1111_1111")
    assert not looks_like_card_number("order 2026-11-24 17:03:12, total 149.90")


def test_pos_strings_are_searched_except_the_contracts_id_fields_and_skus(post_signed, services):
    body = transaction_body(cashier_id="4111111111111111")
    body["items"][0]["sku"] = "4111111111111111"
    body["loyalty_id"] = SPELLINGS["zero-width spaces"]
    response = post_signed("/api/v1/transactions", body)
    assert response.status_code == 422
    assert [e["field"] for e in response.get_json()["errors"]] == ["loyalty_id"]
    assert "1111" not in response.get_data(as_text=True)
    del body["loyalty_id"]
    assert post_signed("/api/v1/transactions", body).status_code == 202


def test_a_chat_fraud_reason_with_a_card_number_is_refused_naming_the_field(services, messenger, alerts):
    (answer,) = say(services, messenger, ROOMS["store-001"], "P-ana", f"fraud T-1 paid with {SPELLINGS['dots']}")
    assert "*reason*" in answer and "card number" in answer and "1111" not in answer
    assert _rows(services, FraudReport) == []


def test_a_console_dismiss_note_with_a_card_number_is_refused_and_not_stored(client, services, alerts):
    csrf = sign_in(client, "ana@example.com")
    note = f"customer showed card {SPELLINGS['fullwidth digits']}"
    data = {"action": "dismiss", "alert_id": alerts["store-001"], "reason": "other", "note": note}
    (reply,) = press_in_console(client, csrf, data, event="d")["replies"]
    assert "*note*" in reply["markdown"] and "card number" in reply["markdown"] and "1111" not in reply["markdown"]
    assert _rows(services, InboundEvent) == []
    assert {a.status for a in _rows(services, Alert)} == {"open"}


def test_a_webex_dismiss_note_and_an_enrollment_reason_with_a_card_number_are_refused(services, messenger, alerts):
    dismissed = press_in_webex(
        services,
        messenger,
        ROOMS["store-001"],
        "P-ana",
        {"action": "dismiss", "alert_id": alerts["store-001"], "reason": "other", "note": SPELLINGS["slashes"]},
    )
    assert ["*note*" in m.markdown and "1111" not in m.markdown for m in dismissed] == [True]
    enrolled = press_in_webex(
        services,
        messenger,
        ROOMS["store-001"],
        "P-ana",
        {"action": "enroll", "transaction_id": "T-1", "face": "1", "reason": f"card {SPELLINGS['en dashes']}"},
    )
    assert ["*reason*" in m.markdown and "1111" not in m.markdown for m in enrolled] == [True]
    assert {a.status for a in _rows(services, Alert)} == {"open"}
    assert _rows(services, WatchlistPerson) == []

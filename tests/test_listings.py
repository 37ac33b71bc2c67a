"""Webex's 7,439-byte limit on markdown and the escaping of text from a POS or a person (issue #16, item 3).

The stand-in (FakeMessenger) refuses what Webex refuses, so every answer of the real command
handlers below reached it only by fitting; cards are validated against Adaptive Cards 1.3 by the
messenger fixture of tests/conversations.py.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
import responses

from bot.webex_client import WebexClient
from cards.alert import alert_card
from cards.text import for_card, for_markdown
from cards.views import AlertView
from core.messenger import MAX_TEXT_BYTES, OutgoingMessage, WebexError
from handlers.chat.listing import listing, shorten
from storage.uow import UnitOfWork
from tests import factories
from tests.card_schema import card_validator
from tests.conversations import ROOM, chat, messenger  # noqa: F401  (fixtures: the chat, and the messenger that validates every card)
from tests.fakes import FakeMessenger

EVIL = "Vinho **tinto** [x](http://evil) <@personEmail:boss@example.com> \u202egpj.exe\nline"
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


def _sizes(messages: list[str]) -> list[int]:
    return [len(m.encode("utf-8")) for m in messages]


# --- the stand-in and the client refuse what Webex refuses -------------------------------------------------------


def test_the_stand_in_refuses_markdown_over_the_limit_as_webex_does():
    fake = FakeMessenger()
    with pytest.raises(WebexError) as refused:
        fake.send(OutgoingMessage(room_id="R", markdown="é" * (MAX_TEXT_BYTES // 2 + 1)))  # 2 bytes each
    assert refused.value.status == 400 and refused.value.retry is False and fake.sent == []
    assert fake.send(OutgoingMessage(room_id="R", markdown="x" * MAX_TEXT_BYTES)) == "M-1"


def test_the_client_refuses_before_sending_with_webexs_400():
    webex = WebexClient("token-0123456789", base_url="https://webex.test/v1")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        with pytest.raises(WebexError) as refused:
            webex.send(OutgoingMessage(room_id="ROOM", markdown="x" * (MAX_TEXT_BYTES + 1)))
        assert len(mock.calls) == 0  # no call spent on what Webex would refuse
    assert refused.value.status == 400 and not refused.value.retry and "7439" in refused.value.reason


# --- one helper pages every listing -------------------------------------------------------------------------------


def test_pages_fit_the_budget_and_cover_every_line_once():
    lines = [f"- line {i} " + "ü" * (i % 300) for i in range(400)]
    seen, page, count = [], 1, None
    while True:
        shown = listing("**Things**", lines, page=page, command="things", empty="none")
        assert len(shown.text.encode("utf-8")) <= MAX_TEXT_BYTES and shown.end - shown.start <= 25
        seen += lines[shown.start : shown.end]
        count = shown.count
        if not shown.more:
            assert "more:" not in shown.text
            break
        assert shown.text.endswith(f"and {shown.more} more: `things {page + 1}`")
        page += 1
    assert seen == lines and page == count > 1


def test_a_line_longer_than_a_message_is_shortened_on_a_character_boundary():
    text = shorten("€" * 5000)  # 15,000 bytes
    assert len(text.encode("utf-8")) <= MAX_TEXT_BYTES and text.endswith("…") and set(text[:-1]) == {"€"}
    assert listing("**H**", ["x" * 20000], page=1, command="h", empty="").text.endswith("…")


# --- escaping ----------------------------------------------------------------------------------------------------


def test_markdown_escape_shows_formatting_links_and_mentions_as_typed():
    safe = for_markdown(EVIL)
    assert "**" not in safe and "\\*\\*tinto\\*\\*" in safe
    assert "[x](" not in safe and "\\[x\\](http://evil)" in safe
    assert "<@" not in safe and "&lt;@personEmail:boss@example.com&gt;" in safe
    assert "\n" not in safe and not set(BIDI) & set(safe) and "gpj.exe line" in safe
    assert for_markdown("- 1. not a list").startswith("\\- ") and for_markdown("12. x") == "12\\. x"
    assert for_markdown("\x00a\x1b[31mb" + BIDI) == "a[31mb".replace("[", "\\[")


def test_card_escape_leaves_no_markdown_or_direction_controls():
    safe = for_card(EVIL)
    assert "**" not in safe and "[x](" not in safe and "\\<@personEmail" in safe
    assert not set(BIDI) & set(safe) and "\n" not in safe


def test_an_item_name_from_the_pos_is_escaped_in_the_alert_card(clock):
    now = clock()
    view = AlertView(
        id="A-1",
        rule="product_mismatch",
        severity="high",
        message=f"More seen than billed: {EVIL}",
        status="dismissed",
        store_id="store-001",
        store_name="Loja",
        register_id="reg-1",
        occurred_at=now,
        timezone="UTC",
        amount="9.90",
        currency="BRL",
        transaction_id="T-1",
        cashier_id="c**1",
        reconciliation={"lines": [], "not_checked": [{"sku": "1", "name": EVIL, "reason": EVIL}]},
        decided_by="ana@example.com",
        decided_at=now,
        reason="other",
        note=EVIL,
    )
    card = alert_card(view)
    assert list(card_validator().iter_errors(card)) == []
    shown = "\n".join(_texts(card))
    assert len([t for t in _texts(card) if "tinto" in t]) >= 3  # the message, the item, the note
    assert "**" not in shown and "[x](" not in shown and not set(BIDI) & set(shown)
    assert re.search(r"(?<!\\)<@", shown) is None and "\\<@personEmail" in shown
    assert "c\\*\\*1" in shown


def _texts(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [str(node[k]) for k in ("text", "value") if isinstance(node.get(k), str)]
        return own + [t for v in node.values() for t in _texts(v)]
    if isinstance(node, list):
        return [t for v in node for t in _texts(v)]
    return []


# --- through the real command handlers ---------------------------------------------------------------------------


@pytest.fixture
def watchlist_200(services) -> list[str]:
    """200 active entries, newest first as `watchlist` lists them, each with a long reason typed by a person."""
    now = services.clock()
    ids = []
    with UnitOfWork(services.db, write=True) as uow:
        for i in range(200):
            person_id = f"P-{i:08x}"
            uow.session.add(
                factories.watchlist_person(
                    at=now, id=person_id, reason=f"{EVIL} " + "ç" * 150, enrolled_at=now - timedelta(minutes=i)
                )
            )
            ids.append(person_id)
        uow.commit()
    return ids


def test_watchlist_of_200_pages_and_page_2_shows_the_next_entries(chat, messenger, watchlist_200):
    (first,) = chat.say("P-carla", "watchlist")
    card = messenger.sent[-1].card
    on_first = re.findall(r"P-[0-9a-f]{8}", first)
    assert on_first == watchlist_200[: len(on_first)] and 0 < len(on_first) < 200
    assert first.rstrip().endswith(f"and {200 - len(on_first)} more: `watchlist 2`")
    assert "page 1 of" in first
    rows = [t for t in _texts(card) if re.fullmatch(r"P-[0-9a-f]{8} · active", t)]
    assert [r.split(" ")[0] for r in rows] == on_first  # the card shows the same page, bounded
    assert re.search(r"(?<!\\)<@", json.dumps(card).replace("\\\\", "\\")) is None and "**" not in json.dumps(card)
    assert any(t.startswith(f"And {200 - len(on_first)} more: type watchlist 2") for t in _texts(card))

    (second,) = chat.say("P-carla", "watchlist 2")
    on_second = re.findall(r"P-[0-9a-f]{8}", second)
    assert on_second == watchlist_200[len(on_first) : len(on_first) + len(on_second)]

    answers, page = [first, second], 2
    while "more: `watchlist" in answers[-1]:
        page += 1
        answers += chat.say("P-carla", f"watchlist {page}")
    assert max(_sizes(answers)) <= MAX_TEXT_BYTES
    listed = [pid for answer in answers for pid in re.findall(r"P-[0-9a-f]{8}", answer)]
    assert listed == watchlist_200
    (beyond,) = chat.say("P-carla", f"watchlist {page + 1}")
    assert f"are {page} pages" in beyond


@pytest.fixture
def business(business: dict) -> dict:
    """test_chat's store, space and people, with 100 rules."""
    business["stores"][0].update(webex_room_id=ROOM, region="south")
    business["regions"] = [{"id": "south", "webex_room_id": "ROOM-SOUTH"}]
    business["people"] = [
        {"email": "bruno@example.com", "role": "staff", "stores": ["store-001"]},
        {"email": "carla@example.com", "role": "security", "stores": ["*"]},
    ]
    business["rules"] = [
        {
            "name": f"rule_{i:03d}",
            "when": f"surplus_count >= {i + 1} and amount > {i}",
            "message": f"Rule {i}",
            "severity": "low",
        }
        for i in range(100)
    ]
    return business


def test_rules_of_100_page(chat):
    answers, page = chat.say("P-carla", "rules"), 1
    assert "and " in answers[0] and "more: `rules 2`" in answers[0]
    while "more: `rules" in answers[-1]:
        page += 1
        answers += chat.say("P-carla", f"rules {page}")
    assert page > 1 and max(_sizes(answers)) <= MAX_TEXT_BYTES
    names = [name for answer in answers for name in re.findall(r"\*\*(rule_\d{3})\*\*", answer)]
    assert names == [f"rule_{i:03d}" for i in range(100)]
    assert "Usage" in chat.say("P-carla", "rules two")[0]


def test_many_open_alerts_page(chat, services):
    now = services.clock()
    with UnitOfWork(services.db, write=True) as uow:
        for i in range(120):
            uow.session.add(
                factories.alert(
                    at=now, dedupe_key=f"k{i}", transaction_id=None, rule="rule_000", severity="low", message=EVIL
                )
            )
        uow.commit()
    answers, page = chat.say("P-bruno", "alerts"), 1
    assert "**120 open**" in answers[0] and "more: `alerts open 2`" in answers[0]
    while "more: `alerts" in answers[-1]:
        page += 1
        answers += chat.say("P-bruno", f"alerts open {page}")
    ids = [a for answer in answers for a in re.findall(r"\*\*(A-\d+)\*\*", answer)]
    assert len(ids) == len(set(ids)) == 120 and max(_sizes(answers)) <= MAX_TEXT_BYTES
    assert chat.say("P-bruno", "alerts 2")[0] == answers[1]  # `alerts 2` is the open alerts' page 2


def test_show_escapes_what_the_pos_and_people_wrote(chat, services):
    now = services.clock()
    with UnitOfWork(services.db, write=True) as uow:
        uow.session.add(factories.transaction(at=now, transaction_id="T-9", total_amount=Decimal("9.90")))
        alert = factories.alert(
            at=now,
            dedupe_key="x",
            transaction_id="T-9",
            rule="rule_000",
            severity="low",
            message=f"Not billed: {EVIL} " + "<" * 400,
        )
        uow.session.add(alert)
        uow.commit()
        public_id = alert.public_id
    (answer,) = chat.say("P-bruno", f"show {public_id}")
    assert len(answer.encode("utf-8")) <= MAX_TEXT_BYTES and "&lt;" * 400 in answer
    assert "\\*\\*tinto\\*\\*" in answer and "[x](" not in answer and "<@" not in answer
    assert not set(BIDI) & set(answer)


def test_stats_pages_after_the_period_and_a_bare_number_is_still_days(chat):
    assert chat.say("P-bruno", "stats 2")[0].startswith("**Last 2 days**")
    assert "There is one page" in chat.say("P-bruno", "stats 7d 2")[0]

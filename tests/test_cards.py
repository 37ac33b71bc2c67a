"""Card builders: valid Adaptive Cards 1.3, Webex's limits, the Submit data contract, and committed snapshots.

Snapshots live in tests/snapshots/cards/<name>.json; run with UPDATE_SNAPSHOTS=1 to (re)write them
after a deliberate change, and review the diff like code.
"""

from __future__ import annotations

import ast
import difflib
import io
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema.exceptions import best_match
from PIL import Image

from cards import actions, elements
from cards.alert import alert_card
from cards.enrollment import enrollment_card
from cards.help import help_card
from cards.patterns import pattern_card
from cards.stats import stats_card
from cards.status import status_card
from cards.watchlist import watchlist_entry_card, watchlist_list_card
from tests import card_examples as ex
from tests.card_schema import card_validator
from vision.annotate import annotate

SNAPSHOTS = Path(__file__).parent / "snapshots" / "cards"

CARDS: dict[str, Callable[[], dict[str, Any]]] = {
    "alert_watchlist_open": lambda: alert_card(ex.WATCHLIST_ALERT, now=ex.NOW),
    "alert_product_only": lambda: alert_card(ex.PRODUCT_ALERT),
    "alert_pattern_without_picture": lambda: alert_card(ex.PATTERN_ALERT),
    "alert_decided": lambda: alert_card(ex.DECIDED_ALERT, now=ex.NOW),
    "alert_with_sightings": lambda: alert_card(ex.SIGHTED_ALERT),
    "alert_sightings_of_an_erased_person": lambda: alert_card(ex.SIGHTED_UNKNOWN_PERSON),
    "alert_with_image": lambda: alert_card(ex.PRODUCT_ALERT, image_url="https://bot.example.com/img/s-3?sig=abc"),
    "enrollment_one_face": lambda: enrollment_card(ex.proposal(1)),
    "enrollment_three_faces": lambda: enrollment_card(ex.proposal(3)),
    "watchlist_entry_active": lambda: watchlist_entry_card(ex.ENTRY, now=ex.NOW),
    "watchlist_entry_pending": lambda: watchlist_entry_card(ex.PENDING_ENTRY),
    "watchlist_list": lambda: watchlist_list_card([ex.ENTRY, ex.PENDING_ENTRY]),
    "watchlist_list_empty": lambda: watchlist_list_card([]),
    "help_staff": lambda: help_card(ex.STAFF_HELP),
    "help_security": lambda: help_card(ex.SECURITY_HELP),
    "status": lambda: status_card(ex.STATUS),
    "stats": lambda: stats_card(ex.STATS),
    "patterns": lambda: pattern_card(ex.PATTERNS),
    "patterns_empty": lambda: pattern_card(ex.PATTERNS_EMPTY),
}


@pytest.fixture(scope="module")
def validator() -> Any:
    return card_validator()


def _walk_actions(card: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every action of a card: top-level, in ActionSets and inside ShowCard cards."""
    stack: list[Any] = [card]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if str(node.get("type", "")).startswith("Action."):
                yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


@pytest.mark.parametrize("name", sorted(CARDS))
def test_card_is_valid_adaptive_card_1_3(name: str, validator: Any) -> None:
    card = CARDS[name]()
    error = best_match(validator.iter_errors(card))
    assert error is None, f"{name}: {error.message} at {'/'.join(map(str, error.absolute_path))}"
    assert card["version"] == "1.3" and card["$schema"] == elements.SCHEMA_URL
    assert len(card.get("actions", [])) <= elements.MAX_ACTIONS
    json.dumps(card)  # a card is plain JSON


def test_validator_rejects_what_webex_would_not_render(validator: Any) -> None:
    typo = elements.card([{"type": "TextBlock", "text": "x", "wrapp": True}])
    wrong_color = elements.card([elements.text("x", color="red")])
    assert not validator.is_valid(typo) and not validator.is_valid(wrong_color)


@pytest.mark.parametrize("name", sorted(CARDS))
def test_every_submit_names_action_and_subject(name: str) -> None:
    for action in _walk_actions(CARDS[name]()):
        if action["type"] == "Action.Submit":
            data = action["data"]
            assert data["action"] in actions.ACTIONS
            assert any(data.get(key) for key in actions.ID_KEYS), action


@pytest.mark.parametrize("name", sorted(CARDS))
def test_card_matches_snapshot(name: str) -> None:
    rendered = json.dumps(CARDS[name](), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    path = SNAPSHOTS / f"{name}.json"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered, encoding="utf-8")
    if not path.exists():
        pytest.fail(
            f"no snapshot {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}; "
            "run with UPDATE_SNAPSHOTS=1 to write it, then review and commit it"
        )
    expected = path.read_text(encoding="utf-8")
    if rendered != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(True), rendered.splitlines(True), f"snapshot/{name}.json", f"built/{name}.json"
            )
        )
        pytest.fail(f"card {name} differs from its snapshot (UPDATE_SNAPSHOTS=1 to accept):\n{diff}")


def _texts(card: dict[str, Any]) -> list[str]:
    found: list[str] = []
    stack: list[Any] = [card]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            found += [
                str(node[key]) for key in ("text", "title", "value", "label") if isinstance(node.get(key), (str, int))
            ]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _top_titles(card: dict[str, Any]) -> list[str]:
    return [action["title"] for action in card.get("actions", [])]


def test_open_watchlist_alert_offers_all_four_buttons_and_the_caution() -> None:
    card = CARDS["alert_watchlist_open"]()
    assert _top_titles(card) == ["Confirm", "Dismiss", "Enroll a face", "Open footage"]
    confirm, dismiss, enroll, footage = card["actions"]
    assert confirm["data"] == {"action": "confirm", "alert_id": "A-1042"}
    assert enroll["data"] == {"action": "enroll_proposal", "transaction_id": "tx-20250614-0042", "alert_id": "A-1042"}
    assert footage["type"] == "Action.OpenUrl" and footage["url"] == ex.WATCHLIST_ALERT.video_link
    form = dismiss["card"]
    reason, note = form["body"]
    assert (reason["id"], reason["isRequired"]) == ("reason", True)
    assert [(c["value"], c["title"]) for c in reason["choices"]][0] == ("not_same_person", "Not the same person")
    assert [c["value"] for c in reason["choices"]] == ["not_same_person", "billed_correctly", "no_loss", "other"]
    assert note["id"] == "note" and "Other" in note["label"] and "isRequired" not in note
    assert form["actions"][0]["data"] == {"action": "dismiss", "alert_id": "A-1042"}
    texts = _texts(card)
    assert "Watchlist: P-7, similarity 92.1" in texts and actions.DISMISS_REASONS
    assert any("must compare the photo" in t for t in texts)
    assert "Sat 14 Jun 2025, 22:41:05 -03 (12 min ago)" in texts
    assert not any(node.get("type") == "Image" for node in card["body"])


def test_reconciliation_shows_billed_against_seen_and_summarises_not_checked() -> None:
    texts = _texts(CARDS["alert_product_only"]())
    assert "Wine bottle" in texts and "billed 1, seen 3 (+2)" in texts and "billed 2, seen 2" in texts
    assert "Seen but not billed: 2 items, about 119.80 BRL" in texts
    assert any(t.startswith("Not checked (4): Bananas (billed by weight") and t.endswith("; and 1 more") for t in texts)


def test_product_only_alert_offers_no_enrollment_and_no_footage_without_a_link() -> None:
    card = CARDS["alert_product_only"]()
    assert _top_titles(card) == ["Confirm", "Dismiss"]
    assert not any("Watchlist" in t for t in _texts(card))


def test_decided_alert_has_no_buttons_and_says_who_when_why() -> None:
    card = CARDS["alert_decided"]()
    assert "actions" not in card and list(_walk_actions(card)) == []
    texts = _texts(card)
    assert "Dismissed by ana@example.com, Sat 14 Jun 2025, 22:51 -03" in texts
    assert "Reason: Not the same person" in texts and "Note: Different person, checked the footage" in texts
    assert not any("must compare the photo" in t for t in texts)  # decided by a person already


def test_a_later_alert_names_where_and_when_the_person_was_seen_before() -> None:
    texts = [node["text"] for node in CARDS["alert_with_sightings"]()["body"] if node["type"] == "TextBlock"]
    seen = [t for t in texts if t.startswith("Also seen")]
    # Store time, newest first, one line per place and minute; the ids as people type them in commands.
    assert seen == [
        "Also seen at the entrance at 00:07 (store time): A-1041, A-1040",
        "Also seen at register reg-2 at 00:05 (store time): A-1039",
        "Also seen at the entrance on Sat 14 Jun 2025, 23:45 -03: A-1030",
    ]
    # Beside the watchlist entry, before the caution that closes that section.
    assert texts.index(seen[0]) < texts.index(next(t for t in texts if "must compare the photo" in t))


def test_sightings_are_capped_and_stand_without_an_entry() -> None:
    card = CARDS["alert_sightings_of_an_erased_person"]()
    texts = _texts(card)
    assert len([t for t in texts if t.startswith("Also seen")]) == 3
    assert "And 2 earlier alerts of this person here." in texts
    first = next(node for node in card["body"] if str(node.get("text", "")).startswith("Also seen"))
    assert first.get("separator") is True and not any("Watchlist:" in t for t in texts)


def test_no_sightings_no_line() -> None:
    assert not any(t.startswith("Also seen") for t in _texts(CARDS["alert_watchlist_open"]()))


def test_alert_image_only_when_a_url_is_given() -> None:
    images = [node for node in CARDS["alert_with_image"]()["body"] if node["type"] == "Image"]
    assert [image["url"] for image in images] == ["https://bot.example.com/img/s-3?sig=abc"]


def test_enrollment_offers_only_faces_that_pass_and_carries_the_transaction() -> None:
    card = CARDS["enrollment_three_faces"]()
    inputs = {node["id"]: node for node in card["body"] if node["type"].startswith("Input.")}
    assert [c["value"] for c in inputs["face"]["choices"]] == ["1", "2"] and "value" not in inputs["face"]
    assert inputs["reason"]["isRequired"] is True
    assert (inputs["expiry_days"]["value"], inputs["expiry_days"]["max"]) == (180, 365)
    (button,) = card["actions"]
    assert button["data"] == {
        "action": "enroll",
        "transaction_id": "tx-20250614-0042",
        "alert_id": "A-1042",
        "face_ids": {"1": "f-101", "2": "f-102"},
    }
    texts = _texts(card)
    assert "Resembles P-7 (92.1): may already be enrolled" in texts
    assert "Quality 0.86 (132 px, sharpness 0.74)" in texts and "Not offered: too small: 52 px, at least 80 px" in texts


def test_enrollment_with_one_face_preselects_it() -> None:
    card = CARDS["enrollment_one_face"]()
    face = next(node for node in card["body"] if node.get("id") == "face")
    assert face["value"] == "1"


def test_watchlist_entry_buttons_carry_the_person() -> None:
    active, pending = CARDS["watchlist_entry_active"](), CARDS["watchlist_entry_pending"]()
    assert [a["data"] for a in active["actions"]] == [{"action": "watchlist_remove", "person_id": "P-7"}]
    assert [a["data"]["action"] for a in pending["actions"]] == ["watchlist_approve", "watchlist_remove"]


def test_help_lists_only_the_given_commands_and_answers_unknown_ones() -> None:
    staff, security = _texts(CARDS["help_staff"]()), _texts(CARDS["help_security"]())
    assert "forget <person>" in security and "forget <person>" not in staff
    assert any('"refund"' in t for t in staff)


def test_status_headline_names_what_is_wrong() -> None:
    texts = _texts(CARDS["status"]())
    assert "Needs attention: Webex, Camera" in texts and "5 min" in texts


def test_stats_show_precision_per_rule() -> None:
    texts = _texts(CARDS["stats"]())
    assert "watchlist_match: 3 of 4 (75%)" in texts and "night_manual: no decisions yet" in texts
    assert "689.50 BRL" in texts and "8 (unbilled_items 5, watchlist_match 3)" in texts


def test_submit_refuses_what_handlers_could_not_route() -> None:
    with pytest.raises(ValueError, match="needs one of"):
        actions.submit("Confirm", actions.CONFIRM)
    with pytest.raises(ValueError, match="needs one of"):
        actions.submit("Confirm", actions.CONFIRM, alert_id=None, note="x")
    with pytest.raises(ValueError, match="unknown card action"):
        actions.submit("Go", "launch", alert_id="A-1")
    with pytest.raises(ValueError, match="unknown action style"):
        actions.submit("Go", actions.CONFIRM, alert_id="A-1", style="loud")


def test_card_refuses_more_than_five_actions_and_naive_times() -> None:
    button = actions.submit("Confirm", actions.CONFIRM, alert_id="A-1")
    with pytest.raises(ValueError, match="at most 5"):
        elements.card([], [button] * 6)
    with pytest.raises(ValueError, match="naive"):
        elements.local_time(ex.NOW.replace(tzinfo=None), "UTC")


def test_cards_stay_pure() -> None:
    """docs/style.md: cards import no storage, handlers or bot (and so no database, network or clock)."""
    for module in (Path(__file__).parent.parent / "cards").glob("*.py"):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
        imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        assert not [name for name in imported if name.split(".")[0] in ("storage", "handlers", "bot")], module.name


def _photo(width: int = 640, height: int = 480) -> bytes:
    """A smooth gradient: JPEG round trips keep it close, so changed pixels stand out."""
    picture = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=95)
    return out.getvalue()


def test_annotate_boxes_faces_and_leaves_the_rest() -> None:
    source = _photo()
    boxed = annotate(source, [(0.25, 0.25, 0.45, 0.55), (0.6, 0.3, 0.8, 0.6)])
    before, after = Image.open(io.BytesIO(source)).convert("RGB"), Image.open(io.BytesIO(boxed))
    assert after.format == "JPEG" and after.size == before.size
    after = after.convert("RGB")

    def moved(x: int, y: int) -> int:
        return sum(abs(a - b) for a, b in zip(before.getpixel((x, y)), after.getpixel((x, y)), strict=False))

    left_edge = [(160, y) for y in range(150, 260, 10)]  # on the first box's left side (x = 0.25 × 639)
    assert all(moved(x, y) > 120 for x, y in left_edge)
    far = [(x, y) for x in range(20, 620, 60) for y in (20, 460)]  # corners and edges, well away from both boxes
    assert sum(moved(x, y) for x, y in far) / len(far) < 15


def test_annotate_without_boxes_keeps_size_and_accepts_png() -> None:
    picture = Image.new("RGBA", (300, 200), (10, 20, 30, 255))
    out = io.BytesIO()
    picture.save(out, format="PNG")
    result = Image.open(io.BytesIO(annotate(out.getvalue(), [])))
    assert (result.format, result.size) == ("JPEG", (300, 200))

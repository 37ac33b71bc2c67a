"""The alert card: what happened, the evidence, who it may be, and the buttons to decide.

Built to be read on a phone: short wrapping lines, a fact set for where/when/how much, the
receipt against what the camera counted, and a plain caution that a match is a score a person
must check. A decided alert shows who decided, when and why, and no buttons.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cards import elements as el
from cards.actions import (
    BUTTON_TITLES,
    CONFIRM,
    DISMISS,
    DISMISS_REASONS,
    ENROLL_PROPOSAL,
    INPUT_NOTE,
    INPUT_REASON,
    open_url,
    show_card,
    submit,
)
from cards.text import clean, for_card
from cards.views import AlertView, SightingView, WatchlistEntryView

SEVERITY_COLOR = {"critical": "attention", "high": "attention", "medium": "warning", "low": "default"}
MATCH_CAUTION = (
    "A similarity score is not an identification. A person must compare the photo and the "
    "footage and confirm before anything is done."
)
COUNT_CAUTION = "Counts come from one camera picture; check the footage before acting."
NOT_CHECKED_SHOWN = 3
SIGHTINGS_SHOWN = 3  # lines of "also seen at …"; a phone card stays short
_REASON_WORDS = dict(DISMISS_REASONS) | {"other": "Other"}


def alert_card(alert: AlertView, *, now: datetime | None = None, image_url: str | None = None) -> dict[str, Any]:
    """The card posted to the store's space; ``now`` adds the alert's age, ``image_url`` embeds the photo."""
    body = [
        *_summary(alert),
        _facts(alert, now),
        *_products(alert.reconciliation, alert.currency),
        *_watchlist(alert.person, alert.similarity, caution=not alert.is_decided, sightings=_sightings(alert)),
        *_evidence(alert, image_url),
        *_decision(alert),
    ]
    actions = [] if alert.is_decided else _actions(alert)
    return el.card(body, actions, fallback_text=f"Alert {alert.id}: {clean(alert.message)}")


def _summary(alert: AlertView) -> list[dict[str, Any]]:
    """Id, severity in its colour, and the rule's own words."""
    color = SEVERITY_COLOR.get(alert.severity, "default")
    return [
        el.text(f"Alert {alert.id}", size="medium", weight="bolder"),
        el.text(f"{alert.severity.upper()} · {alert.rule}", weight="bolder", color=color, spacing="none"),
        el.text(for_card(alert.message)),  # a rule's words, with what the POS sent in them
    ]


def _facts(alert: AlertView, now: datetime | None) -> dict[str, Any]:
    """Where, when (store time), how much, and which pictures."""
    when = el.local_time(alert.occurred_at, alert.timezone, seconds=True)
    if now is not None:
        when += f" ({el.duration((now - alert.occurred_at).total_seconds())} ago)"
    pictures = ", ".join(snapshot.kind for snapshot in alert.snapshots) or "none (not pictured)"
    zone = " in the customer zone" if alert.register_id else ""
    faces = f"{alert.faces_count}{zone}" if alert.snapshots else None
    return el.fact_set(
        [
            ("Store", f"{alert.store_name} ({alert.store_id})"),
            ("Register", alert.register_id or "Entrance"),
            ("Time", when),
            (
                "Kind",
                alert.transaction_type.replace("_", "-") if alert.transaction_type not in (None, "sale") else None,
            ),
            ("Amount", el.money(alert.amount, alert.currency)),
            ("Transaction", for_card(alert.transaction_id) if alert.transaction_id else None),
            ("Cashier", for_card(alert.cashier_id) if alert.cashier_id else None),
            ("Pictures", pictures),
            ("Faces", faces),
        ]
    )


def _products(reconciliation: Mapping[str, Any] | None, currency: str | None) -> list[dict[str, Any]]:
    """Receipt against camera, one line per label, then the surplus and what could not be checked."""
    if not reconciliation or not (reconciliation.get("lines") or reconciliation.get("not_checked")):
        return []
    blocks = [el.heading("Receipt vs camera", separator=True)]
    blocks += [_product_line(line) for line in reconciliation.get("lines", [])]
    surplus = int(reconciliation.get("surplus_count") or 0)
    if surplus:
        value = el.money(reconciliation.get("surplus_value"), currency)
        words = f"Seen but not billed: {surplus} item{'s' if surplus != 1 else ''}"
        blocks.append(el.text(f"{words}, about {value}" if value else words, weight="bolder", color="attention"))
    if reconciliation.get("confidence") is not None:
        blocks.append(
            el.text(f"Count confidence: {el.percent(reconciliation['confidence'])}", subtle=True, spacing="small")
        )
    blocks += _not_checked(reconciliation.get("not_checked", []))
    if reconciliation.get("lines"):
        blocks.append(el.text(COUNT_CAUTION, subtle=True, spacing="small"))
    return blocks


def _product_line(line: Mapping[str, Any]) -> dict[str, Any]:
    """'Bottle | billed 1, seen 3 (+2)' as two aligned columns; a surplus in the attention colour."""
    surplus = int(line.get("surplus", max(int(line["seen"]) - int(line["billed"]), 0)) or 0)
    counts = f"billed {line['billed']}, seen {line['seen']}" + (f" (+{surplus})" if surplus else "")
    return el.column_set(
        [
            el.column([el.text(for_card(label_words(line["label"])), weight="bolder")], width=3),
            el.column([el.text(counts, color="attention" if surplus else None)], width=4),
        ],
        spacing="small",
    )


def _not_checked(items: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The lines the camera could not vouch for, summarised: the first few with their reason."""
    if not items:
        return []
    shown = [f"{for_card(_item_name(item))} ({for_card(item['reason'])})" for item in items[:NOT_CHECKED_SHOWN]]
    more = len(items) - NOT_CHECKED_SHOWN
    summary = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
    return [el.text(f"Not checked ({len(items)}): {summary}", subtle=True, spacing="small")]


def _item_name(item: Mapping[str, Any]) -> str:
    if item.get("name"):
        return str(item["name"])
    if item.get("label"):
        return label_words(str(item["label"]))
    return f"SKU {item.get('sku', '?')}"


def label_words(label: str) -> str:
    """'wine_bottle' -> 'Wine bottle': catalog labels as people say them."""
    words = label.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:]


def _watchlist(
    person: WatchlistEntryView | None, similarity: float | None, *, caution: bool, sightings: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The matched entry: id, similarity, why enrolled, its track record, where else the person was seen,
    and (while open) the caution."""
    if person is None:
        return [{**sightings[0], "separator": True}, *sightings[1:]] if sightings else []
    score = f", similarity {similarity:.1f}" if similarity is not None else ""
    blocks = [
        el.heading(f"Watchlist: {person.id}{score}", separator=True),
        el.text(f"Enrolled for: {for_card(person.reason)}", spacing="small"),
        el.text(
            f"Enrolled {el.local_date(person.enrolled_at, person.timezone)} at {person.store_id}, "
            f"expires {el.local_date(person.expires_at, person.timezone)}",
            subtle=True,
            spacing="small",
        ),
    ]
    record = []
    if person.precision is not None:
        record.append(f"earlier alerts confirmed: {el.percent(person.precision)}")
    if person.wrong_match_count:
        record.append(f"wrong matches: {person.wrong_match_count}")
    if record:
        blocks.append(el.text(("; ".join(record)).capitalize(), subtle=True, spacing="small"))
    if person.flagged_for_review:
        blocks.append(
            el.text("This entry is flagged for review (too many wrong matches).", color="warning", spacing="small")
        )
    blocks += sightings
    if caution:
        blocks.append(el.text(MATCH_CAUTION, weight="bolder", color="warning"))
    return blocks


def _sightings(alert: AlertView) -> list[dict[str, Any]]:
    """'Also seen at the entrance at 14:02 (store time): A-17', one line per place and minute, newest first,
    so whoever decides this alert can open the earlier one by its id."""
    lines: dict[str, list[str]] = {}
    for sighting in alert.sightings:
        lines.setdefault(_sighting_words(sighting, alert), []).append(sighting.alert_id)
    shown = [
        el.text(f"{words}: {', '.join(ids)}", spacing="small") for words, ids in list(lines.items())[:SIGHTINGS_SHOWN]
    ]
    more = sum(len(ids) for ids in list(lines.values())[SIGHTINGS_SHOWN:])
    if more:
        shown.append(
            el.text(
                f"And {more} earlier alert{'s' if more != 1 else ''} of this person here.", subtle=True, spacing="small"
            )
        )
    return shown


def _sighting_words(sighting: SightingView, alert: AlertView) -> str:
    place = f"register {sighting.register_id}" if sighting.register_id else "the entrance"
    if el.local_date(sighting.at, alert.timezone) == el.local_date(alert.occurred_at, alert.timezone):
        return f"Also seen at {place} at {el.local_clock(sighting.at, alert.timezone)} (store time)"
    return f"Also seen at {place} on {el.local_time(sighting.at, alert.timezone)}"


def _evidence(alert: AlertView, image_url: str | None) -> list[dict[str, Any]]:
    """The photo itself only through a public URL; otherwise a pointer to the threaded file."""
    if image_url:
        return [el.image(image_url, f"Evidence photo of {alert.id}, faces boxed and numbered", size="stretch")]
    if alert.snapshots and not alert.is_decided:
        return [
            el.text(
                "The evidence photo (faces boxed and numbered) follows in this thread.", subtle=True, separator=True
            )
        ]
    return []


def _decision(alert: AlertView) -> list[dict[str, Any]]:
    """Who decided, when (store time) and why."""
    if not alert.is_decided:
        return []
    when = el.local_time(alert.decided_at, alert.timezone) if alert.decided_at else "at an unknown time"
    verdict = "Confirmed" if alert.status == "confirmed" else "Dismissed"
    blocks = [el.heading(f"{verdict} by {alert.decided_by or 'someone'}, {when}", separator=True)]
    if alert.reason:
        blocks.append(el.text(f"Reason: {for_card(_REASON_WORDS.get(alert.reason, alert.reason))}", spacing="small"))
    if alert.note:
        blocks.append(el.text(f"Note: {for_card(alert.note)}", spacing="small"))
    return blocks


def _actions(alert: AlertView) -> list[dict[str, Any]]:
    """Confirm, Dismiss (a reason form), Enroll (when there are faces to offer), Open footage (when linked)."""
    actions = [submit(BUTTON_TITLES[CONFIRM], CONFIRM, alert_id=alert.id), show_card("Dismiss", dismiss_form(alert.id))]
    if alert.transaction_id and alert.faces_count > 0:
        actions.append(
            submit(
                BUTTON_TITLES[ENROLL_PROPOSAL], ENROLL_PROPOSAL, transaction_id=alert.transaction_id, alert_id=alert.id
            )
        )
    if alert.video_link:
        actions.append(open_url("Open footage", alert.video_link))
    return actions


def dismiss_form(alert_id: str) -> dict[str, Any]:
    """The reason choice and note; 1.3 cannot make the note required only for 'other', so the handler checks it."""
    reason = {
        "type": "Input.ChoiceSet",
        "id": INPUT_REASON,
        "label": "Why dismiss?",
        "style": "expanded",
        "isRequired": True,
        "errorMessage": "Pick a reason.",
        "choices": [{"title": title, "value": value} for value, title in DISMISS_REASONS],
    }
    note = {
        "type": "Input.Text",
        "id": INPUT_NOTE,
        "label": "Note (required when the reason is Other)",
        "placeholder": "What happened?",
        "isMultiline": True,
        "maxLength": 500,
    }
    return el.sub_card([reason, note], [submit(BUTTON_TITLES[DISMISS], DISMISS, alert_id=alert_id)])

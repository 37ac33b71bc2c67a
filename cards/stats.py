"""The stats card: per store, what was checked and alerted and how it was decided; per rule, its precision."""

from __future__ import annotations

from typing import Any

from cards import elements as el
from cards.status import face_evaluation_section
from cards.views import EntryPrecision, RulePrecision, StatsView, StoreStatsRow

RULES_SHOWN = 25  # a card is part of one request: bounded, the rest are in `rules`


def stats_card(view: StatsView) -> dict[str, Any]:
    """One section per store, then each rule's confirmed / decided (the measure of whether it earns attention)."""
    body = [el.text(f"Stats, {view.period}", size="medium", weight="bolder")]
    if not (view.stores or view.watchlist):
        body.append(el.text("No store activity in this period."))
    body += [_store(row) for row in view.stores]
    if view.rules:
        body.append(el.heading("Rule precision (confirmed of decided)", separator=True))
        body += [_rule(rule) for rule in view.rules[:RULES_SHOWN]]
        if len(view.rules) > RULES_SHOWN:
            body.append(el.text(f"And {len(view.rules) - RULES_SHOWN} more: type rules", subtle=True, spacing="small"))
    if view.watchlist:
        body.append(el.heading("Watchlist precision (confirmed of decided)", separator=True))
        body += [_entry(entry) for entry in view.watchlist]
    if view.face_evaluation is not None:
        body += face_evaluation_section(view.face_evaluation)
    if view.more:
        body.append(el.text(f"And {view.more} more: type {view.next_page}", subtle=True, separator=True))
    return el.card(body, fallback_text=f"Stats, {view.period}")


def _store(row: StoreStatsRow) -> dict[str, Any]:
    by_rule = ", ".join(f"{rule} {count}" for rule, count in sorted(row.alerts_by_rule.items()))
    total = sum(row.alerts_by_rule.values())
    stale = (
        [el.text(f"{row.open_older_than_a_day} open for more than a day", color="attention", spacing="small")]
        if row.open_older_than_a_day
        else []
    )
    return el.container(
        [
            el.heading(f"{row.store_name} ({row.store_id})"),
            el.fact_set(
                [
                    ("Transactions checked", str(row.transactions_checked)),
                    ("Pictures", str(row.pictures)),
                    ("Alerts", f"{total} ({by_rule})" if by_rule else "0"),
                    ("Confirmed", str(row.confirmed)),
                    ("Dismissed", str(row.dismissed)),
                    ("Loss prevented (est.)", el.money(row.loss_prevented_amount, row.currency)),
                ]
            ),
            *stale,
        ],
        separator=True,
    )


def _rule(rule: RulePrecision) -> dict[str, Any]:
    if rule.precision is None:
        return el.text(f"{rule.rule}: no decisions yet", subtle=True, spacing="small")
    return el.text(f"{rule.rule}: {rule.confirmed} of {rule.decided} ({el.percent(rule.precision)})", spacing="small")


def _entry(entry: EntryPrecision) -> dict[str, Any]:
    flag = " · flagged for review" if entry.flagged_for_review else ""
    measured = (
        f"{entry.confirmed} of {entry.decided} ({el.percent(entry.precision)})"
        if entry.precision is not None
        else "no decisions yet"
    )
    return el.text(f"{entry.person_id}: {measured}{flag}", spacing="small", color="warning" if flag else None)

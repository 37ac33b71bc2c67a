"""The pattern report card: the cashiers and registers furthest from the store's others over whole local days,
the cards with most refunds and voids, and the rules that fired, with the alerts behind them.

Alert ids are typeable text (`show A-12`): a card has at most five buttons, and a report can name more
alerts than that. The card has no buttons at all; it is read, and its chart follows in the thread.
"""

from __future__ import annotations

from typing import Any

from cards import elements as el
from cards.text import for_card
from cards.views import CardPattern, PatternReportView, RuleHits, SubjectPattern

# How the counts of a cashier or register read, in this order; zeros are left out.
KINDS = (
    ("void", "void", "voids"),
    ("refund", "refund", "refunds"),
    ("no_sale", "no-sale", "no-sales"),
    ("override", "override or discount", "overrides and discounts"),
    ("own_refund", "refund or void of an own sale", "refunds or voids of own sales"),
    ("under_rung", "under-rung", "under-rung"),
)
FINGERPRINT_SHOWN = 12  # characters of an opaque card token: enough to tell cards apart


def pattern_card(view: PatternReportView) -> dict[str, Any]:
    """Cashiers, registers, cards and rule hits, each section only when it has something; a legend last."""
    title = f"Patterns, {view.store_name} ({view.store_id})"
    body = [
        el.text(title, size="medium", weight="bolder"),
        el.text(f"{period(view)} · {_totals(view)}", subtle=True, spacing="none"),
    ]
    if view.cashiers:
        body.append(el.heading("Cashiers furthest from the others", separator=True))
        body += [_subject(row) for row in view.cashiers]
    if view.registers:
        body.append(el.heading("Registers furthest from the others", separator=True))
        body += [_subject(row) for row in view.registers]
    if view.cards:
        body.append(el.heading("Cards with most refunds and voids", separator=True))
        body += [_card(row) for row in view.cards]
    if view.rules:
        body.append(el.heading("Rule hits", separator=True))
        body.append(el.fact_set([(hits.rule, _hits(hits)) for hits in view.rules]))
    if not (view.transactions or view.rules):
        body.append(el.text("No transactions were counted in this period."))
    body.append(
        el.text(
            f"z: standard deviations of the exception rate from the store's other cashiers (or registers) over the "
            f"same days. new: fewer than {view.min_transactions} transactions. —: fewer than {view.min_peers} others "
            "to compare with. A pattern is a question for a person, not a finding. Type show A-12 to open an alert.",
            subtle=True,
            separator=True,
            size="small",
        )
    )
    return el.card(body, fallback_text=f"{title}, {period(view)}")


def period(view: PatternReportView) -> str:
    """'Mon 16 Nov 2026 – Sun 22 Nov 2026 (7 days)', or one day."""
    days = (view.last_day - view.first_day).days + 1
    if days == 1:
        return el.day(view.first_day)
    return f"{el.day(view.first_day)} – {el.day(view.last_day)} ({days} days)"


def standing(row: SubjectPattern) -> str:
    """'z +3.2', 'new' (too few transactions) or '—' (too few others to compare with)."""
    if row.z is not None:
        return f"z {row.z:+.1f}"
    return "new" if row.new else "—"


def rate(value: float) -> str:
    return f"{value * 100:.1f}%"


def _totals(view: PatternReportView) -> str:
    share = f" ({rate(view.exceptions / view.transactions)})" if view.transactions else ""
    return f"{view.transactions} transactions, {view.exceptions} exceptions{share}"


def _subject(row: SubjectPattern) -> dict[str, Any]:
    far = abs(row.z) if row.z is not None else 0.0
    color = "attention" if far >= 3 else "warning" if far >= 2 else None
    others = f"; others {rate(row.peer_mean)}" if row.peer_mean is not None else ""
    kinds = ", ".join(f"{n} {one if n == 1 else many}" for kind, one, many in KINDS if (n := row.counts.get(kind, 0)))
    items = [
        el.text(f"{for_card(row.subject)} · {standing(row)}", weight="bolder", color=color),
        el.text(
            f"{row.transactions} transactions, {row.exceptions} exceptions ({rate(row.rate)}{others})", spacing="none"
        ),
    ]
    if kinds:
        items.append(el.text(kinds, subtle=True, spacing="none"))
    if row.alert_ids:
        more = f" and {row.more_alerts} more" if row.more_alerts else ""
        items.append(el.text(f"Alerts: {', '.join(row.alert_ids)}{more}", spacing="none"))
    return el.container(items, spacing="small")


def _card(row: CardPattern) -> dict[str, Any]:
    token = row.fingerprint if len(row.fingerprint) <= FINGERPRINT_SHOWN else row.fingerprint[:FINGERPRINT_SHOWN] + "…"
    counts = ", ".join(
        f"{n} {word if n == 1 else word + 's'}" for n, word in ((row.refunds, "refund"), (row.voids, "void")) if n
    )
    return el.text(f"{for_card(token)} · {counts} · {row.amount}", spacing="small")


def _hits(hits: RuleHits) -> str:
    return f"{hits.alerts} alert{'' if hits.alerts == 1 else 's'}: {hits.confirmed} confirmed, {hits.dismissed} dismissed, {hits.open} open"

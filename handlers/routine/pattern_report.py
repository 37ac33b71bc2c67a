"""The pattern report (issue #9): for one store and whole store-local days, the cashiers and registers furthest
from the store's others, the cards with most refunds and voids, the rule hits and the alerts behind them.

Counts are summed from ``pattern_counts`` (days × subjects rows, never the transactions behind them). A
subject's z-score compares its exception rate with the store's *other* cashiers (or registers) over the same
days, with the baselines' policy (``rules/baselines.py``). `patterns [Nd]` covers the N local days ending
today (today so far); the weekly report (``handlers/routine/weekly_report.py``) the 7 completed days before its day.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from cards.patterns import pattern_card, period, standing
from cards.views import CardPattern, PatternReportView, RuleHits, SubjectPattern
from core.config import ROLE_RANK, Config, StoreConfig
from core.events import ChatCommand
from core.routes import router
from handlers.chat.commands import parse_days
from handlers.conversation.reply import Answer, Reply
from handlers.pipeline.patterns import OWN_REFUND, UNDER_RUNG
from handlers.routine.charts import pattern_chart
from rules.baselines import EXCEPTION_KINDS, BaselinePolicy, CashierBaseline, rates_of, transactions_of
from storage.evidence import EvidenceStore
from storage.uow import UnitOfWork

ALERT_IDS_SHOWN = 3  # per cashier or register; the rest are "and N more" (`alerts`, `show` find them)


@dataclass(frozen=True)
class ReportPeriod:
    """Whole store-local days [first_day, last_day] and the UTC moments that bound them (``until`` excluded)."""

    first_day: date
    last_day: date
    since: datetime
    until: datetime


def local_days(store: StoreConfig, first_day: date, last_day: date) -> ReportPeriod:
    zone = ZoneInfo(store.timezone)

    def midnight(day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)

    return ReportPeriod(first_day, last_day, midnight(first_day), midnight(last_day + timedelta(days=1)))


def days_to_today(store: StoreConfig, now: datetime, days: int) -> ReportPeriod:
    """The command's period: ``days`` local days ending with today, today so far included."""
    today = now.astimezone(ZoneInfo(store.timezone)).date()
    return local_days(store, today - timedelta(days=days - 1), today)


def week_before(store: StoreConfig, report_date: date) -> ReportPeriod:
    """The weekly report's period: the 7 completed local days before its day."""
    return local_days(store, report_date - timedelta(days=7), report_date - timedelta(days=1))


def pattern_report(work: UnitOfWork, config: Config, store: StoreConfig, days: ReportPeriod) -> PatternReportView:
    """The report's figures: five indexed queries, whatever the length of the history."""
    patterns = config.business.patterns
    policy = BaselinePolicy(patterns.min_baseline_transactions, patterns.min_peers, patterns.min_rate_stdev)
    by_cashier = work.patterns.daily_counts(store.id, "cashier", days.first_day, days.last_day)
    by_register = work.patterns.daily_counts(store.id, "register", days.first_day, days.last_day)
    cashiers, registers = (
        ranked(by_cashier, policy, patterns.report_top),
        ranked(by_register, policy, patterns.report_top),
    )
    ids = work.stats.alert_ids_by_subject(
        store.id,
        days.since,
        days.until,
        cashiers=tuple(row.subject for row in cashiers),
        registers=tuple(row.subject for row in registers),
    )
    cards = work.patterns.top_cards(store.id, days.first_day, days.last_day, patterns.report_top)
    return PatternReportView(
        store_id=store.id,
        store_name=store.name,
        first_day=days.first_day,
        last_day=days.last_day,
        # Every transaction has a register, so the registers' counts are the store's.
        transactions=sum(transactions_of(c) for c in by_register.values()),
        exceptions=sum(c.get(kind, 0) for c in by_register.values() for kind in EXCEPTION_KINDS),
        cashiers=with_alerts(cashiers, "cashier", ids),
        registers=with_alerts(registers, "register", ids),
        cards=tuple(CardPattern(c.fingerprint, c.refunds, c.voids, f"{c.amount:.2f}") for c in cards),
        rules=rule_hits(work.stats.alerts_by_rule(store.id, days.since, days.until)),
        min_transactions=patterns.min_baseline_transactions,
        min_peers=patterns.min_peers,
    )


def ranked(
    counts_by_subject: Mapping[str, Mapping[str, int]], policy: BaselinePolicy, top: int
) -> tuple[SubjectPattern, ...]:
    """The ``top`` subjects furthest from the others: by |z| (none counts as 0), then exceptions, then id."""
    baseline = CashierBaseline(counts_by_subject, policy)
    rows = [row_of(subject, counts, baseline) for subject, counts in counts_by_subject.items()]
    rows.sort(key=lambda row: (-abs(row.z or 0.0), -row.exceptions, row.subject))
    return tuple(rows[:top])


def row_of(subject: str, counts: Mapping[str, int], baseline: CashierBaseline) -> SubjectPattern:
    return SubjectPattern(
        subject=subject,
        transactions=transactions_of(counts),
        counts={
            "refund": counts.get("refund", 0),
            "void": counts.get("void", 0),
            "no_sale": counts.get("no_sale", 0),
            "override": counts.get("price_override", 0) + counts.get("discount", 0),
            "own_refund": counts.get(OWN_REFUND, 0),
            "under_rung": counts.get(UNDER_RUNG, 0),
        },
        rate=rates_of(counts)["exception"],
        z=baseline.z_scores(subject)["exception"],
        new=not baseline.qualified(subject),
        peer_mean=baseline.peer_mean(subject),
    )


def with_alerts(
    rows: tuple[SubjectPattern, ...], dimension: str, ids: Mapping[tuple[str, str], list[str]]
) -> tuple[SubjectPattern, ...]:
    """Each row with its newest few alert ids and how many more there are."""

    def attach(row: SubjectPattern) -> SubjectPattern:
        found = ids.get((dimension, row.subject), [])
        return dataclasses.replace(
            row, alert_ids=tuple(found[:ALERT_IDS_SHOWN]), more_alerts=max(0, len(found) - ALERT_IDS_SHOWN)
        )

    return tuple(attach(row) for row in rows)


def rule_hits(by_rule: Mapping[str, Mapping[str, int]]) -> tuple[RuleHits, ...]:
    """Most alerts first, then by name."""
    hits = [
        RuleHits(rule, by_status.get("confirmed", 0), by_status.get("dismissed", 0), by_status.get("open", 0))
        for rule, by_status in by_rule.items()
    ]
    return tuple(sorted(hits, key=lambda h: (-h.alerts, h.rule)))


def summary(view: PatternReportView) -> str:
    """The card's headline as text, for clients that show no cards (and for notifications)."""
    furthest = [
        f"{noun} {rows[0].subject} ({standing(rows[0])})"
        for noun, rows in (("cashier", view.cashiers), ("register", view.registers))
        if rows
    ]
    return (
        f"**Patterns, {view.store_name}, {period(view)}**: {view.transactions} transactions, "
        f"{view.exceptions} exceptions" + (f"; furthest from the others: {', '.join(furthest)}" if furthest else "")
    )


def chart_of(view: PatternReportView) -> tuple[bytes, str, str]:
    """The report's chart: PNG bytes, its file name and the caption it is posted with."""
    name = f"patterns-{view.store_id}-{view.first_day.isoformat()}-{view.last_day.isoformat()}.png"
    caption = f"Exception rates against the others' mean, {view.store_name}, {period(view)}."
    return pattern_chart(f"{view.store_name}, {period(view)}", view.cashiers, view.registers), name, caption


@router.command(
    "patterns",
    role="manager",
    usage="patterns [7d]",
    summary="cashiers, registers and cards furthest from the others, with a chart",
)
def cmd_patterns(
    cmd: ChatCommand,
    *,
    uow: UnitOfWork,
    reply: Answer,
    config: Config,
    stores: tuple[str, ...],
    now: datetime,
    evidence: EvidenceStore,
) -> None:
    """Cashier performance is personnel data: only the stores of this space where the person is a manager."""
    days = parse_days(cmd.args, "patterns")
    business = config.business
    for store in (s for s in business.stores if s.id in stores):
        role = business.role_of(cmd.person_email, store.id)
        if role is None or ROLE_RANK[role] < ROLE_RANK["manager"]:
            continue
        view = pattern_report(uow, config, store, days_to_today(store, now, days))
        uow.audit.record(
            at=now,
            actor=cmd.person_email,
            action="view",
            subject_type="pattern_report",
            subject_id=store.id,
            store_id=store.id,
        )
        reply(summary(view), card=pattern_card(view))
        if isinstance(reply, Reply):  # a Webex thread shows files; the console shows cards only
            png, name, caption = chart_of(view)
            digest = evidence.put(png, "image/png")
            uow.snapshots.record_file(digest, kind="chart", content_type="image/png", size_bytes=len(png), now=now)
            reply(caption, file={"sha256": digest, "content_type": "image/png", "name": name})

"""Chat commands (docs/interfaces.md, docs/product.md "Commands in Webex"), each a small function on the router.

Arguments are validated with a plain answer; a command acting on one alert or transaction checks
the person's role at that object's store, not only in the space it was asked in.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from cards.help import help_card
from cards.stats import stats_card
from cards.status import status_card
from cards.text import for_markdown as md
from cards.views import CommandHelp, EntryPrecision, HelpView, StatsView
from core.config import ROLE_RANK, Config
from core.events import CardAction, ChatCommand, FraudReported
from core.pos_schema import FraudReportBody
from core.router import UserError, best_role, refuse_card_numbers, require_role, require_visible
from core.routes import router
from handlers.chat.listing import is_page, listing, page_number, shorten
from handlers.chat.stats_views import face_evaluation_view, rule_rows, stats_row
from handlers.chat.watchlist import watchlist_precision
from handlers.conversation.reply import Answer
from handlers.conversation.views import status_view
from handlers.pipeline.intake import record_fraud_report
from storage.stats import StoreStats
from storage.uow import UnitOfWork

_TRANSACTION_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
ALERTS_LISTED = 200  # newest first; older ones are found with `show`, the console and the read API


@router.command("help", role="staff", usage="help", summary="what I can do for you")
def cmd_help(cmd: ChatCommand, *, reply: Answer, config: Config, stores: tuple[str, ...]) -> None:
    reply(_help_text(cmd.person_email, config, stores), card=_help_card(cmd.person_email, config, stores))


@router.otherwise
def cmd_unknown(event: ChatCommand | CardAction, *, reply: Answer, config: Config, stores: tuple[str, ...]) -> None:
    if isinstance(event, CardAction):
        raise UserError("That button is not one I know (the card may be from an older version).")
    opening = f"I don't know `{event.word}`." if event.word else "Hello!"
    reply(
        f"{opening}\n\n{_help_text(event.person_email, config, stores)}",
        card=_help_card(event.person_email, config, stores, unknown=event.word or None),
    )


@router.command("status", role="staff", usage="status", summary="health of cameras, recognition and the queue")
def cmd_status(
    cmd: ChatCommand, *, reply: Answer, uow: UnitOfWork, config: Config, component_state: dict[str, str], now: datetime
) -> None:
    counts = uow.work.counts()
    oldest = uow.work.oldest_due(now=now)
    lines = [f"- {name}: {state}" for name, state in sorted(component_state.items())]
    lines.append(f"- recognition: {config.env.recognition_backend}")
    lines.append(
        f"- queue: {counts.get('pending', 0)} waiting, {counts.get('running', 0)} running, "
        f"{counts.get('dead', 0)} given up"
    )
    failed, newest = uow.outbox.failures(since=now - timedelta(hours=24))
    reason = newest.last_error if newest is not None else None
    lines.append(f"- Webex messages failed in the last 24 h: {failed}" + (f" (newest: {md(reason)})" if reason else ""))
    evaluation = face_evaluation_view(uow, config)
    lines.append(
        f"- face matching accuracy: {'**needs attention**: ' if evaluation.attention else ''}{evaluation.notice}"
    )
    view = dataclasses.replace(
        status_view(
            component_state,
            counts,
            config.env.recognition_backend,
            (now - oldest).total_seconds() if oldest else None,
            failures=(failed, reason),
        ),
        face_evaluation=evaluation,
    )
    reply("**Status**\n" + "\n".join(lines), card=status_card(view))


@router.command("alerts", role="staff", usage="alerts [open|today] [page]", summary="the open alerts, or today's")
def cmd_alerts(
    cmd: ChatCommand, *, reply: Answer, uow: UnitOfWork, config: Config, stores: tuple[str, ...], now: datetime
) -> None:
    args = [a.lower() for a in cmd.args]
    page = page_number(args.pop()) if args and is_page(args[-1]) else 1
    which = args[0] if args else "open"
    if which not in ("open", "today") or len(args) > 1:
        raise UserError("Usage: `alerts`, `alerts open` or `alerts today`, and a page: `alerts open 2`.")
    if which == "open":
        found = uow.alerts.list(status="open", store_ids=set(stores), limit=ALERTS_LISTED + 1)
    else:
        found = uow.alerts.list(
            store_ids=set(stores), since=_local_midnight(config, stores, now), limit=ALERTS_LISTED + 1
        )
    if not found:
        reply(f"No {'open ' if which == 'open' else ''}alerts{' today' if which == 'today' else ''}. 👍")
        return
    counted = f"{ALERTS_LISTED}+" if len(found) > ALERTS_LISTED else str(len(found))
    lines = [
        f"- **{a.public_id}** {a.severity} · {a.rule} · {a.store_id}/{a.register_id or 'entrance'} · "
        f"{_local(config, a.store_id, a.created_at)} · {a.status}"
        for a in found[:ALERTS_LISTED]
    ]
    heading = f"**{counted} {'open' if which == 'open' else 'today'}** (newest first)"
    reply(listing(heading, lines, page=page, command=f"alerts {which}", empty="").text)


@router.command("show", role="staff", usage="show <alert|transaction>", summary="one alert or transaction")
def cmd_show(cmd: ChatCommand, *, reply: Answer, uow: UnitOfWork, config: Config, now: datetime) -> None:
    if len(cmd.args) != 1:
        raise UserError("Usage: `show A-1042` or `show <transaction id>`.")
    unknown = f"I know no alert or transaction `{cmd.args[0]}`."
    alert = uow.alerts.get(cmd.args[0])
    if alert is not None:
        require_visible(config.business, cmd.person_email, alert.store_id, unknown)
        require_role(config.business, cmd.person_email, alert.store_id, "staff")
        uow.audit.record(
            at=now,
            actor=cmd.person_email,
            action="view",
            subject_type="alert",
            subject_id=alert.public_id,
            store_id=alert.store_id,
        )
        decided = f" by {md(alert.decided_by)}, reason {md(alert.reason or '-')}" if alert.decided_by else ""
        similarity = (
            f" · watchlist {alert.person_id} at {alert.similarity:.1f}" if alert.person_id and alert.similarity else ""
        )
        reply(
            shorten(
                f"**{alert.public_id}** {alert.severity} · {alert.rule}: {md(alert.message)}\n"
                f"{alert.store_id}/{alert.register_id or 'entrance'} · transaction {md(alert.transaction_id or '-')}"
                f"{similarity}\nstatus {alert.status}{decided}"
            )
        )
        return
    transaction = uow.transactions.get(cmd.args[0]) if _TRANSACTION_ID.match(cmd.args[0]) else None
    if transaction is None:
        raise UserError(unknown)
    require_visible(config.business, cmd.person_email, transaction.store_id, unknown)
    require_role(config.business, cmd.person_email, transaction.store_id, "staff")
    alert_ids = ", ".join(uow.alerts.ids_for_transaction(transaction.transaction_id)) or "none"
    fraud = " · reported as fraud" if transaction.fraud_reports else ""
    reply(
        shorten(
            f"**{md(transaction.transaction_id)}** {transaction.total_amount:.2f} {transaction.currency} · "
            f"{transaction.store_id}/{md(transaction.register_id)} · "
            f"{_local(config, transaction.store_id, transaction.occurred_at)}{fraud}\n"
            f"correlation {transaction.status}"
            f"{': ' + md(transaction.status_reason) if transaction.status_reason else ''} · alerts {alert_ids}"
        )
    )


@router.command("fraud", role="manager", usage="fraud <transaction> [reason]", summary="report a transaction as fraud")
def cmd_fraud(cmd: ChatCommand, *, reply: Answer, uow: UnitOfWork, config: Config, now: datetime) -> None:
    if not cmd.args or not _TRANSACTION_ID.match(cmd.args[0]):
        raise UserError("Usage: `fraud <transaction id> [reason]`.")
    refuse_card_numbers(reason=" ".join(cmd.args[1:]))
    transaction = uow.transactions.get(cmd.args[0])
    unknown = f"I never received transaction `{cmd.args[0]}`, or it has been purged."
    if transaction is None:
        raise UserError(unknown)
    require_visible(config.business, cmd.person_email, transaction.store_id, unknown)
    require_role(config.business, cmd.person_email, transaction.store_id, "manager")
    reason = " ".join(cmd.args[1:])[:500] or None
    report = FraudReportBody(transaction_id=transaction.transaction_id, source="manual", reported_at=now, reason=reason)
    result = record_fraud_report(FraudReported(report, None, cmd.person_email), uow=uow, now=now)
    if result.outcome == "duplicate":
        reply(f"{md(transaction.transaction_id)} was already reported as fraud by hand; nothing changed.")
        return
    reply(f"Fraud report filed for **{md(transaction.transaction_id)}** by {md(cmd.person_email)}.")


@router.command("rules", role="security", usage="rules [page]", summary="the rules and how often they were right")
def cmd_rules(cmd: ChatCommand, *, reply: Answer, uow: UnitOfWork, config: Config, stores: tuple[str, ...]) -> None:
    if len(cmd.args) > 1 or (cmd.args and not is_page(cmd.args[0])):
        raise UserError("Usage: `rules`, or a page: `rules 2`.")
    precision = uow.stats.rule_precision(stores)
    lines = []
    for rule in config.business.rules:  # names and conditions come from the config, written by the operators
        confirmed, decided = precision.get(rule.name, (0, 0))
        measured = f"{confirmed}/{decided} confirmed ({confirmed / decided:.0%})" if decided else "not yet decided"
        lines.append(
            f"- **{rule.name}** ({rule.severity}{', cool-down ' + rule.cooldown if rule.cooldown else ''}): "
            f"`{rule.when}` · {measured}"
        )
    reply(
        listing(
            f"**Rules** ({len(lines)})",
            lines,
            page=page_number(cmd.args[0] if cmd.args else None),
            command="rules",
            empty="No rules are configured.",
        ).text
    )


@router.command("stats", role="staff", usage="stats [7d] [page]", summary="counts and precision over days")
def cmd_stats(
    cmd: ChatCommand, *, reply: Answer, uow: UnitOfWork, config: Config, stores: tuple[str, ...], now: datetime
) -> None:
    # `stats 2` is two days (as it always was): a page comes after the period, `stats 7d 2`.
    paged = len(cmd.args) == 2 and is_page(cmd.args[1])
    days = parse_days(cmd.args[:1] if paged else cmd.args, "stats")
    since = now - timedelta(days=days)
    rows = uow.stats.store_stats(stores, since, now)
    precision = uow.stats.rule_precision(stores, since)
    entries = tuple(e for e in watchlist_precision(uow, stores, since) if e.decided)
    period = f"last {days} day{'s' if days != 1 else ''}"
    shown = listing(
        f"**{period.capitalize()}**",
        _stats_lines(rows, entries),
        page=page_number(cmd.args[1]) if paged else 1,
        command=f"stats {days}d",
        empty="No activity in this period.",
    )
    # The card shows the same page: its stores, then its watchlist entries (the lines' order).
    stores_shown = rows[shown.start : shown.end]
    entries_shown = entries[max(shown.start - len(rows), 0) : max(shown.end - len(rows), 0)]
    view = StatsView(
        period=period,
        stores=tuple(stats_row(row, config) for row in stores_shown),
        rules=rule_rows(precision) if shown.number == 1 else (),
        watchlist=entries_shown,
        more=shown.more,
        next_page=f"stats {days}d {shown.number + 1}" if shown.more else None,
        face_evaluation=face_evaluation_view(uow, config) if shown.number == 1 else None,
    )
    said = shown.text
    if view.face_evaluation is not None:
        said += f"\n\nFace matching accuracy: {view.face_evaluation.notice}"
    reply(said, card=stats_card(view))


def _stats_lines(rows: list[StoreStats], entries: tuple[EntryPrecision, ...]) -> list[str]:
    """One line per store, then one per watchlist entry with decided alerts."""
    lines = []
    for row in rows:
        decided = row.confirmed + row.dismissed
        rate = f", precision {row.confirmed / decided:.0%}" if decided else ""
        by_rule = ", ".join(f"{rule} {n}" for rule, n in sorted(row.alerts_by_rule.items())) or "none"
        lines.append(
            f"- **{row.store_id}**: {row.transactions} transactions, {row.pictures} pictures, alerts: {by_rule}; "
            f"{row.confirmed} confirmed, {row.dismissed} dismissed, {row.open} open{rate}"
        )
    return lines + [
        f"- watchlist **{e.person_id}**: {e.confirmed}/{e.decided} confirmed ({e.confirmed / e.decided:.0%})"
        f"{', flagged for review' if e.flagged_for_review else ''}"
        for e in entries
    ]


def parse_days(args: tuple[str, ...], word: str) -> int:
    """The period of `stats [7d]` and `patterns [7d]`: 1 to 365 days, 7 when not given."""
    if not args:
        return 7
    match = re.fullmatch(r"(\d{1,3})d?", args[0].lower())
    if len(args) > 1 or match is None or not 1 <= int(match.group(1)) <= 365:
        raise UserError(f"Usage: `{word}` or `{word} 7d` (1 to 365 days).")
    return int(match.group(1))


def _usable(email: str, config: Config, stores: tuple[str, ...]) -> tuple[str | None, list]:
    role = best_role(config.business, email, stores)
    if role is None:
        return None, []
    return role, sorted(
        (r for r in router.commands.values() if ROLE_RANK[r.role] <= ROLE_RANK[role]), key=lambda r: r.name
    )


def _help_text(email: str, config: Config, stores: tuple[str, ...]) -> str:
    role, usable = _usable(email, config, stores)
    if role is None:
        return "You are not on this bot's list of people for this space; ask your security team to add you."
    lines = [f"- `{r.usage}`: {r.summary}" for r in usable]
    return f"**What you can ask** (your role here: {role})\n" + "\n".join(lines)


def _help_card(email: str, config: Config, stores: tuple[str, ...], *, unknown: str | None = None) -> dict:
    role, usable = _usable(email, config, stores)
    commands = tuple(CommandHelp(r.name, r.usage, r.summary, r.role) for r in usable)
    return help_card(HelpView(commands=commands, role=role, unknown_command=unknown))


def _local(config: Config, store_id: str, moment: datetime) -> str:
    store = config.business.store(store_id)
    return moment.astimezone(ZoneInfo(store.timezone)).strftime("%d %b %H:%M") if store else moment.isoformat()


def _local_midnight(config: Config, stores: tuple[str, ...], now: datetime) -> datetime:
    """Start of today in the first store's time zone (a space speaks for one store, or a region in one zone)."""
    store = config.business.store(stores[0]) if stores else None
    local = now.astimezone(ZoneInfo(store.timezone if store else "UTC"))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)

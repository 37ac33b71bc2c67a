"""Card buttons on an alert: Confirm (manager) and Dismiss with a reason (staff).

A decision happens once: a second press answers who decided and when, and changes nothing.
Confirm files a fraud report (source ``manual``) for the alert's transaction; it never enrolls
anyone by itself. Every decision is audited with ids and a reason code only.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from cards.text import for_markdown
from core.config import Config, Role
from core.events import CardAction, FraudReported
from core.messenger import Messenger
from core.pos_schema import FraudReportBody
from core.router import UserError, refuse_card_numbers, require_role, require_visible
from core.routes import router
from handlers.conversation.reply import Answer
from handlers.pipeline.intake import record_fraud_report
from storage.models import Alert
from storage.uow import UnitOfWork

DISMISS_REASONS = {
    "not_same_person": "not the same person",
    "billed_correctly": "billed correctly",
    "no_loss": "no loss",
    "other": "other",
}
MISSING_ALERT = "That alert no longer exists (it may have been purged)."


@router.action("confirm", role="manager")
def act_confirm(
    press: CardAction, *, uow: UnitOfWork, reply: Answer, config: Config, now: datetime, messenger: Messenger | None
) -> None:
    alert = _alert_to_decide(press, uow, config, "manager", reply, now)
    if alert is None:
        return
    alert.status, alert.decided_by, alert.decided_at = "confirmed", press.person_email, now
    uow.audit.record(
        at=now,
        actor=press.person_email,
        action="alert_confirm",
        subject_type="alert",
        subject_id=alert.public_id,
        store_id=alert.store_id,
        reason_code="confirmed",
    )
    filed = ""
    if alert.transaction_id:
        report = FraudReportBody(
            transaction_id=alert.transaction_id,
            source="manual",
            reported_at=now,
            reason=f"confirmed on alert {alert.public_id}",
        )
        result = record_fraud_report(FraudReported(report, None, press.person_email), uow=uow, now=now)
        filed = {
            "accepted": f" Fraud report filed for {for_markdown(alert.transaction_id)}.",
            "duplicate": f" {for_markdown(alert.transaction_id)} was already reported as fraud.",
        }.get(result.outcome, "")
    reply(f"✅ **{alert.public_id} confirmed** by {press.person_email} at {_store_time(config, alert, now)}.{filed}")
    if messenger is not None:
        _tell_region(uow, alert, config, now)


def _tell_region(uow: UnitOfWork, alert: Alert, config: Config, now: datetime) -> None:
    """The region's security space hears of every confirmed incident in its stores (ids, rule, store; no faces)."""
    store = config.business.store(alert.store_id)
    region = next((r for r in config.business.regions if store and r.id == store.region), None)
    if region is None or not region.webex_room_id:
        return
    where = f"{store.name}, {alert.register_id or 'entrance'}" if store else alert.store_id
    uow.outbox.add(
        key=f"region:confirmed:{alert.id}",
        room_id=region.webex_room_id,
        now=now,
        alert_id=alert.id,
        markdown=f"🚨 **Confirmed incident {alert.public_id}** at {where}: {for_markdown(alert.message)} "
        f"(confirmed by {alert.decided_by}, transaction {for_markdown(alert.transaction_id or '-')})",
    )


@router.action("dismiss", role="staff")
def act_dismiss(press: CardAction, *, uow: UnitOfWork, reply: Answer, config: Config, now: datetime) -> None:
    reason = str(press.data.get("reason") or "").strip()
    note = str(press.data.get("note") or "").strip()
    if reason not in DISMISS_REASONS:
        raise UserError(f"Please choose why: {', '.join(DISMISS_REASONS.values())}.")
    if reason == "other" and not note:
        raise UserError("Please add a short note when the reason is *other*.")
    refuse_card_numbers(note=note)
    alert = _alert_to_decide(press, uow, config, "staff", reply, now)
    if alert is None:
        return
    alert.status, alert.decided_by, alert.decided_at = "dismissed", press.person_email, now
    alert.reason, alert.note = reason, note[:500] or None
    if reason == "not_same_person" and alert.person_id:
        person = uow.watchlist.get(alert.person_id)
        if person is not None:
            person.wrong_match_count += 1  # repeated wrong matches flag the entry for review
    uow.audit.record(
        at=now,
        actor=press.person_email,
        action="alert_dismiss",
        subject_type="alert",
        subject_id=alert.public_id,
        store_id=alert.store_id,
        reason_code=reason,
    )
    reply(
        f"☑️ **{alert.public_id} dismissed** by {press.person_email} at {_store_time(config, alert, now)}: "
        f"{DISMISS_REASONS[reason]}."
    )


def _alert_to_decide(
    press: CardAction, uow: UnitOfWork, config: Config, role: Role, reply: Answer, now: datetime
) -> Alert | None:
    alert = uow.alerts.get(str(press.data.get("alert_id") or ""))
    if alert is None:
        raise UserError(MISSING_ALERT)
    require_visible(config.business, press.person_email, alert.store_id, MISSING_ALERT)
    require_role(config.business, press.person_email, alert.store_id, role)
    if alert.status != "open":
        reply(
            f"{alert.public_id} was already {alert.status} by {alert.decided_by} at "
            f"{_store_time(config, alert, alert.decided_at or now)}; nothing changed."
        )
        return None
    return alert


def _store_time(config: Config, alert: Alert, moment: datetime) -> str:
    store = config.business.store(alert.store_id)
    local = moment.astimezone(ZoneInfo(store.timezone)) if store else moment
    return local.strftime("%H:%M on %d %b")

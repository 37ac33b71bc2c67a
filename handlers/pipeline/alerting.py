"""Raising one alert from a fired rule: the dedupe key, the cool-down, the row and its notify step.

Shared by the checkout decision (one alert per transaction and rule) and the entrance watch (one
per camera, person and cool-down): only the key and the place differ, so the cool-down rule —
the same rule for the same watchlist person (if any) at the same place, a register or an entrance
camera, in the same store — means the same thing wherever an alert comes from. A person alerted
at the door still gets a card at the register; that card names the door's alert (storage/alerts.py,
sightings).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.facts import Facts
from core.steps import StepKind
from rules.engine import RuleResult
from storage.models import Alert
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertPlace:
    """Where an alert happened: a checkout (transaction and register) or an entrance camera (neither)."""

    store_id: str
    camera_serial: str | None
    snapshot_id: str | None
    transaction_id: str | None = None
    register_id: str | None = None


def raise_alert(
    work: UnitOfWork,
    result: RuleResult,
    facts: Facts,
    place: AlertPlace,
    *,
    key: str,
    cooldown_s: int | None,
    now: datetime,
) -> Alert | None:
    """The alert for a fired rule, unless its key exists or the cool-down holds; its notify step beside it."""
    if work.alerts.by_dedupe_key(key) is not None:
        return None
    if cooldown_s and work.alerts.recent(
        rule=result.rule,
        store_id=place.store_id,
        person_id=facts.match_person_id,
        register_id=place.register_id,
        camera_serial=place.camera_serial,
        since=now - timedelta(seconds=cooldown_s),
    ):
        log.info("rule %s within its cool-down (%s): no new alert", result.rule, key)
        return None
    alert = Alert(
        dedupe_key=key,
        transaction_id=place.transaction_id,
        store_id=place.store_id,
        register_id=place.register_id,
        camera_serial=place.camera_serial,
        snapshot_id=place.snapshot_id,
        rule=result.rule,
        severity=result.severity,
        message=result.message or result.rule,
        facts=result.facts_seen,
        person_id=facts.match_person_id,
        similarity=facts.match_similarity,
        status="open",
        created_at=now,
    )
    work.alerts.add(alert)
    work.work.enqueue(
        kind=StepKind.NOTIFY_ALERT,
        key=str(alert.id),
        transaction_id=place.transaction_id,
        ref_id=str(alert.id),
        run_at=now,
        now=now,
    )
    return alert

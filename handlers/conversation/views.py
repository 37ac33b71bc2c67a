"""Database rows as the card builders' views (cards/views.py): the only place that maps one to the other."""

from __future__ import annotations

from collections.abc import Sequence

from cards.views import (
    AlertView,
    HealthView,
    SightingView,
    SnapshotRef,
    StatusView,
    WatchlistEntryView,
)
from core.config import Config
from storage.alerts import Sighting
from storage.models import Alert, Snapshot, Transaction, WatchlistPerson

# An entry whose matches were dismissed as "not the same person" this often is flagged for review.
WRONG_MATCHES_FOR_REVIEW = 3


def entry_view(person: WatchlistPerson, config: Config, *, precision: float | None = None) -> WatchlistEntryView:
    store = config.business.store(person.store_id)
    return WatchlistEntryView(
        id=person.id,
        status=person.status,
        reason=person.reason,
        store_id=person.store_id,
        enrolled_by=person.enrolled_by,
        enrolled_at=person.enrolled_at,
        expires_at=person.expires_at,
        faces_count=len(person.faces),
        wrong_match_count=person.wrong_match_count,
        flagged_for_review=person.wrong_match_count >= WRONG_MATCHES_FOR_REVIEW,
        precision=precision,
        approved_by=person.approved_by,
        timezone=store.timezone if store else "UTC",
    )


def alert_view(
    alert: Alert,
    transaction: Transaction | None,
    snapshots: list[Snapshot],
    person: WatchlistPerson | None,
    config: Config,
    *,
    video_link: str | None = None,
    sightings: Sequence[Sighting] = (),
) -> AlertView:
    """``sightings``: the person's earlier alerts in the store (AlertRepository.sightings), newest first."""
    store = config.business.store(alert.store_id)
    return AlertView(
        id=alert.public_id,
        rule=alert.rule,
        severity=alert.severity,
        message=alert.message,
        status=alert.status,
        store_id=alert.store_id,
        store_name=store.name if store else alert.store_id,
        register_id=alert.register_id,
        occurred_at=transaction.occurred_at if transaction else alert.created_at,
        timezone=store.timezone if store else "UTC",
        amount=f"{transaction.total_amount:.2f}" if transaction else None,
        currency=transaction.currency if transaction else None,
        transaction_id=alert.transaction_id,
        reconciliation=transaction.reconciliation if transaction else None,
        transaction_type=transaction.type if transaction else None,
        cashier_id=transaction.cashier_id if transaction else None,
        person=entry_view(person, config) if person else None,
        similarity=alert.similarity,
        snapshots=tuple(SnapshotRef(s.id, s.kind) for s in snapshots if s.status == "ready"),
        faces_count=sum(len(s.faces) for s in snapshots),
        video_link=video_link,
        decided_by=alert.decided_by,
        decided_at=alert.decided_at,
        reason=alert.reason,
        note=alert.note,
        sightings=tuple(SightingView(s.alert.public_id, s.alert.register_id, s.at) for s in sightings),
    )


_HEALTHY = {"ok", "running", "configured", "connected", "ready"}
_DEGRADED = {"reconnecting", "degraded", "stopping"}


def health(state: str | None) -> HealthView:
    """A component's state word (as /readyz reports it) as the status card's ok|degraded|down|off."""
    said = state or "off"
    word = said.lower()
    if word == "off":
        return HealthView("off", "not configured")
    if word in _HEALTHY:
        return HealthView("ok", word)
    return HealthView("degraded" if word in _DEGRADED else "down", said)


def _recognition(state: str | None) -> HealthView:
    # A process that does not analyse (``web``) never prepares the backend: nothing wrong to report there.
    if state is None or state == "not prepared in this process":
        return HealthView("ok", "not used in this process" if state else "ready")
    return health(state)


def status_view(
    component_state: dict[str, str],
    counts: dict[str, int],
    backend: str,
    oldest_pending_age_s: float | None,
    failures: tuple[int, str | None] = (0, None),
) -> StatusView:
    return StatusView(
        database=HealthView("ok", "reachable"),
        runner=health(component_state.get("runner")),
        webex=health(component_state.get("webex")),
        camera=health(component_state.get("camera")),
        recognition=_recognition(component_state.get("recognition")),
        recognition_backend=backend,
        broker=health(component_state.get("broker")),
        evidence=health(component_state.get("evidence", "ready")),
        queue_counts=counts,
        oldest_pending_age_s=oldest_pending_age_s,
        failed_messages=failures[0],
        newest_failure=failures[1],
    )

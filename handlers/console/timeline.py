"""What the review console shows: the alert cards the bot posts (built by the same cards/ functions),
each with its thread of console presses and replies, the evidence photo, and the watchlist.

A person sees the alerts and entries of the stores where they have a role. As in a Webex space,
an alert's card stays as it was posted, buttons included (with the evidence as it stands now);
decisions show as threaded replies, and a second press answers who decided and when.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from cards.alert import alert_card
from cards.watchlist import watchlist_entry_card, watchlist_list_card
from core.config import Config
from handlers.console.presses import threads
from handlers.conversation.views import alert_view, entry_view
from storage.evidence import EvidenceMissing, EvidenceStore
from storage.models import Alert
from storage.uow import UnitOfWork
from vision.annotate import annotate

UrlFor = Callable[[str], str]


def visible_stores(config: Config, email: str) -> set[str]:
    business = config.business
    return {s.id for s in business.stores if business.role_of(email, s.id) is not None}


def alert_items(
    uow: UnitOfWork, config: Config, email: str, *, photo_url: UrlFor, footage_url: UrlFor, limit: int = 50
) -> list[dict[str, Any]]:
    """The newest ``limit`` alerts of the person's stores, oldest first as in a space."""
    alerts = uow.alerts.list(store_ids=visible_stores(config, email), limit=limit)
    grouped = threads(uow)
    return [_item(uow, config, alert, grouped, photo_url, footage_url) for alert in reversed(alerts)]


def alert_item(
    uow: UnitOfWork, config: Config, alert: Alert, *, photo_url: UrlFor, footage_url: UrlFor
) -> dict[str, Any]:
    """One alert with the facts its rule saw (the alert page)."""
    item = _item(uow, config, alert, threads(uow), photo_url, footage_url)
    item["facts"] = [{"name": name, "value": _plain(value)} for name, value in sorted((alert.facts or {}).items())]
    return item


def _item(
    uow: UnitOfWork,
    config: Config,
    alert: Alert,
    grouped: dict[str, list[dict[str, Any]]],
    photo_url: UrlFor,
    footage_url: UrlFor,
) -> dict[str, Any]:
    transaction = uow.transactions.with_evidence(alert.transaction_id) if alert.transaction_id else None
    snapshots = list(transaction.snapshots) if transaction else []
    person = uow.watchlist.get(alert.person_id) if alert.person_id else None
    has_photo = any(s.status == "ready" and s.evidence_sha256 for s in snapshots)
    # The footage button goes through the console, which asks the camera for the link only when pressed.
    view = alert_view(
        alert,
        transaction,
        snapshots,
        person,
        config,
        video_link=footage_url(alert.public_id) if alert.camera_serial else None,
        sightings=uow.alerts.sightings([alert]).get(alert.id, []),
    )
    posted = dataclasses.replace(view, status="open", decided_by=None, decided_at=None, reason=None, note=None)
    card = alert_card(posted, image_url=photo_url(alert.public_id) if has_photo else None)
    thread = [*grouped.get(alert.public_id, []), *grouped.get(alert.transaction_id or "", [])]
    thread.sort(key=lambda entry: entry["at"])
    item = {
        "id": alert.public_id,
        "at": _iso(alert.created_at),
        "status": alert.status,
        "severity": alert.severity,
        "rule": alert.rule,
        "store_id": alert.store_id,
        "transaction_id": alert.transaction_id,
        "card": card,
        "thread": [{**entry, "at": _iso(entry["at"])} for entry in thread],
        "notices": _failed_deliveries(uow, alert),
        "decided": None
        if alert.status == "open"
        else {"status": alert.status, "by": alert.decided_by, "at": _iso(alert.decided_at), "reason": alert.reason},
    }
    item["version"] = hashlib.sha256(json.dumps(item, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return item


def _failed_deliveries(uow: UnitOfWork, alert: Alert) -> list[str]:
    """What of the alert never reached Webex (its card, photo or a reply), with the reason, so a person working
    from the console knows the space did not see it."""
    return [
        f"Webex delivery failed: {message.last_error or 'no reason recorded'}"
        for message in uow.outbox.for_alert(alert.id)
        if message.status == "failed"
    ]


def evidence_photo(uow: UnitOfWork, evidence: EvidenceStore, alert: Alert) -> bytes | None:
    """The alert's picture with the customer-zone faces boxed and numbered, as the Webex thread gets it."""
    transaction = uow.transactions.with_evidence(alert.transaction_id) if alert.transaction_id else None
    snapshots = [s for s in (transaction.snapshots if transaction else []) if s.status == "ready" and s.evidence_sha256]
    chosen = next((s for s in snapshots if s.id == alert.snapshot_id), None) or next(iter(snapshots), None)
    if chosen is None or chosen.evidence_sha256 is None:  # (the second never holds: only pictures with a file)
        return None
    file = uow.snapshots.file(chosen.evidence_sha256)
    try:
        content = evidence.read(chosen.evidence_sha256, file.content_type if file else "image/jpeg")
    except EvidenceMissing:
        return None  # purged since the row was read
    return annotate(content, [tuple(face.box) for face in chosen.faces])


def watchlist_cards(uow: UnitOfWork, config: Config, email: str, *, now: datetime) -> list[dict[str, Any]]:
    """The list card, then one card per entry (with its Remove button) of the person's stores."""
    stores = visible_stores(config, email)
    regions = {s.region for s in config.business.stores if s.id in stores and s.region}
    entries = [
        entry_view(p, config)
        for p in uow.alerts.watchlist()
        if p.store_id in stores or (p.region_id is not None and p.region_id in regions)
    ]
    cards: list[dict[str, Any]] = [{"id": "watchlist", "card": watchlist_list_card(entries)}]
    cards += [{"id": entry.id, "card": watchlist_entry_card(entry, now=now)} for entry in entries]
    grouped = threads(uow)
    for item in cards:
        item["thread"] = [{**entry, "at": _iso(entry["at"])} for entry in grouped.get(item["id"], [])]
    return cards


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None else json.dumps(value, default=str)

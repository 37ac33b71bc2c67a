"""Notify step: an alert's card to the store's space, its evidence photo (faces boxed and numbered) as a
threaded reply, and a copy to the region's security space for watchlist matches.

Everything is queued in the outbox in one transaction; the delivery steps send it. The photo is
our own copy (never the camera's link); the footage button is Meraki's dashboard link, which
needs a login.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from cards.alert import alert_card
from cards.text import for_markdown
from core.clock import Clock
from core.config import Config
from core.messenger import Messenger
from handlers.conversation.views import alert_view
from storage.evidence import EvidenceMissing, EvidenceStore, EvidenceUnavailable
from storage.models import Snapshot
from storage.uow import UnitOfWork
from storage.work_queue import ClaimedItem
from vision.annotate import annotate
from vision.image_prep import ImageRejected
from vision.types import Camera, CameraError

log = logging.getLogger(__name__)


def job_notify_alert(
    item: ClaimedItem,
    *,
    read_uow: Callable[[], UnitOfWork],
    uow: Callable[[], UnitOfWork],
    messenger: Messenger | None,
    camera: Camera | None,
    evidence: EvidenceStore,
    config: Config,
    clock: Clock,
) -> None:
    if messenger is None:
        return  # Webex off: the console shows alerts from the database
    with read_uow() as work:
        alert = work.alerts.get(f"A-{item.ref_id}")
        if alert is None or work.outbox.by_key(f"alert:{alert.id}:card") is not None:
            return
        transaction = work.transactions.with_evidence(alert.transaction_id) if alert.transaction_id else None
        # A checkout's pictures come through its transaction; an entrance alert has only its own.
        snapshots = (
            list(transaction.snapshots)
            if transaction
            else [s for s in [work.snapshots.get(alert.snapshot_id or "")] if s is not None]
        )
        person = work.watchlist.get(alert.person_id) if alert.person_id else None
        if person is not None:
            person.faces  # noqa: B018  (load before the session closes)
        picture = _evidence_picture(work, snapshots, alert.snapshot_id)
        sightings = work.alerts.sightings([alert]).get(alert.id, [])
    store = config.business.store(alert.store_id)
    region = next((r for r in config.business.regions if store and r.id == store.region), None)
    if store is None or (store.webex_room_id is None and (region is None or region.webex_room_id is None)):
        log.info("alert A-%s: no Webex space configured for store %s; console only", alert.id, alert.store_id)
        return
    moment = transaction.occurred_at if transaction else alert.created_at
    link = _video_link(camera, alert.camera_serial, store.meraki_org_id, moment)
    view = alert_view(alert, transaction, snapshots, person, config, video_link=link, sightings=sightings)
    card = alert_card(view, now=clock())
    photo = _annotated(picture, evidence) if picture else None
    now = clock()
    with uow() as work:
        if photo is not None:
            work.snapshots.record_file(
                photo["sha256"], kind="snapshot", content_type="image/jpeg", size_bytes=photo.pop("size"), now=now
            )
            photo["name"] = f"A-{alert.id}.jpg"
        text = f"**Alert A-{alert.id}** ({alert.severity}): {for_markdown(alert.message)}"
        if store.webex_room_id:
            root = work.outbox.add(
                key=f"alert:{alert.id}:card",
                room_id=store.webex_room_id,
                now=now,
                markdown=text,
                card=card,
                alert_id=alert.id,
            )
            if photo is not None:
                work.outbox.add(
                    key=f"alert:{alert.id}:photo",
                    room_id=store.webex_room_id,
                    now=now,
                    parent=root,
                    markdown=f"Evidence for A-{alert.id}: faces "
                    f"{'in the customer zone' if alert.register_id else 'at the entrance'}, numbered.",
                    file=photo,
                    alert_id=alert.id,
                )
        if region is not None and region.webex_room_id and alert.facts.get("matched"):
            # One regional card per checkout with a watchlist match, however many rules fired on it.
            work.outbox.add(
                key=f"region:{alert.transaction_id or alert.id}",
                room_id=region.webex_room_id,
                now=now,
                markdown=f"{text} at {store.name}",
                card=card,
                alert_id=alert.id,
            )
        work.commit()


def settle_dead_notify(work: UnitOfWork, item: ClaimedItem, error: str, now: datetime, *, config: Config) -> None:
    """The alert stays (the console and `alerts` show it); that its card could not be built is recorded as a
    failed message of the alert, where `status` and the console show failed deliveries. ``error`` stays on
    the work item."""
    alert = work.alerts.get(f"A-{item.ref_id}")
    if alert is None or work.outbox.by_key(f"alert:{alert.id}:card") is not None:
        return  # purged, or the card was queued before the step died
    store = config.business.store(alert.store_id)
    region = next((r for r in config.business.regions if store and r.id == store.region), None)
    room = (store.webex_room_id if store else None) or (region.webex_room_id if region else None)
    work.outbox.add_failed(
        key=f"alert:{alert.id}:unbuilt",
        room_id=room or "",
        now=now,
        markdown=f"**Alert A-{alert.id}** ({alert.severity}): {for_markdown(alert.message)}",
        error=f"its card could not be built: the notify step failed for good after {item.attempts} attempt(s)",
        alert_id=alert.id,
    )


def _evidence_picture(
    work: UnitOfWork, snapshots: list[Snapshot], snapshot_id: str | None
) -> tuple[str, str, list] | None:
    chosen = next((s for s in snapshots if s.id == snapshot_id), None) or next(
        (s for s in snapshots if s.status == "ready"), None
    )
    if chosen is None or chosen.evidence_sha256 is None:
        return None
    file = work.snapshots.file(chosen.evidence_sha256)
    return chosen.evidence_sha256, file.content_type if file else "image/jpeg", [tuple(f.box) for f in chosen.faces]


def _annotated(picture: tuple[str, str, list], evidence: EvidenceStore) -> dict | None:
    digest, content_type, boxes = picture
    # The card still goes out without the picture: people can decide from it and the footage link, and a
    # checkout's alert cannot wait for an evidence store to come back (the console shows the picture later).
    try:
        content = annotate(evidence.read(digest, content_type), boxes)
    except (ImageRejected, EvidenceMissing, EvidenceUnavailable, OSError) as exc:
        log.warning("evidence picture %s cannot be drawn on: %s", digest[:12], exc)
        return None
    try:
        annotated = evidence.put(content, "image/jpeg")
    except EvidenceUnavailable as exc:
        log.warning("annotated picture of %s not stored: %s", digest[:12], exc)
        return None
    return {"sha256": annotated, "content_type": "image/jpeg", "size": len(content)}


def _video_link(camera: Camera | None, serial: str | None, org_id: str, moment: datetime) -> str | None:
    if camera is None or not serial:
        return None
    try:
        return camera.video_link(serial, org_id=org_id, at=moment)
    except CameraError as exc:
        log.info("no footage link for camera %s: %s", serial, exc.reason)  # the card goes out without the button
        return None

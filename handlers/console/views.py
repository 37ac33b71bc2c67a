"""What a console page asks to see, by id: an alert, its photo, its footage link, a face crop.

Each is a handler like any other entry's: the visibility check (the person has a role at the
store), the audit entry of the view and the evidence read happen here, so the HTTP routes only
parse, call and answer. ``NotVisible`` is a 404 for what does not exist and for what the person may
not see alike, so ids cannot be probed.
"""

from __future__ import annotations

import logging
from typing import Any

from core.clock import Clock
from core.config import Config
from core.events import ConsoleRequest
from handlers.console.timeline import UrlFor, alert_item, alert_items, evidence_photo, visible_stores, watchlist_cards
from storage.evidence import EvidenceMissing, EvidenceStore
from storage.models import Alert
from storage.uow import UnitOfWork
from vision.types import Camera, CameraError

log = logging.getLogger(__name__)


class NotVisible(LookupError):
    """No such thing, or not in the person's stores: the same answer for both."""


def visible_alert(uow: UnitOfWork, config: Config, request: ConsoleRequest) -> Alert:
    found = uow.alerts.get(request.subject_id)
    if found is None or found.store_id not in visible_stores(config, request.person_email):
        raise NotVisible(request.subject_id)
    return found


def view_alert(
    request: ConsoleRequest, *, uow: UnitOfWork, config: Config, clock: Clock, photo_url: UrlFor, footage_url: UrlFor
) -> dict[str, Any]:
    """The alert page's card and thread; the view is audited."""
    found = visible_alert(uow, config, request)
    item = alert_item(uow, config, found, photo_url=photo_url, footage_url=footage_url)
    _audit(
        uow, request, clock, action="view", subject_type="alert", subject_id=found.public_id, store_id=found.store_id
    )
    uow.commit()
    return item


def alert_photo(
    request: ConsoleRequest, *, uow: UnitOfWork, config: Config, clock: Clock, evidence: EvidenceStore
) -> bytes:
    """The alert's picture with the customer-zone faces boxed; the view is audited."""
    found = visible_alert(uow, config, request)
    picture = evidence_photo(uow, evidence, found)
    if picture is None:
        raise NotVisible(request.subject_id)
    _audit(
        uow,
        request,
        clock,
        action="view_photo",
        subject_type="alert",
        subject_id=found.public_id,
        store_id=found.store_id,
    )
    uow.commit()
    return picture


def footage_link(request: ConsoleRequest, *, uow: UnitOfWork, config: Config, camera: Camera | None) -> str | None:
    """The camera's footage link for the alert's moment, asked only now (the camera API has a rate budget)."""
    found = visible_alert(uow, config, request)
    transaction = uow.transactions.get(found.transaction_id) if found.transaction_id else None
    serial, moment = found.camera_serial, transaction.occurred_at if transaction else found.created_at
    store = config.business.store(found.store_id)
    if camera is None or not serial or store is None:
        return None
    try:
        return camera.video_link(serial, org_id=store.meraki_org_id, at=moment)
    except CameraError as exc:
        log.info("no footage link for alert %s: %s", found.public_id, exc.reason)
        return None


def face_crop(
    request: ConsoleRequest, *, uow: UnitOfWork, config: Config, clock: Clock, evidence: EvidenceStore
) -> tuple[bytes, str]:
    """A face of a checkout picture for an enrollment proposal (the alert photo's visibility); audited."""
    face = uow.snapshots.face(request.subject_id)
    store_id = face.snapshot.store_id if face is not None else None
    if face is None or face.crop_sha256 is None or store_id not in visible_stores(config, request.person_email):
        raise NotVisible(request.subject_id)
    file = uow.snapshots.file(face.crop_sha256)
    content_type = file.content_type if file else "image/jpeg"
    try:
        content = evidence.read(face.crop_sha256, content_type)
    except EvidenceMissing:
        raise NotVisible(request.subject_id) from None  # purged since the row was read
    _audit(uow, request, clock, action="view_crop", subject_type="face", subject_id=face.id, store_id=store_id)
    uow.commit()
    return content, content_type


def _audit(
    uow: UnitOfWork,
    request: ConsoleRequest,
    clock: Clock,
    *,
    action: str,
    subject_type: str,
    subject_id: str,
    store_id: str | None,
) -> None:
    uow.audit.record(
        at=clock(),
        actor=request.person_email,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        store_id=store_id,
        reason_code="console",
    )


def alert_id(request: ConsoleRequest, *, uow: UnitOfWork, config: Config) -> str:
    """The public id of an alert the person may see (the alert page's title and its data URL)."""
    return visible_alert(uow, config, request).public_id


def timeline(
    request: ConsoleRequest, *, uow: UnitOfWork, config: Config, photo_url: UrlFor, footage_url: UrlFor
) -> list[dict[str, Any]]:
    """The newest alerts of the person's stores, each with its card and thread."""
    return alert_items(uow, config, request.person_email, photo_url=photo_url, footage_url=footage_url)


def watchlist(request: ConsoleRequest, *, uow: UnitOfWork, config: Config, clock: Clock) -> list[dict[str, Any]]:
    """The watchlist card and one card per entry of the person's stores (and their regions')."""
    return watchlist_cards(uow, config, request.person_email, now=clock())

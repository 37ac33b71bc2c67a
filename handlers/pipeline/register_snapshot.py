"""`checkout <register>`: a picture of a register now, as in the original proof of concept.

The command only records the request (a pending manual snapshot and its step) and answers; the
step asks the camera outside any transaction, through the same rate budget, and posts our own
copy of the picture in the command's thread. The picture follows snapshot retention.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime

from core.clock import Clock
from core.config import Config, RegisterConfig, StoreConfig
from core.events import ChatCommand
from core.router import UserError, require_role
from core.routes import router
from core.steps import RetryLater, StepKind
from core.waiting import Waits
from handlers.conversation.reply import Answer
from handlers.conversation.threads import open_thread, post_in_thread
from storage.evidence import EvidenceStore
from storage.models import Snapshot
from storage.rows import present
from storage.uow import UnitOfWork
from storage.work_queue import ClaimedItem
from vision.types import Camera, CameraError

log = logging.getLogger(__name__)
ATTEMPTS = 3  # a person is waiting: a few quick tries, then say it did not work


@router.command("checkout", role="manager", usage="checkout <register>", summary="a picture of a register now")
def cmd_checkout(
    cmd: ChatCommand, *, uow: UnitOfWork, reply: Answer, config: Config, stores: tuple[str, ...], now: datetime
) -> None:
    if len(cmd.args) != 1:
        raise UserError("Usage: `checkout reg-1` (or `checkout store-001/reg-1`).")
    store, register = _register(config, stores, cmd.args[0])
    require_role(config.business, cmd.person_email, store.id, "manager")
    snapshot = Snapshot(
        id=f"S-{secrets.token_hex(5)}",
        transaction_id=None,
        store_id=store.id,
        camera_serial=register.camera_serial,
        kind="manual",
        taken_for=None,
        status="pending",
        created_at=now,
    )
    uow.snapshots.add(snapshot)
    uow.work.enqueue(kind=StepKind.CHECKOUT_SNAPSHOT, key=snapshot.id, ref_id=snapshot.id, run_at=now, now=now)
    uow.audit.record(
        at=now,
        actor=cmd.person_email,
        action="checkout",
        subject_type="register",
        subject_id=f"{store.id}/{register.id}",
        store_id=store.id,
    )
    open_thread(
        uow,
        reply,
        key=f"checkout:{snapshot.id}",
        now=now,
        markdown=f"📷 Taking a picture at {store.name}, {register.id}…",
    )


def job_checkout_snapshot(
    item: ClaimedItem,
    *,
    read_uow: Callable[[], UnitOfWork],
    uow: Callable[[], UnitOfWork],
    camera: Camera | None,
    evidence: EvidenceStore,
    config: Config,
    clock: Clock,
) -> Waits[None]:
    """The picture a person asked for; its wait for the camera is yielded, so the runner parks the step."""
    with read_uow() as work:
        snapshot = work.snapshots.get(item.ref_id or "")
        if snapshot is None or snapshot.status != "pending":
            return
        store_id, serial = snapshot.store_id, snapshot.camera_serial
    store = config.business.store(store_id)
    try:
        if camera is None or store is None:
            raise CameraError("the camera is off (MERAKI_DASHBOARD_API_KEY is not set)", retry=False)
        picture = yield from camera.snapshot_waits(serial, org_id=store.meraki_org_id, at=None)
    except CameraError as exc:
        if exc.retry and item.attempts < ATTEMPTS:
            raise RetryLater(exc.reason, exc.retry_after_s or 5.0) from None
        _finish(uow, item, clock, store, failure=exc.reason)
        return
    digest = evidence.put(picture.content, picture.content_type)
    _finish(uow, item, clock, store, picture=(digest, picture.content_type, len(picture.content)))


def _finish(
    uow: Callable[[], UnitOfWork],
    item: ClaimedItem,
    clock: Clock,
    store: StoreConfig | None,
    *,
    picture: tuple[str, str, int] | None = None,
    failure: str | None = None,
) -> None:
    with uow() as work:
        snapshot = present(work.snapshots.get(item.ref_id or ""), f"snapshot {item.ref_id}")
        _settle(work, snapshot, store, clock(), picture=picture, failure=failure)
        work.commit()
    log.info("checkout snapshot %s %s", item.ref_id, "ready" if picture else "failed")


def settle_dead_checkout_snapshot(
    work: UnitOfWork, item: ClaimedItem, error: str, now: datetime, *, config: Config
) -> None:
    """A `checkout` whose step died is answered as a failed picture: the person is not left waiting."""
    snapshot = work.snapshots.get(item.ref_id or "")
    if snapshot is None or snapshot.status != "pending":
        return
    failure = f"something went wrong taking it (tried {item.attempts} time(s)); try `checkout` again"
    _settle(work, snapshot, config.business.store(snapshot.store_id), now, failure=failure)


def _settle(
    work: UnitOfWork,
    snapshot: Snapshot,
    store: StoreConfig | None,
    now: datetime,
    *,
    picture: tuple[str, str, int] | None = None,
    failure: str | None = None,
) -> None:
    """The snapshot ready with its picture, or failed with the reason, and either told in the command's thread."""
    anchor_key, key = f"checkout:{snapshot.id}", f"checkout:{snapshot.id}:result"
    fallback_room = store.webex_room_id if store else None
    if picture is None:
        snapshot.status, snapshot.reason = "failed", failure
        post_in_thread(
            work,
            anchor_key=anchor_key,
            key=key,
            now=now,
            markdown=f"No picture: {failure}.",
            fallback_room=fallback_room,
        )
        return
    digest, content_type, size = picture
    work.snapshots.record_file(digest, kind="snapshot", content_type=content_type, size_bytes=size, now=now)
    snapshot.status, snapshot.evidence_sha256, snapshot.ready_at = "ready", digest, now
    name = f"{snapshot.id}.{'png' if content_type == 'image/png' else 'jpg'}"
    post_in_thread(
        work,
        markdown=f"Camera {snapshot.camera_serial} now.",
        file={"sha256": digest, "content_type": content_type, "name": name},
        anchor_key=anchor_key,
        key=key,
        now=now,
        fallback_room=fallback_room,
    )


def _register(config: Config, stores: tuple[str, ...], name: str) -> tuple[StoreConfig, RegisterConfig]:
    """``reg-1`` when only one store of this space has it, else ``store-001/reg-1``."""
    store_id, _, register_id = name.rpartition("/")
    found = [
        (s, r)
        for s in config.business.stores
        if s.id in stores and (not store_id or s.id == store_id)
        for r in s.registers
        if r.id == register_id
    ]
    if not found:
        raise UserError(f"I know no register `{name}` here.")
    if len(found) > 1:
        options = ", ".join(f"`{s.id}/{r.id}`" for s, r in found)
        raise UserError(f"More than one store has `{register_id}`: say which, e.g. {options}.")
    return found[0]

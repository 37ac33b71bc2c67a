"""Entrance visit step: someone appeared at an entrance camera; picture them and search the watchlist.

The MQTT listener (bot/entrance.py) only records a visit, at most one per camera per window; this
step makes the camera call, through the same Camera and rate budget as the registers. There is no
cashier at the door, so every face is searched, against the store's watchlist scope (its own
entries, and its region's when the region shares its watchlist). Each watchlist person seen goes
through the rules with entrance facts (no register, no payment); an alert is unique per camera,
person, rule and cool-down.

The picture is committed on its own before recognition, so a recognition outage retried later
never asks the camera again; the analysis, the alerts and the completion commit together.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from core.clock import Clock
from core.config import Config, StoreConfig
from core.facts import WEEKDAYS, Facts
from core.steps import RetryLater, StepKind, policy
from core.waiting import Waits
from handlers.pipeline.alerting import AlertPlace, raise_alert
from handlers.pipeline.seeing import (
    StoredPicture,
    add_snapshot,
    keep_face,
    retry_recognition,
    search_face,
    take_picture,
)
from rules.engine import CompiledRule, evaluate
from storage.evidence import EvidenceStore
from storage.models import Snapshot
from storage.rows import present
from storage.uow import UnitOfWork
from storage.work_queue import ClaimedItem
from vision.image_prep import ImageRejected
from vision.types import Camera, DetectedFace, FaceBackend, FaceMatch, RecognitionError

log = logging.getLogger(__name__)
# Alerts of a rule without its own cool-down still come at most once per person per camera in this
# window at the door: one visit is one alert (docs/product.md, flow 7).
ENTRANCE_COOLDOWN_S = 600


@dataclass(frozen=True)
class Visit:
    """One appearance at an entrance camera; ``ref`` is how the work item carries it."""

    serial: str
    at_ms: int  # when the camera saw it (its MQTT ts, milliseconds)

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(self.at_ms / 1000, tz=UTC)

    @property
    def snapshot_id(self) -> str:
        # Derived from the visit, so a retried step finds the picture it already took.
        return "S-e" + hashlib.sha256(self.ref().encode()).hexdigest()[:12]

    def ref(self) -> str:
        return f"{self.serial}@{self.at_ms}"

    @classmethod
    def parse(cls, ref: str) -> Visit:
        serial, _, at_ms = ref.partition("@")
        return cls(serial, int(at_ms))


@dataclass(frozen=True)
class _Place:
    store: StoreConfig
    regional: bool  # the store's region shares its watchlist


def record_visit(work: UnitOfWork, *, serial: str, at_ms: int, window_s: float, now: datetime) -> None:
    """Enqueue the visit step, once per camera per window: the same window again is a no-op, whichever
    process (or message) asks, so a burst of messages is one picture."""
    bucket = at_ms // int(window_s * 1000)
    work.work.enqueue(
        kind=StepKind.ENTRANCE_VISIT, key=f"{serial}:{bucket}", ref_id=Visit(serial, at_ms).ref(), run_at=now, now=now
    )


def job_entrance_visit(
    item: ClaimedItem,
    *,
    read_uow: Callable[[], UnitOfWork],
    write_uow: Callable[[], UnitOfWork],
    uow: Callable[[], UnitOfWork],
    camera: Camera | None,
    evidence: EvidenceStore,
    faces: FaceBackend,
    rules: list[CompiledRule],
    config: Config,
    clock: Clock,
) -> Waits[None]:
    """Picture the visit, search every face against the store's watchlist scope, alert per person seen."""
    visit = Visit.parse(item.ref_id or "")
    place = _place(config, visit.serial)
    if place is None:
        log.info("entrance visit #%s: camera %s is no longer an entrance camera; nothing to do", item.id, visit.serial)
        return
    with read_uow() as work:
        snapshot = work.snapshots.get(visit.snapshot_id)
        if snapshot is not None and (snapshot.analyzed_at is not None or snapshot.status != "ready"):
            return  # done, or the picture was given up
        picture = _stored_picture(work, snapshot)
        scope = work.snapshots.watchlist_scope(place.store.id, place.store.region, regional=place.regional, now=clock())
    if picture is None and not scope:
        # Nobody on the watchlist applies here: a picture of this shopper could only be kept, never used.
        log.debug(
            "entrance visit #%s at %s: no watchlist entry applies to store %s", item.id, visit.serial, place.store.id
        )
        return
    if picture is None:
        picture = yield from _capture(
            item,
            visit,
            place,
            camera=camera,
            evidence=evidence,
            config=config,
            clock=clock,
            write_uow=write_uow,
            uow=uow,
        )
        if picture is None:
            return
    found = _look(item, visit, picture, scope, faces=faces, evidence=evidence, config=config, clock=clock, uow=uow)
    if found is not None:
        _decide(visit, place, found, uow=uow, rules=rules, config=config, clock=clock)


def _place(config: Config, serial: str) -> _Place | None:
    store = next((s for s in config.business.stores if serial in s.entrance_cameras), None)
    if store is None:
        return None
    region = next((r for r in config.business.regions if r.id == store.region), None)
    return _Place(store, bool(region and region.share_watchlist))


def _stored_picture(work: UnitOfWork, snapshot: Snapshot | None) -> tuple[str, str] | None:
    if snapshot is None or snapshot.evidence_sha256 is None:
        return None
    file = work.snapshots.file(snapshot.evidence_sha256)
    return snapshot.evidence_sha256, file.content_type if file else "image/jpeg"


def settle_dead_entrance_visit(
    work: UnitOfWork, item: ClaimedItem, error: str, now: datetime, *, config: Config
) -> None:
    """A visit whose step died leaves its snapshot failed (no picture) or its analysis failed, with the reason,
    as the step itself records a camera or recognition that gave up. ``error`` stays on the work item."""
    visit = Visit.parse(item.ref_id or "")
    reason = f"the entrance step failed for good after {item.attempts} attempt(s)"
    snapshot = work.snapshots.get(visit.snapshot_id)
    if snapshot is None:
        place = _place(config, visit.serial)
        if place is not None:
            add_snapshot(
                work,
                snapshot_id=visit.snapshot_id,
                transaction_id=None,
                store_id=place.store.id,
                serial=visit.serial,
                kind="entrance",
                taken_for=None,
                now=now,
                picture=None,
                failure=reason,
            )
    elif snapshot.status == "ready" and snapshot.analyzed_at is None:
        snapshot.analyzed_at, snapshot.reason = now, f"analysis failed: {reason}"


# --- the picture -----------------------------------------------------------------------------------


def _capture(
    item: ClaimedItem,
    visit: Visit,
    place: _Place,
    *,
    camera: Camera | None,
    evidence: EvidenceStore,
    config: Config,
    clock: Clock,
    write_uow: Callable[[], UnitOfWork],
    uow: Callable[[], UnitOfWork],
) -> Waits[tuple[str, str] | None]:
    """The live picture while the visit is fresh; after that the footage of its moment, once indexed."""
    if camera is None:
        _record_snapshot(uow, visit, place, clock, at=None, failure="camera off: MERAKI_DASHBOARD_API_KEY is not set")
        return None
    settings = config.business.camera
    age_s = (clock() - visit.at).total_seconds()
    # Live later than this would show whoever came next (the runner was busy or down): ask for the visit's moment.
    at = None if age_s <= settings.live_max_age_s else visit.at
    if at is not None and age_s < settings.exact_delay_s:
        raise RetryLater(
            "too late for a live picture; waiting for the footage of the visit",
            settings.exact_delay_s - age_s,
            waiting=True,
        )
    taken = yield from take_picture(
        camera,
        evidence,
        serial=visit.serial,
        org_id=place.store.meraki_org_id,
        at=at,
        attempt=item.attempts,
        retry=policy(StepKind.ENTRANCE_VISIT),
    )
    if isinstance(taken, str):
        _record_snapshot(uow, visit, place, clock, at=at, failure=taken)
        return None
    # Its own commit (not the step's): a retry of the recognition below must not ask the camera again.
    _record_snapshot(write_uow, visit, place, clock, at=at, picture=taken)
    log.info("entrance snapshot %s of camera %s stored", visit.snapshot_id, visit.serial)
    return taken.sha256, taken.content_type


def _record_snapshot(
    uow: Callable[[], UnitOfWork],
    visit: Visit,
    place: _Place,
    clock: Clock,
    *,
    at: datetime | None,
    picture: StoredPicture | None = None,
    failure: str | None = None,
) -> None:
    now = clock()
    with uow() as work:
        add_snapshot(
            work,
            snapshot_id=visit.snapshot_id,
            transaction_id=None,
            store_id=place.store.id,
            serial=visit.serial,
            kind="entrance",
            taken_for=at,
            now=now,
            picture=picture,
            failure=failure,
        )
        work.commit()
    if failure:
        log.warning("entrance snapshot of camera %s not taken: %s", visit.serial, failure)


# --- the faces -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Seen:
    faces_searched: int
    matched: list[tuple[DetectedFace, str, list[FaceMatch]]]  # face, its crop's evidence name, its matches


def _look(
    item: ClaimedItem,
    visit: Visit,
    picture: tuple[str, str],
    scope: list[str],
    *,
    faces: FaceBackend,
    evidence: EvidenceStore,
    config: Config,
    clock: Clock,
    uow: Callable[[], UnitOfWork],
) -> _Seen | None:
    """Every face large enough is searched; no cashier zone at the door."""
    recognition = config.business.recognition
    if not scope:
        return _Seen(0, [])  # the watchlist emptied since the picture was taken
    try:
        detected = [f for f in faces.detect(evidence.read(*picture)) if f.size_px >= recognition.min_face_px]
        searched = [(f, search_face(f, faces=faces, scope=scope, recognition=recognition)) for f in detected]
    except RecognitionError as exc:
        # The recognition half of the visit waits as the checkout's analysis does.
        retry_recognition(exc, item.attempts, gives_up=policy(StepKind.ENTRANCE_VISIT), waits=policy(StepKind.ANALYZE))
        _give_up(uow, visit, exc.reason, clock)
        return None
    except ImageRejected as exc:
        _give_up(uow, visit, f"the picture cannot be analysed: {exc}", clock)
        return None
    # Only faces that resemble a watchlist entry are kept: a passer-by's face has no use here (no
    # chargeback can ever ask to enroll it); the picture itself stays under the snapshot retention.
    kept = [(f, evidence.put(f.crop, "image/jpeg"), matches) for f, matches in searched if matches]
    return _Seen(len(detected), kept)


def _give_up(uow: Callable[[], UnitOfWork], visit: Visit, reason: str, clock: Clock) -> None:
    with uow() as work:
        snapshot = present(work.snapshots.get(visit.snapshot_id), f"snapshot {visit.snapshot_id}")
        snapshot.analyzed_at, snapshot.reason = clock(), f"analysis failed: {reason}"
        work.commit()
    log.warning("entrance snapshot %s of camera %s not analysed: %s", visit.snapshot_id, visit.serial, reason)


# --- the alerts ------------------------------------------------------------------------------------


def _decide(
    visit: Visit,
    place: _Place,
    seen: _Seen,
    *,
    uow: Callable[[], UnitOfWork],
    rules: list[CompiledRule],
    config: Config,
    clock: Clock,
) -> None:
    """Keep the faces that resemble someone, then each such person through the rules, in the step's commit."""
    now = clock()
    with uow() as work:
        snapshot = present(work.snapshots.get(visit.snapshot_id), f"snapshot {visit.snapshot_id}")
        for face, crop_sha256, matches in seen.matched:
            keep_face(work, snapshot.id, face, crop_sha256, matches, now)  # at the door every face is a customer's
        snapshot.analyzed_at = now
        created, evaluations = [], []
        for facts in _facts_per_person(visit, place, seen, config):
            for result in evaluate(rules, facts):
                # Every evaluation, fired or not, so a silence at the door can be explained as at a checkout.
                evaluations.append({**result.to_dict(), "person_id": facts.match_person_id})
                if not result.fired:
                    continue
                cooldown_s = result.cooldown_s or ENTRANCE_COOLDOWN_S
                key = f"entrance:{visit.serial}:{facts.match_person_id}:{result.rule}:{visit.at_ms // (cooldown_s * 1000)}"
                where = AlertPlace(place.store.id, visit.serial, snapshot.id)
                alert = raise_alert(work, result, facts, where, key=key, cooldown_s=cooldown_s, now=now)
                if alert is not None:
                    created.append(alert)
        snapshot.rule_results = evaluations
        work.commit()
    for alert in created:
        log.info(
            "alert A-%s (%s, %s) at entrance camera %s of store %s",
            alert.id,
            alert.rule,
            alert.severity,
            visit.serial,
            place.store.id,
        )


def _facts_per_person(visit: Visit, place: _Place, seen: _Seen, config: Config) -> list[Facts]:
    """One evaluation per watchlist person seen, with that person's best similarity; no payment at the door."""
    best: dict[str, float] = {}
    for _face, _crop, matches in seen.matched:
        for match in matches:
            best[match.person_id] = max(best.get(match.person_id, 0.0), round(match.similarity, 1))
    local = visit.at.astimezone(ZoneInfo(place.store.timezone))
    threshold = config.business.recognition.match_threshold
    return [
        Facts(
            store_id=place.store.id,
            register_id=None,
            snapshot_kind="entrance",
            hour=local.hour,
            weekday=WEEKDAYS[local.weekday()],
            amount=0.0,
            currency=None,
            payment_method=None,
            transaction_type=None,
            entry_mode=None,
            risk_score=None,
            faces_count=seen.faces_searched,
            matched=similarity >= threshold,
            match_similarity=similarity,
            match_person_id=person_id,
        )
        for person_id, similarity in sorted(best.items(), key=lambda pair: -pair[1])
    ]

"""The step catalogue: every kind of background work, declared once, with its handler, lane and retry policy.

A step is a row of ``work_items`` first and a function call second. Producers enqueue a kind from
here (``StepKind.ANALYZE``); the composition root (``bot/steps.py``) resolves each handler and
gives each lane its runner. Handlers are named as ``module:function`` so this kernel never imports
the packages above it; a test resolves every one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RetryLater(Exception):
    """A step asks to run again after ``delay_s``, not as a failure of the runner's.

    A retry after a service's error (busy, footage not indexed yet) spends an attempt: the step's own policy
    gives up below the runner's dead-letter limit. ``waiting=True`` is for a step that only waits for another
    to finish (a thread reply for its first message): it gives the attempt back, so waiting never kills it."""

    def __init__(self, reason: str, delay_s: float, *, waiting: bool = False):
        super().__init__(reason)
        self.delay_s, self.waiting = delay_s, waiting


class StepKind(StrEnum):
    """The ``work_items.kind`` of each step (the stored strings: never rename one without a migration)."""

    TRIAGE = "triage"
    CAPTURE_LIVE = "capture_live"
    CAPTURE_EXACT = "capture_exact"
    ANALYZE = "analyze"
    DECIDE = "decide"
    DECIDE_UNPICTURED = "decide_unpictured"
    NOTIFY_ALERT = "notify_alert"
    DELIVER = "deliver"
    HANDLE_EVENT = "handle_event"
    CHECKOUT_SNAPSHOT = "checkout_snapshot"
    ENTRANCE_VISIT = "entrance_visit"
    FRAUD_REPORT = "fraud_report"
    PROPOSE_ENROLLMENT = "propose_enrollment"
    ENROLL_FACE = "enroll_face"
    LOOKBACK = "lookback"
    FORGET_TEMPLATES = "watchlist_forget"
    ERASE_PERSON = "erase_person"
    EXPIRE_WATCHLIST = "watchlist_expiry"
    PURGE = "purge"
    DAILY_DIGEST = "daily_digest"
    PATTERN_REPORT = "pattern_report"


class Lane(StrEnum):
    """Which workers take a step; each lane has its own (``runner.workers``), so no lane waits behind another.

    Camera steps never queue behind analyses (a live picture is taken only while the payment is fresh); chat,
    button presses and Webex delivery never wait behind camera or analysis work; routine sweeps run beside."""

    CAMERA = "camera"  # Meraki calls and picture downloads: mostly waiting, many at once
    ANALYSIS = "analysis"  # face and product recognition: the CPU (or Rekognition's) time
    PIPELINE = "pipeline"  # short database steps of a checkout: triage, decisions, fraud reports
    CHAT = "chat"  # what people wait for: commands, presses, alert cards, Webex delivery
    ROUTINE = "routine"  # sweeps and long low-priority work: retention, digests, look-back, expiry, erasure


@dataclass(frozen=True)
class RetryPolicy:
    """How a step that asks to be retried waits: doubling from ``base_s`` up to ``cap_s``, ``attempts`` times,
    then the step gives its reason up (kept below the runner's dead-letter limit, so the reason is recorded)."""

    attempts: int = 6
    base_s: float = 30.0
    cap_s: float = 600.0

    def delay_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """The wait before attempt ``attempt + 1``; a service's own Retry-After wins."""
        if retry_after_s:
            return retry_after_s
        return min(self.cap_s, self.base_s * 2 ** min(max(attempt, 1) - 1, 32))

    def gives_up(self, attempt: int) -> bool:
        return attempt >= self.attempts


@dataclass(frozen=True)
class StepSpec:
    handler: str  # "module:function" of the step's handler
    lane: Lane = Lane.PIPELINE
    retry: RetryPolicy = RetryPolicy()
    settle_dead: str | None = None  # "module:function" run in the burial's transaction when the step dies
    priority: int = 5  # within a lane, lower first: a live picture cannot wait, an exact one can wait minutes


_SETTLE_CORRELATION = "handlers.pipeline.failures:settle_dead_step"

CATALOGUE: dict[StepKind, StepSpec] = {
    StepKind.TRIAGE: StepSpec("handlers.pipeline.triage:job_triage"),
    StepKind.CAPTURE_LIVE: StepSpec(
        "handlers.pipeline.capture:job_capture_live",
        Lane.CAMERA,
        RetryPolicy(attempts=6, base_s=20.0, cap_s=300.0),
        _SETTLE_CORRELATION,
        priority=0,
    ),
    StepKind.CAPTURE_EXACT: StepSpec(
        "handlers.pipeline.capture:job_capture_exact",
        Lane.CAMERA,
        RetryPolicy(attempts=6, base_s=20.0, cap_s=300.0),
        _SETTLE_CORRELATION,
        priority=8,
    ),
    StepKind.ANALYZE: StepSpec(
        "handlers.pipeline.analysis:job_analyze",
        retry=RetryPolicy(attempts=6, base_s=30.0, cap_s=600.0),
        settle_dead=_SETTLE_CORRELATION,
        lane=Lane.ANALYSIS,
    ),
    StepKind.DECIDE: StepSpec("handlers.pipeline.decision:job_decide", settle_dead=_SETTLE_CORRELATION),
    StepKind.DECIDE_UNPICTURED: StepSpec("handlers.pipeline.decision:job_decide_unpictured"),
    StepKind.NOTIFY_ALERT: StepSpec("handlers.pipeline.notify:job_notify_alert", lane=Lane.CHAT, priority=1),
    StepKind.DELIVER: StepSpec(
        "handlers.chat.delivery:job_deliver",
        retry=RetryPolicy(attempts=7, base_s=10.0, cap_s=600.0),
        settle_dead="handlers.chat.delivery:settle_dead_delivery",
        lane=Lane.CHAT,
        priority=2,
    ),
    StepKind.HANDLE_EVENT: StepSpec("handlers.chat.dispatch:job_handle_event", lane=Lane.CHAT, priority=0),
    StepKind.CHECKOUT_SNAPSHOT: StepSpec(
        "handlers.pipeline.register_snapshot:job_checkout_snapshot", Lane.CAMERA, priority=1
    ),
    StepKind.ENTRANCE_VISIT: StepSpec(
        "handlers.pipeline.entrance:job_entrance_visit",
        Lane.CAMERA,
        RetryPolicy(attempts=6, base_s=10.0, cap_s=300.0),
        priority=2,
    ),
    StepKind.FRAUD_REPORT: StepSpec("handlers.learning.proposals:job_fraud_report"),
    StepKind.PROPOSE_ENROLLMENT: StepSpec(
        "handlers.learning.proposals:job_propose_enrollment",
        retry=RetryPolicy(attempts=6, base_s=60.0, cap_s=60.0),
        lane=Lane.ANALYSIS,
    ),
    StepKind.ENROLL_FACE: StepSpec(
        "handlers.learning.enrollment:job_enroll_face",
        retry=RetryPolicy(attempts=6, base_s=30.0, cap_s=600.0),
        lane=Lane.ANALYSIS,
    ),
    StepKind.LOOKBACK: StepSpec(
        "handlers.learning.lookback:job_lookback", retry=RetryPolicy(base_s=60.0, cap_s=60.0), lane=Lane.ROUTINE
    ),
    StepKind.FORGET_TEMPLATES: StepSpec("handlers.learning.erasure:job_forget_templates", lane=Lane.ROUTINE),
    StepKind.ERASE_PERSON: StepSpec("handlers.learning.erasure:job_erase_person", lane=Lane.ROUTINE),
    StepKind.EXPIRE_WATCHLIST: StepSpec("handlers.learning.erasure:job_expire_watchlist", lane=Lane.ROUTINE),
    StepKind.PURGE: StepSpec("handlers.routine.retention:job_purge", lane=Lane.ROUTINE),
    StepKind.DAILY_DIGEST: StepSpec("handlers.routine.digest:job_daily_digest", lane=Lane.ROUTINE),
    StepKind.PATTERN_REPORT: StepSpec("handlers.routine.weekly_report:job_pattern_report", lane=Lane.ROUTINE),
}

# The steps of one transaction's correlation: a dead one settles the transaction (handlers/pipeline/failures.py).
CORRELATION_STEPS = frozenset(kind for kind, spec in CATALOGUE.items() if spec.settle_dead == _SETTLE_CORRELATION)


def policy(kind: StepKind) -> RetryPolicy:
    return CATALOGUE[kind].retry


def lane_of(lane: Lane) -> frozenset[StepKind]:
    return frozenset(kind for kind, spec in CATALOGUE.items() if spec.lane is lane)


def camera_lane() -> frozenset[StepKind]:
    return lane_of(Lane.CAMERA)

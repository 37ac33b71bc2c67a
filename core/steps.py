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
    ARCHIVE_WORK = "archive_work"
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
_SETTLE_PROPOSAL = "handlers.learning.proposals:settle_dead_proposal"

# Every kind that has a subject to settle names its ``settle_dead``; the sweeps that have none say why
# (docs/decisions.md, "Dead steps settle their subject").
CATALOGUE: dict[StepKind, StepSpec] = {
    # A triage that died leaves the transaction failed and the payment still decided on, as a capture that died.
    StepKind.TRIAGE: StepSpec("handlers.pipeline.triage:job_triage", settle_dead=_SETTLE_CORRELATION),
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
    StepKind.DECIDE_UNPICTURED: StepSpec(
        "handlers.pipeline.decision:job_decide_unpictured",
        settle_dead="handlers.pipeline.decision:settle_dead_unpictured",
    ),
    StepKind.NOTIFY_ALERT: StepSpec(
        "handlers.pipeline.notify:job_notify_alert",
        settle_dead="handlers.pipeline.notify:settle_dead_notify",
        lane=Lane.CHAT,
        priority=1,
    ),
    StepKind.DELIVER: StepSpec(
        "handlers.chat.delivery:job_deliver",
        retry=RetryPolicy(attempts=7, base_s=10.0, cap_s=600.0),
        settle_dead="handlers.chat.delivery:settle_dead_delivery",
        lane=Lane.CHAT,
        priority=2,
    ),
    StepKind.HANDLE_EVENT: StepSpec(
        "handlers.chat.dispatch:job_handle_event",
        settle_dead="handlers.chat.dispatch:settle_dead_event",
        lane=Lane.CHAT,
        priority=0,
    ),
    StepKind.CHECKOUT_SNAPSHOT: StepSpec(
        "handlers.pipeline.register_snapshot:job_checkout_snapshot",
        Lane.CAMERA,
        settle_dead="handlers.pipeline.register_snapshot:settle_dead_checkout_snapshot",
        priority=1,
    ),
    StepKind.ENTRANCE_VISIT: StepSpec(
        "handlers.pipeline.entrance:job_entrance_visit",
        Lane.CAMERA,
        RetryPolicy(attempts=6, base_s=10.0, cap_s=300.0),
        "handlers.pipeline.entrance:settle_dead_entrance_visit",
        priority=2,
    ),
    StepKind.FRAUD_REPORT: StepSpec("handlers.learning.proposals:job_fraud_report", settle_dead=_SETTLE_PROPOSAL),
    StepKind.PROPOSE_ENROLLMENT: StepSpec(
        "handlers.learning.proposals:job_propose_enrollment",
        retry=RetryPolicy(attempts=6, base_s=60.0, cap_s=60.0),
        settle_dead=_SETTLE_PROPOSAL,
        lane=Lane.ANALYSIS,
    ),
    StepKind.ENROLL_FACE: StepSpec(
        "handlers.learning.enrollment:job_enroll_face",
        retry=RetryPolicy(attempts=6, base_s=30.0, cap_s=600.0),
        settle_dead="handlers.learning.enrollment:settle_dead_enrollment",
        lane=Lane.ANALYSIS,
    ),
    StepKind.LOOKBACK: StepSpec(
        "handlers.learning.lookback:job_lookback",
        retry=RetryPolicy(base_s=60.0, cap_s=60.0),
        settle_dead="handlers.learning.lookback:settle_dead_lookback",
        lane=Lane.ROUTINE,
    ),
    StepKind.FORGET_TEMPLATES: StepSpec(
        "handlers.learning.erasure:job_forget_templates",
        settle_dead="handlers.learning.erasure:settle_dead_forget",
        lane=Lane.ROUTINE,
    ),
    StepKind.ERASE_PERSON: StepSpec(
        "handlers.learning.erasure:job_erase_person",
        settle_dead="handlers.learning.erasure:settle_dead_erasure",
        lane=Lane.ROUTINE,
    ),
    # Nothing to settle: the next hour's sweep does all that this one left (every entry past its expiry).
    StepKind.EXPIRE_WATCHLIST: StepSpec("handlers.learning.erasure:job_expire_watchlist", lane=Lane.ROUTINE),
    # Nothing to settle: the next hour's purge deletes all that is past its window, this hour's left-overs too.
    StepKind.PURGE: StepSpec("handlers.routine.retention:job_purge", lane=Lane.ROUTINE),
    # Nothing to settle: the next run (minutes later) moves and deletes all that this one left.
    StepKind.ARCHIVE_WORK: StepSpec("handlers.routine.work_archive:job_archive_work", lane=Lane.ROUTINE),
    # Nothing to settle: a day's digest or a week's report is news only then; the figures stay a `stats` away,
    # the next period's runs as usual, and the dead step is counted in `status` and listed by `work list`.
    StepKind.DAILY_DIGEST: StepSpec("handlers.routine.digest:job_daily_digest", lane=Lane.ROUTINE),
    StepKind.PATTERN_REPORT: StepSpec("handlers.routine.weekly_report:job_pattern_report", lane=Lane.ROUTINE),
}

# Sweeps: a dead one is logged and counted (`status`, `work list`); its next period does the work again.
NOTHING_TO_SETTLE = frozenset(
    {StepKind.EXPIRE_WATCHLIST, StepKind.PURGE, StepKind.ARCHIVE_WORK, StepKind.DAILY_DIGEST, StepKind.PATTERN_REPORT}
)

# The steps of one transaction's correlation: a dead one settles the transaction (handlers/pipeline/failures.py).
CORRELATION_STEPS = frozenset(kind for kind, spec in CATALOGUE.items() if spec.settle_dead == _SETTLE_CORRELATION)


def policy(kind: StepKind) -> RetryPolicy:
    return CATALOGUE[kind].retry


def lane_of(lane: Lane) -> frozenset[StepKind]:
    return frozenset(kind for kind, spec in CATALOGUE.items() if spec.lane is lane)


def camera_lane() -> frozenset[StepKind]:
    return lane_of(Lane.CAMERA)

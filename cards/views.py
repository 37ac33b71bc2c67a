"""What the card builders take: frozen, storage-free views that handlers fill from database rows.

Keeping cards on these (not on SQLAlchemy models) keeps every builder pure and testable with
literals. Times are aware datetimes; money is a decimal string as in the POS contract; person ids
are the public ones ("P-7"), alert ids the public ones ("A-1042").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True)
class WatchlistEntryView:
    """An enrolled person as staff may see them: ids, reason and track record, never a name."""

    id: str  # "P-7"
    status: str  # pending_approval|active|expired|removed
    reason: str
    store_id: str
    enrolled_by: str  # email
    enrolled_at: datetime
    expires_at: datetime
    faces_count: int = 0
    wrong_match_count: int = 0  # alerts on this person dismissed as not_same_person
    flagged_for_review: bool = False
    precision: float | None = None  # confirmed / decided alerts on this person, 0–1; None when none decided
    approved_by: str | None = None  # the second person under enrollment.two_person_rule
    timezone: str = "UTC"  # IANA zone the dates are shown in (the enrolling store's)


@dataclass(frozen=True)
class SnapshotRef:
    """One picture behind an alert: its id and which moment it shows (live|exact|entrance|manual)."""

    id: str
    kind: str


@dataclass(frozen=True)
class SightingView:
    """An earlier alert of the same watchlist person in the store: where and when its card says it happened."""

    alert_id: str  # "A-17"
    register_id: str | None  # None: at an entrance camera
    at: datetime  # aware; shown in the later alert's store time


@dataclass(frozen=True)
class AlertView:
    """An alert with what a person needs to decide it: where, when, how much, what was seen, who it may be."""

    id: str  # "A-1042"
    rule: str
    severity: str  # low|medium|high|critical
    message: str  # the rule's rendered message
    status: str  # open|confirmed|dismissed
    store_id: str
    store_name: str
    register_id: str | None  # None at an entrance camera
    occurred_at: datetime  # aware; shown in ``timezone``
    timezone: str  # the store's IANA time zone, e.g. "America/Sao_Paulo"
    amount: str | None = None  # decimal string; None at the entrance
    currency: str | None = None
    transaction_id: str | None = None
    transaction_type: str | None = None  # sale|refund|void|no_sale|price_override|discount
    cashier_id: str | None = None
    reconciliation: Mapping[str, Any] | None = None  # vision.reconciliation.Reconciliation.to_dict()
    person: WatchlistEntryView | None = None  # the matched watchlist entry, if any
    similarity: float | None = None  # 0–100, of the match with ``person``
    snapshots: tuple[SnapshotRef, ...] = ()
    faces_count: int = 0  # faces in the customer zone (what Enroll can offer)
    video_link: str | None = None  # Meraki dashboard link to the footage (needs a login)
    decided_by: str | None = None  # email
    decided_at: datetime | None = None
    reason: str | None = None  # not_same_person|billed_correctly|no_loss|other (dismissals)
    note: str | None = None
    sightings: tuple[SightingView, ...] = ()  # the same person's earlier alerts here, newest first

    @property
    def is_decided(self) -> bool:
        return self.status in ("confirmed", "dismissed")


@dataclass(frozen=True)
class Resemblance:
    """A proposed face already looks like someone on the watchlist: enrolling it again may be a duplicate."""

    person_id: str
    similarity: float  # 0–100


@dataclass(frozen=True)
class ProposedFace:
    """One face of the checkout picture, numbered as on the annotated photo."""

    number: int  # 1..n, the number drawn on the evidence photo
    face_id: str
    quality: float  # 0–1
    size_px: int  # shorter side of the face box
    sharpness: float  # 0–1
    resembles: Resemblance | None = None
    image_url: str | None = None  # a public, short-lived URL of the crop; None sends no image in the card
    problem: str | None = None  # why it fails the quality gates ("too small: 52 px"); such a face is not offered


@dataclass(frozen=True)
class EnrollmentProposalView:
    """The faces of a fraud transaction offered for enrollment; a person picks one, gives a reason and an expiry."""

    transaction_id: str
    store_id: str
    faces: tuple[ProposedFace, ...]
    default_expiry_days: int
    max_expiry_days: int
    reasons: tuple[str, ...] = ()  # why these faces are offered ("Chargeback received 20 Jun"), shown as lines
    alert_id: str | None = None  # the confirmed alert that led here, carried back with the submit


@dataclass(frozen=True)
class HealthView:
    """One dependency's state: ok|degraded|down|off, with a short plain-words detail."""

    state: str
    detail: str = ""


@dataclass(frozen=True)
class FaceEvaluationView:
    """The last accuracy evaluation of the face backend (``python -m bot evaluate-faces``), or that there is none."""

    notice: str  # one line: never evaluated, thresholds changed since, or what was measured
    attention: bool  # never evaluated, or not under the thresholds configured now
    facts: tuple[tuple[str, str], ...] = ()  # the figures, ready to show: ("False matches at 90", "0.0 % (up to 2 %)")


@dataclass(frozen=True)
class StatusView:
    """What `status` answers: each dependency's health and how the queue is doing."""

    database: HealthView
    runner: HealthView
    webex: HealthView
    camera: HealthView
    recognition: HealthView
    recognition_backend: str  # local|rekognition
    broker: HealthView
    evidence: HealthView = HealthView("ok", "ready")  # where pictures live: DATA_DIR or the bucket
    queue_counts: Mapping[str, int] = field(default_factory=dict)  # work item status -> count
    oldest_pending_age_s: float | None = None
    failed_messages: int = 0  # outbox messages queued in the last 24 h that could not be sent
    newest_failure: str | None = None  # the newest such message's reason
    face_evaluation: FaceEvaluationView | None = None


@dataclass(frozen=True)
class StoreStatsRow:
    """One store's figures over the period."""

    store_id: str
    store_name: str
    transactions_checked: int
    pictures: int
    alerts_by_rule: Mapping[str, int]
    confirmed: int
    dismissed: int
    open_older_than_a_day: int
    loss_prevented_amount: str  # decimal string, an estimate (confirmed alerts' amounts or surplus values)
    currency: str


@dataclass(frozen=True)
class RulePrecision:
    """How often a rule's decided alerts were confirmed: the measure of whether it deserves attention."""

    rule: str
    confirmed: int
    decided: int

    @property
    def precision(self) -> float | None:
        return self.confirmed / self.decided if self.decided else None


@dataclass(frozen=True)
class EntryPrecision:
    """How often alerts naming a watchlist entry were confirmed, and whether it is flagged for review."""

    person_id: str
    confirmed: int
    decided: int
    flagged_for_review: bool = False

    @property
    def precision(self) -> float | None:
        return self.confirmed / self.decided if self.decided else None


@dataclass(frozen=True)
class StatsView:
    """What `stats [7d]` answers."""

    period: str  # "last 7 days"
    stores: tuple[StoreStatsRow, ...]
    rules: tuple[RulePrecision, ...] = ()
    watchlist: tuple[EntryPrecision, ...] = ()  # entries with decided alerts in the period
    more: int = 0  # stores and entries on later pages
    next_page: str | None = None  # what to type for them ("stats 7d 2")
    face_evaluation: FaceEvaluationView | None = None  # on the first page of `stats` (not in digests)


@dataclass(frozen=True)
class CommandHelp:
    """One command as help shows it."""

    command: str  # "alerts"
    usage: str  # "alerts [open|today]"
    description: str
    min_role: str  # staff|manager|security


@dataclass(frozen=True)
class HelpView:
    """The commands this person may use (the handler filters by role), and what they typed if it was unknown."""

    commands: tuple[CommandHelp, ...]
    role: str | None = None
    unknown_command: str | None = None


@dataclass(frozen=True)
class SubjectPattern:
    """A cashier or register over a report's days: its exceptions and how far it is from the store's others."""

    subject: str  # cashier or register id
    transactions: int  # of any kind
    counts: Mapping[str, int]  # refund, void, no_sale, override, own_refund, under_rung -> events
    rate: float  # exceptions (refunds, voids, no-sales, overrides, discounts) per transaction
    z: float | None  # of ``rate`` against the store's others over the same days; None: new, or too few others
    new: bool  # fewer transactions than the baselines' minimum (no z-score)
    peer_mean: float | None  # the others' mean rate; None when there are none to compare with
    alert_ids: tuple[str, ...] = ()  # newest first, a few ("A-12")
    more_alerts: int = 0  # alerts in the period beyond ``alert_ids``

    @property
    def exceptions(self) -> int:
        return sum(self.counts.get(kind, 0) for kind in ("refund", "void", "no_sale", "override"))


@dataclass(frozen=True)
class CardPattern:
    """A card fingerprint (an opaque token, never a number) with refunds or voids in the period."""

    fingerprint: str
    refunds: int
    voids: int
    amount: str  # decimal string: their total, in the store's currency


@dataclass(frozen=True)
class RuleHits:
    """One rule's alerts in the period, by how they stand now."""

    rule: str
    confirmed: int
    dismissed: int
    open: int

    @property
    def alerts(self) -> int:
        return self.confirmed + self.dismissed + self.open


@dataclass(frozen=True)
class PatternReportView:
    """What `patterns [7d]` and the weekly report show for one store over whole store-local days."""

    store_id: str
    store_name: str
    first_day: date
    last_day: date  # inclusive
    transactions: int
    exceptions: int
    cashiers: tuple[SubjectPattern, ...]  # furthest from the others first
    registers: tuple[SubjectPattern, ...]
    cards: tuple[CardPattern, ...]  # most refunds and voids first
    rules: tuple[RuleHits, ...]  # most alerts first
    min_transactions: int  # below this a subject is new (no z-score)
    min_peers: int  # fewer others with enough transactions: no z-score

"""Typed SQLAlchemy 2.0 models: the durable state of the product.

Times are stored as UTC and come back timezone-aware on every backend. Images never live in
the database: rows point at evidence files (content-addressed under DATA_DIR).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from core.correlation import CorrelationStatus, check_move

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out; SQLite keeps no offset, so normalise here."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use clock() or an aware value")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class Transaction(Base):
    """A POS transaction as accepted, normalised fields beside the raw body, plus its correlation state."""

    __tablename__ = "transactions"
    __table_args__ = (
        # The pattern facts' rolling windows: each is an index range, never a scan of history.
        Index("ix_transactions_cashier_window", "store_id", "cashier_id", "occurred_at"),
        Index("ix_transactions_register_window", "store_id", "register_id", "occurred_at"),
        Index("ix_transactions_store_type_window", "store_id", "type", "occurred_at"),
        Index("ix_transactions_card_window", "card_fingerprint", "occurred_at"),
        # Refunds to a card: without the type in the index a busy card's every use is read (benchmarks/patterns.py).
        Index("ix_transactions_card_type_window", "card_fingerprint", "type", "occurred_at"),
    )

    transaction_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    store_id: Mapped[str] = mapped_column(String(64), index=True)
    register_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(20), default="sale")
    occurred_at: Mapped[datetime] = mapped_column(index=True)
    received_at: Mapped[datetime]
    total_amount: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    currency: Mapped[str] = mapped_column(String(3))
    payment_method: Mapped[str] = mapped_column(String(10))
    entry_mode: Mapped[str | None] = mapped_column(String(12))
    card_fingerprint: Mapped[str | None] = mapped_column(String(128))
    risk_score: Mapped[int | None]
    cashier_id: Mapped[str | None] = mapped_column(String(64))
    original_transaction_id: Mapped[str | None] = mapped_column(String(128), doc="The sale a refund or void undoes.")
    approver_id: Mapped[str | None] = mapped_column(String(64), doc="Who approved a price override or discount.")
    adjustment_amount: Mapped[Decimal] = mapped_column(
        Numeric(18, 4), default=Decimal(0), server_default="0", doc="What an override or discount gave away."
    )
    body: Mapped[str] = mapped_column(Text, doc="The raw accepted JSON body, exactly as posted.")
    body_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(
        String(12), default="pending", doc="pending|capturing|analyzing|done|skipped|failed"
    )
    status_reason: Mapped[str | None] = mapped_column(String(500))
    triage_decision: Mapped[str | None] = mapped_column(String(8))
    triage_reason: Mapped[str | None] = mapped_column(String(500))
    reconciliation: Mapped[dict[str, Any] | None]
    rule_results: Mapped[list[Any] | None] = mapped_column(doc="[{rule, fired, facts}] of the last evaluation")
    pattern_facts: Mapped[dict[str, Any] | None] = mapped_column(doc="Pattern facts as of triage (core/facts.py)")
    placed: Mapped[bool] = mapped_column(
        Boolean,
        default=True,
        server_default=true(),
        doc="False for an unknown store or register (stored, never correlated or counted)",
    )
    under_rung: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false(), doc="A picture showed more than was billed (counted once)"
    )
    # A processor's later change of the payment (Square payment.updated); null: the body's payment.status holds.
    payment_status: Mapped[str | None] = mapped_column(
        String(32), doc="approved|pending|canceled|failed, as changed since"
    )
    payment_status_at: Mapped[datetime | None] = mapped_column(doc="The processor's updated_at of the status we hold")
    payment_version: Mapped[int | None] = mapped_column(BigInteger, doc="The processor's version of the status we hold")

    fraud_reports: Mapped[list[FraudReport]] = relationship(back_populates="transaction", order_by="FraudReport.id")
    snapshots: Mapped[list[Snapshot]] = relationship(back_populates="transaction", order_by="Snapshot.created_at")

    def move_to(self, status: CorrelationStatus, reason: str | None = None) -> None:
        """Change the correlation status (core/correlation.py says which moves exist) and its plain-words reason."""
        self.status = check_move(self.status, status)
        self.status_reason = reason


class FraudReport(Base):
    __tablename__ = "fraud_reports"
    __table_args__ = (UniqueConstraint("transaction_id", "source"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    transaction_id: Mapped[str] = mapped_column(ForeignKey("transactions.transaction_id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(12), doc="chargeback|processor|manual")
    reason: Mapped[str | None] = mapped_column(String(500))
    reported_at: Mapped[datetime]
    received_at: Mapped[datetime]
    reported_by: Mapped[str | None] = mapped_column(String(254), doc="Email of the person for manual reports.")
    body_sha256: Mapped[str | None] = mapped_column(String(64))

    transaction: Mapped[Transaction] = relationship(back_populates="fraud_reports")


CLAIMABLE = "status IN ('pending', 'running')"


class WorkItem(Base):
    """The only queue: one background step, claimed with a lease, retried with back-off, then dead-lettered."""

    __tablename__ = "work_items"
    # Partial indexes: the claim, the archival and the dead list each read only their few rows, however many
    # finished ones the table holds (docs/decisions.md, "The work table stays small").
    __table_args__ = (
        Index(
            "ix_work_items_claimable",
            "kind",
            "next_run_at",
            postgresql_where=text(CLAIMABLE),
            sqlite_where=text(CLAIMABLE),
        ),
        Index(
            "ix_work_items_finished",
            "completed_at",
            postgresql_where=text("status = 'done'"),
            sqlite_where=text("status = 'done'"),
        ),
        Index(
            "ix_work_items_dead",
            "completed_at",
            postgresql_where=text("status = 'dead'"),
            sqlite_where=text("status = 'dead'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    dedupe_key: Mapped[str] = mapped_column(
        String(200), unique=True, doc="kind:ids; enqueueing the same step twice is a no-op"
    )
    transaction_id: Mapped[str | None] = mapped_column(String(128), index=True)
    ref_id: Mapped[str | None] = mapped_column(String(128), doc="Other id the step needs (snapshot, alert, person).")
    store_id: Mapped[str | None] = mapped_column(String(64), doc="The store it is for: claims go round the stores")
    priority: Mapped[int] = mapped_column(
        SmallInteger, default=5, server_default="5", doc="Lower first within a lane (a live picture: 0)"
    )
    status: Mapped[str] = mapped_column(String(8), default="pending", doc="pending|running|done|dead")
    next_run_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    lease_token: Mapped[str | None] = mapped_column(String(32), doc="Fresh per claim; finishing checks it")
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]


class ProcessLease(Base):
    """Something only one process may do at a time (hold the Webex websocket, listen to a share of the entrance
    cameras), or a process saying it is alive (``member:<process>``): held until ``lease_until``, renewed by its
    holder, taken over by another process once it has run out."""

    __tablename__ = "process_leases"

    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120), doc="host:pid:token of the process holding it")
    lease_until: Mapped[datetime]
    since: Mapped[datetime] = mapped_column(doc="When this holder took it")


class WorkHistory(Base):
    """A finished step moved out of ``work_items`` once ``runner.finished_keep_hours`` have passed: its key still
    makes a second enqueue a no-op, and readers (the read API, erasure counts) still see it, until retention."""

    __tablename__ = "work_history"
    __table_args__ = (
        Index("ix_work_history_kind_ref", "kind", "ref_id"),
        Index("ix_work_history_completed", "completed_at"),
    )

    dedupe_key: Mapped[str] = mapped_column(String(200), primary_key=True, doc="As in work_items: kind:ids")
    item_id: Mapped[int] = mapped_column(
        BigInteger, doc="Its id in work_items (SQLite may give that id out again: not a key here)"
    )
    kind: Mapped[str] = mapped_column(String(32))
    transaction_id: Mapped[str | None] = mapped_column(String(128), index=True)
    ref_id: Mapped[str | None] = mapped_column(String(128))
    store_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int]
    last_error: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime]

    status: ClassVar[str] = "done"  # only done steps move: dead ones stay in work_items for an operator
    next_run_at: ClassVar[None] = None


class EvidenceFile(Base):
    """A file under DATA_DIR named by its SHA-256: snapshots, crops, enrollment photos, charts."""

    __tablename__ = "evidence_files"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), doc="snapshot|crop|enrollment|chart|export")
    content_type: Mapped[str] = mapped_column(String(40))
    size_bytes: Mapped[int]
    created_at: Mapped[datetime]


class Snapshot(Base):
    __tablename__ = "snapshots"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    transaction_id: Mapped[str | None] = mapped_column(
        ForeignKey("transactions.transaction_id", ondelete="CASCADE"), index=True
    )
    store_id: Mapped[str] = mapped_column(String(64))
    camera_serial: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(10), doc="live|exact|entrance|manual")
    taken_for: Mapped[datetime | None] = mapped_column(doc="The moment pictured; null for live")
    status: Mapped[str] = mapped_column(String(8), default="pending", doc="pending|ready|failed")
    reason: Mapped[str | None] = mapped_column(String(500))
    evidence_sha256: Mapped[str | None] = mapped_column(ForeignKey("evidence_files.sha256"))
    created_at: Mapped[datetime]
    ready_at: Mapped[datetime | None]
    analyzed_at: Mapped[datetime | None]
    reconciliation: Mapped[dict[str, Any] | None] = mapped_column(doc="Receipt against what this picture shows")
    rule_results: Mapped[list[Any] | None] = mapped_column(
        doc="Entrance pictures: every rule evaluation [{rule, fired, facts, person_id}] (checkouts keep theirs on the transaction)"
    )

    transaction: Mapped[Transaction | None] = relationship(back_populates="snapshots")
    faces: Mapped[list[Face]] = relationship(
        back_populates="snapshot", order_by="Face.id", cascade="all, delete-orphan"
    )


class Face(Base):
    """A face found in a snapshot. No descriptor is kept for faces that are not enrolled."""

    __tablename__ = "faces"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    snapshot_id: Mapped[str] = mapped_column(ForeignKey("snapshots.id", ondelete="CASCADE"), index=True)
    box: Mapped[list[Any]] = mapped_column(doc="Normalised [x0, y0, x1, y1]")
    quality: Mapped[float]
    in_customer_zone: Mapped[bool] = mapped_column(Boolean)
    crop_sha256: Mapped[str | None] = mapped_column(ForeignKey("evidence_files.sha256"))

    snapshot: Mapped[Snapshot] = relationship(back_populates="faces")
    matches: Mapped[list[FaceMatch]] = relationship(back_populates="face", cascade="all, delete-orphan")


class WatchlistPerson(Base):
    """An enrolled person: ids and reason codes only, never a name."""

    __tablename__ = "watchlist_people"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    store_id: Mapped[str] = mapped_column(String(64), doc="Store where enrolled")
    region_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="active", doc="pending_approval|active|expired|removed")
    reason: Mapped[str] = mapped_column(String(500))
    source_transaction_id: Mapped[str | None] = mapped_column(String(128))
    enrolled_by: Mapped[str] = mapped_column(String(254))
    approved_by: Mapped[str | None] = mapped_column(String(254))
    enrolled_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    backend_user_id: Mapped[str | None] = mapped_column(String(255))
    wrong_match_count: Mapped[int] = mapped_column(default=0)

    faces: Mapped[list[WatchlistFace]] = relationship(back_populates="person", cascade="all, delete-orphan")


class WatchlistFace(Base):
    """One enrolled face of a person: the descriptor (local) or backend face id, and the enrollment photo."""

    __tablename__ = "watchlist_faces"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("watchlist_people.id", ondelete="CASCADE"), index=True)
    descriptor: Mapped[bytes | None] = mapped_column(LargeBinary)
    backend: Mapped[str] = mapped_column(String(16))
    backend_face_id: Mapped[str | None] = mapped_column(String(64))
    enrollment_image_sha256: Mapped[str] = mapped_column(ForeignKey("evidence_files.sha256"))
    created_at: Mapped[datetime]

    person: Mapped[WatchlistPerson] = relationship(back_populates="faces")


class FaceMatch(Base):
    __tablename__ = "face_matches"
    __table_args__ = (UniqueConstraint("face_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    face_id: Mapped[str] = mapped_column(ForeignKey("faces.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("watchlist_people.id", ondelete="CASCADE"), index=True)
    similarity: Mapped[float] = mapped_column(Float)

    face: Mapped[Face] = relationship(back_populates="matches")


class Alert(Base):
    """An alert waits for a person. Exposed as A-<id>; unique per dedupe key (transaction + rule, or entrance visit)."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    transaction_id: Mapped[str | None] = mapped_column(String(128), index=True)
    store_id: Mapped[str] = mapped_column(String(64), index=True)
    register_id: Mapped[str | None] = mapped_column(String(64))
    camera_serial: Mapped[str | None] = mapped_column(String(20))
    snapshot_id: Mapped[str | None] = mapped_column(String(32))
    rule: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(8))
    message: Mapped[str] = mapped_column(String(500))
    facts: Mapped[dict[str, Any]]
    person_id: Mapped[str | None] = mapped_column(String(32))
    similarity: Mapped[float | None]
    status: Mapped[str] = mapped_column(String(10), default="open", doc="open|confirmed|dismissed")
    decided_by: Mapped[str | None] = mapped_column(String(254))
    decided_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(String(20), doc="not_same_person|billed_correctly|no_loss|other")
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(index=True)

    @property
    def public_id(self) -> str:
        return f"A-{self.id}"


class AuditEntry(Base):
    """Append-only. Ids and reason codes only: no names, faces or free text, so erasure leaves it intact."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(254), doc="Staff email, 'pos', 'system'")
    action: Mapped[str] = mapped_column(String(40))
    subject_type: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[str] = mapped_column(String(128))
    store_id: Mapped[str | None] = mapped_column(String(64))
    reason_code: Mapped[str | None] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(12), default="ok", doc="ok|refused")


class OutboxMessage(Base):
    """A message to send to Webex; marked 'sending' before the call so a crash never silently posts twice."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    room_id: Mapped[str] = mapped_column(String(200))
    parent_outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(doc="text / markdown / card")
    file_sha256: Mapped[str | None] = mapped_column(ForeignKey("evidence_files.sha256"))
    status: Mapped[str] = mapped_column(String(8), default="pending", doc="pending|sending|sent|failed")
    webex_message_id: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None] = mapped_column(doc="when it became failed: `status` counts failures by it")

    def fail(self, error: str, now: datetime) -> None:
        self.status, self.last_error, self.failed_at = "failed", error[:1000], now


class InboundEvent(Base):
    """A Webex message or card press, stored before it is handled; its id deduplicates redeliveries."""

    __tablename__ = "inbound_events"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    source: Mapped[str] = mapped_column(String(20), doc="webex_message|webex_action|console")
    payload: Mapped[dict[str, Any]]
    received_at: Mapped[datetime] = mapped_column(index=True)
    handled_at: Mapped[datetime | None]


class RateBucket(Base):
    """Token bucket per Meraki organisation, shared by every process through the database."""

    __tablename__ = "rate_buckets"

    org_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tokens: Mapped[float]
    updated_at: Mapped[datetime]
    blocked_until: Mapped[datetime | None] = mapped_column(doc="Set from Retry-After on a 429")


class PatternCount(Base):
    """Events per store-local day, kind and subject (a cashier, register or card), kept as they happen.

    The baselines sum these daily rows, so a 28-day baseline costs days × subjects rows, never
    a scan of the transactions behind them.
    """

    __tablename__ = "pattern_counts"
    __table_args__ = (Index("ix_pattern_counts_baseline", "store_id", "dimension", "day"),)

    store_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    dimension: Mapped[str] = mapped_column(String(8), primary_key=True, doc="cashier|register|card")
    subject: Mapped[str] = mapped_column(String(128), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True, doc="Store-local day")
    kind: Mapped[str] = mapped_column(String(16), primary_key=True, doc="a transaction type, own_refund or under_rung")
    count: Mapped[int] = mapped_column(Integer, default=0)
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 4), default=Decimal(0))


class ConsoleSession(Base):
    """A console session that is open: the signed cookie names it, every console request finds it here, and
    signing out deletes it, so a copied cookie ends with the session instead of at its 12-hour expiry."""

    __tablename__ = "console_sessions"
    __table_args__ = (Index("ix_console_sessions_expires", "expires_at"),)

    id_sha256: Mapped[str] = mapped_column(
        String(64), primary_key=True, doc="SHA-256 of the id in the cookie: a read of this table signs no one in"
    )
    email: Mapped[str] = mapped_column(String(320), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class FaceEvaluation(Base):
    """One run of ``python -m bot evaluate-faces``: what it measured and under which thresholds, so ``check-config``,
    ``status`` and the stats page can say when the face backend was never evaluated or the thresholds moved since.
    Figures only: no names of the people in the set, no photos, no descriptors."""

    __tablename__ = "face_evaluations"
    __table_args__ = (Index("ix_face_evaluations_backend_finished", "backend", "finished_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    finished_at: Mapped[datetime]
    backend: Mapped[str] = mapped_column(String(16), doc="local or rekognition")
    match_threshold: Mapped[float] = mapped_column(Float)
    review_threshold: Mapped[float] = mapped_column(Float)
    people: Mapped[int] = mapped_column(Integer, doc="people enrolled in the evaluation")
    photos: Mapped[int] = mapped_column(Integer)
    genuine_comparisons: Mapped[int] = mapped_column(Integer)
    impostor_comparisons: Mapped[int] = mapped_column(Integer)
    refused_photos: Mapped[int] = mapped_column(Integer)
    figures: Mapped[dict[str, Any]] = mapped_column(
        doc="rates and 95 % intervals at the two configured thresholds, and whether the set was too small"
    )

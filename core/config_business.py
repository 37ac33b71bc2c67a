"""The business shape of the configuration (the YAML file): stores, people, rules and each section.

A tree of frozen pydantic models with ``extra="forbid"``; cross-field checks report each problem at
its own key path (``_raise_located``), so ``check-config`` can name the key and its YAML line.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from core.rule_language import check_condition, check_template, parse_cooldown

Role = Literal["staff", "manager", "security"]
ROLE_RANK: dict[str, int] = {"staff": 1, "manager": 2, "security": 3}
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
Box = tuple[float, float, float, float]
ProcessorId = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,100}$")
]  # a payment processor's id of a reader, device or location
DEFAULT_CONFIG_PATH = "config/flp.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegisterConfig(_Model):
    id: Identifier = Field(description="Register id as the POS sends it in register_id.")
    camera_serial: str = Field(description="Serial of the Meraki MV camera over this register, e.g. Q2XX-AAAA-0001.")
    customer_zone: Box = Field(
        default=(0.0, 0.0, 1.0, 1.0),
        description="Normalised [x0, y0, x1, y1] box of the customer's side; faces outside (the cashier) are ignored.",
    )
    stripe_reader_id: ProcessorId | None = Field(
        default=None, description="Stripe Terminal reader at this register (tmr_…), for the Stripe feed."
    )
    square_device_id: ProcessorId | None = Field(
        default=None, description="Square device at this register (device_details.device_id), for the Square feed."
    )

    @field_validator("camera_serial")
    @classmethod
    def _check_serial(cls, serial: str) -> str:
        return _camera_serial(serial)

    @field_validator("customer_zone")
    @classmethod
    def _check_box(cls, box: Box) -> Box:
        x0, y0, x1, y1 = box
        if not all(0.0 <= v <= 1.0 for v in box):
            raise ValueError("every coordinate must be between 0 and 1")
        if not (x0 < x1 and y0 < y1):
            raise ValueError("must be [x0, y0, x1, y1] with x0 < x1 and y0 < y1")
        return box


class StoreConfig(_Model):
    id: Identifier = Field(description="Store id as the POS sends it in store_id.")
    name: str = Field(min_length=1, max_length=100)
    timezone: str = Field(description="IANA time zone of the store, e.g. America/Sao_Paulo.")
    region: Identifier | None = Field(default=None, description="Region id from regions[].")
    webex_room_id: str | None = Field(default=None, description="Webex space for this store's alerts.")
    meraki_org_id: str = Field(
        default="default", min_length=1, description="Meraki organisation: the rate budget is per organisation."
    )
    registers: tuple[RegisterConfig, ...] = Field(default=(), description="Registers and their cameras.")
    entrance_cameras: tuple[str, ...] = Field(default=(), description="Serials of entrance cameras (MV Sense).")
    square_location_id: ProcessorId | None = Field(
        default=None, description="Square location of this store (location_id), for the Square feed."
    )

    @field_validator("entrance_cameras")
    @classmethod
    def _check_serials(cls, serials: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_camera_serial(s) for s in serials)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, name: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r}") from None
        return name

    def register(self, register_id: str) -> RegisterConfig | None:
        return next((r for r in self.registers if r.id == register_id), None)


class RegionConfig(_Model):
    id: Identifier
    webex_room_id: str | None = Field(default=None, description="Regional security space.")
    share_watchlist: bool = Field(
        default=True, description="A person enrolled in one store is recognised in the region's other stores."
    )


class PersonConfig(_Model):
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    role: Role
    stores: tuple[str, ...] = Field(min_length=1, description='Store ids, or ["*"] for all stores.')
    console_token_sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="SHA-256 (hex) of this person's console token."
    )

    @field_validator("email")
    @classmethod
    def _lower(cls, email: str) -> str:
        return email.lower()


class TriageConfig(_Model):
    """Which transactions get a picture; any one matching condition is enough."""

    methods: tuple[Literal["card", "cash", "wallet", "other"], ...] = Field(
        default=("card",), description="Payment methods considered at all (sales; see types for the other kinds)."
    )
    types: tuple[Literal["refund", "void", "no_sale", "price_override", "discount"], ...] = Field(
        default=("refund", "void", "no_sale", "price_override", "discount"),
        description="Transaction kinds always pictured, whatever the payment method: exceptions are rare, and a void should be seen, not just counted.",
    )
    capture_all: bool = Field(default=False, description="Picture every considered transaction.")
    min_risk_score: int | None = Field(default=60, ge=0, le=100, description="Capture at or above this risk score.")
    entry_modes: tuple[Literal["chip", "contactless", "swipe", "manual", "online"], ...] = Field(
        default=("manual", "swipe"), description="Capture these card entry modes."
    )
    min_amount: Decimal | None = Field(default=Decimal("500"), ge=0, description="Capture at or above this total.")
    repeat_fingerprint: bool = Field(
        default=True, description="Capture when the card fingerprint was in a confirmed fraud."
    )
    when_watchlist_active: bool = Field(default=True, description="Capture all when the store's watchlist has entries.")


class CameraConfig(_Model):
    rate_limit_per_org: float = Field(default=10, gt=0, le=100, description="Meraki requests/s per organisation.")
    burst: int = Field(default=10, ge=1, le=100, description="Token-bucket burst size per organisation.")
    live_max_age_s: int = Field(
        default=20, ge=0, le=600, description="Live snapshot only while the payment is this fresh."
    )
    exact_delay_s: int = Field(
        default=180, ge=0, le=3600, description="Wait before asking for footage at the exact time."
    )
    poll_initial_s: float = Field(default=2, gt=0, le=30, description="First wait before fetching the image URL.")
    poll_total_s: float = Field(default=30, gt=0, le=300, description="Give up polling the image URL after this long.")
    timeout_s: float = Field(default=10, gt=0, le=120, description="Timeout of every Meraki HTTP call.")
    entrance_window_s: float = Field(
        default=30,
        ge=5,
        le=600,
        description="At most one picture per entrance camera in this window (each costs a snapshot request); "
        "shorter than a rule's cool-down, so a second person soon after is still pictured.",
    )
    entrance_shares: int = Field(
        default=8,
        ge=1,
        le=256,
        description="Entrance cameras are split into this many shares; each share is listened to by one worker "
        "process at a time, and the shares are spread evenly over the processes alive.",
    )


class RecognitionConfig(_Model):
    match_threshold: float = Field(default=90, ge=0, le=100, description="Similarity at which a face is a match.")
    review_threshold: float = Field(
        default=80, ge=0, le=100, description="Below this a face is never shown as a match."
    )
    min_face_px: int = Field(default=40, ge=20, le=1000, description="Smaller faces are not searched.")
    call_deadline_s: float = Field(
        default=45,
        gt=0,
        le=600,
        description="Every Amazon Rekognition call ends within this, retries included; past it the step retries later.",
    )
    max_picture_megapixels: float = Field(
        default=40,
        ge=1,
        le=250,
        description="A picture of more pixels (camera snapshot, enrollment photo, crop) is refused as unreadable, "
        "checked from its header before it is decoded.",
    )

    @model_validator(mode="after")
    def _check_thresholds(self) -> RecognitionConfig:
        if self.review_threshold > self.match_threshold:
            _raise_located([(("review_threshold",), "must not be above match_threshold")])
        return self


class CatalogItem(_Model):
    sku: str = Field(min_length=1, max_length=64)
    label: str = Field(min_length=1, max_length=64, description="Visual label the camera counts for this SKU.")
    reference_images: tuple[str, ...] = Field(
        default=(),
        description="Photos of this SKU's packaging (PNG/JPEG), relative to the config file's folder; "
        "the local backend counts only labels that have one.",
    )
    unit_price: Decimal | None = Field(
        default=None,
        ge=0,
        description="Reference price, to value a surplus of this label when the receipt does not bill it.",
    )


class RuleConfig(_Model):
    name: Identifier
    when: str = Field(min_length=1, max_length=2000, description="Condition in the rule language over facts.")
    severity: Literal["low", "medium", "high", "critical"] = "medium"
    message: str = Field(
        min_length=1, max_length=500, description="Alert text; {fact} placeholders, see docs/rules.md."
    )
    cooldown: str | None = Field(default=None, description="e.g. 30s, 10m, 2h, 7d")

    # Each check compiles with rule-engine, so check-config reports `rules.N.when: <cause> (file, line N)`.
    @field_validator("when")
    @classmethod
    def _check_when(cls, when: str) -> str:
        check_condition(when)
        return when

    @field_validator("message")
    @classmethod
    def _check_message(cls, message: str) -> str:
        check_template(message)
        return message

    @field_validator("cooldown")
    @classmethod
    def _check_cooldown(cls, cooldown: str | None) -> str | None:
        parse_cooldown(cooldown)
        return cooldown


class RetentionConfig(_Model):
    snapshots_days: int = Field(
        default=30, ge=1, le=3650, description="Pictures and crops without a match (chargebacks arrive within this)."
    )
    transactions_days: int = Field(default=90, ge=1, le=3650)
    alerts_days: int = Field(default=365, ge=1, le=3650)
    audit_days: int = Field(default=730, ge=1, le=3650)
    events_days: int = Field(default=7, ge=1, le=365, description="Inbound events kept for deduplication.")


class EnrollmentConfig(_Model):
    default_expiry_days: int = Field(default=180, ge=1, le=3650)
    max_expiry_days: int = Field(default=365, ge=1, le=3650)
    two_person_rule: bool = Field(default=False, description="A second approver (security) is needed to enroll.")
    min_face_px: int = Field(default=80, ge=40, le=2000, description="Smallest face side for an enrollment crop.")
    min_sharpness: float = Field(default=0.3, ge=0, le=1)
    lookback_days: int = Field(default=30, ge=0, le=365)

    @model_validator(mode="after")
    def _check_expiry(self) -> EnrollmentConfig:
        if self.default_expiry_days > self.max_expiry_days:
            _raise_located([(("default_expiry_days",), "must not exceed max_expiry_days")])
        return self


class DigestConfig(_Model):
    enabled: bool = True
    local_time: str = Field(default="21:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="Store-local HH:MM.")


class PatternsConfig(_Model):
    """Windows of the pattern facts (docs/rules.md) and the weekly pattern report."""

    baseline_days: int = Field(
        default=28,
        ge=1,
        le=365,
        description="Completed store-local days before a transaction's day that make the cashier baselines.",
    )
    shift_hours: int = Field(
        default=8, ge=1, le=24, description="Window of the *_shift counts, ending at the transaction."
    )
    card_velocity_minutes: int = Field(
        default=10, ge=1, le=1440, description="Window of card_uses_window and card_stores_window."
    )
    card_refund_days: int = Field(default=30, ge=1, le=365, description="Window of card_refunds_window.")
    min_baseline_transactions: int = Field(
        default=20,
        ge=1,
        le=100_000,
        description="A cashier with fewer transactions in the baseline is new: no z-score (null).",
    )
    min_peers: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="Other cashiers with enough transactions needed for a population; fewer: no z-score (null).",
    )
    min_rate_stdev: float = Field(
        default=0.005,
        gt=0,
        le=1,
        description="Floor of the population's standard deviation, so peers with identical rates give a finite z-score.",
    )
    report_enabled: bool = Field(default=True, description="Post the weekly pattern report to each store's space.")
    report_weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = Field(
        default="mon", description="Store-local day of the weekly report."
    )
    report_local_time: str = Field(
        default="08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="Store-local HH:MM of the weekly report."
    )
    report_top: int = Field(default=5, ge=1, le=20, description="Cashiers, registers and cards listed in a report.")


class LaneWorkers(_Model):
    """How many steps of each lane one process runs at once (core/steps.py says which step is in which lane)."""

    camera: int = Field(
        default=16,
        ge=1,
        le=256,
        description="Camera steps at once. They mostly wait (for the picture to be ready, for the download), and "
        "the organisation's Meraki budget (camera.rate_limit_per_org) bounds their calls, not this.",
    )
    analysis: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Pictures analysed at once. The local backend is CPU-bound and holds the GIL, so above 1 it "
        "detects in as many worker processes (one per core at most); on Rekognition the time is AWS's, so 4-8 "
        "threads keep a busy store's pictures flowing.",
    )
    pipeline: int = Field(default=1, ge=1, le=64, description="Short checkout steps at once: triage, decisions.")
    chat: int = Field(
        default=2, ge=1, le=64, description="Commands, button presses, alert cards and Webex deliveries at once."
    )
    routine: int = Field(default=1, ge=1, le=16, description="Retention, digests, look-back, expiry at once.")


class IntakeConfig(_Model):
    """How many transactions one store may post, so one store's burst cannot fill the queue (fraud reports and
    processor feeds have no quota: they are rare, and processors retry any refusal for days)."""

    per_store_per_s: float = Field(
        default=50.0,
        gt=0,
        le=10000,
        description="Sustained posts per second per store, per process (a busy store of 10 registers makes about "
        "1). Above it and its burst, the POS gets 429 with Retry-After and nothing is stored.",
    )
    burst: int = Field(default=500, ge=1, le=100000, description="Posts one store may make at once above the rate.")


class RunnerConfig(_Model):
    """The background runner's queue handling (rarely changed; tests shorten the lease)."""

    workers: LaneWorkers = Field(default=LaneWorkers(), description="Steps run at once, per lane.")

    lease_s: float = Field(
        default=120,
        ge=1,
        le=3600,
        description="A claimed step not finished within this is taken over by another runner.",
    )
    batch: int = Field(default=20, ge=1, le=1000, description="Steps claimed at once.")
    max_attempts: int = Field(default=8, ge=1, le=100, description="Attempts before a step is dead-lettered.")
    idle_wait_s: float = Field(default=1.0, gt=0, le=60, description="Longest wait between polls of an idle queue.")
    finished_keep_hours: float = Field(
        default=1.0,
        ge=0,
        le=720,
        description="A finished step stays in the claimable work table this long, then moves to the work history "
        "(where its key still makes a second enqueue a no-op until retention's transactions_days).",
    )


class BusinessConfig(_Model):
    """The shape of the business, as in the YAML file."""

    stores: tuple[StoreConfig, ...] = Field(min_length=1, description="Stores, their registers and cameras.")
    _stores_index: tuple[tuple[StoreConfig, ...], dict[str, StoreConfig]] = PrivateAttr(default=((), {}))
    regions: tuple[RegionConfig, ...] = Field(default=(), description="Regions and their security spaces.")
    people: tuple[PersonConfig, ...] = Field(default=(), description="Who may use the bot, with a role per store.")
    triage: TriageConfig = Field(default=TriageConfig(), description="Which transactions get a picture.")
    intake: IntakeConfig = Field(default=IntakeConfig(), description="Per-store quota of the POS intake.")
    camera: CameraConfig = Field(default=CameraConfig(), description="Meraki camera use.")
    recognition: RecognitionConfig = Field(
        default=RecognitionConfig(), description="Similarity thresholds (0–100 on every backend)."
    )
    catalog: tuple[CatalogItem, ...] = Field(default=(), description="What the camera can count per SKU.")
    rules: tuple[RuleConfig, ...] = Field(default=(), description="Facts to alerts; see docs/rules.md.")
    retention: RetentionConfig = Field(default=RetentionConfig(), description="How long each kind of data is kept.")
    enrollment: EnrollmentConfig = Field(default=EnrollmentConfig(), description="Watchlist enrollment rules.")
    digest: DigestConfig = Field(default=DigestConfig(), description="Daily digest per store.")
    patterns: PatternsConfig = Field(
        default=PatternsConfig(), description="Pattern facts and the weekly pattern report."
    )
    runner: RunnerConfig = Field(default=RunnerConfig(), description="Background queue handling.")

    @model_validator(mode="after")
    def _check_references(self) -> BusinessConfig:
        problems = [
            *_duplicates([(("stores", i, "id"), s.id) for i, s in enumerate(self.stores)]),
            *_duplicates([(("regions", i, "id"), r.id) for i, r in enumerate(self.regions)]),
            *_duplicates([(("people", i, "email"), p.email) for i, p in enumerate(self.people)]),
            *_duplicates([(("rules", i, "name"), r.name) for i, r in enumerate(self.rules)]),
            *_duplicates([(("catalog", i, "sku"), c.sku) for i, c in enumerate(self.catalog)]),
            *_duplicates(
                [
                    (("stores", i, "registers", j, "camera_serial"), r.camera_serial)
                    for i, s in enumerate(self.stores)
                    for j, r in enumerate(s.registers)
                ]
                + [
                    (("stores", i, "entrance_cameras", j), c)
                    for i, s in enumerate(self.stores)
                    for j, c in enumerate(s.entrance_cameras)
                ],
            ),
            *_processor_id_duplicates(self.stores),
        ]
        region_ids = {r.id for r in self.regions}
        for i, store in enumerate(self.stores):
            problems += _duplicates(
                [(("stores", i, "registers", j, "id"), r.id) for j, r in enumerate(store.registers)]
            )
            if store.region is not None and store.region not in region_ids:
                problems.append((("stores", i, "region"), f"{store.region!r} is not in regions"))
        store_ids = {s.id for s in self.stores}
        for i, person in enumerate(self.people):
            problems += [
                (("people", i, "stores", j), f"unknown store {s!r} (not in stores)")
                for j, s in enumerate(person.stores)
                if s != "*" and s not in store_ids
            ]
        for window in ("baseline_days", "card_refund_days"):
            if getattr(self.patterns, window) >= self.retention.transactions_days:
                problems.append(
                    (
                        ("patterns", window),
                        f"must be less than retention.transactions_days "
                        f"({self.retention.transactions_days}): what the window counts is purged with the transactions",
                    )
                )
        _raise_located(problems)
        return self

    def store(self, store_id: str) -> StoreConfig | None:
        # Asked on every POS post (intake and its quota) and by most steps: a chain has thousands of stores. The
        # index is rebuilt when ``stores`` is another tuple (``model_copy(update=...)`` copies private attributes).
        stores, index = self._stores_index
        if stores is not self.stores:
            index = {s.id: s for s in self.stores}
            self._stores_index = (self.stores, index)
        return index.get(store_id)

    def role_of(self, email: str, store_id: str) -> Role | None:
        person = next((p for p in self.people if p.email == email.lower()), None)
        if person is None or not ({"*", store_id} & set(person.stores)):
            return None
        return person.role


def _camera_serial(serial: str) -> str:
    if not re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}", serial):
        raise ValueError(f"{serial!r} is not a Meraki serial (like Q2XX-AAAA-0001)")
    return serial


Located = list[tuple[tuple[str | int, ...], str]]
_LOCATED = "flp_located"


def _duplicates(values: list[tuple[tuple[str | int, ...], str]]) -> Located:
    """Every repeat of a value, at its own key path, naming where it first appeared."""
    first: dict[str, tuple[str | int, ...]] = {}
    problems: Located = []
    for path, value in values:
        if value in first:
            problems.append((path, f"{value!r} appears more than once (first at {_dotted(first[value])})"))
        else:
            first[value] = path
    return problems


def _processor_id_duplicates(stores: tuple[StoreConfig, ...]) -> Located:
    """A reader, device or location maps to one place only, or a fed payment's place would be a guess."""
    registers = [(i, j, r) for i, s in enumerate(stores) for j, r in enumerate(s.registers)]
    return [
        *_duplicates(
            [
                (("stores", i, "registers", j, "stripe_reader_id"), r.stripe_reader_id)
                for i, j, r in registers
                if r.stripe_reader_id is not None
            ]
        ),
        *_duplicates(
            [
                (("stores", i, "registers", j, "square_device_id"), r.square_device_id)
                for i, j, r in registers
                if r.square_device_id is not None
            ]
        ),
        *_duplicates(
            [
                (("stores", i, "square_location_id"), s.square_location_id)
                for i, s in enumerate(stores)
                if s.square_location_id is not None
            ]
        ),
    ]


def _raise_located(problems: Located) -> None:
    """Raise cross-field problems each at its own key path (relative to the model), so check-config
    can name the key and its YAML line instead of the model's."""
    if problems:
        summary = "; ".join(f"{_dotted(path)}: {message}" for path, message in problems)
        raise PydanticCustomError(_LOCATED, "{summary}", {"summary": summary, "problems": problems})


def _dotted(path: tuple[str | int, ...] | list[str | int]) -> str:
    return ".".join(str(p) for p in path)

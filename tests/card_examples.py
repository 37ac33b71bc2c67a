"""Representative views for the card tests: literals, so a snapshot changes only when a builder does."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

from cards.views import (
    AlertView,
    CardPattern,
    CommandHelp,
    EnrollmentProposalView,
    FaceEvaluationView,
    HealthView,
    HelpView,
    PatternReportView,
    ProposedFace,
    Resemblance,
    RuleHits,
    RulePrecision,
    SightingView,
    SnapshotRef,
    StatsView,
    StatusView,
    StoreStatsRow,
    SubjectPattern,
    WatchlistEntryView,
)

NOW = datetime(2025, 6, 15, 1, 53, 5, tzinfo=UTC)  # 22:53 on Sat 14 Jun in São Paulo
OCCURRED = NOW - timedelta(minutes=12)
STORE_TZ = "America/Sao_Paulo"

ENTRY = WatchlistEntryView(
    id="P-7",
    status="active",
    reason="Chargeback on a cloned card, 3 Mar",
    store_id="store-001",
    enrolled_by="sec@example.com",
    enrolled_at=datetime(2025, 3, 4, 15, 0, tzinfo=UTC),
    expires_at=datetime(2025, 9, 1, 15, 0, tzinfo=UTC),
    faces_count=2,
    wrong_match_count=1,
    flagged_for_review=False,
    precision=0.75,
    approved_by="lead@example.com",
    timezone=STORE_TZ,
)
PENDING_ENTRY = WatchlistEntryView(
    id="P-9",
    status="pending_approval",
    reason="Returned stolen goods twice",
    store_id="store-002",
    enrolled_by="ana@example.com",
    enrolled_at=datetime(2025, 6, 10, 12, 0, tzinfo=UTC),
    expires_at=datetime(2025, 12, 7, 12, 0, tzinfo=UTC),
    faces_count=1,
    flagged_for_review=True,
    wrong_match_count=4,
    precision=0.2,
)

RECONCILIATION = {
    "lines": [
        {
            "label": "wine_bottle",
            "skus": ["7891000100103"],
            "billed": 1,
            "seen": 3,
            "surplus": 2,
            "surplus_value": "119.80",
            "confidence": 0.82,
        },
        {
            "label": "chocolate",
            "skus": ["7891000055502"],
            "billed": 2,
            "seen": 2,
            "surplus": 0,
            "surplus_value": "0.00",
            "confidence": 0.91,
        },
    ],
    "not_checked": [
        {"sku": "2000000000017", "name": "Bananas", "reason": "billed by weight: never counted by the camera"},
        {"sku": "999", "name": "Gift card", "reason": "not in the catalog"},
        {"label": "cheese", "reason": "this recognition backend cannot count this label"},
        {"sku": "12345", "reason": "not in the catalog"},
    ],
    "surplus_count": 2,
    "surplus_value": "119.80",
    "confidence": 0.82,
}

WATCHLIST_ALERT = AlertView(
    id="A-1042",
    rule="watchlist_match",
    severity="high",
    message="Watchlist match P-7 (92.1) at reg-1 paying 149.90 BRL",
    status="open",
    store_id="store-001",
    store_name="Loja Centro",
    register_id="reg-1",
    occurred_at=OCCURRED,
    timezone=STORE_TZ,
    amount="149.90",
    currency="BRL",
    transaction_id="tx-20250614-0042",
    reconciliation=RECONCILIATION,
    person=ENTRY,
    similarity=92.14,
    snapshots=(SnapshotRef("s-1", "live"), SnapshotRef("s-2", "exact")),
    faces_count=2,
    video_link="https://dashboard.meraki.com/o/abc/manage/nodes/new_list/123?timestamp=1749865265",
)
# Ten past midnight in store time: the same person at the door twice (two rules on one picture share a
# line), then at another register, and before midnight (so that line names the day).
SIGHTED_AT = datetime(2025, 6, 15, 3, 10, 30, tzinfo=UTC)  # 00:10:30 on Sun 15 Jun in São Paulo
SIGHTED_ALERT = dataclasses.replace(
    WATCHLIST_ALERT,
    id="A-1044",
    occurred_at=SIGHTED_AT,
    sightings=(
        SightingView("A-1041", None, SIGHTED_AT - timedelta(minutes=3)),
        SightingView("A-1040", None, SIGHTED_AT - timedelta(minutes=3, seconds=20)),
        SightingView("A-1039", "reg-2", SIGHTED_AT - timedelta(minutes=5)),
        SightingView("A-1030", None, SIGHTED_AT - timedelta(minutes=25)),
    ),
)
SIGHTED_UNKNOWN_PERSON = dataclasses.replace(
    SIGHTED_ALERT,
    id="A-1045",
    person=None,
    sightings=(
        SightingView("A-1041", None, SIGHTED_AT - timedelta(minutes=3)),
        SightingView("A-1039", "reg-2", SIGHTED_AT - timedelta(minutes=5)),
        SightingView("A-1038", "reg-3", SIGHTED_AT - timedelta(minutes=6)),
        SightingView("A-1037", "reg-4", SIGHTED_AT - timedelta(minutes=7)),
        SightingView("A-1036", "reg-5", SIGHTED_AT - timedelta(minutes=8)),
    ),
)
PRODUCT_ALERT = AlertView(
    id="A-1043",
    rule="unbilled_items",
    severity="medium",
    message="2 items seen but not billed (119.80 BRL)",
    status="open",
    store_id="store-001",
    store_name="Loja Centro",
    register_id="reg-2",
    occurred_at=OCCURRED,
    timezone=STORE_TZ,
    amount="35.00",
    currency="BRL",
    transaction_id="tx-20250614-0043",
    reconciliation=RECONCILIATION,
    snapshots=(SnapshotRef("s-3", "exact"),),
    faces_count=0,
)
PATTERN_ALERT = AlertView(
    id="A-1050",
    rule="void_spree",
    severity="medium",
    message="5 voids by this cashier in this shift at register reg-2",
    status="open",
    store_id="store-001",
    store_name="Loja Centro",
    register_id="reg-2",
    occurred_at=OCCURRED,
    timezone=STORE_TZ,
    amount="89.90",
    currency="BRL",
    transaction_id="tx-20250614-0051",
    transaction_type="void",
    cashier_id="c-17",
)
DECIDED_ALERT = AlertView(
    id="A-1001",
    rule="watchlist_match",
    severity="critical",
    message="Watchlist match P-7 (88.0) at the entrance",
    status="dismissed",
    store_id="store-001",
    store_name="Loja Centro",
    register_id=None,
    occurred_at=OCCURRED,
    timezone=STORE_TZ,
    person=ENTRY,
    similarity=88.0,
    snapshots=(SnapshotRef("s-4", "entrance"),),
    faces_count=1,
    video_link="https://dashboard.meraki.com/o/abc/manage/nodes/new_list/456",
    decided_by="ana@example.com",
    decided_at=NOW - timedelta(minutes=2),
    reason="not_same_person",
    note="Different person, checked the footage",
)


def proposal(faces: int) -> EnrollmentProposalView:
    """A proposal with ``faces`` faces: the second resembles P-7, the third fails the size gate."""
    candidates = (
        ProposedFace(1, "f-101", 0.86, 132, 0.74, image_url="https://bot.example.com/img/f-101?sig=abc"),
        ProposedFace(2, "f-102", 0.71, 96, 0.52, resembles=Resemblance("P-7", 92.14)),
        ProposedFace(3, "f-103", 0.31, 52, 0.40, problem="too small: 52 px, at least 80 px"),
    )
    return EnrollmentProposalView(
        transaction_id="tx-20250614-0042",
        store_id="store-001",
        faces=candidates[:faces],
        default_expiry_days=180,
        max_expiry_days=365,
        reasons=("Alert A-1042 confirmed by ana@example.com.",),
        alert_id="A-1042",
    )


def _commands() -> tuple[CommandHelp, ...]:
    return (
        CommandHelp("help", "help", "What I can do.", "staff"),
        CommandHelp("alerts", "alerts [open|today]", "Alerts of your stores.", "staff"),
        CommandHelp("show", "show <alert|transaction>", "One alert or transaction with its evidence.", "staff"),
        CommandHelp("stats", "stats [7d]", "Checked, alerted, confirmed and rule precision.", "manager"),
        CommandHelp("watchlist", "watchlist [show|remove <id>]", "The watchlist, or remove an entry.", "security"),
        CommandHelp("forget", "forget <person>", "Erase a person: faces, entry and pictures.", "security"),
    )


RANK = {"staff": 1, "manager": 2, "security": 3}
STAFF_HELP = HelpView(tuple(c for c in _commands() if RANK[c.min_role] <= 1), role="staff", unknown_command="refund")
SECURITY_HELP = HelpView(_commands(), role="security")

STATUS = StatusView(
    database=HealthView("ok", "sqlite"),
    runner=HealthView("ok", "last step 3 s ago"),
    webex=HealthView("degraded", "rate limited, retrying in 20 s"),
    camera=HealthView("down", "Meraki answered 503"),
    recognition=HealthView("ok", "2 people enrolled"),
    recognition_backend="local",
    broker=HealthView("off", "no entrance cameras"),
    evidence=HealthView("ok", "ready"),
    queue_counts={"pending": 4, "running": 1, "dead": 0},
    oldest_pending_age_s=312.0,
    failed_messages=2,
    newest_failure="Webex refused the message (400): room not found",
    face_evaluation=FaceEvaluationView(
        "face matching on local was never evaluated: measure it on your own photos with "
        "`python -m bot evaluate-faces DIR`",
        attention=True,
    ),
)

STATS = StatsView(
    period="last 7 days",
    stores=(
        StoreStatsRow(
            "store-001", "Loja Centro", 1204, 310, {"watchlist_match": 3, "unbilled_items": 5}, 4, 3, 1, "689.50", "BRL"
        ),
        StoreStatsRow("store-002", "Loja Norte", 88, 12, {}, 0, 0, 0, "0.00", "BRL"),
    ),
    rules=(
        RulePrecision("watchlist_match", 3, 4),
        RulePrecision("unbilled_items", 1, 3),
        RulePrecision("night_manual", 0, 0),
    ),
    face_evaluation=FaceEvaluationView(
        "evaluated 2026-12-01 on 24 people: at match_threshold 90 false matches 0.4 % (up to 1.5 %), "
        "false non-matches 6.0 % (up to 10.1 %)",
        attention=False,
        facts=(("Evaluated", "2026-12-01 on local"), ("False matches at match 90", "0.4 % (95 %: 0.1 % to 1.5 %)")),
    ),
)


def _kinds(
    void: int = 0, refund: int = 0, no_sale: int = 0, override: int = 0, own_refund: int = 0, under_rung: int = 0
) -> dict[str, int]:
    return {
        "refund": refund,
        "void": void,
        "no_sale": no_sale,
        "override": override,
        "own_refund": own_refund,
        "under_rung": under_rung,
    }


PATTERNS = PatternReportView(
    store_id="store-001",
    store_name="Loja Centro",
    first_day=date(2025, 6, 2),
    last_day=date(2025, 6, 8),
    transactions=1204,
    exceptions=57,
    cashiers=(
        SubjectPattern(
            "c-17",
            412,
            _kinds(void=12, refund=5, override=4, own_refund=3, under_rung=1),
            21 / 412,
            3.24,
            False,
            0.012,
            alert_ids=("A-1071", "A-1066", "A-1042"),
            more_alerts=2,
        ),
        SubjectPattern("c-04", 380, _kinds(void=2, refund=1), 3 / 380, -2.1, False, 0.02, alert_ids=("A-1050",)),
        SubjectPattern("c-22", 9, _kinds(void=3), 3 / 9, None, True, 0.015),
    ),
    registers=(
        SubjectPattern(
            "reg-2",
            610,
            _kinds(void=14, refund=6, no_sale=3, override=4),
            27 / 610,
            None,
            False,
            0.049,
            alert_ids=("A-1071",),
        ),
        SubjectPattern("reg-1", 594, _kinds(void=10, refund=4, no_sale=1, override=5), 20 / 594, None, False, 0.044),
    ),
    cards=(CardPattern("fp_8d1c2e3f4a5b6c7d", 3, 1, "412.50"), CardPattern("fp_77", 1, 0, "19.90")),
    rules=(RuleHits("void_spree", 1, 1, 2), RuleHits("refund_of_own_sale", 0, 1, 0)),
    min_transactions=20,
    min_peers=3,
)
PATTERNS_EMPTY = PatternReportView(
    store_id="store-002",
    store_name="Loja Norte",
    first_day=date(2025, 6, 14),
    last_day=date(2025, 6, 14),
    transactions=0,
    exceptions=0,
    cashiers=(),
    registers=(),
    cards=(),
    rules=(),
    min_transactions=20,
    min_peers=3,
)

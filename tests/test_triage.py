"""rules/triage.decide and the triage step: which transactions get a picture, and when it is taken."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import yaml

from bot.app import build_services
from bot.runner import Runner
from core.config import TriageConfig, load_config
from core.events import FraudReported, TransactionReceived
from core.pos_schema import FraudReportBody, PosTransaction
from core.steps import StepKind
from handlers.pipeline.intake import accept_fraud_report, accept_transaction
from handlers.pipeline.triage import job_triage
from rules.triage import TriageFacts, decide
from storage.uow import UnitOfWork
from tests import factories
from tests.conftest import transaction_body

QUIET = {
    "payment_method": "card",
    "entry_mode": "contactless",
    "risk_score": 10,
    "amount": Decimal("149.90"),
    "fingerprint_in_fraud": False,
    "watchlist_active": False,
}


def facts(**changes) -> TriageFacts:
    return TriageFacts(**{**QUIET, **changes})


def test_nothing_notable_is_skipped():
    decision = decide(facts(), TriageConfig())
    assert (decision.decision, decision.reason) == ("skip", "no triage condition met")


def test_untriaged_payment_method_is_skipped_whatever_else_holds():
    decision = decide(facts(payment_method="cash", risk_score=99), TriageConfig(capture_all=True))
    assert (decision.decision, decision.reason) == ("skip", "payment method cash is not triaged (card are)")


@pytest.mark.parametrize(
    "changes, policy, reason",
    [
        ({}, {"capture_all": True}, "policy captures every transaction"),
        ({"risk_score": 60}, {}, "risk score 60 ≥ 60"),
        ({"risk_score": 95}, {}, "risk score 95 ≥ 60"),
        ({"entry_mode": "manual"}, {}, "entry mode manual"),
        ({"entry_mode": "swipe"}, {}, "entry mode swipe"),
        ({"amount": Decimal("500")}, {}, "amount 500 ≥ 500"),
        ({"fingerprint_in_fraud": True}, {}, "card fingerprint seen in a reported fraud"),
        ({"watchlist_active": True}, {}, "watchlist active for this store"),
        (
            {"payment_method": "wallet"},
            {"methods": ["card", "wallet"], "capture_all": True},
            "policy captures every transaction",
        ),
    ],
)
def test_each_condition_alone_captures_and_names_itself(changes, policy, reason):
    decision = decide(facts(**changes), TriageConfig(**policy))
    assert (decision.decision, decision.reason) == ("capture", reason)


@pytest.mark.parametrize(
    "changes, policy",
    [
        ({"risk_score": 59}, {}),
        ({"risk_score": None}, {}),
        ({"risk_score": 100}, {"min_risk_score": None}),
        ({"entry_mode": None}, {}),
        ({"entry_mode": "chip"}, {}),
        ({"entry_mode": "manual"}, {"entry_modes": []}),
        ({"amount": Decimal("499.99")}, {}),
        ({"amount": Decimal("10000")}, {"min_amount": None}),
        ({"fingerprint_in_fraud": True}, {"repeat_fingerprint": False}),
        ({"watchlist_active": True}, {"when_watchlist_active": False}),
    ],
)
def test_condition_below_threshold_or_switched_off_does_not_capture(changes, policy):
    decision = decide(facts(**changes), TriageConfig(**policy))
    assert (decision.decision, decision.reason) == ("skip", "no triage condition met")


def test_combined_conditions_are_all_named_in_order():
    everything = facts(
        risk_score=80, entry_mode="manual", amount=Decimal("900.00"), fingerprint_in_fraud=True, watchlist_active=True
    )
    decision = decide(everything, TriageConfig(capture_all=True))
    assert decision.decision == "capture"
    assert decision.reason.split("; ") == [
        "policy captures every transaction",
        "risk score 80 ≥ 60",
        "entry mode manual",
        "amount 900.00 ≥ 500",
        "card fingerprint seen in a reported fraud",
        "watchlist active for this store",
    ]


# The triage step through the runner, on both databases.


@pytest.fixture
def camera_services(environ, business, clock):
    config = load_config({**environ, "MERAKI_DASHBOARD_API_KEY": "meraki-key-123"}, yaml.safe_dump(business))
    built = build_services(config, clock=clock)
    yield built
    built.db.dispose()


def receive(services, **changes) -> str:
    body = transaction_body(**changes)
    event = TransactionReceived(PosTransaction.model_validate(body), "{}", body["transaction_id"])
    assert services.handle(accept_transaction, event, write=True).outcome == "accepted"
    return body["transaction_id"]


def run_steps(services, clock) -> None:
    # Only the triage step: the capture steps it schedules are tested with a fake camera elsewhere.
    Runner(
        db=services.db, steps={StepKind.TRIAGE: job_triage}, dependencies=services.dependencies(), clock=clock
    ).run_until_idle()


def state(services, transaction_id):
    with UnitOfWork(services.db) as uow:
        transaction = uow.transactions.get(transaction_id)
        items = {i.kind: i for i in uow.work.for_transaction(transaction_id)}
        return transaction, items


def quiet_payment(**changes):
    return {"method": "card", "entry_mode": "contactless", "card_fingerprint": "fp_8d1c", "risk_score": 10, **changes}


def test_camera_off_ends_skipped_with_the_reason(services, clock):
    transaction_id = receive(services)  # risk 72: triage says capture
    run_steps(services, clock)
    transaction, items = state(services, transaction_id)
    assert transaction.triage_decision == "capture" and transaction.triage_reason == "risk score 72 ≥ 60"
    assert transaction.status == "skipped" and transaction.status_reason.startswith("camera off")
    assert "MERAKI_DASHBOARD_API_KEY" in transaction.status_reason
    assert items["triage"].status == "done"
    # No picture will come: the rules still see the payment and its patterns (tests/test_patterns_rules.py).
    assert set(items) == {"triage", "decide_unpictured"} and items["decide_unpictured"].status == "pending"


def test_triage_skip_is_recorded_with_its_reason(camera_services, clock):
    transaction_id = receive(camera_services, payment=quiet_payment())
    run_steps(camera_services, clock)
    transaction, items = state(camera_services, transaction_id)
    assert (transaction.triage_decision, transaction.status) == ("skip", "skipped")
    assert transaction.status_reason == "triage: no triage condition met"
    assert set(items) == {"triage", "decide_unpictured"}
    assert transaction.status == "skipped"  # the rule evaluation does not turn it into "done"


def test_fresh_transaction_gets_a_live_and_an_exact_time_picture(camera_services, clock):
    transaction_id = receive(camera_services)  # occurred 8 s before the clock
    run_steps(camera_services, clock)
    transaction, items = state(camera_services, transaction_id)
    assert transaction.status == "capturing"
    assert set(items) == {"triage", StepKind.CAPTURE_LIVE, StepKind.CAPTURE_EXACT}
    assert items[StepKind.CAPTURE_LIVE].next_run_at == clock() and items[StepKind.CAPTURE_LIVE].status == "pending"
    exact_delay = camera_services.config.business.camera.exact_delay_s
    assert items[StepKind.CAPTURE_EXACT].next_run_at == transaction.occurred_at + timedelta(seconds=exact_delay)
    assert items[StepKind.CAPTURE_EXACT].next_run_at == datetime(2026, 11, 24, 20, 6, 12, tzinfo=UTC)


def test_old_transaction_gets_only_the_exact_time_picture(camera_services, clock):
    live_max_age = camera_services.config.business.camera.live_max_age_s
    occurred = clock() - timedelta(seconds=live_max_age + 1)
    transaction_id = receive(camera_services, occurred_at=occurred.isoformat())
    run_steps(camera_services, clock)
    transaction, items = state(camera_services, transaction_id)
    assert transaction.status == "capturing"
    assert set(items) == {"triage", StepKind.CAPTURE_EXACT}
    assert items[StepKind.CAPTURE_EXACT].next_run_at == occurred + timedelta(seconds=180)


def test_transaction_older_than_the_exact_delay_is_pictured_now(camera_services, clock):
    transaction_id = receive(camera_services, occurred_at=(clock() - timedelta(hours=1)).isoformat())
    run_steps(camera_services, clock)
    _, items = state(camera_services, transaction_id)
    assert set(items) == {"triage", StepKind.CAPTURE_EXACT} and items[StepKind.CAPTURE_EXACT].next_run_at == clock()


def test_card_fingerprint_of_a_reported_fraud_triggers_capture(camera_services, clock):
    first = receive(camera_services, transaction_id="T-1", payment=quiet_payment())
    run_steps(camera_services, clock)
    report = FraudReportBody(transaction_id=first, source="chargeback", reason="stolen card", reported_at=clock())
    assert camera_services.handle(accept_fraud_report, FraudReported(report, None), write=True).outcome == "accepted"
    second = receive(camera_services, transaction_id="T-2", payment=quiet_payment())
    other_card = receive(camera_services, transaction_id="T-3", payment=quiet_payment(card_fingerprint="fp_other"))
    run_steps(camera_services, clock)
    transaction, items = state(camera_services, second)
    assert transaction.triage_reason == "card fingerprint seen in a reported fraud"
    assert transaction.status == "capturing" and StepKind.CAPTURE_EXACT in items
    assert state(camera_services, other_card)[0].triage_decision == "skip"


def test_active_watchlist_in_the_store_triggers_capture(camera_services, clock):
    factories.add(
        camera_services.db,
        factories.watchlist_person(
            at=clock(), reason="theft", enrolled_by="ana@example.com", expires_at=clock() + timedelta(days=180)
        ),
    )
    transaction_id = receive(camera_services, payment=quiet_payment())
    run_steps(camera_services, clock)
    assert state(camera_services, transaction_id)[0].triage_reason == "watchlist active for this store"


@pytest.mark.parametrize("kind", ["refund", "void", "no_sale", "price_override", "discount"])
def test_exceptions_are_pictured_whatever_the_payment_method(kind):
    decision = decide(facts(transaction_type=kind, payment_method="cash", risk_score=None), TriageConfig())
    assert (decision.decision, decision.reason) == ("capture", f"{kind.replace('_', '-')} is always pictured")


def test_exception_kinds_left_out_of_the_policy_follow_the_sale_conditions():
    policy = TriageConfig(types=["refund"])
    assert decide(facts(transaction_type="no_sale", payment_method="cash"), policy).decision == "skip"
    assert decide(facts(transaction_type="void"), policy).reason == "no triage condition met"

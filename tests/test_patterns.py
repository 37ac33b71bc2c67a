"""Pattern facts on crafted histories: shift and card windows, own-sale refunds, cashier baselines.

Transactions go through the real intake and triage step (where they are counted and their facts
computed) on SQLite and PostgreSQL; baselines are seeded as daily counts where a test needs weeks.
"""

from __future__ import annotations

import statistics
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import yaml
from sqlalchemy import select

from bot.app import build_services
from bot.runner import Runner
from core.config import load_config
from core.pos_schema import PosTransaction
from core.steps import StepKind
from handlers.pipeline.patterns import count_under_rung
from handlers.pipeline.triage import job_triage
from rules.baselines import BaselinePolicy, CashierBaseline
from storage.models import PatternCount
from storage.uow import UnitOfWork
from storage.work_queue import ClaimedItem
from tests import factories
from tests.checkouts import post
from tests.conftest import minimal_business, transaction_body

NOW = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)  # 17:00 in São Paulo: local day 2026-11-24
TODAY = date(2026, 11, 24)


@pytest.fixture
def business():
    business = minimal_business()
    business["stores"].append(
        {
            "id": "store-002",
            "name": "Norte",
            "timezone": "America/Sao_Paulo",
            "registers": [{"id": "reg-1", "camera_serial": "Q2XX-AAAA-0101"}],
        }
    )
    return business


def triage(services, clock) -> None:
    Runner(
        db=services.db, steps={StepKind.TRIAGE: job_triage}, dependencies=services.dependencies(), clock=clock
    ).run_until_idle()


def facts_of(services, transaction_id: str) -> dict:
    with UnitOfWork(services.db) as uow:
        return uow.transactions.get(transaction_id).pattern_facts


def seed_counts(services, rows: list[tuple[str, date, str, int]], *, store: str = "store-001") -> None:
    """Daily cashier counts as the triage step keeps them: (cashier, day, kind, count)."""
    with UnitOfWork(services.db, write=True) as uow:
        for cashier, day, kind, count in rows:
            uow.session.add(factories.pattern_count(store_id=store, subject=cashier, day=day, kind=kind, count=count))
        uow.commit()


# --- shift, register and store windows ------------------------------------------------------------


def test_exceptions_are_counted_per_cashier_register_and_store_in_the_shift(services, clock):
    post(services, at=NOW - timedelta(hours=9), type="void", original="T-x")  # before the 8-hour shift
    for minutes in (300, 200, 100):
        post(services, at=NOW - timedelta(minutes=minutes), type="void", original="T-x")
    post(services, at=NOW - timedelta(minutes=90), type="refund", original="T-x")
    post(services, at=NOW - timedelta(minutes=80), type="no_sale")
    post(services, at=NOW - timedelta(minutes=70), type="price_override", approver="m-1")
    post(services, at=NOW - timedelta(minutes=60), type="discount", approver="m-1")
    post(services, at=NOW - timedelta(minutes=50), type="void", cashier="c-2", register="reg-2", original="T-x")
    post(services, at=NOW - timedelta(minutes=40), type="void", store="store-002", original="T-x")
    post(services, at=NOW + timedelta(minutes=5), type="void", original="T-x")  # after: not in this one's window
    last = post(services, at=NOW, type="sale")
    triage(services, clock)

    facts = facts_of(services, last)
    assert facts["cashier_voids_shift"] == 3
    assert facts["cashier_refunds_shift"] == 1
    assert facts["cashier_no_sales_shift"] == 1
    assert facts["cashier_overrides_shift"] == 2
    assert facts["cashier_transactions_shift"] == 8  # this sale included
    assert facts["register_exceptions_shift"] == 7  # c-1's at reg-1; not c-2's at reg-2
    assert facts["store_exceptions_shift"] == 8  # both registers; not store-002


def test_a_transaction_without_cashier_has_no_cashier_counts(services, clock):
    post(services, at=NOW - timedelta(minutes=10), type="void", cashier=None, original="T-x")
    last = post(services, at=NOW, type="void", cashier=None, original="T-x")
    triage(services, clock)
    facts = facts_of(services, last)
    assert facts["cashier_voids_shift"] == 0 and facts["cashier_transactions_shift"] == 0
    assert facts["register_exceptions_shift"] == 2
    assert facts["cashier_exception_z"] is None and facts["cashier_transactions_baseline"] == 0


# --- refunds, voids and overrides -----------------------------------------------------------------


def test_refund_of_the_cashiers_own_sale_and_the_minutes_since(services, clock):
    sale = post(services, at=NOW - timedelta(minutes=30), cashier="c-1")
    own = post(services, at=NOW, type="refund", cashier="c-1", original=sale)
    other = post(services, at=NOW, type="void", cashier="c-2", original=sale)
    unknown = post(services, at=NOW, type="refund", cashier="c-1", original="T-never-seen")
    triage(services, clock)

    assert (facts_of(services, own)["refund_of_own_sale"], facts_of(services, own)["minutes_since_original"]) == (
        True,
        30.0,
    )
    assert (facts_of(services, other)["refund_of_own_sale"], facts_of(services, other)["minutes_since_original"]) == (
        False,
        30.0,
    )
    assert (
        facts_of(services, unknown)["refund_of_own_sale"],
        facts_of(services, unknown)["minutes_since_original"],
    ) == (False, None)
    assert facts_of(services, sale)["minutes_since_original"] is None


def test_override_approved_by_the_cashier_who_rang_it(services, clock):
    own = post(services, at=NOW, type="price_override", cashier="c-1", approver="c-1")
    approved = post(services, at=NOW, type="discount", cashier="c-1", approver="m-9")
    triage(services, clock)
    assert facts_of(services, own)["approver_is_cashier"] is True
    assert facts_of(services, approved)["approver_is_cashier"] is False


def test_what_an_override_or_a_discount_gave_away(services, clock):
    override = post(services, at=NOW, type="price_override", approver="m-1", amount="10.00")
    discount = post(services, at=NOW, type="discount", approver="m-1")
    sale = post(services, at=NOW)
    triage(services, clock)
    assert facts_of(services, override)["adjustment_amount"] == 2.5  # (12.50 − 10.00) × 1
    assert facts_of(services, discount)["adjustment_amount"] == 1.5
    assert facts_of(services, sale)["adjustment_amount"] == 0


def test_adjustment_sums_the_overridden_lines_times_their_quantity():
    body = transaction_body(
        type="price_override",
        approver_id="m-1",
        items=[
            {"sku": "1", "quantity": 2, "unit_price": "8.00", "original_unit_price": "10.00"},
            {"sku": "2", "quantity": "0.5", "unit_price": "20.00", "original_unit_price": "30.00"},
            {"sku": "3", "quantity": 1, "unit_price": "5.00"},
        ],
    )
    assert PosTransaction.model_validate(body).adjustment() == Decimal("9.00")


def test_a_raised_price_gives_nothing_away_and_huge_overrides_are_refused():
    raised = transaction_body(
        type="price_override",
        approver_id="m-1",
        items=[
            {"sku": "1", "quantity": 1, "unit_price": "12.00", "original_unit_price": "10.00"},
            {"sku": "2", "quantity": 3, "unit_price": "1.0001", "original_unit_price": "1.2"},
        ],
    )
    assert PosTransaction.model_validate(raised).adjustment() == Decimal("0.5997")
    from pydantic import ValidationError

    huge = transaction_body(
        type="price_override",
        approver_id="m-1",
        items=[{"sku": "1", "quantity": 2000, "unit_price": "0", "original_unit_price": "999999999999"}],
    )
    with pytest.raises(ValidationError, match="more than 999999999999.9999"):
        PosTransaction.model_validate(huge)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"type": "discount", "approver_id": "m-1"}, "discount"),
        (
            {"type": "discount", "approver_id": "m-1", "discount": {"amount": "1.00", "currency": "USD"}},
            "discount.currency",
        ),
        ({"type": "price_override", "approver_id": "m-1"}, "items"),
    ],
)
def test_an_override_or_discount_without_its_amounts_is_refused_naming_the_field(changes, field):
    from pydantic import ValidationError

    from core.pos_schema import field_errors

    with pytest.raises(ValidationError) as refused:
        PosTransaction.model_validate(transaction_body(**changes))
    assert [e["field"] for e in field_errors(refused.value)] == [field]


# --- cards ------------------------------------------------------------------------------------------


def test_card_velocity_counts_uses_and_stores_across_stores(services, clock):
    post(services, at=NOW - timedelta(minutes=11), card="fp_hot")  # outside the 10-minute window
    post(services, at=NOW - timedelta(minutes=8), card="fp_hot", store="store-002")
    post(services, at=NOW - timedelta(minutes=2), card="fp_hot")
    post(services, at=NOW - timedelta(minutes=1), card="fp_other")
    last = post(services, at=NOW, card="fp_hot")
    no_card = post(services, at=NOW, card=None)
    triage(services, clock)
    facts = facts_of(services, last)
    assert (facts["card_uses_window"], facts["card_stores_window"]) == (3, 2)
    assert (facts_of(services, no_card)["card_uses_window"], facts_of(services, no_card)["card_refunds_window"]) == (
        0,
        0,
    )


def test_refunds_to_the_same_card_within_the_window(services, clock):
    post(services, at=NOW - timedelta(days=31), type="refund", card="fp_r", original="T-x")  # too old
    post(services, at=NOW - timedelta(days=20), type="refund", card="fp_r", store="store-002", original="T-x")
    post(services, at=NOW - timedelta(days=2), type="refund", card="fp_r", original="T-x")
    post(services, at=NOW - timedelta(days=1), type="sale", card="fp_r")  # a sale is not a refund
    last = post(services, at=NOW, type="refund", card="fp_r", original="T-x")
    triage(services, clock)
    assert facts_of(services, last)["card_refunds_window"] == 3


# --- counting once ----------------------------------------------------------------------------------


def cashier_counts(services) -> dict[tuple[str, date, str], int]:
    with UnitOfWork(services.db) as uow:
        rows = uow.session.scalars(select(PatternCount).where(PatternCount.dimension == "cashier"))
        return {(r.subject, r.day, r.kind): r.count for r in rows}


def test_each_transaction_is_counted_once_on_its_store_local_day(services, clock):
    sale = post(services, at=datetime(2026, 11, 24, 2, 30, tzinfo=UTC))  # 23:30 on the 23rd in São Paulo
    post(services, at=NOW, type="refund", original=sale)
    post(services, at=NOW, type="void", original="T-x")
    triage(services, clock)
    with UnitOfWork(services.db) as uow:
        [item] = [i for i in uow.work.for_transaction(sale) if i.kind == StepKind.TRIAGE]
    # The same step again (a redelivery after a crash) finds the triage done and counts nothing.
    job_triage(
        ClaimedItem(id=item.id, kind=StepKind.TRIAGE, transaction_id=sale, ref_id=None, attempts=1, lease_token="x"),
        uow=lambda: UnitOfWork(services.db, write=True),
        config=services.config,
        clock=clock,
        baselines=services.baselines,
    )
    assert cashier_counts(services) == {
        ("c-1", date(2026, 11, 23), "sale"): 1,
        ("c-1", TODAY, "refund"): 1,
        ("c-1", TODAY, "own_refund"): 1,
        ("c-1", TODAY, "void"): 1,
    }


def test_under_rung_counts_once_per_transaction(services, clock):
    transaction_id = post(services, at=NOW)
    triage(services, clock)
    for _ in range(2):  # the live and the exact-time picture both show the surplus
        with UnitOfWork(services.db, write=True) as uow:
            count_under_rung(uow, uow.transactions.get(transaction_id), services.config)
            uow.commit()
    assert cashier_counts(services)[("c-1", TODAY, "under_rung")] == 1


# --- cashier baselines ------------------------------------------------------------------------------

YESTERDAY = TODAY - timedelta(days=1)


def peers(day: date = YESTERDAY, voids: tuple[int, ...] = (1, 2, 3)) -> list[tuple[str, date, str, int]]:
    rows = []
    for number, void_count in enumerate(voids, start=2):
        rows += [(f"c-{number}", day, "sale", 100), (f"c-{number}", day, "void", void_count)]
    return rows


def test_cashier_z_scores_against_the_other_cashiers(services, clock):
    seed_counts(
        services,
        [
            ("c-1", YESTERDAY, "sale", 60),
            ("c-1", YESTERDAY - timedelta(days=5), "sale", 40),
            ("c-1", YESTERDAY, "void", 10),
            ("c-1", YESTERDAY, "own_refund", 2),
            ("c-1", YESTERDAY, "under_rung", 1),
            *peers(),
        ],
    )
    last = post(services, at=NOW, type="void", original="T-x")
    triage(services, clock)
    facts = facts_of(services, last)
    others = [1 / 101, 2 / 102, 3 / 103]
    expected = (10 / 110 - statistics.fmean(others)) / statistics.pstdev(others)
    assert facts["cashier_void_z"] == pytest.approx(expected, abs=1e-3)
    assert facts["cashier_exception_z"] == pytest.approx(expected, abs=1e-3)  # voids are its only exceptions
    assert facts["cashier_refund_z"] == 0.0  # nobody refunds: zero variance, equal rates
    assert facts["cashier_transactions_baseline"] == 110
    assert (facts["cashier_own_refunds_baseline"], facts["cashier_under_rung_baseline"]) == (2, 1)


def test_baseline_is_the_completed_days_of_the_window_only(services, clock):
    seed_counts(
        services,
        [
            ("c-1", TODAY, "sale", 500),
            ("c-1", TODAY - timedelta(days=29), "sale", 500),
            ("c-1", TODAY - timedelta(days=28), "sale", 7),
            *peers(),
        ],
    )
    last = post(services, at=NOW)
    triage(services, clock)
    assert facts_of(services, last)["cashier_transactions_baseline"] == 7  # not today, not 29 days ago


def test_a_new_cashier_has_no_z_score(services, clock):
    seed_counts(services, [("c-1", YESTERDAY, "sale", 19), ("c-1", YESTERDAY, "void", 0), *peers()])
    last = post(services, at=NOW, type="void", original="T-x")
    triage(services, clock)
    facts = facts_of(services, last)
    assert facts["cashier_transactions_baseline"] == 19
    assert facts["cashier_void_z"] is None and facts["cashier_exception_z"] is None


def test_too_few_peers_gives_no_z_score(services, clock):
    seed_counts(services, [("c-1", YESTERDAY, "sale", 100), ("c-1", YESTERDAY, "void", 9), *peers(voids=(1, 2))])
    last = post(services, at=NOW)
    triage(services, clock)
    assert facts_of(services, last)["cashier_void_z"] is None


def test_peers_with_identical_rates_give_a_finite_z(services, clock):
    seed_counts(services, [("c-1", YESTERDAY, "sale", 98), ("c-1", YESTERDAY, "void", 2), *peers(voids=(0, 0, 0))])
    last = post(services, at=NOW)
    triage(services, clock)
    assert facts_of(services, last)["cashier_void_z"] == pytest.approx(0.02 / 0.005)


def test_baseline_policy_comes_from_the_config(environ, business, clock):
    business["patterns"] = {"min_baseline_transactions": 5, "min_peers": 1, "min_rate_stdev": 0.1, "baseline_days": 2}
    services = build_services(load_config(environ, yaml.safe_dump(business)), clock=clock)
    try:
        seed_counts(
            services,
            [
                ("c-1", YESTERDAY, "sale", 8),
                ("c-1", YESTERDAY, "void", 2),
                ("c-2", YESTERDAY, "sale", 10),
                ("c-1", TODAY - timedelta(days=3), "sale", 100),
            ],
        )
        last = post(services, at=NOW)
        triage(services, clock)
        facts = facts_of(services, last)
        assert facts["cashier_transactions_baseline"] == 10
        assert facts["cashier_void_z"] == pytest.approx(0.2 / 0.1)
    finally:
        services.db.dispose()


# --- the arithmetic alone -------------------------------------------------------------------------


def test_z_scores_leave_the_cashier_out_of_its_population():
    counts = {
        "a": {"sale": 90, "void": 10},
        "b": {"sale": 99, "void": 1},
        "c": {"sale": 98, "void": 2},
        "d": {"sale": 97, "void": 3},
    }
    baseline = CashierBaseline(counts, BaselinePolicy(min_transactions=20, min_peers=3, min_stdev=0.001))
    others = [0.01, 0.02, 0.03]
    assert baseline.z_scores("a")["void"] == pytest.approx((0.10 - 0.02) / statistics.pstdev(others), abs=1e-3)
    assert baseline.z_scores("c")["void"] == pytest.approx(
        (0.02 - statistics.fmean([0.10, 0.01, 0.03])) / statistics.pstdev([0.10, 0.01, 0.03]), abs=1e-3
    )
    assert baseline.z_scores("unknown") == dict.fromkeys(baseline.z_scores("unknown"))


def test_a_baseline_longer_than_the_transactions_are_kept_is_refused(environ, business):
    from core.config import ConfigError

    business["patterns"] = {"baseline_days": 60, "card_refund_days": 61}
    business["retention"] = {"transactions_days": 60}
    with pytest.raises(ConfigError) as refused:
        load_config(environ, yaml.safe_dump(business))
    assert any("patterns.baseline_days" in p and "transactions_days (60)" in p for p in refused.value.problems)
    assert any("patterns.card_refund_days" in p for p in refused.value.problems)


def test_daily_counts_are_purged_with_the_transactions(services, clock):
    from handlers.routine.retention import purge_round

    seed_counts(
        services, [("c-1", TODAY - timedelta(days=91), "sale", 5), ("c-1", TODAY - timedelta(days=30), "sale", 5)]
    )
    with UnitOfWork(services.db, write=True) as uow:
        assert purge_round(uow, services.evidence, services.config.business.retention, NOW)["pattern counts"] == 1
        uow.commit()
    assert list(cashier_counts(services)) == [("c-1", TODAY - timedelta(days=30), "sale")]


def test_transactions_of_an_unknown_store_or_register_count_nowhere(services, clock):
    post(services, at=NOW - timedelta(minutes=3), card="fp_u", store="stripe:tml_unmapped", register="stripe:tmr_1")
    post(services, at=NOW - timedelta(minutes=2), card="fp_u", register="reg-9", type="void", original="T-x")
    last = post(services, at=NOW, card="fp_u", type="refund", original="T-x")
    triage(services, clock)
    facts = facts_of(services, last)
    assert (facts["card_uses_window"], facts["card_stores_window"], facts["card_refunds_window"]) == (1, 1, 1)
    assert (facts["cashier_voids_shift"], facts["store_exceptions_shift"]) == (0, 1)

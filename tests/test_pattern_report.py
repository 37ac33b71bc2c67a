"""The pattern report on crafted counts and alerts: who is listed, in which order, with which figures and alerts;
its chart; and `patterns` reporting only the stores where the person is a manager. SQLite and PostgreSQL."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from PIL import Image

from bot.steps import router
from cards.patterns import pattern_card
from core.events import ChatCommand
from handlers.chat.dispatch import dispatch_event
from handlers.routine.charts import pattern_chart
from handlers.routine.pattern_report import days_to_today, local_days, pattern_report, week_before
from storage.models import Alert, AuditEntry
from storage.uow import UnitOfWork
from tests import card_examples as ex
from tests import factories
from tests.card_schema import card_validator

UTC = UTC
FIRST, LAST = date(2026, 11, 16), date(2026, 11, 22)  # Mon to Sun in São Paulo (UTC−3 all year)


@pytest.fixture
def business(business: dict) -> dict:
    business["stores"][0]["region"] = "south"
    business["stores"].append(
        {
            "id": "store-002",
            "name": "Norte",
            "timezone": "America/Sao_Paulo",
            "region": "south",
            "registers": [{"id": "reg-1", "camera_serial": "Q2XX-AAAA-0101"}],
        }
    )
    business["regions"] = [{"id": "south", "webex_room_id": "ROOM-SOUTH"}]
    business["people"] = [
        {"email": "ana@example.com", "role": "manager", "stores": ["store-001"]},
        {"email": "mia@example.com", "role": "manager", "stores": ["store-002"]},
    ]
    return business


def count(
    services,
    dimension: str,
    subject: str,
    day: date,
    store: str = "store-001",
    amount: str = "0",
    **kinds: int,
) -> None:
    with UnitOfWork(services.db, write=True) as uow:
        for kind, n in kinds.items():
            uow.session.add(
                factories.pattern_count(
                    store_id=store,
                    dimension=dimension,
                    subject=subject,
                    day=day,
                    kind=kind,
                    count=n,
                    amount=Decimal(amount),
                )
            )
        uow.commit()


def alert(
    services,
    rule: str,
    status: str,
    at: datetime,
    *,
    cashier: str | None = None,
    register: str | None = "reg-1",
    store: str = "store-001",
    transaction: bool = True,
) -> str:
    """An alert and (unless ``transaction`` is False: purged, or the entrance) the transaction behind it."""
    with UnitOfWork(services.db, write=True) as uow:
        number = uow.session.query(Alert).count() + 1
        tid = f"T-{number}"
        if transaction:
            uow.session.add(
                factories.transaction(
                    at=at,
                    transaction_id=tid,
                    store_id=store,
                    register_id=register or "reg-1",
                    cashier_id=cashier,
                    total_amount=Decimal("9"),
                    status="pending",
                )
            )
        row = factories.alert(
            at=at,
            dedupe_key=f"{tid}:{rule}",
            transaction_id=tid if register else None,
            store_id=store,
            register_id=register,
            rule=rule,
            message="m",
            status=status,
        )
        uow.alerts.add(row)
        uow.commit()
        return row.public_id


@pytest.fixture
def seeded(services) -> dict[str, list[str]]:
    """Four cashiers with history and one new one, two registers, four cards, alerts in and out of the period."""
    count(services, "cashier", "c-1", date(2026, 11, 17), sale=45, void=5, own_refund=2)
    count(services, "cashier", "c-1", date(2026, 11, 20), sale=45, void=5, under_rung=1)
    for cashier in ("c-2", "c-3", "c-4"):  # identical rates: zero variance, the floor keeps c-1's z finite
        count(services, "cashier", cashier, date(2026, 11, 18), sale=99, void=1)
    count(services, "cashier", "c-2", date(2026, 11, 15), void=50)  # before the period
    count(services, "cashier", "c-2", date(2026, 11, 23), void=50)  # after it
    count(services, "cashier", "c-gone", date(2026, 11, 23), void=9)  # only after it: not listed
    count(services, "cashier", "c-new", date(2026, 11, 21), sale=2, void=3)
    count(services, "cashier", "c-0", date(2026, 11, 21), under_rung=1)  # sixth: beyond report_top (5)
    count(services, "cashier", "c-1", date(2026, 11, 18), store="store-002", void=40)  # another store
    count(services, "register", "reg-1", date(2026, 11, 19), sale=189, void=11)
    count(services, "register", "reg-2", date(2026, 11, 19), sale=198, void=2, refund=1)
    count(services, "card", "fp_a_0123456789abcdef", date(2026, 11, 18), amount="30", refund=3)
    count(services, "card", "fp_a_0123456789abcdef", date(2026, 11, 19), amount="5", void=1)
    count(services, "card", "fp_b", date(2026, 11, 19), amount="12.5", refund=1)
    count(services, "card", "fp_c", date(2026, 11, 19), no_sale=2)  # no refund or void
    count(services, "card", "fp_d", date(2026, 11, 23), refund=9)  # after the period

    alerts: dict[str, list[str]] = {"c-1": [], "c-new": [], "reg-2": []}
    alert(services, "void_spree", "open", datetime(2026, 11, 16, 2, 59, tzinfo=UTC), cashier="c-1")  # 15 Nov, 23:59
    for n, status in enumerate(("confirmed", "confirmed", "dismissed", "open")):
        alerts["c-1"].append(
            alert(services, "void_spree", status, datetime(2026, 11, 17 + n, 15, tzinfo=UTC), cashier="c-1")
        )
    alerts["c-1"].append(
        alert(services, "void_spree", "open", datetime(2026, 11, 23, 2, 59, tzinfo=UTC), cashier="c-1")
    )  # 22 Nov, 23:59 local: the period's last minute
    alert(services, "void_spree", "open", datetime(2026, 11, 23, 3, 0, tzinfo=UTC), cashier="c-1")  # 23 Nov local
    alerts["c-new"].append(
        alert(
            services,
            "refund_of_own_sale",
            "open",
            datetime(2026, 11, 21, 15, tzinfo=UTC),
            cashier="c-new",
            register="reg-2",
        )
    )
    alerts["reg-2"].append(
        alert(
            services,
            "product_mismatch",
            "dismissed",
            datetime(2026, 11, 21, 16, tzinfo=UTC),
            register="reg-2",
            transaction=False,
        )
    )  # its transaction was purged
    alert(
        services, "watchlist_match", "open", datetime(2026, 11, 21, 17, tzinfo=UTC), register=None, transaction=False
    )  # at the entrance
    alert(
        services, "void_spree", "open", datetime(2026, 11, 18, 15, tzinfo=UTC), cashier="c-1", store="store-002"
    )  # the same cashier id in another store
    alerts["reg-2"].insert(0, alerts["c-new"][0])
    alerts["reg-2"].reverse()  # newest first
    return alerts


def build(services):
    store = services.config.business.store("store-001")
    with UnitOfWork(services.db) as uow:
        return pattern_report(uow, services.config, store, local_days(store, FIRST, LAST))


def test_cashiers_furthest_from_the_others_over_the_same_days_first(services, seeded):
    view = build(services)
    assert [(r.subject, r.transactions, r.exceptions, r.z, r.new) for r in view.cashiers] == [
        ("c-1", 100, 10, 18.0, False),  # (0.10 − 0.01) / the 0.005 floor: finite with zero-variance peers
        ("c-2", 100, 1, -0.707, False),  # (0.01 − 0.04) / 0.0424, the others being c-1, c-3 and c-4
        ("c-3", 100, 1, -0.707, False),
        ("c-4", 100, 1, -0.707, False),
        ("c-new", 5, 3, None, True),  # fewer than 20 transactions: no z-score
    ]
    c1 = view.cashiers[0]
    assert c1.rate == pytest.approx(0.1) and c1.peer_mean == pytest.approx(0.01)
    assert (c1.counts["void"], c1.counts["own_refund"], c1.counts["under_rung"]) == (10, 2, 1)
    assert view.cashiers[1].peer_mean == pytest.approx(0.04)


def test_registers_cards_totals_and_rule_hits(services, seeded):
    view = build(services)
    assert [(r.subject, r.exceptions, r.z, r.new) for r in view.registers] == [
        ("reg-1", 11, None, False),
        ("reg-2", 3, None, False),
    ]  # one other register each: too few to compare
    assert (view.transactions, view.exceptions) == (401, 14)
    assert [(c.fingerprint, c.refunds, c.voids, c.amount) for c in view.cards] == [
        ("fp_a_0123456789abcdef", 3, 1, "35.00"),
        ("fp_b", 1, 0, "12.50"),
    ]
    assert [(h.rule, h.alerts, h.confirmed, h.dismissed, h.open) for h in view.rules] == [
        ("void_spree", 5, 2, 1, 2),
        ("product_mismatch", 1, 0, 1, 0),
        ("refund_of_own_sale", 1, 0, 0, 1),
        ("watchlist_match", 1, 0, 0, 1),
    ]


def test_each_cashier_and_register_carries_its_newest_alerts(services, seeded):
    view = build(services)
    cashiers = {r.subject: (r.alert_ids, r.more_alerts) for r in view.cashiers}
    newest_first = seeded["c-1"][::-1]
    assert cashiers["c-1"] == (tuple(newest_first[:3]), 2)
    assert cashiers["c-new"] == (tuple(seeded["c-new"]), 0) and cashiers["c-2"] == ((), 0)
    registers = {r.subject: (r.alert_ids, r.more_alerts) for r in view.registers}
    assert registers["reg-1"] == (tuple(newest_first[:3]), 2)
    assert registers["reg-2"] == (tuple(seeded["reg-2"]), 0)
    card = pattern_card(view)
    assert list(card_validator().iter_errors(card)) == []
    texts = [block.get("text", "") for item in card["body"] for block in item.get("items", [item])]
    assert f"Alerts: {', '.join(newest_first[:3])} and 2 more" in texts and "c-new · new" in texts


def test_the_periods_are_whole_local_days():
    store = type("Store", (), {"timezone": "America/New_York"})()
    now = datetime(2026, 3, 9, 3, 30, tzinfo=UTC)  # 23:30 on Sun 8 Mar in New York, the spring-forward day
    today = days_to_today(store, now, 7)
    assert (today.first_day, today.last_day) == (date(2026, 3, 2), date(2026, 3, 8))
    assert (today.since, today.until) == (datetime(2026, 3, 2, 5, tzinfo=UTC), datetime(2026, 3, 9, 4, tzinfo=UTC))
    week = week_before(store, date(2026, 3, 9))
    assert (week.first_day, week.last_day, week.until) == (date(2026, 3, 2), date(2026, 3, 8), today.until)


def test_the_chart_is_an_800_by_400_png_and_the_same_figures_give_the_same_bytes():
    png = pattern_chart("Loja Centro", ex.PATTERNS.cashiers, ex.PATTERNS.registers)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (800, 400)
    assert pattern_chart("Loja Centro", ex.PATTERNS.cashiers, ex.PATTERNS.registers) == png
    assert pattern_chart("Loja Centro", ex.PATTERNS.cashiers[:1], ()) != png


@pytest.mark.parametrize("email, expected", [("ana@example.com", ["store-001"]), ("mia@example.com", ["store-002"])])
def test_in_a_regions_space_patterns_reports_only_the_stores_of_the_person(services, seeded, email, expected):
    """Cashier performance is personnel data: a manager of one store of the region does not see the other's."""
    answers: list[tuple[str, dict | None, dict | None]] = []
    with UnitOfWork(services.db, write=True) as uow:
        command = ChatCommand(
            event_id="E-1",
            message_id="E-1",
            room_id="ROOM-SOUTH",
            room_type="group",
            person_id="P-x",
            person_email=email,
            text="patterns",
            word="patterns",
            args=(),
            thread_id="E-1",
        )
        dispatch_event(
            command,
            uow,
            lambda markdown, card=None, file=None: answers.append((markdown, card, file)),
            router,
            services.config,
            services.clock(),
            services.dependencies(),
        )
        uow.commit()
        audited = [(e.actor, e.action, e.subject_type, e.subject_id) for e in uow.session.query(AuditEntry)]
    assert [card["body"][0]["text"] for _, card, _ in answers] == [
        f"Patterns, {services.config.business.store(store).name} ({store})" for store in expected
    ]
    assert [file for _, _, file in answers] == [None]  # not a Webex thread (the console): no chart file
    assert audited == [(email, "view", "pattern_report", store) for store in expected]

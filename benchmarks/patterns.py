"""Pattern facts per transaction over a large history (issue #9): SQLite and PostgreSQL.

    .venv/bin/python benchmarks/patterns.py [--database sqlite|postgresql|both] [--history 1000000] [--transactions 2000]
    .venv/bin/python benchmarks/patterns.py --history 20000 --transactions 200     # a quick try

Builds a history of ``--history`` triaged transactions over ``--days`` days (20 stores, 4-8 registers
and 10-30 cashiers each, cashiers on morning/evening shifts at one register, ~2.5 % refunds, voids,
no-sales, overrides and discounts, card fingerprints from a pool of 400k plus 100 hot cards) straight
into ``transactions`` with bulk inserts (SQLite: Core executemany in one transaction with
``synchronous=OFF`` and a rollback journal for the load only; PostgreSQL: COPY), and the daily
``pattern_counts`` rows that triaging them would have produced; then ANALYZE (PostgreSQL: VACUUM
ANALYZE, as autovacuum would have done over 60 days). Building the history is not the measured figure.

Measured: ``--transactions`` more transactions of the same shape, spread over the last
``--measure-days`` days of the history, each posted through ``accept_transaction`` and triaged by the
real ``job_triage`` step run by ``bot.runner.Runner`` on ``storage.db.Database`` (the product's
settings: SQLite WAL + synchronous=FULL). Timed with ``time.perf_counter``:

- patterns: ``_count_patterns`` (original lookup, ``count_transaction``, ``pattern_facts``) plus the
  commit of the triage step's unit of work, which makes the counts durable (the figure of the target);
- queries: ``_count_patterns`` alone; step: the whole triage step (``Runner.run_step``);
- per query: each ``PatternRepository`` method.

"miss" is the first transaction of a store-day (the cashier baseline is built: one grouped query over
the daily counts of ``baseline_days`` days), "hit" the others. The first ``--warmup`` transactions
(statement compilation) are not counted. Target: under 20 ms per transaction. A fresh database is
used and removed afterwards (PostgreSQL: one created next to ``--url`` / ``FLP_TEST_POSTGRES_URL`` /
./run's default, dropped afterwards; skipped with a message when unreachable). Talks only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np
import yaml
from sqlalchemy import create_engine, event, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

import handlers.pipeline.triage as correlation
from bot.runner import Runner
from core.config import Config, load_config
from core.events import TransactionReceived
from core.pos_schema import PosTransaction
from core.steps import StepKind
from handlers.pipeline.intake import accept_transaction
from handlers.pipeline.patterns import OWN_REFUND, BaselineCache
from handlers.pipeline.triage import job_triage
from storage import migrate
from storage.db import Database
from storage.models import FraudReport, PatternCount, Transaction
from storage.patterns import PatternRepository
from storage.uow import UnitOfWork
from tests.postgres import scratch_database

TARGET_MS = 20.0
DEFAULT_POSTGRES = "postgresql+psycopg://flp:flp@127.0.0.1:5432/flp_test"  # what ./run test starts as root
FIRST_DAY = date(2026, 9, 25)
TIMEZONES = ("America/Sao_Paulo", "America/Manaus", "America/Fortaleza", "America/Cuiaba")
KINDS = ("sale", "refund", "void", "no_sale", "price_override", "discount")
EXCEPTION_RATES = (0.008, 0.008, 0.004, 0.003, 0.002)  # refund, void, no_sale, price_override, discount: 2.5 %
CARD_POOL, HOT_CARDS, HOT_SHARE = 400_000, 100, 0.03
METHODS, ENTRY_MODES = ("card", "cash", "wallet"), ("chip", "contactless", "swipe", "manual")
QUERIES = (
    "count",
    "cashier_types",
    "register_exceptions",
    "store_exceptions",
    "card_uses",
    "card_refunds",
    "daily_counts",
)
# Stored with every history row so the rows are as wide as triaged ones (not recomputed per row).
FACTS_SHAPE = {
    "refund_of_own_sale": False,
    "minutes_since_original": None,
    "approver_is_cashier": False,
    "register_exceptions_shift": 3,
    "store_exceptions_shift": 14,
    "cashier_transactions_shift": 38,
    "cashier_voids_shift": 1,
    "cashier_refunds_shift": 0,
    "cashier_no_sales_shift": 0,
    "cashier_overrides_shift": 0,
    "card_uses_window": 1,
    "card_stores_window": 1,
    "card_refunds_window": 0,
    "cashier_transactions_baseline": 612,
    "cashier_own_refunds_baseline": 0,
    "cashier_under_rung_baseline": 0,
    "cashier_exception_z": 0.412,
    "cashier_void_z": -0.215,
    "cashier_refund_z": 0.734,
    "cashier_no_sale_z": -0.5,
    "cashier_override_z": 0.101,
    "cashier_under_rung_z": None,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--url", help=f"PostgreSQL server URL (default: FLP_TEST_POSTGRES_URL, else {DEFAULT_POSTGRES})"
    )
    parser.add_argument("--history", type=int, default=1_000_000, help="transactions of history (default 1000000)")
    parser.add_argument("--transactions", type=int, default=2000, help="transactions measured (default 2000)")
    parser.add_argument("--days", type=int, default=60, help="days of history (default 60)")
    parser.add_argument("--stores", type=int, default=20, help="stores (default 20)")
    parser.add_argument(
        "--measure-days", type=int, default=5, help="the last days the measured transactions fall on (default 5)"
    )
    parser.add_argument("--warmup", type=int, default=20, help="first measured transactions not counted (default 20)")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument(
        "--explain", action="store_true", help="also print the plans of the pattern queries for a busy transaction"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the databases (prints where) instead of removing them"
    )
    args = parser.parse_args(argv)
    if args.measure_days > args.days or args.transactions < 1 or args.history < 1000:
        parser.error("need --history >= 1000, --transactions >= 1 and --measure-days <= --days")

    started = time.perf_counter()
    shape = generate(args)
    print(
        f"generated {args.history:,} + {args.transactions:,} transactions over {args.days} days, {args.stores} stores, "
        f"{sum(len(s.cashiers) for s in shape.stores)} cashiers, {shape.exception_share * 100:.1f} % exceptions "
        f"in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    results = []
    for backend in ["sqlite", "postgresql"] if args.database == "both" else [args.database]:
        with (
            tempfile.TemporaryDirectory(prefix="flp-bench-patterns-") as tmp,
            _database(backend, args, Path(tmp)) as url,
        ):
            if url is None:
                continue
            results.append(run_backend(backend, url, shape, args, Path(tmp)))
    if not results:
        return 1
    report(results, args)
    return 0


# --- the history's shape ------------------------------------------------------------------------


@dataclass
class StoreShape:
    id: str
    timezone: str
    registers: list[str]
    cashiers: list[str]


@dataclass
class Shape:
    """Every generated transaction as column arrays, in time order; ``measured`` marks the ones posted."""

    stores: list[StoreShape]
    at: np.ndarray  # epoch seconds, float
    day: np.ndarray  # day index (store-local)
    store: np.ndarray
    register: np.ndarray
    cashier: np.ndarray  # index into the store's cashiers
    kind: np.ndarray  # index into KINDS
    method: np.ndarray  # index into METHODS
    entry: np.ndarray  # index into ENTRY_MODES, -1 none
    card: np.ndarray  # card index, -1 none
    risk: np.ndarray
    cents: np.ndarray
    original: np.ndarray  # row index, -1 none
    approver: list[str | None]
    measured: np.ndarray  # bool
    hot: np.ndarray  # bool
    exception_share: float

    def transaction_id(self, i: int) -> str:
        return f"TX-{i:08d}"

    def fingerprint(self, card: int) -> str | None:
        if card < 0:
            return None
        return f"{(card * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF:016x}{card:016x}"

    def when(self, i: int) -> datetime:
        return datetime.fromtimestamp(float(self.at[i]), UTC)


def generate(args: argparse.Namespace) -> Shape:
    rng = np.random.default_rng(args.seed)
    n, days, n_stores = args.history + args.transactions, args.days, args.stores
    stores = []
    for s in range(n_stores):
        registers = int(rng.integers(4, 9))
        cashiers = int(rng.integers(10, 31))
        stores.append(
            StoreShape(
                f"store-{s + 1:03d}",
                TIMEZONES[s % len(TIMEZONES)],
                [f"reg-{r + 1}" for r in range(registers)],
                [f"op-{s + 1:03d}-{c + 1:02d}" for c in range(cashiers)],
            )
        )
    # Volume per store and day: busier stores, busier Fridays and Saturdays, quieter Sundays.
    weekday = np.array([1.0, 1.0, 1.0, 1.05, 1.2, 1.35, 0.8])
    cell = np.outer(
        rng.uniform(0.5, 1.5, n_stores), weekday[[(FIRST_DAY + timedelta(d)).weekday() for d in range(days)]]
    )
    counts = rng.multinomial(n, (cell / cell.sum()).ravel())
    store = np.repeat(np.repeat(np.arange(n_stores), days), counts)
    day = np.repeat(np.tile(np.arange(days), n_stores), counts)
    # Store hours 08:00-22:00 local, peaks at lunch and after work.
    which = rng.random(n)
    seconds = np.where(
        which < 0.35,
        rng.normal(12.5 * 3600, 5400, n),
        np.where(which < 0.75, rng.normal(18.5 * 3600, 5400, n), rng.uniform(8 * 3600, 22 * 3600, n)),
    )
    seconds = np.clip(seconds, 8 * 3600, 22 * 3600 - 1)
    midnight = np.array(
        [
            [
                datetime.combine(FIRST_DAY + timedelta(d), datetime.min.time(), ZoneInfo(st.timezone)).timestamp()
                for d in range(days)
            ]
            for st in stores
        ]
    )
    at = midnight[store, day] + seconds
    order = np.argsort(at, kind="stable")
    at, store, day, seconds = at[order], store[order], day[order], seconds[order]
    # Shifts: each store-day, the morning (to 15:00) and evening cashiers each work one register.
    open_registers = np.array([min(len(st.registers), len(st.cashiers) // 2) for st in stores])
    roster = np.full((n_stores, days, 2, int(open_registers.max())), -1)
    for s, st in enumerate(stores):
        for d in range(days):
            drawn = rng.permutation(len(st.cashiers))[: 2 * open_registers[s]]
            roster[s, d, 0, : open_registers[s]] = drawn[: open_registers[s]]
            roster[s, d, 1, : open_registers[s]] = drawn[open_registers[s] :]
    register = (rng.random(n) * open_registers[store]).astype(int)
    cashier = roster[store, day, (seconds >= 15 * 3600).astype(int), register]
    # Kinds: a few cashiers have three times the exception rates of their peers.
    outlier = rng.random((n_stores, 64)) < 0.05
    factor = np.where(outlier[store, cashier], 3.0, 1.0)
    kind = np.searchsorted(np.cumsum(EXCEPTION_RATES), rng.random(n) / factor, side="right")
    kind = np.where(kind == len(EXCEPTION_RATES), 0, kind + 1)
    method = rng.choice(3, n, p=[0.68, 0.25, 0.07])
    entry = np.where(method == 0, rng.choice(4, n, p=[0.55, 0.35, 0.07, 0.03]), np.where(method == 2, 1, -1))
    hot = (method == 0) & (rng.random(n) < HOT_SHARE)
    card = np.where(
        method == 0, np.where(hot, rng.integers(0, HOT_CARDS, n), rng.integers(HOT_CARDS, CARD_POOL, n)), -1
    )
    risk = np.where(method == 0, np.clip(rng.beta(1.2, 8, n) * 100, 0, 100).astype(int), -1)
    cents = np.maximum(100, np.round(rng.lognormal(np.log(4500), 0.8, n))).astype(np.int64)
    original = np.full(n, -1)
    approver: list[str | None] = [None] * n
    # Exceptions refer to earlier sales of their store: voids to a recent one at the register, refunds to one in 30 days.
    sale_like = np.isin(kind, [0, 4, 5])
    sales_of = {s: np.flatnonzero(sale_like & (store == s)) for s in range(n_stores)}
    sale_times = {s: at[sales] for s, sales in sales_of.items()}
    for i in np.flatnonzero(kind > 0):
        s, k = int(store[i]), int(kind[i])
        if k in (4, 5):
            approver[i] = (
                stores[s].cashiers[cashier[i]] if rng.random() < 0.03 else f"mgr-{s + 1:03d}-{int(rng.integers(1, 3))}"
            )
            continue
        if k == 3:
            method[i], entry[i], card[i], risk[i], cents[i], hot[i] = 1, -1, -1, -1, 0, False
            continue
        sales = sales_of[s]
        before = int(np.searchsorted(sales, i))
        if before == 0:
            kind[i] = 0
            continue
        if k == 2:
            recent = sales[max(0, before - 40) : before]
            same = recent[register[recent] == register[i]]
            o = int(same[-1] if len(same) else recent[-1])
            cents[i] = cents[o]
        else:
            lo = int(np.searchsorted(sale_times[s], at[i] - 30 * 86400))
            o = int(sales[int(rng.integers(min(lo, before - 1), before))])
            cents[i] = cents[o] if rng.random() < 0.7 else max(100, int(cents[o] * rng.uniform(0.2, 1.0)))
        original[i] = o
        method[i], entry[i], card[i], risk[i], hot[i] = method[o], entry[o], card[o], -1, hot[o]
    # The measured transactions: a random draw from the last days, posted in time order.
    measured = np.zeros(n, dtype=bool)
    recent = np.flatnonzero(day >= days - args.measure_days)
    measured[rng.choice(recent, args.transactions, replace=False)] = True
    return Shape(
        stores,
        at,
        day,
        store,
        register,
        cashier,
        kind,
        method,
        entry,
        card,
        risk,
        cents,
        original,
        approver,
        measured,
        hot,
        float(np.mean(kind[~measured] > 0)),
    )


def body_of(shape: Shape, i: int) -> dict[str, Any]:
    st = shape.stores[int(shape.store[i])]
    kind, method = KINDS[int(shape.kind[i])], METHODS[int(shape.method[i])]
    amount = f"{int(shape.cents[i]) // 100}.{int(shape.cents[i]) % 100:02d}"
    payment: dict[str, Any] = {"method": method}
    if shape.entry[i] >= 0:
        payment["entry_mode"] = ENTRY_MODES[int(shape.entry[i])]
    if shape.card[i] >= 0:
        payment["card_fingerprint"] = shape.fingerprint(int(shape.card[i]))
    if shape.risk[i] >= 0:
        payment["risk_score"] = int(shape.risk[i])
    body: dict[str, Any] = {
        "transaction_id": shape.transaction_id(i),
        "store_id": st.id,
        "register_id": st.registers[int(shape.register[i])],
        "occurred_at": shape.when(i).astimezone(ZoneInfo(st.timezone)).isoformat(),
        "total": {"amount": amount, "currency": "BRL"},
        "payment": payment,
        "cashier_id": st.cashiers[int(shape.cashier[i])],
        "type": kind,
    }
    if kind != "no_sale":
        body["items"] = [{"sku": "7891000100103", "name": "Whisky 1L", "quantity": 1, "unit_price": amount}]
    if kind == "price_override":
        body["items"][0]["original_unit_price"] = f"{Decimal(amount) + Decimal('5.00'):.2f}"
    if kind == "discount":
        body["discount"] = {"amount": "1.00", "currency": "BRL"}
    if shape.original[i] >= 0:
        body["original_transaction_id"] = shape.transaction_id(int(shape.original[i]))
    if shape.approver[i]:
        body["approver_id"] = shape.approver[i]
    return body


def history_rows(shape: Shape) -> Iterator[dict[str, Any]]:
    """The history as ``transactions`` rows, each as triage would have left it."""
    for i in np.flatnonzero(~shape.measured):
        i = int(i)
        body = body_of(shape, i)
        raw = json.dumps(body)
        payment, kind = body["payment"], body["type"]
        at = shape.when(i)
        capture = kind != "sale" or (
            payment["method"] == "card"
            and (
                payment.get("entry_mode") in ("manual", "swipe")
                or payment.get("risk_score", 0) >= 60
                or shape.cents[i] >= 50000
            )
        )
        yield {
            "transaction_id": body["transaction_id"],
            "store_id": body["store_id"],
            "register_id": body["register_id"],
            "type": kind,
            "occurred_at": at,
            "received_at": at + timedelta(seconds=1),
            "total_amount": Decimal(body["total"]["amount"]),
            "currency": "BRL",
            "payment_method": payment["method"],
            "entry_mode": payment.get("entry_mode"),
            "card_fingerprint": payment.get("card_fingerprint"),
            "risk_score": payment.get("risk_score"),
            "cashier_id": body["cashier_id"],
            "original_transaction_id": body.get("original_transaction_id"),
            "approver_id": body.get("approver_id"),
            "adjustment_amount": PosTransaction.model_validate(body).adjustment()
            if kind in ("price_override", "discount")
            else Decimal(0),
            "body": raw,
            "body_sha256": hashlib.sha256(raw.encode()).hexdigest(),
            "status": "done" if capture else "skipped",
            "status_reason": None if capture else "triage: no triage condition met",
            "triage_decision": "capture" if capture else "skip",
            "triage_reason": "exception is always pictured" if capture else "no triage condition met",
            "reconciliation": None,
            "rule_results": [],
            "pattern_facts": FACTS_SHAPE,
            "placed": True,
            "under_rung": False,
        }


def pattern_count_rows(shape: Shape) -> list[dict[str, Any]]:
    """The daily counts of the history, summed as count_transaction adds them one by one."""
    totals: dict[tuple[str, str, str, date, str], list] = defaultdict(lambda: [0, 0])
    for i in np.flatnonzero(~shape.measured):
        st = shape.stores[int(shape.store[i])]
        kind, day = KINDS[int(shape.kind[i])], FIRST_DAY + timedelta(int(shape.day[i]))
        cashier = st.cashiers[int(shape.cashier[i])]
        subjects = [("register", st.registers[int(shape.register[i])]), ("cashier", cashier)]
        if shape.card[i] >= 0 and kind != "sale":
            subjects.append(("card", shape.fingerprint(int(shape.card[i]))))
        for dimension, subject in subjects:
            total = totals[(st.id, dimension, subject, day, kind)]
            total[0] += 1
            total[1] += int(shape.cents[i])
        o = int(shape.original[i])
        if o >= 0 and kind in ("refund", "void") and shape.cashier[o] == shape.cashier[i]:
            for dimension, subject in subjects[:2]:
                totals[(st.id, dimension, subject, day, OWN_REFUND)][0] += 1
    return [
        {
            "store_id": k[0],
            "dimension": k[1],
            "subject": k[2],
            "day": k[3],
            "kind": k[4],
            "count": v[0],
            "amount": Decimal(v[1]) / 100,
        }
        for k, v in totals.items()
    ]


def fraud_report_rows(shape: Shape) -> list[dict[str, Any]]:
    """A few chargebacks on history card sales (the triage step looks the card up among them)."""
    rng = np.random.default_rng(1)
    candidates = np.flatnonzero(~shape.measured & (shape.kind == 0) & (shape.card >= 0))
    rows = []
    for i in rng.choice(candidates, min(len(candidates), max(1, len(shape.at) // 5000)), replace=False):
        at = shape.when(int(i)) + timedelta(days=20)
        rows.append(
            {
                "transaction_id": shape.transaction_id(int(i)),
                "source": "chargeback",
                "reason": "bench",
                "reported_at": at,
                "received_at": at,
                "reported_by": None,
                "body_sha256": None,
            }
        )
    return rows


# --- one database ---------------------------------------------------------------------------------


def run_backend(backend: str, url: str, shape: Shape, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    print(f"\n{backend}: migrating and loading the history …", flush=True)
    started = time.perf_counter()
    migrate.upgrade(url)
    load_history(backend, url, shape)
    load_s = time.perf_counter() - started
    print(f"{backend}: history loaded and analysed in {load_s:.1f} s", flush=True)
    result = measure(backend, url, shape, args, tmp)
    result["history_build_s"] = round(load_s, 1)
    if args.explain:
        explain(url, shape, result)
    return result


def load_history(backend: str, url: str, shape: Shape, batch: int = 20_000) -> None:
    engine = create_engine(url)
    if backend == "sqlite":

        @event.listens_for(engine, "connect")
        def _load_settings(dbapi_connection, _record):
            # For the load only: no fsync, and a rollback journal instead of WAL (a WAL would hold every
            # page twice). The measurement opens the file with the product's settings (storage.db).
            dbapi_connection.execute("PRAGMA journal_mode=DELETE")
            dbapi_connection.execute("PRAGMA synchronous=OFF")
            dbapi_connection.execute("PRAGMA cache_size=-524288")

    with engine.begin() as conn:
        rows = history_rows(shape)
        if backend == "postgresql":
            _copy(conn, Transaction.__table__, rows)
        else:
            while chunk := [row for _, row in zip(range(batch), rows, strict=False)]:
                conn.execute(insert(Transaction.__table__), chunk)
        conn.execute(insert(PatternCount.__table__), pattern_count_rows(shape))
        conn.execute(insert(FraudReport.__table__), fraud_report_rows(shape))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(
            text("ANALYZE" if backend == "sqlite" else "VACUUM (ANALYZE) transactions, pattern_counts, fraud_reports")
        )
    engine.dispose()


def _copy(conn, table, rows: Iterator[dict[str, Any]]) -> None:
    """PostgreSQL COPY through psycopg (JSON columns as text, as COPY reads them)."""
    columns = [c.name for c in table.columns]
    json_columns = {c.name for c in table.columns if c.type.__class__.__name__ == "JSON"}
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(
                [json.dumps(row[c]) if c in json_columns and row[c] is not None else row[c] for c in columns]
            )


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


class ObservedBaselines(BaselineCache):
    """The product's cache; counts the baselines it had to build (a miss: the grouped daily-counts query)."""

    misses = 0

    def get(self, key, build):
        def counted():
            self.misses += 1
            return build()

        return super().get(key, counted)


@contextmanager
def _timed_patterns(sample: dict[str, float]) -> Iterator[None]:
    """Time ``_count_patterns``, each PatternRepository query and the commits, into ``sample`` (seconds)."""
    real_count = correlation._count_patterns
    real_methods = {name: getattr(PatternRepository, name) for name in QUERIES}

    def count_patterns(*a: Any, **kw: Any) -> None:
        t0 = time.perf_counter()
        try:
            real_count(*a, **kw)
        finally:
            sample["queries"] = sample.get("queries", 0.0) + time.perf_counter() - t0

    def timed(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return method(*a, **kw)
            finally:
                sample[name] = sample.get(name, 0.0) + time.perf_counter() - t0

        return wrapper

    commit_started: list[float] = []

    def before_commit(_session: Session) -> None:
        commit_started.append(time.perf_counter())

    def after_commit(_session: Session) -> None:
        if commit_started:
            sample["commit"] = sample.get("commit", 0.0) + time.perf_counter() - commit_started.pop()

    correlation._count_patterns = count_patterns
    for name, method in real_methods.items():
        setattr(PatternRepository, name, timed(name, method))
    event.listen(Session, "before_commit", before_commit)
    event.listen(Session, "after_commit", after_commit)
    try:
        yield
    finally:
        correlation._count_patterns = real_count
        for name, method in real_methods.items():
            setattr(PatternRepository, name, method)
        event.remove(Session, "before_commit", before_commit)
        event.remove(Session, "after_commit", after_commit)


def make_config(url: str, shape: Shape, tmp: Path) -> Config:
    business = yaml.safe_load((REPO / "config" / "flp.yaml").read_text())
    business["stores"] = [
        {
            "id": st.id,
            "name": st.id,
            "timezone": st.timezone,
            "region": "south",
            "meraki_org_id": "123456",
            "registers": [{"id": r, "camera_serial": f"Q2XX-{s:04d}-{n:04d}"} for n, r in enumerate(st.registers)],
        }
        for s, st in enumerate(shape.stores)
    ]
    environ = {
        "DATABASE_URL": url,
        "DATA_DIR": str(tmp / "data"),
        "POS_WEBHOOK_SECRET": "bench-pos-secret-0123456789abcdef",
    }
    return load_config(environ, yaml.safe_dump(business), source=str(REPO / "config" / "flp.yaml"))


def measure(backend: str, url: str, shape: Shape, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    config = make_config(url, shape, tmp)
    db = Database(url)
    clock = Clock()
    baselines = ObservedBaselines()
    runner = Runner(
        db=db,
        steps={StepKind.TRIAGE: job_triage},
        dependencies={"config": config, "clock": clock, "baselines": baselines},
        clock=clock,
    )
    samples: list[dict[str, Any]] = []
    print(f"{backend}: posting and triaging {args.transactions} transactions …", flush=True)
    started = time.perf_counter()
    for n, i in enumerate(np.flatnonzero(shape.measured)):
        i = int(i)
        body = body_of(shape, i)
        raw = json.dumps(body)
        clock.now = shape.when(i) + timedelta(seconds=1)
        with UnitOfWork(db, write=True) as uow:
            result = accept_transaction(
                TransactionReceived(PosTransaction.model_validate(body), raw, hashlib.sha256(raw.encode()).hexdigest()),
                uow=uow,
                config=config,
                clock=clock,
            )
        assert result.outcome == "accepted", result
        with UnitOfWork(db, write=True) as uow:
            claimed = uow.work.claim_due(kinds={StepKind.TRIAGE}, now=clock(), lease_s=120, limit=1)
            uow.commit()
        assert len(claimed) == 1 and claimed[0].transaction_id == body["transaction_id"], claimed
        misses = baselines.misses
        sample: dict[str, Any] = {}
        with _timed_patterns(sample):
            t0 = time.perf_counter()
            runner.run_step(claimed[0])
            sample["step"] = time.perf_counter() - t0
        sample["miss"] = baselines.misses > misses
        sample["hot"] = bool(shape.hot[i])
        if n >= args.warmup:
            samples.append(sample)
    elapsed = time.perf_counter() - started
    with UnitOfWork(db) as uow:
        done = uow.session.scalar(
            text(
                "SELECT count(*) FROM transactions WHERE pattern_facts IS NOT NULL "
                "AND transaction_id IN (SELECT transaction_id FROM work_items WHERE kind = 'triage' AND status = 'done')"
            )
        )
    db.dispose()
    assert done == args.transactions, f"{done} of {args.transactions} transactions triaged"
    for s in samples:
        s["patterns"] = s.get("queries", 0.0) + s.get("commit", 0.0)
    groups = {
        "all": samples,
        "miss": [s for s in samples if s["miss"]],
        "hit": [s for s in samples if not s["miss"]],
        "hot card": [s for s in samples if s["hot"]],
    }
    return {
        "database": backend,
        "history": args.history,
        "transactions": len(samples),
        "wall_s": round(elapsed, 1),
        "groups": {
            name: {
                "n": len(group),
                **{metric: _percentiles([s[metric] for s in group]) for metric in ("patterns", "queries", "step")},
            }
            for name, group in groups.items()
            if group
        },
        "per_query_ms": {name: _percentiles([s[name] for s in samples if name in s]) for name in QUERIES},
        "sample_ids": _busy_sample(shape),
    }


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731  (a one-line percentile)
    return {
        "p50": round(statistics.median(ordered) * 1000, 2),
        "p90": round(pick(0.9), 2),
        "p99": round(pick(0.99), 2),
        "max": round(ordered[-1] * 1000, 2),
    }


def _busy_sample(shape: Shape) -> dict[str, str]:
    """Measured transactions worth explaining: a hot-card refund (or payment) and a late sale of a busy store."""
    measured = np.flatnonzero(shape.measured)
    hot = [i for i in measured if shape.hot[i]]
    refunds = [i for i in hot if shape.kind[i] == 1] or hot or list(measured)
    evening = [i for i in measured if shape.kind[i] == 0 and shape.card[i] >= 0] or list(measured)
    return {"hot_card": shape.transaction_id(int(refunds[-1])), "sale": shape.transaction_id(int(evening[-1]))}


# --- query plans ------------------------------------------------------------------------------------


def explain(url: str, shape: Shape, result: dict[str, Any]) -> None:
    """The plan of every pattern query of two measured transactions (pattern_facts re-run, rolled back)."""
    from handlers.pipeline.patterns import local_day, pattern_facts

    db = Database(url)
    config = make_config(url, shape, Path(tempfile.gettempdir()))
    prefix = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "
    plans: list[tuple[str, list[str]]] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and (
            "transactions" in statement or "pattern_counts" in statement
        ):
            cursor.execute(prefix + statement, parameters)
            plans.append((statement, [" | ".join(str(v) for v in row) for row in cursor.fetchall()]))

    for label, transaction_id in result["sample_ids"].items():
        plans.clear()
        with UnitOfWork(db) as uow:
            transaction = uow.transactions.get(transaction_id)
            original = (
                uow.transactions.get(transaction.original_transaction_id)
                if transaction.original_transaction_id
                else None
            )
            event.listen(db.engine, "before_cursor_execute", before)
            try:
                pattern_facts(uow, transaction, original, local_day(transaction, config), config, BaselineCache())
            finally:
                event.remove(db.engine, "before_cursor_execute", before)
        print(
            f"\n-- {result['database']}: plans for {label} {transaction_id} "
            f"(card {transaction.card_fingerprint}, cashier {transaction.cashier_id})"
        )
        for statement, plan in plans:
            print(" ".join(statement.split())[:160])
            for line in plan:
                print(f"    {line}")
    db.dispose()


# --- output -----------------------------------------------------------------------------------------


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"\npattern facts per transaction, ms ({args.history:,} transactions of history; "
        f"patterns = count + facts + the step's commit)"
    )
    print(
        f"{'database':<11}{'group':<10}{'n':>6} {'p50':>7}{'p90':>7}{'p99':>7}{'max':>7}  "
        f"{'queries p50':>11}{'p99':>7}  {'step p50':>8}{'p99':>7}"
    )
    for result in results:
        for name, group in result["groups"].items():
            p, q, s = group["patterns"], group["queries"], group["step"]
            print(
                f"{result['database']:<11}{name:<10}{group['n']:>6} {p['p50']:>7.2f}{p['p90']:>7.2f}{p['p99']:>7.2f}"
                f"{p['max']:>7.2f}  {q['p50']:>11.2f}{q['p99']:>7.2f}  {s['p50']:>8.2f}{s['p99']:>7.2f}"
            )
    print("\nper query, ms per transaction (p50 / p99)")
    print(f"{'database':<11}" + "".join(f"{name:>22}" for name in QUERIES))
    for result in results:
        cells = [f"{c['p50']:.2f} / {c['p99']:.2f}" if c else "-" for c in (result["per_query_ms"][q] for q in QUERIES)]
        print(f"{result['database']:<11}" + "".join(f"{cell:>22}" for cell in cells))
    print()
    for result in results:
        p99 = result["groups"]["all"]["patterns"]["p99"]
        verdict = "meets" if p99 < TARGET_MS else "MISSES"
        print(
            f"{result['database']}: history built in {result['history_build_s']} s; pattern facts p99 {p99:.2f} ms, "
            f"{verdict} the {TARGET_MS:.0f} ms target"
        )
    print(
        json.dumps(
            {
                "benchmark": "patterns",
                "history": args.history,
                "target_ms": TARGET_MS,
                "results": [{k: v for k, v in r.items() if k != "sample_ids"} for r in results],
            }
        )
    )


@contextmanager
def _database(backend: str, args: argparse.Namespace, tmp: Path) -> Iterator[str | None]:
    if backend == "sqlite":
        if args.keep:
            kept = Path(tempfile.mkdtemp(prefix="flp-bench-patterns-keep-"))
            print(f"sqlite: keeping {kept / 'flp.db'}")
            yield f"sqlite:///{kept / 'flp.db'}"
        else:
            yield f"sqlite:///{tmp / 'flp.db'}"
        return
    base = args.url or os.environ.get("FLP_TEST_POSTGRES_URL") or DEFAULT_POSTGRES
    if make_url(base).host not in {None, "127.0.0.1", "localhost", "::1"}:
        raise SystemExit("PostgreSQL: this benchmark only talks to a server on 127.0.0.1")
    with ExitStack() as stack:
        try:
            url = stack.enter_context(scratch_database(base, "flp_bench_patterns", keep=args.keep))
        except Exception as exc:
            print(
                f"\npostgresql: skipped, cannot create a database on {make_url(base).render_as_string()}: "
                f"{str(exc).splitlines()[0]}\n  (pass --url or set FLP_TEST_POSTGRES_URL; ./run test starts one as root)"
            )
            yield None
            return
        yield url
        if args.keep:
            print(f"postgresql: keeping database {make_url(url).database}")


if __name__ == "__main__":
    sys.exit(main())

"""Alembic migrations: one head, up from empty on SQLite and PostgreSQL, and the models agree with the result."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from storage import migrate
from storage.db import SQLITE_BUSY_TIMEOUT_MS, Database
from storage.models import Base
from tests.postgres import scratch_database


@pytest.fixture
def fresh_sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'nested' / 'fresh.db'}"


@pytest.fixture
def fresh_postgresql(postgres_url: str) -> Iterator[str]:
    """A database of its own, created empty and dropped afterwards: the shared test database is left alone."""
    with scratch_database(postgres_url, "flp_mig") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"fresh_{request.param}")


def schema_diff(url: str) -> list:
    database = Database(url)
    try:
        with database.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
            return compare_metadata(context, Base.metadata)
    finally:
        database.dispose()


def current_revision(url: str) -> str | None:
    database = Database(url)
    try:
        with database.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        database.dispose()


def test_there_is_exactly_one_alembic_head():
    assert len(migrate.heads()) == 1


def test_upgrade_from_empty_creates_every_table(fresh_url):
    before = Database(fresh_url)
    assert inspect(before.engine).get_table_names() == []
    before.dispose()
    migrate.upgrade(fresh_url)
    database = Database(fresh_url)
    try:
        tables = set(inspect(database.engine).get_table_names())
    finally:
        database.dispose()
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    assert current_revision(fresh_url) == migrate.heads()[0]


def test_models_and_migrated_schema_agree(fresh_url):
    migrate.upgrade(fresh_url)
    assert schema_diff(fresh_url) == []


def test_upgrade_twice_is_a_no_op(fresh_url):
    migrate.upgrade(fresh_url)
    migrate.upgrade(fresh_url)
    assert current_revision(fresh_url) == migrate.heads()[0]
    assert schema_diff(fresh_url) == []


def test_the_diff_check_would_notice_a_missing_column(fresh_sqlite):
    # Guard against a comparison that always passes: drop a column and expect it reported.
    migrate.upgrade(fresh_sqlite)
    database = Database(fresh_sqlite)
    with database.engine.begin() as conn:
        conn.execute(text("ALTER TABLE transactions DROP COLUMN rule_results"))
    database.dispose()
    diff = schema_diff(fresh_sqlite)
    assert [(d[0], d[3].name) for d in diff] == [("add_column", "rule_results")]


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(fresh_sqlite):
    migrate.upgrade(fresh_sqlite)
    database = Database(fresh_sqlite)
    try:
        with database.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS > 0
    finally:
        database.dispose()


def test_sqlite_foreign_keys_are_enforced(fresh_sqlite):
    migrate.upgrade(fresh_sqlite)
    database = Database(fresh_sqlite)
    try:
        with pytest.raises(Exception, match="FOREIGN KEY"), database.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO fraud_reports (transaction_id, source, reported_at, received_at) "
                    "VALUES ('T-missing', 'manual', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                )
            )
    finally:
        database.dispose()


def test_0003_upgrades_a_database_holding_transactions(fresh_url):
    """From 0002 with rows in place: new NOT NULL columns get their defaults, unplaced rows are marked."""
    migrate.upgrade(fresh_url, "0002")
    engine = create_engine(fresh_url)
    columns = (
        "transaction_id, store_id, register_id, type, occurred_at, received_at, total_amount, currency, "
        "payment_method, body, body_sha256, status, triage_decision"
    )
    with engine.begin() as db:
        for tid, status, decision in (("T-1", "done", "capture"), ("T-2", "skipped", None), ("T-3", "skipped", "skip")):
            db.execute(
                text(
                    f"INSERT INTO transactions ({columns}) VALUES (:tid, 's', 'r', 'sale', :at, :at, 1, 'BRL', "
                    "'card', '{}', 'x', :status, :decision)"
                ),
                {"tid": tid, "at": "2026-11-24 20:00:00", "status": status, "decision": decision},
            )
    migrate.upgrade(fresh_url)
    with engine.connect() as db:
        rows = db.execute(
            text(
                "SELECT transaction_id, placed, under_rung, adjustment_amount FROM transactions ORDER BY transaction_id"
            )
        ).all()
    engine.dispose()
    assert [(t, bool(p), bool(u), float(a)) for t, p, u, a in rows] == [
        ("T-1", True, False, 0.0),
        ("T-2", False, False, 0.0),
        ("T-3", True, False, 0.0),
    ]
    assert schema_diff(fresh_url) == []


def test_0008_round_trip_keeps_every_done_step_and_its_dedupe(fresh_url):
    """Down to 0007 the history goes back into work_items as done rows (the old dedupe holds); up again, the
    schema matches the models and those rows wait for the archive sweep to move them."""
    migrate.upgrade(fresh_url)
    engine = create_engine(fresh_url)
    at = "2026-11-24 20:00:00"
    with engine.begin() as db:
        db.execute(
            text(
                "INSERT INTO work_history (dedupe_key, item_id, kind, transaction_id, attempts, created_at, "
                "completed_at) VALUES ('triage:T-1', 7, 'triage', 'T-1', 2, :at, :at)"
            ),
            {"at": at},
        )
        db.execute(
            text(
                "INSERT INTO work_items (kind, dedupe_key, status, next_run_at, attempts, created_at) "
                "VALUES ('decide', 'decide:T-1', 'pending', :at, 0, :at)"
            ),
            {"at": at},
        )
    command.downgrade(migrate.alembic_config(fresh_url), "0007")
    assert current_revision(fresh_url) == "0007"
    with engine.connect() as db:
        rows = db.execute(text("SELECT dedupe_key, status, attempts FROM work_items ORDER BY dedupe_key")).all()
        assert "work_history" not in inspect(db).get_table_names()
    assert [tuple(r) for r in rows] == [("decide:T-1", "pending", 0), ("triage:T-1", "done", 2)]
    migrate.upgrade(fresh_url)
    with engine.connect() as db:
        assert db.execute(text("SELECT count(*) FROM work_history")).scalar() == 0
        assert db.execute(text("SELECT count(*) FROM work_items WHERE status = 'done'")).scalar() == 1
    engine.dispose()
    assert schema_diff(fresh_url) == []

"""kill -9 of the real ``serve`` process in the middle of POS traffic loses nothing and doubles nothing.

The server is killed after a few hundred answers, restarted on the same SQLite database and
port, and the clients (which resend a body whose connection failed, as a POS does) carry on.
Steps the killed process had claimed are taken over once their lease (2 s here) runs out.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import requests
import yaml
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from storage.models import Transaction, WorkItem
from tests.conftest import API_TOKEN, POS_SECRET, REPO
from tests.served import ServedProcess, Traffic, free_port, post_signed, wait_for

pytestmark = pytest.mark.slow
SHORT_LEASE = {"lease_s": 2, "idle_wait_s": 0.2}


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "flp.yaml"
    business = yaml.safe_load((REPO / "config/flp.yaml").read_text(encoding="utf-8"))
    business["runner"] = {**business.get("runner", {}), **SHORT_LEASE}
    config.write_text(yaml.safe_dump(business), encoding="utf-8")
    return {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'flp.db'}",
        "DATA_DIR": str(tmp_path / "data"),
        "POS_WEBHOOK_SECRET": POS_SECRET,
        "API_TOKEN": API_TOKEN,
        "FLP_CONFIG": str(config),
    }


def read_database(url: str) -> tuple[dict[str, Transaction], list[WorkItem]]:
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            transactions = {t.transaction_id: t for t in session.scalars(select(Transaction))}
            items = list(session.scalars(select(WorkItem)))
            session.expunge_all()
    finally:
        engine.dispose()
    return transactions, items


def triage_drained(url: str) -> bool:
    _, items = read_database(url)
    return not [i for i in items if i.kind == "triage" and i.status in ("pending", "running")]


def test_kill_9_mid_stream_then_restart_stores_every_accepted_transaction_once_and_triages_it(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    port = free_port()
    first = ServedProcess(environ, tmp_path / "serve-1.log", port=port)
    second = ServedProcess(environ, tmp_path / "serve-2.log", port=port)
    traffic = Traffic(first.base_url, POS_SECRET, prefix="CR", clients=4, retry=True)
    try:
        first.start()
        traffic.start()
        wait_for(lambda: traffic.answered() >= 300, timeout_s=120, what="300 answers before the kill")
        first.kill()  # SIGKILL: no handler runs, in-flight requests and claimed steps are cut
        answered_before_restart = traffic.answered()
        _, items_at_kill = read_database(environ["DATABASE_URL"])
        claimed_by_the_dead = [i.id for i in items_at_kill if i.status == "running"]

        second.start()
        wait_for(
            lambda: traffic.answered() >= answered_before_restart + 400,
            timeout_s=120,
            what="400 answers after the restart",
        )
        traffic.stop()
        assert not traffic.errors

        # Ids the POS already had an answer for, sent again: duplicates, not new transactions.
        accepted = traffic.with_answer(202)
        with requests.Session() as session:
            again = [
                post_signed(session, second.base_url, traffic.bodies[tid], POS_SECRET) for tid in sorted(accepted)[:50]
            ]
        assert again == [200] * len(again)

        wait_for(
            lambda: triage_drained(environ["DATABASE_URL"]),
            timeout_s=90,
            every_s=0.25,
            what="the runner to finish every triage (leases of 2 s)",
        )
        second.signal(signal.SIGTERM)
        assert second.wait(60) == 0, second.output()[-3000:]
    finally:
        traffic.stop()
        first.kill()
        second.kill()

    transactions, items = read_database(environ["DATABASE_URL"])
    answered = {tid: [s for s in answers if s is not None] for tid, answers in traffic.outcomes.items()}
    # Every answer was 202 or (for a resend whose first answer was lost in the kill) 200, and 202 at most once.
    assert all(set(statuses) <= {200, 202} and statuses.count(202) <= 1 for statuses in answered.values()), {
        tid: s for tid, s in answered.items() if not set(s) <= {200, 202} or s.count(202) > 1
    }
    confirmed = {tid for tid, statuses in answered.items() if statuses}
    assert len(accepted) > 600
    assert confirmed - set(transactions) == set(), "answered 202/200 but not stored"
    assert set(transactions) <= set(traffic.outcomes), "stored something nobody sent"
    for tid, transaction in transactions.items():
        assert transaction.body == traffic.bodies[tid].decode(), tid  # the first body, stored once, whole

    steps: dict[str, list[WorkItem]] = {}
    for item in items:
        if item.kind == "triage":
            steps.setdefault(item.transaction_id, []).append(item)
    skipped_at_intake = {tid for tid, t in transactions.items() if (t.status_reason or "").startswith("unknown ")}
    assert skipped_at_intake and len(skipped_at_intake) < len(transactions)
    for tid, transaction in transactions.items():
        mine = steps.pop(tid, [])
        if tid in skipped_at_intake:
            assert mine == [], f"{tid} was skipped at intake but has steps"
            continue
        assert [(i.kind, i.status) for i in mine] == [("triage", "done")], (
            tid,
            [(i.kind, i.status, i.last_error) for i in mine],
        )
        assert transaction.triage_decision in {"capture", "skip"} and transaction.triage_reason, tid
    assert steps == {}, "triage items of transactions that were never stored"
    taken_over = [i for i in items if i.id in claimed_by_the_dead and i.kind == "triage"]
    assert all(i.status == "done" and i.attempts >= 2 for i in taken_over)

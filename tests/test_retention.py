"""Retention: each kind of data goes after its window, files included, on SQLite and PostgreSQL.

Pictures without a fraud report or a kept (open or confirmed) alert go after 30 days, the others
after 365 with their transaction; an enrollment photo outlives the picture it was cut from, until
its entry has ended and alerts_days have passed. The clock is moved by hand; the purge is the
hourly sweep's work item.
"""

from __future__ import annotations

import pytest

from bot.app import build_services
from bot.sweeps import enqueue_sweeps
from storage.models import AuditEntry, EvidenceFile, InboundEvent, Snapshot, Transaction
from storage.uow import UnitOfWork
from tests.learning_fixtures import (  # noqa: F401  (fixtures)
    CountingCamera,
    OnePerPicture,
    chat,
    checkout,
    environ,
    learning_business,
    messenger,
)
from tests.learning_helpers import cards_titled, enroll_inputs, people

DAY = 86400


@pytest.fixture
def business(business: dict) -> dict:
    business = learning_business(business)
    business["camera"] = {"exact_delay_s": 0}
    business["rules"] = [{"name": "risky", "when": "(risk_score ?? 0) >= 90", "message": "Risky payment"}]
    return business


@pytest.fixture
def faces() -> OnePerPicture:
    return OnePerPicture()


@pytest.fixture
def services(config, clock, faces, messenger):
    built = build_services(
        config, clock=clock, camera=CountingCamera(), faces=faces, messenger=messenger, products=None
    )
    yield built
    built.db.dispose()


def purge(chat, clock, days: float) -> None:
    clock.advance(days * DAY)
    enqueue_sweeps(chat.services.db, clock)
    chat.run()


def pictures(services) -> dict[str, int]:
    with UnitOfWork(services.db) as uow:
        found: dict[str, int] = {}
        for snapshot in uow.session.query(Snapshot):
            found[snapshot.transaction_id] = found.get(snapshot.transaction_id, 0) + 1
        return found


def transactions(services) -> set[str]:
    with UnitOfWork(services.db) as uow:
        return {t.transaction_id for t in uow.session.query(Transaction)}


def files_on_disk(services) -> set[str]:
    return {p.stem for p in services.evidence.root.rglob("*") if p.is_file() and not p.name.startswith(".")}


def files_in_database(services) -> set[str]:
    with UnitOfWork(services.db) as uow:
        return {f.sha256 for f in uow.session.query(EvidenceFile)}


def picture_files(services, transaction_id: str) -> set[str]:
    with UnitOfWork(services.db) as uow:
        snapshots = uow.transactions.with_evidence(transaction_id).snapshots
        return {s.evidence_sha256 for s in snapshots} | {f.crop_sha256 for s in snapshots for f in s.faces}


def test_each_kind_of_data_goes_after_its_window(post_signed, chat, clock, services):
    checkout(post_signed, chat, clock, "T-plain")
    checkout(post_signed, chat, clock, "T-fraud")
    chat.say("P-ana", "fraud T-fraud")
    checkout(post_signed, chat, clock, "T-open", payment={"method": "card", "entry_mode": "chip", "risk_score": 95})
    checkout(
        post_signed, chat, clock, "T-dismissed", payment={"method": "card", "entry_mode": "chip", "risk_score": 95}
    )
    chat.press("P-bruno", {"action": "dismiss", "alert_id": "A-2", "reason": "no_loss"})
    # An entry enrolled from the plain checkout's picture (asked for by hand, no report).
    (proposal,) = cards_titled(chat.say("P-ana", "enroll T-plain"), "Enrollment proposal")
    chat.press("P-ana", enroll_inputs(proposal.card, days=180), on=chat.message_id(proposal))
    (person,) = people(services)
    photo = person.faces[0].enrollment_image_sha256
    plain, dismissed = picture_files(services, "T-plain"), picture_files(services, "T-dismissed")
    assert pictures(services) == {"T-plain": 2, "T-fraud": 2, "T-open": 2, "T-dismissed": 2}
    assert files_on_disk(services) == files_in_database(services)

    purge(chat, clock, 29)
    assert len(pictures(services)) == 4

    purge(chat, clock, 2)  # day 31: pictures without a reason to stay are gone, files and all
    assert pictures(services) == {"T-fraud": 2, "T-open": 2}
    assert not (plain | dismissed) - {photo} & files_on_disk(services)
    assert photo in files_on_disk(services)  # the enrollment photo outlives the picture it was cut from
    assert transactions(services) == {"T-plain", "T-fraud", "T-open", "T-dismissed"}
    with UnitOfWork(services.db) as uow:
        assert uow.session.query(InboundEvent).count() == 0  # events go after 7 days

    purge(chat, clock, 60)  # day 91: transactions without a reason to stay
    assert transactions(services) == {"T-fraud", "T-open"}

    purge(chat, clock, 275)  # day 366: alerts go, and what they kept; the entry expired at day 180
    assert transactions(services) == set() and pictures(services) == {}
    assert people(services)[0].status == "expired" and photo in files_on_disk(services)
    with UnitOfWork(services.db) as uow:
        assert uow.alerts.list() == []

    purge(chat, clock, 180)  # a year after its end, the ended entry and its photo are erased
    assert people(services) == [] and files_on_disk(services) == set() == files_in_database(services)

    purge(chat, clock, 185)  # day 731: the audit's own window
    with UnitOfWork(services.db) as uow:
        remaining = [e.action for e in uow.session.query(AuditEntry)]
    assert "fraud_report" not in remaining and "erasure" in remaining  # only the recent entries stay


def test_purge_on_an_empty_database_does_nothing(chat, clock, services):
    purge(chat, clock, 1)
    with UnitOfWork(services.db) as uow:
        assert [w.status for w in uow.work.for_transaction("")] == []
        assert uow.work.counts() == {"done": 3}  # this hour's purge and expiry, this slot's archival

"""A dead step of every kind settles its subject (core/steps.py ``settle_dead``; docs/decisions.md, "Dead steps
settle their subject"), and a Webex 429 storm delays deliveries without failing or repeating any.

Each case stores a subject as the step's producer leaves it, queues the step, and makes its handler fail with an
unexpected exception at every attempt: the runner retries it with its own back-off up to ``max_attempts``, buries
it, and the kind's settlement runs in the burial's transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from bot.runner import Runner
from bot.steps import ON_DEAD, STEPS
from core.messenger import WebexError
from core.steps import NOTHING_TO_SETTLE, StepKind
from handlers.pipeline.entrance import Visit
from storage.models import OutboxMessage
from storage.uow import UnitOfWork
from tests import factories
from tests.fakes import FakeMessenger

ROOM = "ROOM-STORE"
ENTRANCE = "Q2XX-AAAA-0009"


@pytest.fixture
def business(business: dict) -> dict:
    business["stores"][0]["webex_room_id"] = ROOM
    business["stores"][0]["entrance_cameras"] = [ENTRANCE]
    return business


@pytest.fixture
def messenger() -> FakeMessenger:
    return FakeMessenger()


def broken(item: Any, **_: Any) -> None:
    raise RuntimeError("an unexpected bug in the step")


def run_until_dead(services: Any, clock: Any, kind: StepKind) -> None:
    """Only the kind under test runs (what its settlement queues stays queued, to be looked at)."""
    runner = Runner(
        db=services.db, steps={kind: broken}, dependencies=services.dependencies(), clock=clock, on_dead=ON_DEAD
    )
    for _ in range(runner.settings.max_attempts + 2):
        runner.run_until_idle()
        clock.advance(runner.settings.backoff_cap_s + 1)
    with UnitOfWork(services.db) as uow:
        assert [w.status for w in uow.work.for_kind(kind)][:1] == ["dead"]


def enqueue(uow: UnitOfWork, kind: StepKind, key: str, now: Any, **ids: str | None) -> None:
    uow.work.enqueue(kind=kind, key=key, run_at=now, now=now, **ids)


def outbox(uow: UnitOfWork, key: str) -> OutboxMessage:
    message = uow.outbox.by_key(key)
    assert message is not None, f"no outbox message {key}"
    return message


# --- the subjects, one pair (store it, look at it) per kind --------------------------------------------------------


def _transaction(status: str, **fields: Any) -> Callable[..., None]:
    def setup(uow: UnitOfWork, now: Any, kind: StepKind) -> None:
        uow.session.add(factories.transaction(at=now, status=status, **fields))
        uow.session.flush()
        enqueue(uow, kind, "T-1", now, transaction_id="T-1", ref_id="S-1")

    return setup


def _transaction_failed(uow: UnitOfWork, kind: StepKind) -> None:
    transaction = uow.transactions.get("T-1")
    assert transaction is not None and transaction.status == "failed"
    assert f"the {kind.value.replace('_', ' ')} step failed for good" in (transaction.status_reason or "")
    # The rules still see the payment: the unpictured decision is queued.
    assert [w.status for w in uow.work.for_kind(StepKind.DECIDE_UNPICTURED)] == ["pending"]


def _unpictured_said(uow: UnitOfWork, kind: StepKind) -> None:
    transaction = uow.transactions.get("T-1")
    assert transaction is not None and transaction.status == "skipped"
    assert transaction.status_reason == (
        "triage: nothing risky; the rules could not run: the decide step failed for good after 8 attempt(s)"
    )


def _alert(uow: UnitOfWork, now: Any, kind: StepKind) -> None:
    uow.session.add(factories.transaction(at=now))
    uow.session.add(factories.alert(at=now))
    uow.session.flush()
    enqueue(uow, kind, "1", now, transaction_id="T-1", ref_id="1")


def _card_unbuilt(uow: UnitOfWork, kind: StepKind) -> None:
    assert uow.alerts.get("A-1") is not None  # the alert stays
    (recorded,) = uow.outbox.for_alert(1)
    assert (recorded.dedupe_key, recorded.status, recorded.room_id) == ("alert:1:unbuilt", "failed", ROOM)
    assert "its card could not be built" in (recorded.last_error or "")
    assert uow.work.for_kind(StepKind.DELIVER) == []  # nothing to send: it could not be built


def _message(uow: UnitOfWork, now: Any, kind: StepKind) -> None:
    uow.outbox.add(key="alert:1:card", room_id=ROOM, now=now, markdown="Alert A-1")


def _message_failed(uow: UnitOfWork, kind: StepKind) -> None:
    message = outbox(uow, "alert:1:card")
    assert message.status == "failed" and "failed for good after 8 attempt(s)" in (message.last_error or "")


def _event(uow: UnitOfWork, now: Any, kind: StepKind) -> None:
    payload = {"resource": "messages", "id": "MSG-1", "roomId": "ROOM-DM", "personEmail": "ana@example.com"}
    uow.inbound.record(event_id="MSG-1", source="webex_message", payload=payload, now=now)
    enqueue(uow, kind, "MSG-1", now, ref_id="MSG-1")


def _event_answered(uow: UnitOfWork, kind: StepKind) -> None:
    stored = uow.inbound.get("MSG-1")
    assert stored is not None and stored.handled_at is not None
    answer = outbox(uow, "event:MSG-1:failed")
    assert answer.room_id == "ROOM-DM" and answer.payload["parent_message_id"] == "MSG-1"
    assert "try again" in answer.payload["markdown"]


def _manual_snapshot(uow: UnitOfWork, now: Any, kind: StepKind) -> None:
    uow.snapshots.add(factories.snapshot(at=now, transaction_id=None, kind="manual", status="pending"))
    uow.outbox.add(key="checkout:S-1", room_id=ROOM, now=now, markdown="📷 Taking a picture…")
    enqueue(uow, kind, "S-1", now, ref_id="S-1")


def _checkout_told(uow: UnitOfWork, kind: StepKind) -> None:
    snapshot = uow.snapshots.get("S-1")
    assert snapshot is not None and snapshot.status == "failed" and "try `checkout` again" in (snapshot.reason or "")
    result = outbox(uow, "checkout:S-1:result")
    assert result.parent_outbox_id == outbox(uow, "checkout:S-1").id  # in the command's thread
    assert result.payload["markdown"].startswith("No picture: something went wrong")


VISIT = Visit(ENTRANCE, int(factories.NOW.timestamp() * 1000))


def _visit(uow: UnitOfWork, now: Any, kind: StepKind) -> None:
    enqueue(uow, kind, f"{ENTRANCE}:1", now, ref_id=VISIT.ref())


def _visit_failed(uow: UnitOfWork, kind: StepKind) -> None:
    snapshot = uow.snapshots.get(VISIT.snapshot_id)
    assert snapshot is not None and (snapshot.kind, snapshot.status) == ("entrance", "failed")
    assert snapshot.reason == "the entrance step failed for good after 8 attempt(s)"


def _reported(uow: UnitOfWork, now: Any, kind: StepKind) -> None:
    uow.session.add(factories.transaction(at=now))
    uow.session.flush()
    enqueue(uow, kind, "T-1", now, transaction_id="T-1")


def _report_answered(uow: UnitOfWork, kind: StepKind) -> None:
    told = outbox(uow, "proposal:T-1:failed")
    assert told.room_id == ROOM and "Ask again with `enroll T-1`" in told.payload["markdown"]


def _asked(uow: UnitOfWork, now: Any, kind: StepKind) -> None:
    uow.session.add(factories.transaction(at=now))
    uow.session.flush()
    uow.outbox.add(key="proposal-ask:EV-1", room_id="ROOM-DM", now=now, markdown="Looking at the faces…")
    enqueue(uow, kind, "EV-1", now, transaction_id="T-1", ref_id="EV-1")


def _request_answered(uow: UnitOfWork, kind: StepKind) -> None:
    told = outbox(uow, "proposal:T-1:EV-1:failed")
    assert told.room_id == "ROOM-DM" and told.parent_outbox_id == outbox(uow, "proposal-ask:EV-1").id


def _entry(status: str, *, enrolled: bool, anchor: str | None = None) -> Callable[..., None]:
    def setup(uow: UnitOfWork, now: Any, kind: StepKind) -> None:
        uow.snapshots.record_file("ab" * 32, kind="enrollment", content_type="image/jpeg", size_bytes=9, now=now)
        uow.session.add(factories.watchlist_person(at=now, status=status, source_transaction_id="T-1"))
        uow.session.flush()
        descriptor = b"\x00" * 512 if enrolled else None
        uow.session.add(factories.watchlist_face(at=now, enrollment_image_sha256="ab" * 32, descriptor=descriptor))
        uow.session.flush()
        if anchor is not None:
            uow.outbox.add(key=anchor, room_id="ROOM-DM", now=now, markdown="On it…")
        ref = {"lookback": "WF-P-1|0|12|1", "enroll_face": "WF-P-1"}.get(kind.value, "P-1")
        enqueue(uow, kind, ref, now, ref_id=ref)

    return setup


def _enrollment_refused(uow: UnitOfWork, kind: StepKind) -> None:
    assert uow.watchlist.get("P-1") is None and uow.watchlist.face("WF-P-1") is None
    told = outbox(uow, "enroll:WF-P-1:done")
    assert told.parent_outbox_id == outbox(uow, "enroll:WF-P-1").id
    assert told.payload["markdown"] == (
        "❌ Not enrolled: something went wrong while enrolling (tried 8 time(s)). "
        "Ask for a new proposal with `enroll T-1`."
    )


def _lookback_told(uow: UnitOfWork, kind: StepKind) -> None:
    told = outbox(uow, "lookback:WF-P-1:failed")
    assert told.parent_outbox_id == outbox(uow, "enroll:WF-P-1").id
    assert "stopped: something went wrong after 12 picture(s) (1 earlier visit(s)" in told.payload["markdown"]


def _runs_again_and_reported(uow: UnitOfWork, kind: StepKind) -> None:
    dead, again = uow.work.for_kind(kind)
    assert (dead.status, again.status, again.ref_id) == ("dead", "pending", "P-1")
    assert again.next_run_at.replace(tzinfo=None) > (dead.completed_at or dead.created_at).replace(tzinfo=None)
    told = outbox(uow, f"forget:P-1:{kind.value}:failed:1")
    assert "did not finish (run 1, 8 attempt(s)); trying again at" in told.payload["markdown"]
    if kind is StepKind.ERASE_PERSON:
        assert told.parent_outbox_id == outbox(uow, "forget:P-1").id  # where security asked for it
    else:
        assert told.room_id == ROOM and told.parent_outbox_id is None


def _sweep(uow: UnitOfWork, now: Any, kind: StepKind) -> None:
    key = "store-001:2026-11-24" if kind in (StepKind.DAILY_DIGEST, StepKind.PATTERN_REPORT) else "2026-11-24T20"
    enqueue(uow, kind, key, now, ref_id=key)


def _nothing_settled(uow: UnitOfWork, kind: StepKind) -> None:
    # Only the dead row: the next period's sweep does the work again.
    assert len(uow.work.for_kind(kind)) == 1 and uow.outbox.failures(since=factories.NOW - timedelta(days=1))[0] == 0


@dataclass(frozen=True)
class Case:
    setup: Callable[[UnitOfWork, Any, StepKind], None]
    settled: Callable[[UnitOfWork, StepKind], None]


CASES: dict[StepKind, Case] = {
    StepKind.TRIAGE: Case(_transaction("pending"), _transaction_failed),
    StepKind.CAPTURE_LIVE: Case(_transaction("capturing"), _transaction_failed),
    StepKind.CAPTURE_EXACT: Case(_transaction("capturing"), _transaction_failed),
    StepKind.ANALYZE: Case(_transaction("analyzing"), _transaction_failed),
    StepKind.DECIDE: Case(_transaction("analyzing"), _transaction_failed),
    StepKind.DECIDE_UNPICTURED: Case(
        _transaction("skipped", status_reason="triage: nothing risky", triage_decision="skip"), _unpictured_said
    ),
    StepKind.NOTIFY_ALERT: Case(_alert, _card_unbuilt),
    StepKind.DELIVER: Case(_message, _message_failed),
    StepKind.HANDLE_EVENT: Case(_event, _event_answered),
    StepKind.CHECKOUT_SNAPSHOT: Case(_manual_snapshot, _checkout_told),
    StepKind.ENTRANCE_VISIT: Case(_visit, _visit_failed),
    StepKind.FRAUD_REPORT: Case(_reported, _report_answered),
    StepKind.PROPOSE_ENROLLMENT: Case(_asked, _request_answered),
    StepKind.ENROLL_FACE: Case(_entry("enrolling", enrolled=False, anchor="enroll:WF-P-1"), _enrollment_refused),
    StepKind.LOOKBACK: Case(_entry("active", enrolled=True, anchor="enroll:WF-P-1"), _lookback_told),
    StepKind.FORGET_TEMPLATES: Case(_entry("removed", enrolled=True), _runs_again_and_reported),
    StepKind.ERASE_PERSON: Case(_entry("removed", enrolled=True, anchor="forget:P-1"), _runs_again_and_reported),
    **{kind: Case(_sweep, _nothing_settled) for kind in NOTHING_TO_SETTLE},
}


def test_every_kind_has_a_case() -> None:
    assert set(CASES) == set(StepKind) == set(STEPS)


@pytest.mark.parametrize("kind", list(StepKind), ids=str)
def test_a_dead_step_settles_its_subject(services, clock, kind: StepKind) -> None:
    with UnitOfWork(services.db, write=True) as uow:
        CASES[kind].setup(uow, clock(), kind)
        uow.commit()
    run_until_dead(services, clock, kind)
    with UnitOfWork(services.db) as uow:
        dead = uow.work.for_kind(kind)[0]
        assert dead.attempts == 8 and dead.last_error == "RuntimeError: an unexpected bug in the step"
        CASES[kind].settled(uow, kind)


def test_an_erasure_that_keeps_dying_runs_again_three_times_then_is_reported_as_stopped(services, clock) -> None:
    with UnitOfWork(services.db, write=True) as uow:
        _entry("removed", enrolled=True, anchor="forget:P-1")(uow, clock(), StepKind.ERASE_PERSON)
        uow.commit()
    steps = {StepKind.ERASE_PERSON: broken}
    runner = Runner(db=services.db, steps=steps, dependencies=services.dependencies(), clock=clock, on_dead=ON_DEAD)
    for _ in range(60):
        runner.run_until_idle()
        clock.advance(3600)
    with UnitOfWork(services.db) as uow:
        assert [w.status for w in uow.work.for_kind(StepKind.ERASE_PERSON)] == ["dead"] * 4
        last = outbox(uow, "forget:P-1:erase_person:failed:4")
        assert "it has stopped: an operator must look (`python -m bot work list`)" in last.payload["markdown"]
        person = uow.watchlist.get("P-1")
        assert person is not None and person.status == "removed"  # never matched meanwhile


def test_a_settlement_that_fails_still_buries_its_step(services, clock) -> None:
    def failing(work: Any, item: Any, error: str, now: Any) -> None:
        raise RuntimeError("the settlement broke too")

    with UnitOfWork(services.db, write=True) as uow:
        _message(uow, clock(), StepKind.DELIVER)
        uow.commit()
    runner = Runner(
        db=services.db,
        steps={StepKind.DELIVER: broken},
        dependencies=services.dependencies(),
        clock=clock,
        on_dead={StepKind.DELIVER: failing},
    )
    for _ in range(10):
        runner.run_until_idle()
        clock.advance(1000)
    with UnitOfWork(services.db) as uow:
        assert [w.status for w in uow.work.for_kind(StepKind.DELIVER)] == ["dead"]
        assert outbox(uow, "alert:1:card").status == "pending"  # left as it was, and the log says so


# --- a Webex 429 storm ---------------------------------------------------------------------------------------------


def test_a_429_storm_with_a_long_retry_after_delivers_every_card_and_its_photo_exactly_once(
    services, clock, messenger
) -> None:
    cards = 12
    now = clock()
    photo = services.evidence.put(b"\xff\xd8\xff\xe0photo", "image/jpeg")
    with UnitOfWork(services.db, write=True) as uow:
        uow.snapshots.record_file(photo, kind="snapshot", content_type="image/jpeg", size_bytes=9, now=now)
        for n in range(1, cards + 1):
            card = uow.outbox.add(key=f"alert:{n}:card", room_id=ROOM, now=now, markdown=f"Alert A-{n}", card={})
            uow.outbox.add(
                key=f"alert:{n}:photo",
                room_id=ROOM,
                now=now,
                markdown=f"Evidence for A-{n}",
                file={"sha256": photo, "content_type": "image/jpeg", "name": f"A-{n}.jpg"},
                parent=card,
            )
        uow.commit()
    # Far more 429s than a message's attempts (7) and the runner's (8): each answer says "come back in 60 s".
    storm = WebexError("Webex is rate limiting (429)", retry=True, retry_after_s=60.0, status=429)
    messenger.failures = [storm] * 150
    runner = Runner(db=services.db, steps=STEPS, dependencies=services.dependencies(), clock=clock, on_dead=ON_DEAD)
    for _ in range(400):
        runner.run_until_idle()
        clock.advance(5.1)
    with UnitOfWork(services.db) as uow:
        rows = [outbox(uow, f"alert:{n}:{part}") for n in range(1, cards + 1) for part in ("card", "photo")]
        assert {m.status for m in rows} == {"sent"}
        assert {w.status for w in uow.work.for_kind(StepKind.DELIVER)} == {"done"}
        sent_as = {m.dedupe_key: m.webex_message_id for m in rows}
    assert messenger.failures == []  # the storm was met in full
    markdowns = [m.markdown for m in messenger.sent]
    assert sorted(markdowns) == sorted(
        [f"Alert A-{n}" for n in range(1, cards + 1)] + [f"Evidence for A-{n}" for n in range(1, cards + 1)]
    )  # every card and photo once, none twice
    by_text = {m.markdown: m for m in messenger.sent}
    for n in range(1, cards + 1):
        assert by_text[f"Evidence for A-{n}"].parent_id == sent_as[f"alert:{n}:card"]  # under its own card
        assert by_text[f"Evidence for A-{n}"].attachment is not None

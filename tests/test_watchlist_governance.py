"""Watchlist governance: list, show and remove (roles), erasure that leaves nothing behind, expiry with a
notice, wrong matches flagged, precision in `stats` and the read API, the audit log as CSV."""

from __future__ import annotations

import csv
import io

from bot.sweeps import enqueue_sweeps
from storage.models import Face, FaceMatch, WatchlistFace, WatchlistPerson
from storage.uow import UnitOfWork
from tests.learning_fixtures import (  # noqa: F401  (fixtures)
    active_entry,
    business,
    chat,
    decided_alert,
    environ,
    faces,
    messenger,
    proposed,
    services,
)
from tests.learning_helpers import ROOM, audit, body_at, card_texts, enroll_inputs, evidence_files, people


def enrolled(post_signed, chat, clock, *, days: int = 90) -> str:
    proposal = proposed(post_signed, chat, clock)
    chat.press("P-ana", enroll_inputs(proposal.card, days=days), on=chat.message_id(proposal))
    (person,) = [p for p in people(chat.services) if p.status == "active"]
    return person.id


def test_watchlist_list_and_show_for_staff_with_precision_and_the_review_flag(chat, services):
    active_entry(services, "P-7", wrong=3)
    decided_alert(services, "P-7", "confirmed", 1)
    decided_alert(services, "P-7", "dismissed", 2)
    (listed,) = chat.say("P-bruno", "watchlist")
    assert "**P-7** active" in listed.markdown and "50% of decided alerts confirmed" in listed.markdown
    assert "**flagged for review**" in listed.markdown
    assert "P-7 · active · flagged for review" in card_texts(listed.card)
    (shown,) = chat.say("P-bruno", "watchlist show p-7")
    assert "Flagged for review: its matches have often been wrong. Consider removing it." in card_texts(shown.card)
    assert ("Alerts confirmed", "50%") in [
        (f["title"], f["value"]) for b in shown.card["body"] if b["type"] == "FactSet" for f in b["facts"]
    ]
    assert ("bruno@example.com", "view", "P-7", None, "ok") in audit(services)
    assert chat.say("P-bruno", "watchlist dance")[0].markdown.startswith("Usage:")
    assert "I know no watchlist entry `P-404`" in chat.say("P-bruno", "watchlist show P-404")[0].markdown


def test_remove_needs_security_and_the_entry_is_never_matched_again(post_signed, chat, clock, services, faces):
    person_id = enrolled(post_signed, chat, clock)
    assert "needs the security role" in chat.say("P-ana", f"watchlist remove {person_id}")[0].markdown
    (done,) = chat.say("P-carla", f"watchlist remove {person_id}")
    assert f"**{person_id}** removed from the watchlist by carla@example.com" in done.markdown
    (person,) = people(services)
    assert person.status == "removed" and person.expires_at == clock()
    assert [f.descriptor for f in person.faces] == [None] and faces.forgotten == [(person_id, ())]
    assert faces.enrolled == {}
    assert ("carla@example.com", "watchlist_remove", person_id, "removed", "ok") in audit(services)
    faces.similarity[("shopper", person_id)] = 99.0
    assert all(person_id not in scope for scope in _scopes_of_next_checkout(post_signed, chat, clock, faces))
    again = chat.press("P-carla", {"action": "watchlist_remove", "person_id": person_id})
    assert "already removed; nothing changed" in again[0].markdown


def _scopes_of_next_checkout(post_signed, chat, clock, faces) -> list:
    faces.searches.clear()
    clock.advance(60)
    post_signed("/api/v1/transactions", body_at(clock, "T-next"))
    chat.run()
    return [scope or () for _, scope, _ in faces.searches]


def test_forget_erases_the_person_and_leaves_nothing_behind(post_signed, chat, clock, services, faces):
    person_id = enrolled(post_signed, chat, clock)
    with UnitOfWork(services.db) as uow:
        photo = uow.session.query(WatchlistFace).one().enrollment_image_sha256
    path = services.evidence.path(photo, "image/jpeg")
    assert path.exists()
    assert "needs the security role" in chat.say("P-ana", f"forget {person_id}")[0].markdown
    sent = chat.say("P-carla", f"forget {person_id}")
    assert sent[0].markdown.startswith(f"Erasing **{person_id}**")
    assert sent[-1].markdown.startswith(f"🧹 **{person_id}** is erased") and sent[-1].parent_id == sent[0].parent_id
    # On disk, in the database, on the backend: nothing of the person is left.
    assert not path.exists() and photo not in evidence_files(services)
    with UnitOfWork(services.db) as uow:
        assert uow.session.query(WatchlistPerson).count() == 0 and uow.session.query(WatchlistFace).count() == 0
        assert uow.session.query(FaceMatch).filter(FaceMatch.person_id == person_id).count() == 0
        assert [f.crop_sha256 for f in uow.session.query(Face)] == [None]  # the checkout's crop of her, too
    assert faces.enrolled == {} and (person_id, ()) in faces.forgotten
    # The audit keeps the fact of the erasure, with ids and reason codes only (no reason text).
    entries = audit(services)
    assert ("carla@example.com", "erasure_request", person_id, "forget", "ok") in entries
    assert ("system", "erasure", person_id, "forget", "ok") in entries
    assert not any("stolen card" in str(e) or "cloned" in str(e) for e in entries)
    assert "I know no watchlist entry" in chat.say("P-carla", f"forget {person_id}")[0].markdown


def test_expiry_sweep_ends_entries_and_tells_the_store(post_signed, chat, clock, services, faces):
    person_id = enrolled(post_signed, chat, clock, days=1)
    enqueue_sweeps(services.db, clock)
    assert chat.run() == [] and people(services)[0].status == "active"  # not yet
    clock.advance(86400 + 3600)
    enqueue_sweeps(services.db, clock)
    enqueue_sweeps(services.db, clock)  # another process, same hour: the same item
    sent = chat.run()
    (notice,) = [m for m in sent if "has expired" in m.markdown]
    assert notice.room_id == ROOM and f"**{person_id}**" in notice.markdown
    (person,) = people(services)
    assert person.status == "expired" and [f.descriptor for f in person.faces] == [None]
    assert faces.enrolled == {} and ("system", "watchlist_expire", person_id, "expired", "ok") in audit(services)
    with UnitOfWork(services.db) as uow:
        keys = [w.dedupe_key for w in uow.work.for_kind("watchlist_expiry")]  # the first one has moved to history
    assert sorted(keys) == ["watchlist_expiry:2026-11-24T20", "watchlist_expiry:2026-11-25T21"]


def test_stats_and_the_read_api_measure_precision_per_entry(chat, services, client, auth):
    active_entry(services, "P-7", wrong=3)
    for n, status in enumerate(["confirmed", "confirmed", "dismissed", "open"]):
        decided_alert(services, "P-7", status, n)
    (stats,) = chat.say("P-bruno", "stats")
    assert "- watchlist **P-7**: 2/3 confirmed (67%), flagged for review" in stats.markdown
    assert "P-7: 2 of 3 (67%) · flagged for review" in card_texts(stats.card)
    (entry,) = client.get("/api/v1/watchlist", headers=auth).get_json()["watchlist"]
    assert entry["precision"] == {"confirmed": 2, "decided": 3, "precision": 0.6667}
    assert entry["flagged_for_review"] is True


def test_the_audit_log_exports_as_csv_with_ids_and_reason_codes(post_signed, chat, clock, client, auth):
    enrolled(post_signed, chat, clock)
    assert client.get("/api/v1/audit.csv").status_code == 401
    response = client.get("/api/v1/audit.csv", headers=auth)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["action"] for r in rows][:2] == ["fraud_report", "enroll_proposal"]
    assert {"enroll_request", "watchlist_enroll"} <= {r["action"] for r in rows}
    assert not any("stolen card" in v or "cloned" in v for r in rows for v in r.values())
    later = client.get("/api/v1/audit.csv?since=2030-01-01T00:00:00Z", headers=auth).get_data(as_text=True)
    assert later.splitlines() == ["id,at,actor,action,subject_type,subject_id,store_id,reason_code,outcome"]
    assert client.get("/api/v1/audit.csv?since=yesterday", headers=auth).status_code == 422


def test_the_csv_never_carries_a_formula(services, client, auth):
    with UnitOfWork(services.db, write=True) as uow:
        uow.audit.record(
            at=services.clock(), actor='=HYPERLINK("x")', action="view", subject_type="alert", subject_id="-1"
        )
        uow.commit()
    (row,) = list(csv.DictReader(io.StringIO(client.get("/api/v1/audit.csv", headers=auth).get_data(as_text=True))))
    assert row["actor"].startswith("'=") and row["subject_id"] == "'-1"

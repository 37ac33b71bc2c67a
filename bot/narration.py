"""The demo's running commentary and closing summary, read from the database the service writes.

Narration watches the stored state (it does not hook into the steps), so what it says is what the
product actually did: triage decisions, pictures, faces and matches, receipt against camera,
alerts, decisions, fraud reports, enrollments, console presses and Webex posts.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TextIO

from sqlalchemy import select

from storage.db import Database
from storage.models import Alert, FraudReport, InboundEvent, OutboxMessage, Snapshot, Transaction, WatchlistPerson
from storage.uow import UnitOfWork

Say = Callable[[str, str], None]


def speaker(out: TextIO, started: float) -> Say:
    lock = threading.Lock()

    def say(kind: str, text: str) -> None:
        with lock:
            print(f"[{time.monotonic() - started:6.1f}s] {kind:<9} {text}", file=out, flush=True)

    return say


class Narrator:
    """Polls the database and says each new thing once."""

    def __init__(self, db: Database, say: Say, *, every_s: float = 0.25):
        self.db, self.say, self.every_s = db, say, every_s
        self._seen: set[tuple[str, ...]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="narrator", daemon=True)

    def start(self) -> Narrator:
        say, self.say = self.say, lambda kind, text: None
        self.look()  # what was there before this run is not news
        self.say = say
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.look()  # the last word

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.look()
            except Exception as exc:  # a narration hiccup must never stop the demo
                self.say("narration", f"could not read the database ({type(exc).__name__}); trying again")

    def look(self) -> None:
        with UnitOfWork(self.db) as uow:
            session = uow.session
            for tx in session.scalars(select(Transaction).where(Transaction.triage_decision.is_not(None))):
                if self._new("triage", tx.transaction_id):
                    verdict = "picture" if tx.triage_decision == "capture" else "no picture"
                    self.say("triage", f"{tx.transaction_id}: {verdict} ({tx.triage_reason})")
            for shot in session.scalars(
                select(Snapshot).where(Snapshot.status != "pending").order_by(Snapshot.created_at)
            ):
                if self._new("snapshot", shot.id):
                    what = "stored" if shot.status == "ready" else f"not taken: {shot.reason}"
                    self.say("picture", f"{shot.kind} picture of {shot.transaction_id} {what}")
                if shot.analyzed_at is not None and self._new("analysis", shot.id):
                    self.say("analysis", f"{shot.kind} picture of {shot.transaction_id}: {_analysis(shot)}")
            for alert in session.scalars(select(Alert).order_by(Alert.id)):
                if self._new("alert", str(alert.id)):
                    self.say(
                        "ALERT",
                        f"{alert.public_id} {alert.severity} {alert.rule} on {alert.transaction_id}: {alert.message}",
                    )
                if alert.status != "open" and self._new("decision", str(alert.id)):
                    why = f" ({alert.reason})" if alert.reason else ""
                    self.say("decision", f"{alert.public_id} {alert.status} by {alert.decided_by}{why}")
            for report in session.scalars(select(FraudReport).order_by(FraudReport.id)):
                if self._new("fraud", str(report.id)):
                    self.say(
                        "fraud",
                        f"{report.transaction_id} reported as fraud ({report.source}"
                        f"{', by ' + report.reported_by if report.reported_by else ''})",
                    )
            for person in session.scalars(select(WatchlistPerson)):
                if self._new("watchlist", person.id, person.status):
                    self.say(
                        "watchlist", f"{person.id} {person.status} (enrolled by {person.enrolled_by}: {person.reason})"
                    )
            for event in session.scalars(
                select(InboundEvent).where(InboundEvent.source == "console", InboundEvent.handled_at.is_not(None))
            ):
                if self._new("console", event.id):
                    payload = event.payload or {}
                    answer = " / ".join(r.get("markdown", "").split("\n")[0] for r in payload.get("replies", []))
                    self.say(
                        "console",
                        f"{payload.get('person_email')} pressed {payload.get('title')!r} on "
                        f"{payload.get('thread')}: {answer.replace('**', '')}",
                    )
            for message in session.scalars(select(OutboxMessage).where(OutboxMessage.status.in_(("sent", "failed")))):
                if self._new("outbox", str(message.id)):
                    outcome = (
                        "posted to Webex" if message.status == "sent" else f"not posted to Webex ({message.last_error})"
                    )
                    self.say("webex", f"{outcome}: {(message.payload or {}).get('markdown', '')[:80]}")

    def _new(self, *key: str) -> bool:
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


def _analysis(shot: Snapshot) -> str:
    faces = len(shot.faces)
    matches = [f"{m.person_id} at {m.similarity:.1f}" for face in shot.faces for m in face.matches]
    text = f"{faces} face{'s' if faces != 1 else ''} in the customer zone"
    text += f", watchlist match {', '.join(matches)}" if matches else ", no watchlist match"
    lines = [
        f"{line['label']} billed {line['billed']} seen {line['seen']}"
        for line in (shot.reconciliation or {}).get("lines", [])
        if line.get("seen") is not None
    ]
    return text + (f"; {', '.join(lines)}" if lines else "")


def summary(db: Database, transaction_prefix: str) -> dict[str, int]:
    """The counts the demo ends with, for the transactions of this run (ids starting with the prefix)."""
    with UnitOfWork(db) as uow:
        session = uow.session
        ids = set(
            session.scalars(
                select(Transaction.transaction_id).where(Transaction.transaction_id.startswith(transaction_prefix))
            )
        )
        shots = [s for s in session.scalars(select(Snapshot)) if s.transaction_id in ids]
        alerts = [a for a in session.scalars(select(Alert)) if a.transaction_id in ids]
        status = Counter(a.status for a in alerts)
        return {
            "transactions": len(ids),
            "pictured": sum(
                1
                for t in session.scalars(select(Transaction))
                if t.transaction_id in ids and t.triage_decision == "capture"
            ),
            "pictures": sum(1 for s in shots if s.status == "ready"),
            "faces": sum(len(s.faces) for s in shots),
            "matches": sum(len(f.matches) for s in shots for f in s.faces),
            "alerts": len(alerts),
            "decisions": status["confirmed"] + status["dismissed"],
            "confirmed": status["confirmed"],
            "dismissed": status["dismissed"],
            "open": status["open"],
            "fraud reports": sum(1 for r in session.scalars(select(FraudReport)) if r.transaction_id in ids),
            "watchlist": sum(1 for p in session.scalars(select(WatchlistPerson)) if p.source_transaction_id in ids),
        }

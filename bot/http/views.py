"""Stored rows as the read API shows them (docs/interfaces.md shapes)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import object_session

from handlers.conversation.views import WRONG_MATCHES_FOR_REVIEW
from storage.alerts import Sighting
from storage.models import Alert, Transaction, WatchlistPerson
from storage.watchlist_entries import WatchlistRepository
from storage.work_queue import WorkRecord


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def transaction_view(
    transaction: Transaction, alert_ids: list[str], steps: Sequence[WorkRecord] = ()
) -> dict[str, Any]:
    reports = transaction.fraud_reports
    posted = json.loads(transaction.body)
    if transaction.payment_status is not None and isinstance(posted.get("payment"), dict):
        # A processor changed the payment since (Square payment.updated): a canceled or failed payment
        # must not read as approved. When it changed is the processor's own time.
        posted["payment"] = {
            **posted["payment"],
            "status": transaction.payment_status,
            "status_updated_at": iso(transaction.payment_status_at),
        }
    posted["fraud"] = (
        None
        if not reports
        else {
            "source": reports[0].source,
            "reason": reports[0].reason,
            "reported_at": iso(reports[0].reported_at),
            "reports": [{"source": r.source, "reason": r.reason, "reported_at": iso(r.reported_at)} for r in reports],
        }
    )
    snapshots = transaction.snapshots
    return {
        "transaction": posted,
        "correlation": {
            "status": transaction.status,
            "reason": transaction.status_reason,
            "triage": None
            if transaction.triage_decision is None
            else {"decision": transaction.triage_decision, "reason": transaction.triage_reason},
            "snapshots": [{"id": s.id, "kind": s.kind, "status": s.status, "reason": s.reason} for s in snapshots],
            "faces": [
                {
                    "id": f.id,
                    "snapshot_id": s.id,
                    "box": f.box,
                    "quality": f.quality,
                    "matches": [{"person_id": m.person_id, "similarity": m.similarity} for m in f.matches],
                }
                for s in snapshots
                for f in s.faces
            ],
            "reconciliation": transaction.reconciliation or {"lines": [], "not_checked": []},
            "rule_results": transaction.rule_results or [],
            "alert_ids": alert_ids,
            # The background steps, so a delayed or dead-lettered one shows its last error.
            "steps": [
                {
                    "kind": w.kind,
                    "status": w.status,
                    "attempts": w.attempts,
                    "last_error": w.last_error,
                    "next_run_at": iso(w.next_run_at) if w.status == "pending" else None,
                }
                for w in steps
            ],
        },
    }


def alert_view(alert: Alert, sightings: Sequence[Sighting] = ()) -> dict[str, Any]:
    """``sightings``: the person's earlier alerts in the store (AlertRepository.sightings), newest first."""
    return {
        "id": alert.public_id,
        "status": alert.status,
        "rule": alert.rule,
        "severity": alert.severity,
        "message": alert.message,
        "store_id": alert.store_id,
        "register_id": alert.register_id,
        "transaction_id": alert.transaction_id,
        "person_id": alert.person_id,
        "similarity": alert.similarity,
        "created_at": iso(alert.created_at),
        "decided_by": alert.decided_by,
        "decided_at": iso(alert.decided_at),
        "reason": alert.reason,
        "related_alert_ids": [s.alert.public_id for s in sightings],
    }


def watchlist_view(person: WatchlistPerson, precision: tuple[int, int] | None = None) -> dict[str, Any]:
    """``precision``: (confirmed, decided) alerts on this person; read from the person's own session when not given."""
    if precision is None:
        session = object_session(person)
        found = WatchlistRepository(session).precision([person.id]) if session is not None else {}
        precision = found.get(person.id, (0, 0))
    confirmed, decided = precision
    return {
        "id": person.id,
        "status": person.status,
        "store_id": person.store_id,
        "region_id": person.region_id,
        "reason": person.reason,
        "source_transaction_id": person.source_transaction_id,
        "enrolled_by": person.enrolled_by,
        "approved_by": person.approved_by,
        "enrolled_at": iso(person.enrolled_at),
        "expires_at": iso(person.expires_at),
        "faces": len(person.faces),
        "wrong_match_count": person.wrong_match_count,
        "flagged_for_review": person.wrong_match_count >= WRONG_MATCHES_FOR_REVIEW,
        "precision": {
            "confirmed": confirmed,
            "decided": decided,
            "precision": round(confirmed / decided, 4) if decided else None,
        },
    }

"""Rows of storage/models.py for tests to store directly, each valid with defaults from this one place.

Every factory takes the row's fields as keyword overrides; ``at`` is the moment the row's times default to
(the test clock's start unless given). The defaults fit together as one checkout of store-001's reg-1:
transaction T-1, its snapshot S-1 with face F-1, an alert on it, and watchlist person P-1.
Foreign keys to evidence files have no default: store the file first and pass its digest.
"""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from storage.db import Database
from storage.models import (
    Alert,
    Face,
    FaceEvaluation,
    FaceMatch,
    PatternCount,
    Snapshot,
    Transaction,
    WatchlistFace,
    WatchlistPerson,
)
from storage.uow import UnitOfWork

NOW = datetime(2026, 11, 24, 20, 3, 20, tzinfo=UTC)  # the clock fixture's start: 17:03 in São Paulo
STORE = "store-001"
REGISTER = "reg-1"
CAMERA = "Q2XX-AAAA-0001"  # reg-1's camera in minimal_business()

_numbers = itertools.count(1)


def transaction(*, at: datetime = NOW, **overrides: Any) -> Transaction:
    """A card sale whose correlation is done; ``body_sha256`` is the hash of ``body`` unless given."""
    fields: dict[str, Any] = {
        "transaction_id": "T-1",
        "store_id": STORE,
        "register_id": REGISTER,
        "occurred_at": at,
        "received_at": at,
        "total_amount": Decimal("10.00"),
        "currency": "BRL",
        "payment_method": "card",
        "body": "{}",
        "status": "done",
        **overrides,
    }
    fields.setdefault("body_sha256", hashlib.sha256(fields["body"].encode()).hexdigest())
    return Transaction(**fields)


def snapshot(*, at: datetime = NOW, **overrides: Any) -> Snapshot:
    """A ready live picture of T-1 at reg-1's camera (no evidence file unless ``evidence_sha256`` is given)."""
    fields: dict[str, Any] = {
        "id": "S-1",
        "transaction_id": "T-1",
        "store_id": STORE,
        "camera_serial": CAMERA,
        "kind": "live",
        "status": "ready",
        "created_at": at,
        **overrides,
    }
    return Snapshot(**fields)


def face(**overrides: Any) -> Face:
    """A good face in the customer zone of snapshot S-1."""
    fields: dict[str, Any] = {
        "id": "F-1",
        "snapshot_id": "S-1",
        "box": [0.1, 0.1, 0.3, 0.5],
        "quality": 0.9,
        "in_customer_zone": True,
        **overrides,
    }
    return Face(**fields)


def face_match(**overrides: Any) -> FaceMatch:
    """Face F-1 matched to person P-1."""
    fields: dict[str, Any] = {"face_id": "F-1", "person_id": "P-1", "similarity": 95.0, **overrides}
    return FaceMatch(**fields)


def alert(*, at: datetime = NOW, **overrides: Any) -> Alert:
    """An open product_mismatch alert on T-1; the dedupe key is the pipeline's (``tx:<id>:<rule>``), or a
    fresh one when there is no transaction."""
    fields: dict[str, Any] = {
        "transaction_id": "T-1",
        "store_id": STORE,
        "register_id": REGISTER,
        "rule": "product_mismatch",
        "severity": "medium",
        "message": "More seen than billed",
        "facts": {},
        "status": "open",
        "created_at": at,
        **overrides,
    }
    if "dedupe_key" not in fields:
        tid = fields["transaction_id"]
        fields["dedupe_key"] = f"tx:{tid}:{fields['rule']}" if tid else f"test:{next(_numbers)}"
    return Alert(**fields)


def watchlist_person(*, at: datetime = NOW, **overrides: Any) -> WatchlistPerson:
    """P-1, active in store-001 for a chargeback, enrolled at ``at`` for 30 days."""
    fields: dict[str, Any] = {
        "id": "P-1",
        "store_id": STORE,
        "status": "active",
        "reason": "chargeback",
        "enrolled_by": "carla@example.com",
        "enrolled_at": at,
        "expires_at": at + timedelta(days=30),
        **overrides,
    }
    return WatchlistPerson(**fields)


def watchlist_face(*, enrollment_image_sha256: str, at: datetime = NOW, **overrides: Any) -> WatchlistFace:
    """One enrolled face of P-1 on the tests' fake backend; the enrollment photo must be a stored file."""
    fields: dict[str, Any] = {
        "person_id": "P-1",
        "backend": "fake",
        "enrollment_image_sha256": enrollment_image_sha256,
        "created_at": at,
        **overrides,
    }
    fields.setdefault("id", f"WF-{fields['person_id']}")
    return WatchlistFace(**fields)


def pattern_count(**overrides: Any) -> PatternCount:
    """One day's count of one kind for one subject: a sale by cashier c-1 in store-001 on the clock's day."""
    fields: dict[str, Any] = {
        "store_id": STORE,
        "dimension": "cashier",
        "subject": "c-1",
        "day": date(2026, 11, 24),
        "kind": "sale",
        "count": 1,
        "amount": Decimal(0),
        **overrides,
    }
    return PatternCount(**fields)


def face_evaluation(
    *, at: datetime = NOW, backend: str = "local", match: float = 90, review: float = 80, **overrides: Any
) -> FaceEvaluation:
    """A recorded ``evaluate-faces`` run: 3 people, 1 false match in 40 impostor comparisons at 90, 2 misses in 20
    genuine ones, and the small-set flag, as handlers/learning/evaluation_rates.figures shapes its figures."""
    from handlers.learning.evaluation_rates import rate

    figures = {
        "too_small": True,
        "match_threshold": {
            "threshold": match,
            "false_match": rate(1, 40).as_dict(),
            "false_non_match": rate(2, 20).as_dict(),
        },
        "review_threshold": {
            "threshold": review,
            "false_match": rate(6, 40).as_dict(),
            "false_non_match": rate(0, 20).as_dict(),
        },
    }
    values: dict[str, Any] = {
        "finished_at": at,
        "backend": backend,
        "match_threshold": match,
        "review_threshold": review,
        "people": 3,
        "photos": 24,
        "genuine_comparisons": 20,
        "impostor_comparisons": 40,
        "refused_photos": 1,
        "figures": figures,
    }
    return FaceEvaluation(**{**values, **overrides})


def add(db: Database, *rows: Any) -> None:
    """Store the rows in one write, in the order given (each flushed before the next: ids follow that order)."""
    with UnitOfWork(db, write=True) as uow:
        for row in rows:
            uow.session.add(row)
            uow.session.flush()
        uow.commit()

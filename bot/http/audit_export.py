"""GET /api/v1/audit.csv: the audit log as CSV, behind the read API's bearer token.

Entries hold ids and reason codes only (never names, faces or free text), so the export can leave
the building for a regulator or an auditor. It streams page by page in id order, each page read
in its own short transaction; ``since`` and ``until`` (ISO 8601 with an offset) narrow it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

from flask import Blueprint, Response, current_app, request
from sqlalchemy import select

from bot.http.problems import problem
from bot.http.read_api import bearer_required
from bot.http.views import iso
from storage.models import AuditEntry
from storage.uow import UnitOfWork

blueprint = Blueprint("audit_export", __name__)
COLUMNS = ("id", "at", "actor", "action", "subject_type", "subject_id", "store_id", "reason_code", "outcome")
PAGE = 1000


@blueprint.get("/api/v1/audit.csv")
@bearer_required
def audit_csv() -> Response:
    try:
        since, until = _moment("since"), _moment("until")
    except ValueError as exc:
        return problem(422, "Invalid query", str(exc), errors=[{"field": str(exc).split(":")[0], "message": str(exc)}])
    db = current_app.extensions["flp"].db
    response = Response(_rows(db, since, until), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="audit.csv"'
    return response


def _moment(name: str) -> datetime | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name}: not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ValueError(f"{name}: needs an offset (e.g. 2026-11-25T00:00:00Z)")
    return moment


def _rows(db, since: datetime | None, until: datetime | None) -> Iterator[str]:
    yield _line(COLUMNS)
    after = 0
    while True:
        query = select(AuditEntry).where(AuditEntry.id > after).order_by(AuditEntry.id).limit(PAGE)
        if since is not None:
            query = query.where(AuditEntry.at >= since)
        if until is not None:
            query = query.where(AuditEntry.at < until)
        with UnitOfWork(db) as work:
            page = list(work.session.scalars(query))
        for entry in page:
            yield _line(
                (
                    entry.id,
                    iso(entry.at),
                    entry.actor,
                    entry.action,
                    entry.subject_type,
                    entry.subject_id,
                    entry.store_id,
                    entry.reason_code,
                    entry.outcome,
                )
            )
        if len(page) < PAGE:
            return
        after = page[-1].id


def _line(values: tuple) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([_cell(v) for v in values])
    return buffer.getvalue()


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A cell starting with = + - @ would run as a formula in a spreadsheet (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text

"""The read-only API behind the bearer ``API_TOKEN``. It reads; it never acts."""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from bot.http.problems import problem
from bot.http.views import alert_view, transaction_view, watchlist_view
from storage.uow import UnitOfWork

blueprint = Blueprint("read_api", __name__)
ALERT_STATUSES = ("open", "confirmed", "dismissed")
TRANSACTION_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")  # docs/interfaces.md, as core/pos_schema.py accepts it


def bearer_required(view: Callable[..., Response]) -> Callable[..., Response]:
    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Response:
        token = current_app.extensions["flp"].config.env.api_token
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if token is None or not token.get_secret_value():
            response = problem(401, "Unauthorized", "the read API is off: API_TOKEN is not set")
        elif scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.encode(), token.get_secret_value().encode()
        ):
            response = problem(401, "Unauthorized", "send Authorization: Bearer <API_TOKEN>")
        else:
            return view(*args, **kwargs)
        response.headers["WWW-Authenticate"] = "Bearer"  # every 401 names its scheme (RFC 9110)
        return response

    return guarded


def _uow() -> UnitOfWork:
    return UnitOfWork(current_app.extensions["flp"].db)


@blueprint.get("/api/v1/transactions/<transaction_id>")
@bearer_required
def get_transaction(transaction_id: str) -> Response:
    if not TRANSACTION_ID.fullmatch(transaction_id):
        # Could never have been accepted; and PostgreSQL refuses some strings (NUL) with an error, not "no rows".
        return problem(404, "Not Found", f"no transaction {transaction_id!r} (never received, or purged)")
    with _uow() as uow:
        transaction = uow.transactions.with_evidence(transaction_id)
        if transaction is None:
            return problem(404, "Not Found", f"no transaction {transaction_id!r} (never received, or purged)")
        return jsonify(
            transaction_view(
                transaction, uow.alerts.ids_for_transaction(transaction_id), uow.work.for_transaction(transaction_id)
            )
        )


@blueprint.get("/api/v1/alerts")
@bearer_required
def list_alerts() -> Response:
    status = request.args.get("status")
    if status is not None and status not in ALERT_STATUSES:
        return problem(
            422,
            "Invalid query",
            f"status must be one of {', '.join(ALERT_STATUSES)}",
            errors=[{"field": "status", "message": f"must be one of {', '.join(ALERT_STATUSES)}"}],
        )
    with _uow() as uow:
        alerts = uow.alerts.list(status=status)
        sightings = uow.alerts.sightings(alerts)
        return jsonify({"alerts": [alert_view(a, sightings.get(a.id, [])) for a in alerts]})


@blueprint.get("/api/v1/alerts/<alert_id>")
@bearer_required
def get_alert(alert_id: str) -> Response:
    with _uow() as uow:
        alert = uow.alerts.get(alert_id)
        if alert is None:
            return problem(404, "Not Found", f"no alert {alert_id!r}")
        return jsonify(alert_view(alert, uow.alerts.sightings([alert]).get(alert.id, [])))


@blueprint.get("/api/v1/watchlist")
@bearer_required
def list_watchlist() -> Response:
    with _uow() as uow:
        return jsonify({"watchlist": [watchlist_view(p) for p in uow.alerts.watchlist()]})

"""Operations endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

blueprint = Blueprint("ops", __name__)
log = logging.getLogger(__name__)


@blueprint.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
def readyz() -> Response:
    """503 only when the database is unreachable: POS intake must keep flowing while Webex or a camera is down."""
    services = current_app.extensions["flp"]
    body = {"database": "ok", **services.component_state}
    try:
        services.db.ping()
    except Exception as exc:
        log.warning("readiness: database unreachable: %s", type(exc).__name__)
        body["database"] = "unreachable"
        response = jsonify({"status": "unavailable", **body})
        response.status_code = 503
        return response
    return jsonify({"status": "ready", **body})


@blueprint.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(current_app.extensions["flp"].metrics.registry), mimetype=CONTENT_TYPE_LATEST)

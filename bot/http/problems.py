"""RFC 9457 problem+json responses, the error shape of every endpoint."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

from storage.evidence import EvidenceUnavailable

PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str | None = None, **extra: Any) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, **({"detail": detail} if detail else {}), **extra}
    return Response(json.dumps(body), status=status, mimetype=PROBLEM)


def install(app: Flask) -> None:
    """Every HTTP error, including Flask's own (404, 405, 413), answers as problem+json."""

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        return problem(exc.code or 500, exc.name, exc.description)

    @app.errorhandler(EvidenceUnavailable)
    def _evidence_unavailable(exc: EvidenceUnavailable) -> Response:
        # The picture exists but its store cannot be reached now; the reason names no URL or key.
        app.logger.warning("%s", exc)
        return problem(503, "Service Unavailable", "the evidence store cannot be reached; try again shortly")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        app.logger.exception("unhandled error")
        return problem(500, "Internal Server Error", "the error was logged; nothing was stored")

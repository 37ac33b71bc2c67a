"""The review console at ``/console``: the bot's Adaptive Cards in a browser, with working buttons.

Pages are thin shells; the cards are rendered in the page by Microsoft's Adaptive Cards
JavaScript renderer (static/vendor), and a press comes back as ``POST /console/api/actions`` with
the Submit data, which goes through the same router and handlers as a Webex press (handlers/console/presses.py).
Everything is behind a personal console token (console_auth.py); API_TOKEN never acts here.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from bot.http import console_auth as auth
from bot.http.problems import problem
from cards.actions import ENROLL_PROPOSAL
from handlers.console import presses as console_handlers
from handlers.console.proposals import answer_request
from handlers.console.timeline import alert_item, alert_items, evidence_photo, visible_stores, watchlist_cards
from storage.models import Face
from storage.uow import UnitOfWork
from vision.types import CameraError

log = logging.getLogger(__name__)
blueprint = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def init_app(app: Flask) -> None:
    auth.configure(app, app.extensions["flp"].config)
    app.register_blueprint(blueprint)


def _services() -> Any:
    return current_app.extensions["flp"]


@blueprint.after_request
def _headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if not request.path.startswith("/console/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


@blueprint.get("/signin")
def signin_page() -> str:
    return render_template(
        "console/signin.html",
        title="Sign in",
        csrf=auth.csrf_token(),
        person=None,
        next=_safe_next(request.args.get("next")),
        error=None,
    )


@blueprint.post("/signin")
def signin() -> Any:
    target = _safe_next(request.form.get("next"))
    if not auth.csrf_ok():
        return render_template(
            "console/signin.html",
            title="Sign in",
            csrf=auth.csrf_token(),
            person=None,
            next=target,
            error="The form had expired; please try again.",
        ), 400
    person = auth.person_for_token(_services().config, request.form.get("token", "").strip())
    if person is None:
        log.info("console sign-in refused (unknown token) from %s", request.remote_addr)
        return render_template(
            "console/signin.html",
            title="Sign in",
            csrf=auth.csrf_token(),
            person=None,
            next=target,
            error="That token is not a console token of anyone here.",
        ), 401
    auth.sign_in(person)
    log.info("console sign-in of %s", person.email)
    return redirect(target)


@blueprint.post("/signout")
def signout() -> Any:
    if auth.csrf_ok():
        session.clear()
    return redirect(url_for("console.signin_page"))


@blueprint.get("")
@blueprint.get("/")
@auth.signed_in
def timeline_page() -> str:
    return _page("timeline", "Alerts", url_for("console.timeline"))


@blueprint.get("/alerts/<alert_id>")
@auth.signed_in
def alert_page(alert_id: str) -> str:
    with _read() as uow:
        alert = _visible_alert(uow, alert_id)
        public_id = alert.public_id
    return _page("alert", f"Alert {public_id}", url_for("console.alert", alert_id=public_id))


@blueprint.get("/watchlist")
@auth.signed_in
def watchlist_page() -> str:
    return _page("watchlist", "Watchlist", url_for("console.watchlist"))


@blueprint.get("/stats")
@auth.signed_in
def stats_page() -> str:
    return _page("stats", "Stats", url_for("console.stats"))


@blueprint.get("/api/timeline")
@auth.signed_in
def timeline() -> Response:
    with _read() as uow:
        items = alert_items(uow, _services().config, g.person.email, photo_url=_photo_url, footage_url=_footage_url)
    for item in items:
        item["url"] = url_for("console.alert_page", alert_id=item["id"])
    return jsonify({"items": items})


@blueprint.get("/api/alerts/<alert_id>")
@auth.signed_in
def alert(alert_id: str) -> Response:
    services = _services()
    with UnitOfWork(services.db, write=True) as uow:
        found = _visible_alert(uow, alert_id)
        item = alert_item(uow, services.config, found, photo_url=_photo_url, footage_url=_footage_url)
        uow.audit.record(
            at=services.clock(),
            actor=g.person.email,
            action="view",
            subject_type="alert",
            subject_id=found.public_id,
            store_id=found.store_id,
            reason_code="console",
        )
        uow.commit()
    return jsonify({"items": [item]})


@blueprint.get("/alerts/<alert_id>/photo")
@auth.signed_in
def photo(alert_id: str) -> Response:
    services = _services()
    with UnitOfWork(services.db, write=True) as uow:
        found = _visible_alert(uow, alert_id)
        picture = evidence_photo(uow, services.evidence, found)
        if picture is None:
            abort(404)
        uow.audit.record(
            at=services.clock(),
            actor=g.person.email,
            action="view_photo",
            subject_type="alert",
            subject_id=found.public_id,
            store_id=found.store_id,
            reason_code="console",
        )
        uow.commit()
    response = Response(picture, mimetype="image/jpeg")
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


@blueprint.get("/alerts/<alert_id>/footage")
@auth.signed_in
def footage(alert_id: str) -> Any:
    """Ask the camera for its footage link only when someone wants it (the camera API has a rate budget)."""
    services = _services()
    with _read() as uow:
        found = _visible_alert(uow, alert_id)
        transaction = uow.transactions.get(found.transaction_id) if found.transaction_id else None
        serial, moment = found.camera_serial, transaction.occurred_at if transaction else found.created_at
    store = services.config.business.store(found.store_id)
    link = None
    if services.camera is not None and serial and store is not None:
        try:
            link = services.camera.video_link(serial, org_id=store.meraki_org_id, at=moment)
        except CameraError as exc:
            log.info("no footage link for alert %s: %s", found.public_id, exc.reason)
    if link is None:
        return render_template(
            "console/message.html",
            title="Footage",
            person=g.person,
            csrf=auth.csrf_token(),
            message="The camera gave no footage link for this moment (camera off or unreachable).",
        ), 404
    return redirect(link)


@blueprint.get("/api/watchlist")
@auth.signed_in
def watchlist() -> Response:
    services = _services()
    with _read() as uow:
        items = watchlist_cards(uow, services.config, g.person.email, now=services.clock())
    return jsonify({"items": items})


@blueprint.get("/api/stats")
@auth.signed_in
def stats() -> Response:
    services = _services()
    with UnitOfWork(services.db, write=True) as uow:
        replies = console_handlers.run_command("stats", ("7d",), g.person.email, uow=uow, **_dispatching(services))
    return jsonify(
        {
            "items": [
                {"id": f"stats-{n}", "card": r["card"], "markdown": r["markdown"], "thread": []}
                for n, r in enumerate(replies)
            ]
        }
    )


@blueprint.post("/api/actions")
@auth.signed_in
def act() -> Response:
    """A button press: ``{"event_id": "console:<32 hex>", "data": <the Submit data>, "title": <the button>}``."""
    if not auth.csrf_ok():
        return problem(403, "Forbidden", "the page is stale or not ours (CSRF check failed): reload it")
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not console_handlers.EVENT_ID.fullmatch(str(body.get("event_id", ""))):
        return problem(422, "Invalid press", "send {event_id: 'console:<32 hex digits>', data: {action: …}}")
    data = body.get("data")
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("action"), str)
        or len(json.dumps(data)) > console_handlers.MAX_DATA_BYTES
    ):
        return problem(422, "Invalid press", "data must be the button's Submit data, with an action")
    services = _services()
    with UnitOfWork(services.db, write=True) as uow:
        result = console_handlers.press(
            body["event_id"], data, str(body.get("title") or ""), g.person.email, uow=uow, **_dispatching(services)
        )
    services.wake_runner()  # a decision may have queued work (a fraud report, a Webex reply)
    replies = list(result.replies)
    if data["action"] == ENROLL_PROPOSAL and not result.duplicate:
        proposal = answer_request(
            body["event_id"],
            db=services.db,
            faces=services.faces,
            evidence=services.evidence,
            config=services.config,
            now=services.clock(),
            crop_url=_crop_url,
        )
        replies += [proposal] if proposal else []
    return jsonify({"replies": replies, "duplicate": result.duplicate})


@blueprint.get("/faces/<face_id>/crop")
@auth.signed_in
def crop(face_id: str) -> Response:
    """A face of a checkout picture, for the enrollment proposal (same visibility as the alert photo)."""
    services = _services()
    with UnitOfWork(services.db, write=True) as uow:
        face = uow.session.get(Face, face_id)
        store_id = face.snapshot.store_id if face is not None else None
        if face is None or face.crop_sha256 is None or store_id not in visible_stores(services.config, g.person.email):
            abort(404)
        file = uow.snapshots.file(face.crop_sha256)
        content = services.evidence.read(face.crop_sha256, file.content_type if file else "image/jpeg")
        uow.audit.record(
            at=services.clock(),
            actor=g.person.email,
            action="view_crop",
            subject_type="face",
            subject_id=face.id,
            store_id=store_id,
            reason_code="console",
        )
        uow.commit()
    response = Response(content, mimetype=file.content_type if file else "image/jpeg")
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


def _dispatching(services: Any) -> dict[str, Any]:
    return {
        "router": services.dependencies()["router"],
        "config": services.config,
        "now": services.clock(),
        "dependencies": services.dependencies(),
    }


def _page(view: str, title: str, source: str) -> str:
    return render_template(
        "console/page.html",
        title=title,
        view=view,
        source=source,
        person=g.person,
        csrf=auth.csrf_token(),
        actions_url=url_for("console.act"),
    )


def _read() -> UnitOfWork:
    return UnitOfWork(_services().db)


def _visible_alert(uow: UnitOfWork, alert_id: str) -> Any:
    found = uow.alerts.get(alert_id)
    if found is None or found.store_id not in visible_stores(_services().config, g.person.email):
        abort(404)
    return found


def _photo_url(public_id: str) -> str:
    return url_for("console.photo", alert_id=public_id)


def _crop_url(face_id: str) -> str:
    return url_for("console.crop", face_id=face_id)


def _footage_url(public_id: str) -> str:
    return url_for("console.footage", alert_id=public_id, _external=True)


def _safe_next(target: str | None) -> str:
    """Only back into the console (never an open redirect)."""
    if target and target.startswith("/console") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("console.timeline_page")

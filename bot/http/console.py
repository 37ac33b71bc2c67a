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
    url_for,
)

from bot.http import console_auth as auth
from bot.http.problems import problem
from cards.actions import ENROLL_PROPOSAL
from core.events import ConsoleCommand, ConsolePress, ConsoleRequest
from handlers.console import presses as console_handlers
from handlers.console import views
from handlers.console.proposals import answer_request

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
    # frame-ancestors does the same for browsers that read CSP; this for those (and scanners) that do not.
    response.headers["X-Frame-Options"] = "DENY"
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
    auth.sign_in(person, _services())
    log.info("console sign-in of %s", person.email)
    return redirect(target)


@blueprint.post("/signout")
def signout() -> Any:
    if auth.csrf_ok():
        auth.sign_out(_services())
    return redirect(url_for("console.signin_page"))


@blueprint.get("")
@blueprint.get("/")
@auth.signed_in
def timeline_page() -> str:
    return _page("timeline", "Alerts", url_for("console.timeline"))


@blueprint.get("/alerts/<alert_id>")
@auth.signed_in
def alert_page(alert_id: str) -> str:
    public_id = _handle(views.alert_id, alert_id, write=False)
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
    items = _handle(views.timeline, "", write=False, photo_url=_photo_url, footage_url=_footage_url)
    for item in items:
        item["url"] = url_for("console.alert_page", alert_id=item["id"])
    return jsonify({"items": items})


@blueprint.get("/api/alerts/<alert_id>")
@auth.signed_in
def alert(alert_id: str) -> Response:
    item = _handle(views.view_alert, alert_id, write=True, photo_url=_photo_url, footage_url=_footage_url)
    return jsonify({"items": [item]})


@blueprint.get("/alerts/<alert_id>/photo")
@auth.signed_in
def photo(alert_id: str) -> Response:
    response = Response(_handle(views.alert_photo, alert_id, write=True), mimetype="image/jpeg")
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


@blueprint.get("/alerts/<alert_id>/footage")
@auth.signed_in
def footage(alert_id: str) -> Any:
    link = _handle(views.footage_link, alert_id, write=False)
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
    items = _handle(views.watchlist, "", write=False)
    return jsonify({"items": items})


@blueprint.get("/api/stats")
@auth.signed_in
def stats() -> Response:
    replies = _services().handle(
        console_handlers.run_command, ConsoleCommand("stats", ("7d",), g.person.email), write=True
    )
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
    pressed = ConsolePress(body["event_id"], data, str(body.get("title") or ""), g.person.email)
    result = services.handle(console_handlers.press, pressed, write=True)
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
    content, content_type = _handle(views.face_crop, face_id, write=True)
    response = Response(content, mimetype=content_type)
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


def _handle(handler: Any, subject_id: str, *, write: bool, **request: Any) -> Any:
    """A console view through the service entry every route uses; what the person may not see is a 404."""
    try:
        return _services().handle(handler, ConsoleRequest(g.person.email, subject_id), write=write, **request)
    except views.NotVisible:
        abort(404)


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


def _photo_url(public_id: str) -> str:
    return url_for("console.photo", alert_id=public_id)


def _crop_url(face_id: str) -> str:
    return url_for("console.crop", face_id=face_id)


def _footage_url(public_id: str) -> str:
    return url_for("console.footage", alert_id=public_id, _external=True)


def _safe_next(target: str | None) -> str:
    """Only back into the console (never an open redirect); control characters (CR/LF) make it ignored."""
    if (
        target
        and target.startswith("/console")
        and not target.startswith("//")
        and "\\" not in target
        and target.isprintable()
    ):
        return target
    return url_for("console.timeline_page")

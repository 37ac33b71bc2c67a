"""Who is using the console: a personal token (its SHA-256 is ``people[].console_token_sha256``) traded
for a signed, HttpOnly, SameSite=Strict session cookie; a CSRF token on every POST.

API_TOKEN never signs anyone in: it reads, it never acts. The cookie's signing key is derived from
SESSION_SECRET, so every process of a split deployment accepts the others' cookies with no disk in
common; ``serve`` and the demo, when it is unset, keep one in DATA_DIR, created on first use. A session names the person and a fingerprint of their token hash, so changing or removing a
person's token in the configuration ends their sessions. It also names a row of ``console_sessions`` that
every console request finds and signing out deletes, so a cookie kept after sign-out (a copy, a shared
computer) is refused at once rather than for the rest of its 12 hours.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface

from bot.http.problems import problem
from core.config import SESSION_SECRET_REQUIRED, Config, ConfigError, PersonConfig
from storage.uow import UnitOfWork

SESSION_HOURS = 12
KEY_FILE = "console-session.key"


@dataclass(frozen=True)
class SignedIn:
    email: str
    role: str


class _ConsoleSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the key read (or created) on the console's first request."""

    def get_signing_serializer(self, app: Flask):
        if not app.secret_key and request.path.startswith("/console"):
            app.secret_key = session_key(app.extensions["flp"].config.env.data_dir)
        return super().get_signing_serializer(app)


def configure(app: Flask, config: Config) -> None:
    """Cookie settings for the console's session (the only user of Flask's session in this app)."""
    if config.env.session_secret is not None:
        app.secret_key = key_from_secret(config.env.session_secret.get_secret_value())
    elif config.mode in {"web", "worker"}:
        # load_config_from_environment already refused this; a process built another way must not fall back
        # to a key file that the other processes of the deployment would never see.
        raise ConfigError([SESSION_SECRET_REQUIRED])
    app.session_interface = _ConsoleSessions()
    app.config.update(
        SESSION_COOKIE_NAME="flp_console",
        SESSION_COOKIE_PATH="/console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=bool(config.env.public_url and config.env.public_url.scheme == "https"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
    )


def key_from_secret(secret: str) -> bytes:
    """The cookie signing key of SESSION_SECRET: an HMAC with a purpose label, so the operator's secret itself
    never signs anything and could key something else later without the two signatures being interchangeable."""
    return hmac.new(secret.encode(), b"flp console session cookie v1", hashlib.sha256).digest()


def session_key(data_dir: Path) -> bytes:
    """The cookie signing key from DATA_DIR, created once (atomically: the first process to link it wins)."""
    path = Path(data_dir) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        candidate = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(candidate, path)
        except FileExistsError:
            pass
        finally:
            candidate.unlink()
    return bytes.fromhex(path.read_text().strip())


def person_for_token(config: Config, token: str) -> PersonConfig | None:
    """The person whose console token this is; every configured hash is compared, in constant time."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    found = None
    for person in config.business.people:
        if person.console_token_sha256 and hmac.compare_digest(digest, person.console_token_sha256):
            found = person
    return found


def sign_in(person: PersonConfig, services: Any) -> None:
    """A new session of ``person``, recorded in the database first; any session this browser had is ended."""
    with UnitOfWork(services.db, write=True) as uow:
        if isinstance(session.get("sid"), str):
            uow.console_sessions.close(session["sid"])
        session_id = uow.console_sessions.open(person.email, now=services.clock(), lasts=timedelta(hours=SESSION_HOURS))
        uow.commit()
    session.clear()
    session.permanent = True
    session.update(
        email=person.email,
        token=_fingerprint(person),
        sid=session_id,
        since=int(time.time()),
        csrf=secrets.token_urlsafe(32),
    )


def sign_out(services: Any) -> None:
    """End the session on the server (its row goes), then in the browser (the cookie is emptied)."""
    if isinstance(session.get("sid"), str):
        with UnitOfWork(services.db, write=True) as uow:
            uow.console_sessions.close(session["sid"])
            uow.commit()
    session.clear()


def current(services: Any) -> SignedIn | None:
    config: Config = services.config
    email, since, session_id = session.get("email"), session.get("since", 0), session.get("sid")
    person = next((p for p in config.business.people if p.email == email), None)
    if person is None or person.console_token_sha256 is None or session.get("token") != _fingerprint(person):
        return None
    if time.time() - since > SESSION_HOURS * 3600 or not isinstance(session_id, str):
        return None
    with UnitOfWork(services.db) as uow:
        if not uow.console_sessions.is_open(session_id, person.email, now=services.clock()):
            return None
    return SignedIn(person.email, person.role)


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def csrf_ok() -> bool:
    """The session's token in the X-CSRF-Token header (fetch) or the csrf form field, from our own origin."""
    expected = session.get("csrf") or ""
    presented = request.headers.get("X-CSRF-Token") or request.form.get("csrf") or ""
    origin = request.headers.get("Origin")
    same_origin = origin is None or origin.rstrip("/") == request.host_url.rstrip("/")
    return bool(expected) and same_origin and hmac.compare_digest(presented.encode(), expected.encode())


def signed_in(view: Callable[..., Any]) -> Callable[..., Any]:
    """Pages redirect to the sign-in page; the console's JSON API answers 401."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        person = current(current_app.extensions["flp"])
        if person is None:
            session.pop("email", None)
            session.pop("sid", None)
            if request.path.startswith("/console/api/"):
                return problem(401, "Unauthorized", "not signed in (or the session ended): sign in again")
            return redirect(url_for("console.signin_page", next=request.full_path.rstrip("?")))
        g.person = person
        return view(*args, **kwargs)

    return guarded


def _fingerprint(person: PersonConfig) -> str:
    """A short digest of the configured token hash: the cookie is signed, not encrypted."""
    return hashlib.sha256(f"console-session:{person.console_token_sha256}".encode()).hexdigest()[:16]

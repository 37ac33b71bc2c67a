"""The composition root: ``build_services`` creates every collaborator; ``create_app`` the Flask app.

Handlers never import this module: they get what they need passed in by name.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, g, request
from flask.json.provider import DefaultJSONProvider

from bot import adapters
from bot.http.quota import StoreQuota
from bot.metrics import Metrics
from core.clock import Clock, system_clock
from core.config import Config
from core.injection import call_with
from core.messenger import Messenger
from handlers.pipeline.patterns import BaselineCache
from rules.engine import CompiledRule, compile_rules
from storage.db import Database
from storage.evidence import EvidenceStore
from storage.uow import UnitOfWork
from vision import image_prep
from vision.types import Camera, FaceBackend, ProductCounter


@dataclass
class Services:
    config: Config
    db: Database
    clock: Clock
    evidence: EvidenceStore
    metrics: Metrics
    camera: Camera | None
    faces: FaceBackend
    products: ProductCounter | None
    rules: list[CompiledRule]
    messenger: Messenger | None = None
    wake_runner: Callable[..., None] = lambda *kinds: None  # Background.wake: the kinds of new work, or all
    component_state: dict[str, str] = field(default_factory=dict)
    baselines: BaselineCache = field(default_factory=BaselineCache)

    def dependencies(self) -> dict[str, Any]:
        """What handlers and steps may ask for by name (``dependencies`` itself is for the step that
        dispatches chat events to handlers, which ask for these too)."""
        from bot.steps import router

        deps = {
            "config": self.config,
            "clock": self.clock,
            "evidence": self.evidence,
            "read_uow": lambda: UnitOfWork(self.db),
            "write_uow": lambda: UnitOfWork(self.db, write=True),
            "camera": self.camera,
            "faces": self.faces,
            "products": self.products,
            "rules": self.rules,
            "messenger": self.messenger,
            "component_state": self.component_state,
            "router": router,
            "baselines": self.baselines,
        }
        deps["dependencies"] = deps
        return deps

    def handle(self, handler: Callable[..., Any], event: Any, *, write: bool, **request: Any) -> Any:
        """The one entry of every HTTP route into a handler: a unit of work, the collaborators by name, and what
        only this request knows (``request``: e.g. the console's URL builders)."""
        with UnitOfWork(self.db, write=write) as uow:
            return call_with(handler, event, {**self.dependencies(), **request, "uow": uow})

    def close(self) -> None:
        """At the end of a process: the face backend's worker processes (if any), then the database pool."""
        close_faces = getattr(self.faces, "close", None)
        if close_faces is not None:
            close_faces()
        self.db.dispose()

    def queue_counts(self) -> dict[str, int]:
        with UnitOfWork(self.db) as uow:
            return uow.work.counts()


def build_services(config: Config, **overrides: Any) -> Services:
    """Real collaborators from the configuration; tests pass fakes by name (``clock=…``, ``db=…``)."""
    # Process-wide, as Pillow's own limit is: every picture decoded here is held to it.
    image_prep.limit_pixels(round(config.business.recognition.max_picture_megapixels * 1_000_000))
    db = overrides.pop("db", None) or Database(config.env.database_url)
    clock = overrides.pop("clock", system_clock)
    services = Services(
        config=config,
        db=db,
        clock=clock,
        evidence=overrides.pop("evidence", None) or adapters.make_evidence_store(config),
        metrics=overrides.pop("metrics", None) or Metrics(),
        camera=overrides.pop("camera") if "camera" in overrides else adapters.make_camera(config, db, clock),
        faces=overrides.pop("faces", None) or adapters.make_face_backend(config, db),
        products=overrides.pop("products") if "products" in overrides else adapters.make_product_counter(config),
        rules=compile_rules(config.business.rules),
        messenger=overrides.pop("messenger") if "messenger" in overrides else adapters.make_messenger(config),
    )
    for name, value in overrides.items():
        if not hasattr(services, name):
            raise TypeError(f"build_services: unknown collaborator {name!r}")
        setattr(services, name, value)
    services.component_state.update(
        camera="configured" if config.env.meraki_dashboard_api_key else "off",
        webex="configured" if config.env.webex_access_token else "off",
        broker="configured" if config.env.mqtt_url else "off",
        runner="not running in this process",
        recognition="not prepared in this process",
        evidence=services.evidence.probe(),
    )
    services.metrics.watch_queue(services.queue_counts)
    return services


def create_app(services: Services) -> Flask:
    from bot.http import (
        audit_export,
        console,
        credential_failures,
        feeds,
        intake,
        openapi,
        ops,
        problems,
        read_api,
        webex_events,
    )

    if services.config.env.pos_webhook_secret is None:
        raise ValueError("POS_WEBHOOK_SECRET is required to serve the POS intake")
    app = Flask("fraud_loss_prevention")
    app.config["MAX_CONTENT_LENGTH"] = intake.MAX_BODY_BYTES
    if isinstance(app.json, DefaultJSONProvider):  # always (Flask's own); sort_keys is the default provider's
        app.json.sort_keys = False
    app.extensions["flp"] = services
    quota = services.config.business.intake
    app.extensions["flp_quota"] = StoreQuota(quota.per_store_per_s, quota.burst)
    problems.install(app)
    credential_failures.install(app)  # before the blueprints: a held-back address is refused first
    for module in (intake, read_api, ops, webex_events, audit_export, feeds, openapi):
        app.register_blueprint(module.blueprint)
    console.init_app(app)  # the review console at /console (its own session cookie and CSRF)

    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _observe(response):
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        services.metrics.http_latency.labels(endpoint).observe(
            time.perf_counter() - g.get("started", time.perf_counter())
        )
        return response

    return app

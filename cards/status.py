"""The status card: each dependency's health in plain words and the state of the background queue."""

from __future__ import annotations

from typing import Any

from cards import elements as el
from cards.views import FaceEvaluationView, HealthView, StatusView

STATE_COLOR = {"ok": "good", "degraded": "warning", "down": "attention", "off": "default"}
HEALTHY = frozenset({"ok", "off"})  # "off" is a choice (e.g. no camera key), not a fault


def status_card(view: StatusView) -> dict[str, Any]:
    """A headline (all working, or what is not), one row per dependency, then the queue."""
    parts = [
        ("Database", view.database),
        ("Background runner", view.runner),
        ("Webex", view.webex),
        ("Camera", view.camera),
        (f"Recognition ({view.recognition_backend})", view.recognition),
        ("Entrance broker", view.broker),
        ("Evidence store", view.evidence),
    ]
    failing = [name for name, health in parts if health.state not in HEALTHY]
    headline = el.text(
        "All working" if not failing else "Needs attention: " + ", ".join(failing),
        weight="bolder",
        color="good" if not failing else "attention",
    )
    body = [el.text("Status", size="medium", weight="bolder"), headline]
    body += [_row(name, health) for name, health in parts]
    body += _queue(view)
    body += _failed_messages(view)
    if view.face_evaluation is not None:
        body += face_evaluation_section(view.face_evaluation)
    return el.card(body, fallback_text="Status: " + ("all working" if not failing else "needs attention"))


def _row(name: str, health: HealthView) -> dict[str, Any]:
    state = [el.text(health.state, weight="bolder", color=STATE_COLOR.get(health.state, "default"))]
    if health.detail:
        state.append(el.text(health.detail, subtle=True, spacing="none"))
    return el.column_set([el.column([el.text(name)], width=2), el.column(state, width=3)], spacing="small")


def _queue(view: StatusView) -> list[dict[str, Any]]:
    """Work items by status, and how long the oldest pending one has waited."""
    counts = [(status, str(count)) for status, count in sorted(view.queue_counts.items())]
    oldest = el.duration(view.oldest_pending_age_s) if view.oldest_pending_age_s is not None else "none pending"
    return [el.heading("Queue", separator=True), el.fact_set([*counts, ("Oldest pending", oldest)])]


def _failed_messages(view: StatusView) -> list[dict[str, Any]]:
    """Messages that never reached Webex (refused, or their step died) in the last 24 h, and the newest reason."""
    parts = [
        el.heading("Webex messages", separator=True),
        el.fact_set([("Failed (last 24 h)", str(view.failed_messages))]),
    ]
    if view.newest_failure:
        parts.append(el.text(f"Newest: {view.newest_failure}", subtle=True, spacing="none"))
    return parts


def face_evaluation_section(view: FaceEvaluationView) -> list[dict[str, Any]]:
    """Whether face matching was measured under the thresholds in use, and what was measured (stats card too)."""
    parts = [
        el.heading("Face matching accuracy", separator=True),
        el.text(view.notice, color="warning" if view.attention else None, spacing="small"),
    ]
    if view.facts:
        parts.append(el.fact_set(view.facts))
    return parts

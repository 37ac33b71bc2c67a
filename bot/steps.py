"""The step catalogue (core/steps.py) made runnable: each kind's handler and dead-letter settlement resolved.

Importing this module also imports every handler module, which registers the chat commands and card
actions on the router. A kind without a handler here waits in the queue, durably, until a process
that can run it claims it.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from bot.runner import DeadLetter, Step
from core.routes import router
from core.steps import CATALOGUE, StepKind, camera_lane

# Imported for what they register on the router (chat commands and card actions), not for a name.
from handlers.chat import alert_actions, commands, watchlist  # noqa: F401


def _resolve(target: str) -> Any:
    module, name = target.split(":")
    return getattr(import_module(module), name)


STEPS: dict[str, Step] = {kind: _resolve(spec.handler) for kind, spec in CATALOGUE.items()}

# What a dead-lettered step leaves to settle (bot/runner.py: on_dead).
ON_DEAD: dict[str, DeadLetter] = {
    kind: _resolve(spec.settle_dead) for kind, spec in CATALOGUE.items() if spec.settle_dead is not None
}

CAMERA_LANE: frozenset[StepKind] = camera_lane()

__all__ = ["CAMERA_LANE", "ON_DEAD", "STEPS", "router"]

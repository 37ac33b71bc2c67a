"""A transaction's correlation status (the read API's ``correlation.status``) and the moves it may make.

Every change of status goes through ``Transaction.move_to`` (storage/models.py), which asks ``allowed``
here: a checkout is pending, then capturing, analyzing, and ends done, skipped or failed. An end is
final: a later picture may add alerts to a failed or done checkout, but never reopens it.
"""

from __future__ import annotations

from enum import StrEnum


class CorrelationStatus(StrEnum):
    PENDING = "pending"  # stored, not triaged yet
    CAPTURING = "capturing"  # triage asked for pictures
    ANALYZING = "analyzing"  # a picture is in, being analysed
    DONE = "done"  # the first picture (or, without one, the payment alone) was evaluated
    SKIPPED = "skipped"  # no picture by policy, an unknown place, or the camera off
    FAILED = "failed"  # no picture could be taken or analysed; the rules still ran without one

    @property
    def in_progress(self) -> bool:
        return self in IN_PROGRESS


IN_PROGRESS = frozenset({CorrelationStatus.PENDING, CorrelationStatus.CAPTURING, CorrelationStatus.ANALYZING})

_MOVES: dict[CorrelationStatus, frozenset[CorrelationStatus]] = {
    CorrelationStatus.PENDING: frozenset(
        {
            CorrelationStatus.CAPTURING,
            CorrelationStatus.ANALYZING,
            CorrelationStatus.SKIPPED,
            CorrelationStatus.DONE,
            CorrelationStatus.FAILED,
        }
    ),
    CorrelationStatus.CAPTURING: frozenset(
        {CorrelationStatus.ANALYZING, CorrelationStatus.DONE, CorrelationStatus.FAILED}
    ),
    CorrelationStatus.ANALYZING: frozenset({CorrelationStatus.DONE, CorrelationStatus.FAILED}),
    CorrelationStatus.DONE: frozenset(),
    CorrelationStatus.SKIPPED: frozenset(),
    CorrelationStatus.FAILED: frozenset(),
}


class IllegalMove(ValueError):
    """A status change the correlation cannot make (a bug in the step that asked for it)."""


def allowed(current: str, target: str) -> bool:
    return CorrelationStatus(target) in _MOVES[CorrelationStatus(current)]


def check_move(current: str, target: str) -> CorrelationStatus:
    """The target as a status, or ``IllegalMove`` naming both ends."""
    if not allowed(current, target):
        raise IllegalMove(f"a correlation cannot go from {current} to {target}")
    return CorrelationStatus(target)

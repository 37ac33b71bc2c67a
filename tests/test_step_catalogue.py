"""core/steps.py and core/correlation.py: every step kind declared once with a handler, a lane and a retry
policy; the correlation status moves only forward and its ends are final."""

from __future__ import annotations

import inspect

import pytest

from bot.steps import CAMERA_LANE, ON_DEAD, STEPS
from core.correlation import CorrelationStatus, IllegalMove, allowed, check_move
from core.steps import CATALOGUE, CORRELATION_STEPS, NOTHING_TO_SETTLE, Lane, RetryPolicy, StepKind
from storage.models import Transaction


def test_every_kind_has_exactly_one_entry_and_a_callable_handler() -> None:
    assert set(CATALOGUE) == set(StepKind)
    assert set(STEPS) == set(StepKind)
    for kind, handler in STEPS.items():
        assert callable(handler), kind
        assert next(iter(inspect.signature(handler).parameters)) == "item", kind  # a step takes its work item first
    handlers = [spec.handler for spec in CATALOGUE.values()]
    assert len(handlers) == len(set(handlers))  # one handler, one kind


def test_the_stored_kinds_keep_their_names() -> None:
    # work_items.kind holds these strings: renaming one strands every queued row of that kind.
    assert {k.value for k in StepKind} >= {
        "triage",
        "capture_live",
        "capture_exact",
        "analyze",
        "decide",
        "deliver",
        "handle_event",
        "notify_alert",
        "watchlist_forget",
        "watchlist_expiry",
    }


def test_camera_steps_have_their_own_lane_and_correlation_steps_settle_when_they_die() -> None:
    assert CAMERA_LANE == {
        StepKind.CAPTURE_LIVE,
        StepKind.CAPTURE_EXACT,
        StepKind.CHECKOUT_SNAPSHOT,
        StepKind.ENTRANCE_VISIT,
    }
    assert all(CATALOGUE[k].lane is Lane.CAMERA for k in CAMERA_LANE)
    assert CORRELATION_STEPS == {
        StepKind.TRIAGE,
        StepKind.CAPTURE_LIVE,
        StepKind.CAPTURE_EXACT,
        StepKind.ANALYZE,
        StepKind.DECIDE,
    }


def test_every_camera_step_yields_its_waits_so_none_holds_a_worker_while_a_picture_gets_ready() -> None:
    # A camera step that called the blocking ``snapshot`` would sit in a camera worker for the whole readiness
    # poll; a generator's waits are parked by the runner (core/waiting.py) instead.
    assert all(inspect.isgeneratorfunction(STEPS[kind]) for kind in CAMERA_LANE), [
        kind for kind in CAMERA_LANE if not inspect.isgeneratorfunction(STEPS[kind])
    ]


def test_every_kind_settles_its_subject_when_it_dies_or_says_it_has_none() -> None:
    # The sweeps' next period does their work again (core/steps.py); every other kind has a subject to settle.
    assert set(ON_DEAD) == set(StepKind) - NOTHING_TO_SETTLE and all(callable(f) for f in ON_DEAD.values())
    for settle in ON_DEAD.values():
        assert list(inspect.signature(settle).parameters)[:4] == ["work", "item", "error", "now"]


def test_a_retry_policy_doubles_up_to_its_cap_and_a_service_retry_after_wins() -> None:
    policy = RetryPolicy(attempts=4, base_s=10.0, cap_s=35.0)
    assert [policy.delay_s(n) for n in (1, 2, 3, 4)] == [10.0, 20.0, 35.0, 35.0]
    assert policy.delay_s(2, retry_after_s=3.0) == 3.0
    assert [policy.gives_up(n) for n in (3, 4, 5)] == [False, True, True]


def test_the_correlation_moves_forward_and_its_ends_are_final() -> None:
    path = [CorrelationStatus.PENDING, CorrelationStatus.CAPTURING, CorrelationStatus.ANALYZING, CorrelationStatus.DONE]
    assert all(allowed(a, b) for a, b in zip(path, path[1:], strict=False))
    ends = (CorrelationStatus.DONE, CorrelationStatus.SKIPPED, CorrelationStatus.FAILED)
    assert not any(allowed(end, other) for end in ends for other in CorrelationStatus)
    assert not allowed(CorrelationStatus.ANALYZING, CorrelationStatus.CAPTURING)
    assert [s for s in CorrelationStatus if s.in_progress] == path[:3]
    with pytest.raises(IllegalMove, match="from done to capturing"):
        check_move("done", "capturing")


def test_a_transaction_changes_status_only_through_move_to() -> None:
    transaction = Transaction(status="pending")
    transaction.move_to(CorrelationStatus.SKIPPED, "triage: nothing risky")
    assert (transaction.status, transaction.status_reason) == ("skipped", "triage: nothing risky")
    with pytest.raises(IllegalMove):
        transaction.move_to(CorrelationStatus.DONE)
    assert transaction.status == "skipped"

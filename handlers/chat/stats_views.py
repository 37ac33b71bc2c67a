"""From storage's counts to the stats card's view, shared by `stats [7d]` and the daily digest so both read alike."""

from __future__ import annotations

from cards.views import FaceEvaluationView, RulePrecision, StoreStatsRow
from core.config import Config
from handlers.learning.evaluation_rates import notice, percent
from storage.stats import StoreStats
from storage.uow import UnitOfWork


def stats_row(row: StoreStats, config: Config) -> StoreStatsRow:
    """One store's counts as the card shows them (the first currency only: a store bills in one)."""
    store = config.business.store(row.store_id)
    currency, amount = next(iter(sorted(row.loss_prevented.items())), ("", 0))
    return StoreStatsRow(
        store_id=row.store_id,
        store_name=store.name if store else row.store_id,
        transactions_checked=row.transactions,
        pictures=row.pictures,
        alerts_by_rule=dict(row.alerts_by_rule),
        confirmed=row.confirmed,
        dismissed=row.dismissed,
        open_older_than_a_day=row.open_older_than_a_day,
        loss_prevented_amount=f"{amount:.2f}",
        currency=currency,
    )


def rule_rows(precision: dict[str, tuple[int, int]]) -> tuple[RulePrecision, ...]:
    """Each rule's (confirmed, decided), in name order."""
    return tuple(RulePrecision(rule, confirmed, decided) for rule, (confirmed, decided) in sorted(precision.items()))


def face_evaluation_view(uow: UnitOfWork, config: Config) -> FaceEvaluationView:
    """The latest evaluation of the configured face backend against the thresholds configured now."""
    backend = config.env.recognition_backend
    latest = uow.face_evaluations.latest(backend)
    attention, line = notice(latest, backend=backend, recognition=config.business.recognition)
    if latest is None:
        return FaceEvaluationView(line, attention)
    figures = latest.figures
    facts: list[tuple[str, str]] = [
        ("Evaluated", f"{latest.finished_at:%Y-%m-%d} on {backend}"),
        ("People / photos", f"{latest.people} / {latest.photos}"),
        ("Comparisons", f"{latest.genuine_comparisons} genuine, {latest.impostor_comparisons} impostor"),
        ("Refused photos", str(latest.refused_photos)),
    ]
    for key, name in (("match_threshold", "match"), ("review_threshold", "review")):
        at = figures.get(key) or {}
        threshold = at.get("threshold")
        for kind, label in (("false_match", "False matches"), ("false_non_match", "False non-matches")):
            rate = at.get(kind) or {}
            facts.append(
                (
                    f"{label} at {name} {threshold:g}" if isinstance(threshold, (int, float)) else label,
                    f"{percent(rate.get('rate'))} (95 %: {_interval(rate)})",
                )
            )
    return FaceEvaluationView(line, attention, tuple(facts))


def _interval(rate: dict) -> str:
    low, high = rate.get("low"), rate.get("high")
    return "no comparisons" if low is None or high is None else f"{percent(low)} to {percent(high)}"

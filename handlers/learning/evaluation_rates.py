"""From an evaluation's comparisons to error rates per threshold, with 95 % Wilson intervals, and what they mean.

A comparison is a match at threshold t when its similarity is at least t (as ``match_threshold`` is applied).
False match rate: impostor comparisons matched / impostor comparisons. False non-match rate: genuine comparisons
not matched / genuine comparisons. Photos refused by the quality gates made no comparison and are counted apart.
The interval is Wilson's score interval, which stays honest at 0 errors (where the normal k/n ± … says 0 to 0);
it is six lines, written here rather than importing scipy.stats (no types, a second of import) for one formula.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.config import RecognitionConfig
from handlers.learning.face_evaluation import HIGHEST_THRESHOLD, LOWEST_THRESHOLD, EvaluationRun

CONFIDENCE = 0.95
_Z = 1.959963984540054  # the standard normal quantile of 1 - (1 - CONFIDENCE) / 2
# Below these a rate says little: with 200 impostor comparisons and no error, the false match rate can still be
# up to ~1.9 % at 95 % confidence; with fewer than 20 people, the people themselves are the sample.
MIN_PEOPLE = 20
MIN_IMPOSTOR_COMPARISONS = 200


@dataclass(frozen=True)
class Rate:
    errors: int
    trials: int
    low: float | None  # 95 % interval; None when there were no trials
    high: float | None

    @property
    def value(self) -> float | None:
        return self.errors / self.trials if self.trials else None

    def as_dict(self) -> dict[str, Any]:
        return {"errors": self.errors, "trials": self.trials, "rate": self.value, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class ThresholdRow:
    threshold: float
    false_match: Rate
    false_non_match: Rate
    refused_photos: int
    marks: tuple[str, ...]  # match_threshold and/or review_threshold when this is one of them


def rate(errors: int, trials: int) -> Rate:
    """The observed rate with its Wilson score interval."""
    if not trials:
        return Rate(errors, trials, None, None)
    p, z2 = errors / trials, _Z * _Z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = _Z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    return Rate(errors, trials, max(0.0, centre - half), min(1.0, centre + half))


def thresholds(recognition: RecognitionConfig) -> list[float]:
    """50 to 99, and the configured thresholds wherever they are."""
    configured = {float(recognition.match_threshold), float(recognition.review_threshold)}
    return sorted({float(t) for t in range(LOWEST_THRESHOLD, HIGHEST_THRESHOLD + 1)} | configured)


def at(run: EvaluationRun, threshold: float, recognition: RecognitionConfig) -> ThresholdRow:
    genuine = [c for c in run.comparisons if c.genuine]
    impostor = [c for c in run.comparisons if not c.genuine]
    false_matches = sum(1 for c in impostor if c.similarity is not None and c.similarity >= threshold)
    misses = sum(1 for c in genuine if c.similarity is None or c.similarity < threshold)
    marks = tuple(
        name
        for name, value in (
            ("match_threshold", recognition.match_threshold),
            ("review_threshold", recognition.review_threshold),
        )
        if float(value) == threshold
    )
    return ThresholdRow(
        threshold, rate(false_matches, len(impostor)), rate(misses, len(genuine)), run.refused_photos, marks
    )


def table(run: EvaluationRun, recognition: RecognitionConfig) -> list[ThresholdRow]:
    return [at(run, t, recognition) for t in thresholds(recognition)]


def too_small(run: EvaluationRun) -> bool:
    impostor = sum(1 for c in run.comparisons if not c.genuine)
    return len(run.enrolled) < MIN_PEOPLE or impostor < MIN_IMPOSTOR_COMPARISONS


def warnings(run: EvaluationRun) -> list[str]:
    """Plain words when the set is too small to say anything, or a part of it could not be used."""
    said = []
    impostor = sum(1 for c in run.comparisons if not c.genuine)
    if too_small(run):
        said.append(
            f"The set is too small to say anything: {len(run.enrolled)} people enrolled and {impostor} impostor "
            f"comparisons (at least {MIN_PEOPLE} people and {MIN_IMPOSTOR_COMPARISONS} impostor comparisons are "
            "needed). Read the intervals, not the rates: they show how little is known."
        )
    if not any(c.genuine for c in run.comparisons):
        said.append("No genuine comparison was made: each person needs at least two usable photos.")
    missing = [p for p in run.people if p not in run.enrolled]
    if missing:
        said.append(f"{len(missing)} of {len(run.people)} people could not be enrolled (every photo was refused).")
    return said


def figures(run: EvaluationRun, recognition: RecognitionConfig, finished_at: datetime) -> dict[str, Any]:
    """What is recorded and shown later (no names, no photos): counts, the rates at the two configured thresholds."""
    match, review = (
        at(run, recognition.match_threshold, recognition),
        at(run, recognition.review_threshold, recognition),
    )
    return {
        "finished_at": finished_at.isoformat(),
        "backend": run.backend,
        "people": len(run.people),
        "people_enrolled": len(run.enrolled),
        "photos": run.photos,
        "genuine_comparisons": sum(1 for c in run.comparisons if c.genuine),
        "impostor_comparisons": sum(1 for c in run.comparisons if not c.genuine),
        "refused_photos": run.refused_photos,
        "too_small": too_small(run),
        "match_threshold": {
            "threshold": recognition.match_threshold,
            "false_match": match.false_match.as_dict(),
            "false_non_match": match.false_non_match.as_dict(),
        },
        "review_threshold": {
            "threshold": recognition.review_threshold,
            "false_match": review.false_match.as_dict(),
            "false_non_match": review.false_non_match.as_dict(),
        },
    }


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def interval(rate_: Rate) -> str:
    if rate_.low is None or rate_.high is None:
        return "no comparisons"
    return f"{100 * rate_.low:.1f}-{100 * rate_.high:.1f} %"


def notice(
    latest: Any | None,
    *,
    backend: str,
    recognition: RecognitionConfig,
    command: str = "python -m bot evaluate-faces DIR",
) -> tuple[bool, str]:
    """(needs attention, one line) about the latest recorded evaluation of ``backend`` against the thresholds now.

    ``latest`` is a ``face_evaluations`` row (or anything with its attributes), None when there is none."""
    if latest is None:
        return True, f"face matching on {backend} was never evaluated: measure it on your own photos with `{command}`"
    when = latest.finished_at.strftime("%Y-%m-%d")
    then = (latest.match_threshold, latest.review_threshold)
    now = (float(recognition.match_threshold), float(recognition.review_threshold))
    if then != now:
        return True, (
            f"the thresholds changed since face matching was last evaluated on {when} (match {then[0]:g} / review "
            f"{then[1]:g} then, {now[0]:g} / {now[1]:g} now): evaluate again with `{command}`"
        )
    at_match = latest.figures.get("match_threshold", {})
    fmr, fnmr = at_match.get("false_match", {}), at_match.get("false_non_match", {})
    small = " (too few people to say much)" if latest.figures.get("too_small") else ""
    return False, (
        f"evaluated {when} on {latest.people} people{small}: at match_threshold {now[0]:g} false matches "
        f"{percent(fmr.get('rate'))} (up to {percent(fmr.get('high'))}), false non-matches "
        f"{percent(fnmr.get('rate'))} (up to {percent(fnmr.get('high'))})"
    )

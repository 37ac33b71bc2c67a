"""The outputs of ``python -m bot evaluate-faces``: a terminal table, ``report.json``, ``report.html`` and its chart.

The HTML is one self-contained file (the chart is embedded too) rendered by Jinja2 with autoescaping: folder and
file names come from the operator's disk and are only ever text in it.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2

from core.config import RecognitionConfig
from handlers.learning import evaluation_rates
from handlers.learning.evaluation_rates import ThresholdRow, interval, percent
from handlers.learning.face_evaluation import EvaluationRun

CHART_NAME = "threshold-chart.png"
JSON_NAME = "report.json"
HTML_NAME = "report.html"


@dataclass(frozen=True)
class Report:
    run: EvaluationRun
    rows: list[ThresholdRow]
    warnings: list[str]
    figures: dict[str, Any]
    recognition: RecognitionConfig


def build(run: EvaluationRun, recognition: RecognitionConfig, finished_at: datetime) -> Report:
    return Report(
        run,
        evaluation_rates.table(run, recognition),
        evaluation_rates.warnings(run),
        evaluation_rates.figures(run, recognition, finished_at),
        recognition,
    )


def terminal_table(report: Report) -> str:
    """Every threshold with both rates and their intervals; the configured thresholds marked."""
    run = report.run
    lines = [
        f"face backend {run.backend}: {len(run.people)} people ({len(run.enrolled)} enrolled), {run.photos} photos, "
        f"{report.figures['genuine_comparisons']} genuine and {report.figures['impostor_comparisons']} impostor "
        f"comparisons, {run.refused_photos} photos refused by the quality gates",
        "",
        f"{'threshold':>9}  {'false match':>11}  {'95 % interval':>14}  {'false non-match':>15}  "
        f"{'95 % interval':>14}  {'refused':>7}",
    ]
    for row in report.rows:
        mark = ("  <- " + ", ".join(row.marks)) if row.marks else ""
        lines.append(
            f"{row.threshold:>9g}  {percent(row.false_match.value):>11}  {interval(row.false_match):>14}  "
            f"{percent(row.false_non_match.value):>15}  {interval(row.false_non_match):>14}  "
            f"{row.refused_photos:>7}{mark}"
        )
    lines += ["", *(f"WARNING: {w}" for w in report.warnings)]
    return "\n".join(lines).rstrip() + "\n"


def write(report: Report, out: Path) -> dict[str, Path]:
    """report.json, the chart and report.html in ``out`` (created); their paths."""
    out.mkdir(parents=True, exist_ok=True)
    chart = _chart(report)
    paths = {"json": out / JSON_NAME, "chart": out / CHART_NAME, "html": out / HTML_NAME}
    paths["chart"].write_bytes(chart)
    paths["json"].write_text(json.dumps(as_json(report), indent=2), encoding="utf-8")
    paths["html"].write_text(_html(report, chart), encoding="utf-8")
    return paths


def as_json(report: Report) -> dict[str, Any]:
    run = report.run
    return {
        **report.figures,
        "search_floor": run.floor,
        "confidence": evaluation_rates.CONFIDENCE,
        "interval_method": "wilson",
        "warnings": report.warnings,
        "enrolled": run.enrolled,
        "thresholds": [
            {
                "threshold": row.threshold,
                "marks": list(row.marks),
                "false_match": row.false_match.as_dict(),
                "false_non_match": row.false_non_match.as_dict(),
                "refused_photos": row.refused_photos,
            }
            for row in report.rows
        ],
        "refusals": [vars(r) for r in run.refusals],
        "comparisons": [
            {
                "person": c.person,
                "photo": c.photo,
                "against": c.against,
                "genuine": c.genuine,
                "similarity": c.similarity,
            }
            for c in run.comparisons
        ],
    }


def _chart(report: Report) -> bytes:
    import matplotlib

    matplotlib.use("Agg")  # no display: a file
    from matplotlib.figure import Figure

    xs = [row.threshold for row in report.rows]
    fmr = [100 * (row.false_match.value or 0.0) for row in report.rows]
    fnmr = [100 * (row.false_non_match.value or 0.0) for row in report.rows]
    figure = Figure(figsize=(10, 4.2), dpi=100)
    by_threshold, det = figure.subplots(1, 2)
    by_threshold.plot(xs, fmr, label="false match rate", color="#c0392b")
    by_threshold.fill_between(
        xs,
        [100 * (r.false_match.low or 0) for r in report.rows],
        [100 * (r.false_match.high or 0) for r in report.rows],
        color="#c0392b",
        alpha=0.15,
        label="95 % interval",
    )
    by_threshold.plot(xs, fnmr, label="false non-match rate", color="#2471a3")
    by_threshold.fill_between(
        xs,
        [100 * (r.false_non_match.low or 0) for r in report.rows],
        [100 * (r.false_non_match.high or 0) for r in report.rows],
        color="#2471a3",
        alpha=0.15,
    )
    for name, value, style in (
        ("match_threshold", report.recognition.match_threshold, "-"),
        ("review_threshold", report.recognition.review_threshold, "--"),
    ):
        by_threshold.axvline(value, color="black", linestyle=style, linewidth=1)
        by_threshold.annotate(f"{name} {value:g}", (value, 95), rotation=90, ha="right", va="top", fontsize=8)
    by_threshold.set(xlabel="threshold (similarity)", ylabel="%", ylim=(0, 100), title="Error rates by threshold")
    by_threshold.legend(fontsize=8, loc="center left")
    det.plot(fmr, fnmr, marker=".", color="#555555")
    for row in report.rows:
        if row.marks:
            det.annotate(
                ", ".join(row.marks),
                (100 * (row.false_match.value or 0), 100 * (row.false_non_match.value or 0)),
                fontsize=8,
            )
    det.set(xlabel="false match rate %", ylabel="false non-match rate %", title="DET (each point a threshold)")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


_TEMPLATE = jinja2.Environment(autoescape=True).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Face matching evaluation</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}
table{border-collapse:collapse}td,th{padding:.2rem .6rem;text-align:right;border-bottom:1px solid #ddd}
tr.configured{background:#fff3cd;font-weight:bold}.warning{background:#f8d7da;padding:.6rem;border-radius:4px}
</style></head><body>
<h1>Face matching evaluation</h1>
<p>Backend <b>{{ run.backend }}</b>, finished {{ figures.finished_at }}: {{ run.people|length }} people
({{ run.enrolled|length }} enrolled), {{ run.photos }} photos, {{ figures.genuine_comparisons }} genuine and
{{ figures.impostor_comparisons }} impostor comparisons, {{ run.refused_photos }} photos refused by the quality gates.</p>
<p>Configured thresholds: <b>match_threshold {{ "%g"|format(recognition.match_threshold) }}</b> (a match is shown as one) and
<b>review_threshold {{ "%g"|format(recognition.review_threshold) }}</b> (below it a face is never shown as a match).</p>
{% for w in warnings %}<p class="warning">{{ w }}</p>{% endfor %}
<img alt="False match and false non-match rates by threshold, and the DET curve" src="data:image/png;base64,{{ chart }}">
<p>False match rate: photos matched to someone else / impostor comparisons. False non-match rate: photos not matched
to their own person / genuine comparisons. A comparison matches at a threshold when its similarity is at least the
threshold. Intervals are 95 % Wilson score intervals.</p>
<table><thead><tr><th>threshold</th><th>false match</th><th>95 % interval</th><th>false non-match</th>
<th>95 % interval</th><th>refused photos</th><th></th></tr></thead><tbody>
{% for row in rows %}<tr{% if row.marks %} class="configured"{% endif %}><td>{{ "%g"|format(row.threshold) }}</td>
<td>{{ percent(row.false_match.value) }}</td><td>{{ interval(row.false_match) }}</td>
<td>{{ percent(row.false_non_match.value) }}</td><td>{{ interval(row.false_non_match) }}</td>
<td>{{ row.refused_photos }}</td><td>{{ row.marks|join(", ") }}</td></tr>
{% endfor %}</tbody></table>
<h2>Enrolled photos</h2><ul>{% for person, photo in run.enrolled.items() %}<li>{{ person }}: {{ photo }}</li>{% endfor %}</ul>
<h2>Refused photos</h2>
{% if run.refusals %}<ul>{% for r in run.refusals %}<li>{{ r.person }}/{{ r.photo }} ({{ r.stage }}): {{ r.problem }}</li>
{% endfor %}</ul>{% else %}<p>None.</p>{% endif %}
<h2>What this cannot tell</h2>
<p>Only how the backend does on these people, these cameras and this light. People not in the set, other lighting,
other cameras or angles, and groups of people the set does not represent may see other error rates.</p>
</body></html>
"""
)


def _html(report: Report, chart: bytes) -> str:
    return _TEMPLATE.render(
        run=report.run,
        rows=report.rows,
        warnings=report.warnings,
        figures=report.figures,
        recognition=report.recognition,
        chart=base64.b64encode(chart).decode("ascii"),
        percent=percent,
        interval=interval,
    )

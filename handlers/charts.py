"""Charts for Webex replies, drawn with matplotlib's Agg canvas (no display, no pyplot global state).

The same figures give the same bytes: fixed size and fonts, and no software version in the PNG
metadata, so a retried digest stores the same evidence file instead of a second one.
"""
from __future__ import annotations

import io
from typing import Mapping

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

WIDTH_PX, HEIGHT_PX, DPI = 800, 400, 100
_ALERTS, _CONFIRMED, _DISMISSED = "#2f6db3", "#c0392b", "#7f8c8d"


def digest_chart(title: str, alerts_by_rule: Mapping[str, int], confirmed: int, dismissed: int) -> bytes:
    """A PNG of WIDTH_PX × HEIGHT_PX: alerts per rule on the left, confirmed against dismissed on the right."""
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    figure.suptitle(title, fontsize=12)
    by_rule, decisions = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    _bars(by_rule, "Alerts per rule", sorted(alerts_by_rule.items()), _ALERTS, horizontal=True)
    _bars(decisions, "Decisions", [("confirmed", confirmed), ("dismissed", dismissed)],
          [_CONFIRMED, _DISMISSED], horizontal=False)
    figure.subplots_adjust(left=0.2, right=0.97, top=0.82, bottom=0.12, wspace=0.35)
    out = io.BytesIO()
    # No "Software" entry: it names the matplotlib version, and the bytes should not depend on it.
    figure.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()


def _bars(axes, title: str, items: list[tuple[str, int]], color, *, horizontal: bool) -> None:  # type: ignore[no-untyped-def]
    axes.set_title(title, fontsize=10)
    if not items:
        axes.text(0.5, 0.5, "no alerts", ha="center", va="center", transform=axes.transAxes, color="grey")
        axes.set_xticks([])
        axes.set_yticks([])
        return
    labels, counts = [label for label, _ in items], [count for _, count in items]
    bars = (axes.barh if horizontal else axes.bar)(labels, counts, color=color)
    axes.bar_label(bars, padding=2, fontsize=8)
    # Counts are whole alerts; a tick at 0.5 would read as half an alert.
    (axes.xaxis if horizontal else axes.yaxis).get_major_locator().set_params(integer=True)
    if horizontal:
        axes.invert_yaxis()  # first rule at the top, as in the card
    (axes.set_xlim if horizontal else axes.set_ylim)(0, max(max(counts), 1) * 1.2)
    axes.tick_params(labelsize=8)

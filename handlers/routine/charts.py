"""Charts for Webex replies, drawn with matplotlib's Agg canvas (no display, no pyplot global state).

The same figures give the same bytes: fixed size and fonts, and no software version in the PNG
metadata, so a retried digest stores the same evidence file instead of a second one.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from cards.patterns import standing
from cards.views import SubjectPattern

WIDTH_PX, HEIGHT_PX, DPI = 800, 400, 100
_ALERTS, _CONFIRMED, _DISMISSED = "#2f6db3", "#c0392b", "#7f8c8d"


def digest_chart(title: str, alerts_by_rule: Mapping[str, int], confirmed: int, dismissed: int) -> bytes:
    """A PNG of WIDTH_PX × HEIGHT_PX: alerts per rule on the left, confirmed against dismissed on the right."""
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    figure.suptitle(title, fontsize=12)
    by_rule, decisions = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    _bars(by_rule, "Alerts per rule", sorted(alerts_by_rule.items()), _ALERTS, horizontal=True)
    _bars(
        decisions,
        "Decisions",
        [("confirmed", confirmed), ("dismissed", dismissed)],
        [_CONFIRMED, _DISMISSED],
        horizontal=False,
    )
    figure.subplots_adjust(left=0.2, right=0.97, top=0.82, bottom=0.12, wspace=0.35)
    return _png(figure)


def pattern_chart(title: str, cashiers: Sequence[SubjectPattern], registers: Sequence[SubjectPattern]) -> bytes:
    """A PNG of WIDTH_PX × HEIGHT_PX: each listed cashier's and register's exception rate (bars; the z-score in
    its label) against the mean of the store's others (a black mark), in the report's order."""
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    figure.suptitle(title, fontsize=12)
    slots = max(len(cashiers), len(registers), 1)
    for axes, name, rows in zip(figure.subplots(1, 2), ("Cashiers", "Registers"), (cashiers, registers), strict=False):
        _rates(axes, name, rows, slots)
    figure.legend(
        handles=[
            Line2D([], [], color=_ALERTS, linewidth=6, label="exceptions per 100 transactions"),
            Line2D([], [], color="black", marker="|", markersize=12, linestyle="", label="the others' mean"),
        ],
        loc="upper center",
        bbox_to_anchor=(0.5, 0.93),
        ncol=2,
        frameon=False,
        fontsize=8,
    )
    figure.subplots_adjust(left=0.16, right=0.97, top=0.78, bottom=0.1, wspace=0.6)
    return _png(figure)


def _png(figure: Figure) -> bytes:
    out = io.BytesIO()
    # No "Software" entry: it names the matplotlib version, and the bytes should not depend on it.
    figure.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()


def _rates(axes, title: str, rows: Sequence[SubjectPattern], slots: int) -> None:
    axes.set_title(title, fontsize=10)
    if not rows:
        _nothing(axes, "no transactions")
        return
    positions = list(range(len(rows)))
    axes.barh(positions, [row.rate * 100 for row in rows], height=0.6, color=_ALERTS)
    means = [
        (position, row.peer_mean * 100)
        for position, row in zip(positions, rows, strict=False)
        if row.peer_mean is not None
    ]
    axes.scatter(
        [mean for _, mean in means], [position for position, _ in means], marker="|", s=250, color="black", zorder=3
    )
    axes.set_yticks(positions, [f"{row.subject} ({standing(row)})" for row in rows])
    axes.set_ylim(slots - 0.5, -0.5)  # the same bar height in both panels; furthest from the others at the top
    axes.set_xlim(0, max([row.rate * 100 for row in rows] + [mean for _, mean in means] + [1.0]) * 1.15)
    axes.tick_params(labelsize=8)


def _bars(axes, title: str, items: list[tuple[str, int]], color, *, horizontal: bool) -> None:
    axes.set_title(title, fontsize=10)
    if not items:
        _nothing(axes, "no alerts")
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


def _nothing(axes, words: str) -> None:
    axes.text(0.5, 0.5, words, ha="center", va="center", transform=axes.transAxes, color="grey")
    axes.set_xticks([])
    axes.set_yticks([])

"""Plotly figures: demographic bars of a segment now and after the pending step, in the same colours everywhere."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go

from segcore._db import Database
from segcore._engine import ActionRequest
from segcore._preview import StepPreview, preview_step, segment_distributions
from segcore._stats import DIMENSIONS, UNKNOWN, Distribution

ACCENT = "#0E7C86"  # the one accent colour (also .streamlit/config.toml primaryColor)
BEFORE_COLOR = "#B4BCC8"  # "now" is quiet grey, "after" is the accent: the eye goes to what changes
AFTER_COLOR = ACCENT
BEFORE_NAME = "Now"
AFTER_NAME = "After this step"
MAX_BARS = 10
OTHER = "Other"
# Bucket labels as a reader expects them; codes not listed are shown as stored.
_PRETTY = {
    "female": "Female", "male": "Male", "other": "Other", "unknown": "Unknown", "low": "Low", "medium": "Medium",
    "high": "High", UNKNOWN: "Not set", "organic": "Organic", "ads": "Ads", "referral": "Referral",
    "store": "Store", "event": "Event", "partner": "Partner",
}  # fmt: skip
_VALUE_AXIS = {"count": "Contacts", "share": "Share of segment"}


def _labels(dimension: str, dists: list[Distribution]) -> list[str]:
    """The buckets to draw, in the dimension's fixed order, or largest first with the tail folded into Other."""
    order = DIMENSIONS[dimension].order
    seen: dict[str, int] = {}
    for d in dists:
        for k, v in d.counts.items():
            seen[k] = max(seen.get(k, 0), v)
    if order:
        return [k for k in order if k in seen] + [k for k in seen if k not in order]
    ranked = sorted(seen, key=lambda k: (k == UNKNOWN, -seen[k], k))
    if len(ranked) > MAX_BARS:
        return ranked[: MAX_BARS - 1] + [OTHER]
    return ranked


def _values(d: Distribution, labels: list[str], mode: str) -> list[float]:
    shown = set(labels)
    out = []
    for k in labels:
        if k == OTHER and OTHER not in d.counts:
            v = sum(c for b, c in d.counts.items() if b not in shown)
        else:
            v = d.counts.get(k, 0)
        out.append(v / d.total if mode == "share" and d.total else float(v) if mode == "count" else 0.0)
    return out


def pretty(label: str) -> str:
    return _PRETTY.get(label, label)


def distribution_figure(
    dimension: str,
    series: Mapping[str, Distribution],
    *,
    mode: str = "count",
    height: int | None = None,
) -> go.Figure:
    """Grouped horizontal bars, one series per entry of `series` ("Now", "After this step"), for one dimension.

    Horizontal, because bucket names (industries, spend bands) stay readable without rotating them. The figure is
    described as one dict and validated once: Plotly's update_* helpers each validate again, four times slower."""
    dists = list(series.values())
    labels = _labels(dimension, dists)
    title = DIMENSIONS[dimension].title
    colors = {BEFORE_NAME: BEFORE_COLOR, AFTER_NAME: AFTER_COLOR}
    hover = "%{y}: %{x:.1%}" if mode == "share" else "%{y}: %{x:,.0f} contacts"
    shown = [pretty(k) for k in labels]
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "y": shown,
            "x": _values(dist, labels, mode),
            "name": name,
            "marker": {"color": colors.get(name, ACCENT)},
            "hovertemplate": hover + f"<extra>{name}</extra>",
        }
        for name, dist in series.items()
    ]
    rows = max(1, len(labels))
    layout = {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        "barmode": "group",
        "bargap": 0.22,
        "bargroupgap": 0.04,
        "height": height or 96 + rows * (13 * len(series) + 6),
        "margin": {"l": 4, "r": 12, "t": 34, "b": 4},
        # One legend for all charts (legend_html) instead of one squeezed into each chart.
        "showlegend": False,
        "yaxis": {"title": {"text": title}, "type": "category", "autorange": "reversed", "automargin": True},
        "xaxis": {
            "title": {"text": _VALUE_AXIS[mode]},
            "tickformat": ".0%" if mode == "share" else ",d",
            "rangemode": "tozero",
            "automargin": True,
        },
    }
    return go.Figure({"data": data, "layout": layout})


def legend_html(names: tuple[str, ...] = (BEFORE_NAME, AFTER_NAME)) -> str:
    """The shared legend of the before/after charts, drawn once above them."""
    colors = {BEFORE_NAME: BEFORE_COLOR, AFTER_NAME: AFTER_COLOR}
    items = [
        f'<span style="display:inline-block;width:12px;height:12px;border-radius:2px;background:{colors[name]};'
        f'margin:0 6px -1px 0"></span>{name}'
        for name in names
    ]
    return '<div style="font-size:0.9rem;color:#4B5563">' + "&nbsp;&nbsp;&nbsp;&nbsp;".join(items) + "</div>"


def current_distributions(db: Database, no: str, *, today: dt.date | None = None) -> dict[str, Distribution]:
    """The segment's chart distributions now (the core answers from the in-memory snapshot when it fits)."""
    return segment_distributions(db, no, today=today)


def preview_with_figures(
    db: Database, no: str, request: ActionRequest, *, mode: str = "count", today: dt.date | None = None
) -> tuple[StepPreview, dict[str, go.Figure]]:
    """What the Builder's preview fragment computes: the step preview and one before/after figure per dimension.

    One function for the page and for the timing in ui/bench_preview.py, so the measured work is the shown work."""
    p = preview_step(db, no, request, today=today)
    figures: dict[str, Any] = {
        d: distribution_figure(d, {BEFORE_NAME: p.before[d], AFTER_NAME: p.after[d]}, mode=mode) for d in DIMENSIONS
    }
    return p, figures

"""Plotly figures: demographic bars of a segment now and after the pending step, in the same colours everywhere."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from segcore import (
    DIMENSIONS,
    UNKNOWN,
    ActionRequest,
    Database,
    Dimension,
    Distribution,
    FieldRegistry,
    StepPreview,
    chart_dimensions,
    dimension_of,
    preview_step,
    segment_distributions,
)
from ui.format import plural

ACCENT = "#0E7C86"  # the one accent colour (also .streamlit/config.toml primaryColor)
BEFORE_COLOR = "#B4BCC8"  # "now" is quiet grey, "after" is the accent: the eye goes to what changes
AFTER_COLOR = ACCENT
BEFORE_NAME = "Now"
AFTER_NAME = "After this step"
MAX_BARS = 10
# A chart whose buckets keep their order (years, number bands) draws them all, thinner past this many.
MAX_ROWS_FULL_HEIGHT = 16
MAX_HEIGHT = 620
# The bucket the tail of a long unordered dimension folds into: a key no stored code can be; drawn as "12 others".
OTHER = "\x00other"
DEFAULT_DIMENSIONS: tuple[str, ...] = tuple(DIMENSIONS)
# Bucket labels as a reader expects them; codes not listed are shown as stored.
_PRETTY = {
    "female": "Female", "male": "Male", "other": "Other", "unknown": "Unknown", "low": "Low", "medium": "Medium",
    "high": "High", UNKNOWN: "Not set", "organic": "Organic", "ads": "Ads", "referral": "Referral",
    "store": "Store", "event": "Event", "partner": "Partner", "yes": "Yes", "no": "No",
}  # fmt: skip
_VALUE_AXIS = {"count": "Contacts", "share": "Share of segment"}


def _labels(dim: Dimension, dists: list[Distribution]) -> tuple[list[str], int]:
    """The buckets to draw, in the order the core gives (`Dimension.arrange`): an ordered dimension's own order (age
    bands, spend bands, years, number bands; all of them), else largest first with the tail folded into OTHER; and
    how many buckets were folded. "Not set" is never folded away: it stays, last."""
    seen: dict[str, int] = {}
    for d in dists:
        for k, v in d.counts.items():
            seen[k] = max(seen.get(k, 0), v)
    ranked = dim.arrange(seen)
    if dim.ordered or len(ranked) <= MAX_BARS:
        return ranked, 0
    unknown = [UNKNOWN] if UNKNOWN in seen else []
    named = [k for k in ranked if k != UNKNOWN]
    keep = MAX_BARS - 1 - len(unknown)
    return named[:keep] + [OTHER] + unknown, len(named) - keep


def _values(d: Distribution, labels: list[str], mode: str) -> list[float]:
    shown = set(labels) - {OTHER}
    out = []
    for k in labels:
        if k == OTHER:
            v = sum(c for b, c in d.counts.items() if b not in shown)
        else:
            v = d.counts.get(k, 0)
        out.append(v / d.total if mode == "share" and d.total else float(v) if mode == "count" else 0.0)
    return out


def pretty(label: str) -> str:
    return _PRETTY.get(label, label)


def _short_number(text: str) -> str:
    """1,000 -> 1k, 10,000,000 -> 10M: the ends of a power-of-ten band, short enough for an axis."""
    try:
        value = int(text.replace(",", ""))
    except ValueError:
        return text
    for size, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "k")):
        if value >= size:
            return f"{value // size:,}{suffix}"
    return str(value)


def bucket_label(dim: Dimension | None, label: str) -> str:
    """A bucket as a chart shows it: codes as a reader expects them, number bands short ("10k–100k")."""
    if dim is not None and dim.rule == "magnitude" and "–" in label:
        low, high = label.split("–", 1)
        return f"{_short_number(low)}–{_short_number(high)}"
    return pretty(label)


def dimension_choices(fields: FieldRegistry | None = None) -> dict[str, str]:
    """Every dimension a chart can break down by, name -> title: the seven defaults first, then the others."""
    return {d.name: d.title for d in chart_dimensions(fields)}


def breakdown_picker(key: str, remembered: str, fields: FieldRegistry | None = None) -> list[str]:
    """The "Break down by" multiselect: which dimensions the charts show (the seven defaults at first; custom fields
    among the options). The choice is kept under `remembered` in the session, so it outlives a page switch."""
    import streamlit as st

    choices = dimension_choices(fields)
    if key in st.session_state:
        current = list(st.session_state[key] or [])
        if any(d not in choices for d in current):
            # A custom field deleted or renamed since it was picked.
            st.session_state[key] = [d for d in current if d in choices]
    else:
        saved = st.session_state.get(remembered, list(DEFAULT_DIMENSIONS))
        st.session_state[key] = [d for d in saved if d in choices]
    picked = st.multiselect(
        "Break down by", list(choices), key=key, format_func=lambda d: choices.get(d, d),
        placeholder="Choose what the charts break down by…",
        help="The charts to draw: any code, list, number (in powers of ten), date (by year) or yes/no field, "
        "custom fields included.",
    )
    st.session_state[remembered] = list(picked)
    return list(picked)


def distribution_figure(
    dimension: str,
    series: Mapping[str, Distribution],
    *,
    mode: str = "count",
    height: int | None = None,
    fields: FieldRegistry | None = None,
) -> go.Figure:
    """Grouped horizontal bars, one series per entry of `series` ("Now", "After this step"), for one dimension.

    Horizontal, because bucket names (industries, spend bands) stay readable without rotating them. The figure is
    described as one dict and validated once: Plotly's update_* helpers each validate again, four times slower.
    `fields` is the database's registry, for custom dimensions (their title is the field's label)."""
    dists = list(series.values())
    dim = dimension_of(dimension, fields)
    labels, folded = _labels(dim, dists)
    title = dim.title
    colors = {BEFORE_NAME: BEFORE_COLOR, AFTER_NAME: AFTER_COLOR}
    # "1 contact", "2 contacts": the count's words are written here, a hover template cannot choose the noun.
    hover = "%{y}: %{x:.1%}" if mode == "share" else "%{y}: %{customdata}"
    shown = [plural(folded, "other") if k == OTHER else bucket_label(dim, k) for k in labels]
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "y": shown,
            "x": values,
            **({"customdata": [plural(round(v), "contact") for v in values]} if mode == "count" else {}),
            "name": name,
            "marker": {"color": colors.get(name, ACCENT)},
            "hovertemplate": hover + f"<extra>{name}</extra>",
        }
        for name, dist in series.items()
        for values in [_values(dist, labels, mode)]
    ]
    rows = max(1, len(labels))
    per_row = 13 * len(series) + 6
    if rows > MAX_ROWS_FULL_HEIGHT:
        # Many ordered buckets (e.g. birth years): thinner bars rather than a chart taller than the screen.
        per_row = max(4, min(per_row, (MAX_HEIGHT - 96) // rows))
    layout = {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        "barmode": "group",
        "bargap": 0.22,
        "bargroupgap": 0.04,
        # At least three rows' height: a one- or two-bucket chart otherwise leaves the value axis no room, and its
        # title is drawn over its tick labels.
        "height": height or 96 + max(rows, 3) * per_row,
        "margin": {"l": 4, "r": 12, "t": 34, "b": 4},
        # One legend for all charts (legend_html) instead of one squeezed into each chart.
        "showlegend": False,
        # The order is the core's, told to Plotly outright (first bucket on top), not left to its own rules.
        "yaxis": {
            "title": {"text": title}, "type": "category", "categoryorder": "array", "categoryarray": shown,
            "autorange": "reversed", "automargin": True,
        },
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


def current_distributions(
    db: Database, no: str, *, today: dt.date | None = None, dimensions: Sequence[str] = DEFAULT_DIMENSIONS
) -> dict[str, Distribution]:
    """The segment's chart distributions now (the core answers from the in-memory snapshot when it fits)."""
    return segment_distributions(db, no, today=today, dimensions=tuple(dimensions))


def preview_with_figures(
    db: Database,
    no: str,
    request: ActionRequest,
    *,
    mode: str = "count",
    today: dt.date | None = None,
    dimensions: Sequence[str] = DEFAULT_DIMENSIONS,
    fields: FieldRegistry | None = None,
) -> tuple[StepPreview, dict[str, go.Figure]]:
    """What the Builder's preview fragment computes: the step preview and one before/after figure per dimension.

    One function for the page and for the timing in ui/bench_preview.py, so the measured work is the shown work.
    `dimensions` are the charts to draw (any name of `chart_dimensions(fields)`), in that order."""
    dims = tuple(dimensions)
    p = preview_step(db, no, request, today=today, dimensions=dims)
    figures: dict[str, Any] = {
        d: distribution_figure(d, {BEFORE_NAME: p.before[d], AFTER_NAME: p.after[d]}, mode=mode, fields=fields)
        for d in dims
    }
    return p, figures

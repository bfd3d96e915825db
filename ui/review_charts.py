"""Plotly figures of the Review page: the overlap heatmap and a segment's composition against all contacts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from segcore import (
    UNKNOWN,
    Dimension,
)
from ui.charts import ACCENT, BEFORE_COLOR, bucket_label
from ui.format import plural

__all__ = ["composition_figure", "overlap_figure"]

_FONT = {"family": "Source Sans Pro, sans-serif", "size": 13}
_TEAL_SCALE = [[0.0, "#F4F7F8"], [0.5, "#7FC4C9"], [1.0, ACCENT]]
MAX_BARS = 10
# Past this many bars the index labels are turned a quarter, so they do not run into each other.
UPRIGHT_LABELS = 8
# The value axis reaches this far above the tallest bar, so its index label is inside the chart.
HEADROOM = 1.25
HEADROOM_TURNED = 1.4


def overlap_figure(nos: Sequence[str], matrix: Sequence[Sequence[float]], *, mode: str) -> go.Figure:
    """A square heatmap: members in both segments (mode "count") or Jaccard similarity (mode "jaccard")."""
    text = [[f"{v:.2f}" if mode == "jaccard" else f"{int(v):,}" for v in row] for row in matrix]
    # The count's noun is written per cell ("1 member in both"): a hover template cannot choose it.
    words = [[f"{v:.2f} (Jaccard)" if mode == "jaccard" else f"{plural(int(v), 'member')} in both" for v in row]
             for row in matrix]
    hover = "%{y} ∩ %{x}: %{customdata}<extra></extra>"
    fig = go.Figure(
        go.Heatmap(
            z=[list(r) for r in matrix], x=list(nos), y=list(nos), text=text, texttemplate="%{text}", customdata=words,
            hovertemplate=hover, colorscale=_TEAL_SCALE, zmin=0, zmax=1 if mode == "jaccard" else None,
            showscale=False, xgap=2, ygap=2,
        )
    )
    side = max(260, 60 + 56 * len(nos))
    fig.update_layout(
        height=side, margin={"l": 10, "r": 10, "t": 10, "b": 10}, font=_FONT, plot_bgcolor="white",
        xaxis={"side": "top", "type": "category"}, yaxis={"autorange": "reversed", "type": "category"},
    )
    return fig


def _arranged(rows: Sequence[dict[str, Any]], dimension: Dimension | None) -> list[dict[str, Any]]:
    """The rows to draw, in the core's order (`Dimension.arrange`): an ordered dimension's buckets all, in their own
    order; any other's largest ones by share of all contacts. "Not set" last, and never cut off."""
    shown = {str(r["bucket"]): r for r in rows if r.get("index") is not None or r.get("segment_share") is not None}
    dim = dimension or Dimension("", "")
    order = dim.arrange({b: r.get("all_share") or 0.0 for b, r in shown.items()})
    if not dim.ordered and len(order) > MAX_BARS:
        named = [b for b in order if b != UNKNOWN]
        order = named[: MAX_BARS - (UNKNOWN in shown)] + [b for b in order if b == UNKNOWN]
    return [shown[b] for b in order]


def composition_figure(
    dimension_label: str,
    rows: Sequence[dict[str, Any]],
    *,
    segment_name: str,
    dimension: Dimension | None = None,
) -> go.Figure:
    """Share in the segment beside share in all contacts per bucket, with the index (100 = same as all) on top.

    Buckets of a `dimension` with an order of its own (age bands, years, number bands, yes/no) keep that order, all
    of them; others show the largest ones (by share of all contacts), "Not set" last. The index is written above
    every segment bar, upright and at full size (never shrunk or hidden on a narrow bar), and the value axis leaves
    room above the tallest bar for it."""
    shown = _arranged(rows, dimension)
    labels = [bucket_label(dimension, str(r["bucket"])) for r in shown]
    seg = [r.get("segment_share") or 0.0 for r in shown]
    everyone = [r.get("all_share") or 0.0 for r in shown]
    index_text = [f"{r['index']:.0f}" if r.get("index") is not None else "hidden" for r in shown]
    many = len(shown) > UPRIGHT_LABELS
    fig = go.Figure()
    fig.add_bar(name="All contacts", x=labels, y=everyone, marker_color=BEFORE_COLOR,
                hovertemplate="%{x}: %{y:.1%} of all contacts<extra></extra>")
    fig.add_bar(name=segment_name, x=labels, y=seg, marker_color=ACCENT, text=index_text, textposition="outside",
                # Upright and never scaled to the bar's width (Plotly's default shrinks, then hides, the label of a
                # narrow bar); turned a quarter for a long axis (years), where upright labels would run together.
                textangle=-90 if many else 0, constraintext="none", cliponaxis=False,
                textfont={"size": 11, "color": "#4B5563"}, customdata=index_text,
                hovertemplate="%{x}: %{y:.1%} of the segment, index %{customdata}<extra></extra>")
    top = max([*seg, *everyone, 0.01])
    fig.update_layout(
        title={"text": dimension_label, "font": {"size": 15}, "x": 0, "xanchor": "left"},
        barmode="group", height=280, margin={"l": 10, "r": 10, "t": 40, "b": 10}, font=_FONT,
        showlegend=False, plot_bgcolor="white", bargap=0.25,
        # Headroom above the tallest bar for its index label (taller for a quarter-turned one).
        yaxis={"tickformat": ".0%", "range": [0, top * (HEADROOM_TURNED if many else HEADROOM)],
               "gridcolor": "#EEF1F4"},
        # Buckets are categories even when they look like numbers (years): else Plotly draws a number line. The
        # order is the core's, told to Plotly outright.
        xaxis={"type": "category", "categoryorder": "array", "categoryarray": labels},
    )
    return fig

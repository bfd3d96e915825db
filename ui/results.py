"""Campaign results on the dashboard: treated against control in words and numbers, never a rate without its 95 %
interval; the cumulative response chart with its bands; the power hint before logging.

Every number comes from segcore.results (segment_results, campaign_results, response_curve, results_frame,
base_rate, detectable_lift); this module only words, formats, caches and draws them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from segcore import (
    DEFAULT_WINDOW_DAYS,
    BaseRate,
    Database,
    PowerHint,
    ResponseCurve,
    Results,
    SegcoreError,
    base_rate,
    campaign_results,
    data_token,
    detectable_lift,
    outcome_kinds,
    response_curve,
    results_frame,
    segment_results,
)
from ui import state
from ui.charts import ACCENT
from ui.format import n, pct, plural

__all__ = [
    "STATE_WORDS",
    "Metric",
    "base_rate_of",
    "curve_figure",
    "forget_outcomes",
    "logged_result",
    "metric_controls",
    "power_hint",
    "power_hint_text",
    "result_lines",
    "results_csv",
    "results_of",
    "results_table",
    "show_result",
    "state_words",
]

# What a state means, in a few words for a table cell (Results.message has the whole sentence).
STATE_WORDS = {
    "cancelled": "cancelled",
    "too_early": "too early",
    "no_control": "no control group",
    "too_few_responders": "not enough responders to say",
}
_TESTS = {"fisher": "Fisher's exact test", "z": "two-proportion z-test"}
_CONTROL_COLOR = "#6B7280"  # the control line: a darker grey than BEFORE_COLOR, so its band stays visible
# Results and base rates are cached for a short while: an outcome import from the Data page clears them at once;
# one from the command line shows within this many seconds (outcome writes do not change the data token).
RESULTS_TTL = 60
BASE_RATE_TTL = 600


# --------------------------------------------------------------------------------------------- the metric


class Metric(NamedTuple):
    """The metric a page asked for: the outcome kinds (None: any), the window in days, positive interactions."""

    kinds: tuple[str, ...] | None
    window: int
    positive: bool

    def words(self) -> str:
        """"ORDER or SIGNUP outcome (or a positive interaction) within 30 days after the log"."""
        what = " or ".join(self.kinds) + " outcome" if self.kinds else "any outcome"
        if self.positive:
            what += " or a positive interaction"
        return f"{what} within {plural(self.window, 'day')} after the log"


@st.cache_data(show_spinner=False, ttl=RESULTS_TTL, max_entries=64)
def _kinds(url: str, token: str) -> tuple[str, ...]:
    del token
    return outcome_kinds(state._open(url))


def metric_controls(db: Database, prefix: str) -> Metric:
    """The metric's choices in one row: the outcome kinds (from the data; none chosen = any), the window (default
    30 days) and whether positive interactions count as a response. Kept under `prefix`.* in the session."""
    stored = _kinds(db.url, data_token(db))
    kinds_key, window_key, positive_key = f"{prefix}.kinds", f"{prefix}.window", f"{prefix}.positive"
    if kinds_key in st.session_state:
        st.session_state[kinds_key] = [k for k in st.session_state[kinds_key] or [] if k in stored]
    state.seed_widget(window_key, DEFAULT_WINDOW_DAYS)
    with st.container(horizontal=True, vertical_alignment="bottom", gap="medium"):
        kinds = st.multiselect(
            "Outcome kinds that count", list(stored), key=kinds_key, width=360,
            placeholder="Any outcome" if stored else "No outcomes imported yet",
            help="A member responded when it has at least one outcome of these kinds in the window; none chosen "
                 "counts every kind. Outcomes come in on the Data page (import kind Outcomes).",
        )
        window = st.number_input("Window (days after the log)", min_value=1, max_value=365, step=1, key=window_key,
                                 width=200, help="The days after the log day that count; only days that have "
                                 "passed are counted.")
        positive = st.checkbox("Positive interactions count as a response", key=positive_key,
                               help="An interaction evaluated positive or very positive in the window counts too "
                                    "(never the log's own interactions, nor cancelled ones).")
    return Metric(tuple(kinds) or None, int(window), bool(positive))


# --------------------------------------------------------------------------------------------- computing


@st.cache_data(show_spinner="Counting responses…", ttl=RESULTS_TTL, max_entries=64)
def _results(url: str, campaign: str | None, nos: tuple[str, ...], metric: tuple[Any, ...], today: dt.date,
             token: str) -> tuple[Results, ...]:
    del token  # the cache key: logs, cancels and imports of contacts and interactions change it
    db = state._open(url)
    kinds, window, positive = metric
    options = dict(kinds=kinds, window_days=window, include_positive_interactions=positive, today=today)
    if campaign is not None:
        return campaign_results(db, campaign, **options)
    return tuple(segment_results(db, no, **options) for no in nos)


def results_of(db: Database, *, campaign: str | None = None, nos: Sequence[str] = (), metric: Metric,
               today: dt.date | None = None) -> tuple[Results, ...]:
    """The results of a campaign's logged segments (`campaign`), or of the logged segments `nos`, side by side."""
    day = today or dt.date.today()
    return _results(db.url, campaign, tuple(nos), tuple(metric), day, data_token(db))


@st.cache_data(show_spinner=False, ttl=RESULTS_TTL, max_entries=64)
def _curve(url: str, no: str, metric: tuple[Any, ...], today: dt.date, token: str) -> ResponseCurve:
    del token
    kinds, window, positive = metric
    return response_curve(state._open(url), no, kinds=kinds, window_days=window,
                          include_positive_interactions=positive, today=today)


@st.cache_data(show_spinner=False, ttl=BASE_RATE_TTL, max_entries=256)
def _base_rate(url: str, no: str, version: int, today: dt.date, token: str) -> BaseRate:
    # ~1-3 s at a million contacts: once per segment version, data version and day, not on every slider move.
    del version, token
    return base_rate(state._open(url), segment_no=no, today=today)


def base_rate_of(db: Database, no: str, version: int, today: dt.date | None = None) -> BaseRate:
    """The share of segment `no`'s members with any outcome in the last 90 days (cached per data version)."""
    return _base_rate(db.url, no, version, today or dt.date.today(), data_token(db))


def forget_outcomes() -> None:
    """After an outcomes import: results, curves, kinds and base rates are computed again."""
    for cached in (_kinds, _results, _curve, _base_rate):
        cached.clear()


def results_csv(results: Sequence[Results]) -> bytes:
    """The Results tab's download: results_frame, as CSV (UTF-8 with a BOM, so spreadsheets read the accents)."""
    return results_frame(results).to_csv(index=False).encode("utf-8-sig")


# --------------------------------------------------------------------------------------------- words and numbers


def _signed_points(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:+.1f}".replace("-", "−")


def _signed_pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:+.0f}%".replace("-", "−")


def _signed_money(value: float | None) -> str:
    return "–" if value is None else f"{value:+,.2f}".replace("-", "−")


def _signed_count(value: float | None) -> str:
    return "–" if value is None else f"{value:+,.0f}".replace("-", "−")


def state_words(r: Results) -> str:
    """The state in a few words: too early, no control group, not enough responders to say, or the verdict."""
    if r.state in STATE_WORDS:
        return STATE_WORDS[r.state]
    return "difference shown" if r.p_value is not None and r.p_value < 0.05 else "no difference shown"


def rate_text(rate: float | None, low: float | None, high: float | None) -> str:
    """A rate with its 95 % interval: "8.8% [7.9%, 9.9%]"; never the rate alone."""
    if rate is None or low is None or high is None:
        return "–"
    return f"{pct(rate)} [{pct(low)}, {pct(high)}]"


def lift_text(r: Results) -> str:
    if r.lift_abs is None:
        return "–"
    return f"{_signed_points(r.lift_abs)} pts [{_signed_points(r.lift_abs_low)}, {_signed_points(r.lift_abs_high)}]"


def relative_text(r: Results) -> str:
    if r.lift_rel is None:
        return "–"
    if r.lift_rel_low is None or r.lift_rel_high is None:
        return f"{_signed_pct(r.lift_rel)} (no interval)"
    return f"{_signed_pct(r.lift_rel)} [{_signed_pct(r.lift_rel_low)}, {_signed_pct(r.lift_rel_high)}]"


def p_text(r: Results) -> str:
    if r.p_value is None:
        return "–"
    value = "< 0.0001" if r.p_value < 0.0001 else f"{r.p_value:.4f}"
    return f"{value} ({'Fisher' if r.test == 'fisher' else 'z-test'})"


def _with_interval(value: float | None, low: float | None, high: float | None, fmt: Any) -> str:
    if value is None:
        return "–"
    if low is None or high is None:
        return f"{fmt(value)} (no interval)"
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


def revenue_lift_text(r: Results) -> str:
    return _with_interval(r.revenue_lift, r.revenue_lift_low, r.revenue_lift_high, _signed_money)


def incremental_responders_text(r: Results) -> str:
    return _with_interval(r.incremental_responders, r.incremental_responders_low, r.incremental_responders_high,
                          _signed_count)


def incremental_revenue_text(r: Results) -> str:
    return _with_interval(r.incremental_revenue, r.incremental_revenue_low, r.incremental_revenue_high, _signed_money)


def _money_or_dash(value: float | None) -> str:
    return "–" if value is None else f"{value:,.2f}"


def results_table(results: Sequence[Results]) -> pd.DataFrame:
    """One row a logged segment, the verdict first (what fits the page's width at 1440 px: state, lift with its
    interval and p-value, each group's rate with its interval), then what the campaign added, the group sizes and
    responders, revenue per contact and its lift, and the log date."""
    rows = []
    for r in results:
        rows.append({
            "Segment": r.segment_no,
            "State": state_words(r),
            "Lift [95%]": lift_text(r),
            "p-value (test)": p_text(r),
            "Treated rate [95%]": rate_text(r.treated.rate, r.treated.rate_low, r.treated.rate_high),
            "Control rate [95%]": rate_text(r.control.rate, r.control.rate_low, r.control.rate_high),
            "Days": f"{r.days_observed} of {r.window_days}",
            "Relative lift [95%]": relative_text(r),
            "Incremental responders [95%]": incremental_responders_text(r),
            "Incremental revenue [95%]": incremental_revenue_text(r),
            "Treated": r.treated.contacts,
            "Treated responders": r.treated.responders,
            "Control": r.control.contacts,
            "Control responders": r.control.responders if r.control.contacts else None,
            "Revenue / contact, treated": _money_or_dash(r.treated.revenue_per_contact),
            "Revenue / contact, control": _money_or_dash(r.control.revenue_per_contact),
            "Revenue / contact lift [95%]": revenue_lift_text(r),
            "Logged": r.log_date,
        })
    return pd.DataFrame(rows)


TABLE_CONFIG: dict[str, Any] = {
    "Segment": st.column_config.TextColumn(width=130, pinned=True),
    "State": st.column_config.TextColumn(width=150, help="too early (the window has not started), no control group "
                                         "(logged without a holdout), not enough responders to say (fewer than 10 in "
                                         "both groups), else whether a difference is shown at the 5% level"),
    "Days": st.column_config.TextColumn("Days", width=70, help="Window days observed so far"),
    "Logged": st.column_config.DateColumn(format="YYYY-MM-DD"),
    "Treated": st.column_config.NumberColumn(format="%,d", help="Contacted members (not held out)"),
    "Treated responders": st.column_config.NumberColumn(format="%,d", help="Treated members with a counted "
                                                        "response in the window"),
    "Control": st.column_config.NumberColumn(format="%,d", help="Members held out when the segment was logged"),
    "Control responders": st.column_config.NumberColumn(format="%,d", help="Control members with a counted "
                                                        "response in the window"),
    "Treated rate [95%]": st.column_config.TextColumn(width=150, help="Share of the treated group that responded, with its "
                                                      "95% Wilson interval"),
    "Control rate [95%]": st.column_config.TextColumn(width=150, help="Share of the control group that responded, with its "
                                                      "95% Wilson interval"),
    "Lift [95%]": st.column_config.TextColumn(width=170, help="Treated rate minus control rate, in percentage points, with its "
                                              "95% Newcombe interval"),
    "Relative lift [95%]": st.column_config.TextColumn(help="Treated rate ÷ control rate − 1, with its 95% interval"),
    "p-value (test)": st.column_config.TextColumn(width=120, help="Chance of a lift this large without any effect: Fisher's "
                                                  "exact test when a cell of the 2×2 table is under 10, else the "
                                                  "two-proportion z-test"),
    "Revenue / contact lift [95%]": st.column_config.TextColumn(help="Treated minus control revenue per contact, "
                                                                "with Welch's 95% interval"),
    "Incremental responders [95%]": st.column_config.TextColumn(help="Lift × treated contacts: responders the "
                                                                "campaign added"),
    "Incremental revenue [95%]": st.column_config.TextColumn(help="Revenue lift × treated contacts"),
}


def result_lines(r: Results) -> list[str]:
    """The result for a person, in markdown lines: the state's sentence first, then each group's rate with its
    interval, the lift with its interval and p-value, revenue and what the campaign added."""
    lines = [f"**{r.message[0].upper()}{r.message[1:]}.**"]
    if r.state in ("cancelled", "too_early"):
        lines.append(f"Treated {plural(r.treated.contacts, 'contact')}, control {plural(r.control.contacts, 'contact')}.")
        return lines
    t, c = r.treated, r.control
    lines.append(f"Treated: {n(t.responders)} of {n(t.contacts)} responded, "
                 f"{rate_text(t.rate, t.rate_low, t.rate_high)}.")
    if c.contacts:
        lines.append(f"Control: {n(c.responders)} of {n(c.contacts)} responded, "
                     f"{rate_text(c.rate, c.rate_low, c.rate_high)}.")
    if r.lift_abs is not None:
        rel = f", relative {relative_text(r)}" if r.lift_rel is not None else ""
        lines.append(f"Lift: {lift_text(r)}{rel}; p = {p_text(r)}.")
        if r.state == "ok":  # with too few responders no lift is claimed, so nothing "added" either
            lines.append(f"Added by the campaign: {incremental_responders_text(r)} responders, revenue "
                         f"{incremental_revenue_text(r)}.")
    if t.revenue_per_contact is not None:
        per = f"Revenue per contact: treated {_money_or_dash(t.revenue_per_contact)}"
        if c.contacts:
            per += f", control {_money_or_dash(c.revenue_per_contact)}, difference {revenue_lift_text(r)}"
        lines.append(per + ".")
    return lines


def show_result(r: Results) -> None:
    """One result for a person: the state's sentence (in a box when the numbers cannot say much), then the numbers
    as a list, each rate with its interval, and the window."""
    lines = result_lines(r)
    box = {"too_early": st.info, "no_control": st.warning, "too_few_responders": st.warning,
           "cancelled": st.warning}.get(r.state)
    if box is not None:
        box(lines[0].strip("*"), icon=":material/info:")
    else:
        st.markdown(lines[0])
    if len(lines) > 1:
        st.markdown("\n".join(f"- {line}" for line in lines[1:]))
    st.caption(f"Window {r.window_start:%Y-%m-%d} to {r.window_end:%Y-%m-%d}: {r.days_observed} of "
               f"{plural(r.window_days, 'day')} observed.")


# --------------------------------------------------------------------------------------------- the chart


def _band(fig: go.Figure, x: list[int], low: list[float], high: list[float], color: str, name: str) -> None:
    fig.add_scatter(x=x, y=high, mode="lines", line={"width": 0}, hoverinfo="skip", showlegend=False,
                    legendgroup=name)
    fig.add_scatter(x=x, y=low, mode="lines", line={"width": 0}, fill="tonexty", fillcolor=color,
                    hoverinfo="skip", showlegend=False, legendgroup=name)


def curve_figure(curve: ResponseCurve) -> go.Figure:
    """Cumulative response rate by day since the log, treated (accent) against control (grey), each with its 95 %
    interval as a band."""
    frame = curve.frame()
    fig = go.Figure()
    x = frame["day"].tolist()
    dates = [d.isoformat() for d in frame["date"]]
    groups = [("Treated", "treated", ACCENT, "rgba(14,124,134,0.18)")]
    if curve.state != "no_control":
        groups.append(("Control", "control", _CONTROL_COLOR, "rgba(107,114,128,0.18)"))
    for name, col, color, fill in groups:
        rate, low, high = frame[f"{col}_rate"], frame[f"{col}_low"], frame[f"{col}_high"]
        _band(fig, x, low.tolist(), high.tolist(), fill, name)
        custom = [[d, f"{pct(lo)}–{pct(hi)}", n(k)] for d, lo, hi, k in
                  zip(dates, low, high, frame[f"{col}_responders"], strict=True)]
        fig.add_scatter(
            x=x, y=rate.tolist(), mode="lines", name=name, line={"color": color, "width": 2.5}, legendgroup=name,
            customdata=custom,
            hovertemplate=f"{name}, day %{{x}} (%{{customdata[0]}}): %{{y:.1%}} [95%: %{{customdata[1]}}], "
                          "%{customdata[2]} responders<extra></extra>",
        )
    top = max([0.01, *[v for c in ("treated_high", "control_high") for v in frame[c].dropna().tolist()]])
    fig.update_layout(
        title={"text": "Cumulative response rate by day since the log (band: 95% interval)", "font": {"size": 15},
               "x": 0, "xanchor": "left"},
        height=340, margin={"l": 10, "r": 10, "t": 60, "b": 10}, plot_bgcolor="white",
        font={"family": "Source Sans Pro, sans-serif", "size": 13}, hovermode="closest",
        legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom", "xanchor": "left"},
        xaxis={"title": {"text": "Days since the log"}, "range": [0.5, max(1, curve.window_days) + 0.5],
               "gridcolor": "#EEF1F4", "zeroline": False},
        yaxis={"title": {"text": "Responded so far"}, "tickformat": ".1%", "range": [0, top * 1.1],
               "gridcolor": "#EEF1F4", "rangemode": "tozero"},
    )
    return fig


def response_chart(db: Database, r: Results, metric: Metric, today: dt.date | None = None, *, key: str) -> None:
    """The cumulative chart of one result, or why there is none yet."""
    if r.state in ("cancelled", "too_early"):
        st.caption("No chart: " + r.message + ".")
        return
    curve = _curve(db.url, r.segment_no, tuple(metric), today or dt.date.today(), data_token(db))
    st.plotly_chart(curve_figure(curve), config={"displayModeBar": False}, key=key)


# --------------------------------------------------------------------------------------------- the logged record


def logged_result(db: Database, no: str) -> None:
    """The result on a logged record: any outcome within 30 days, in words with intervals (Review › Results for
    other metrics)."""
    metric = Metric(None, DEFAULT_WINDOW_DAYS, False)
    st.markdown("**Result**")
    try:
        [r] = results_of(db, nos=[no], metric=metric)
    except SegcoreError as e:
        st.error(str(e))
        return
    st.caption(f"Response: {metric.words()}. Review › Results compares other outcome kinds and windows.")
    show_result(r)


# --------------------------------------------------------------------------------------------- the power hint


def power_hint_text(hint: PowerHint, rate: BaseRate) -> str:
    """The hint in words: the smallest lift this test can detect, or why it cannot measure one."""
    if hint.control == 0:
        return ("No holdout: without a control group the results cannot measure a lift. Keep 10–20 % out to "
                "measure one.")
    base = (f"a base rate of {pct(rate.rate)} ({plural(rate.responders, 'member')} of {n(rate.contacts)} with an "
            f"outcome in the last {rate.days} days)")
    groups = f"{n(hint.treated)} contacted against {n(hint.control)} held out"
    if hint.min_lift_abs is None:
        return f"With {groups} and {base}, {hint.reason}."
    rel = f", {_signed_pct(hint.min_lift_rel)} relative" if hint.min_lift_rel is not None else ""
    return (f"With {groups} and {base}, the test can detect a lift of {_signed_points(hint.min_lift_abs)} points "
            f"({pct(hint.base_rate)} → {pct(hint.detectable_rate)}{rel}) or more, at 80 % power and the 5 % level.")


def power_hint(db: Database, no: str, version: int, members: int, holdout_pct: float) -> None:
    """Under the holdout input: the smallest lift a test on these groups can detect, for the base rate of the
    segment's members (any outcome, last 90 days). The base rate is cached; only detectable_lift runs on a change
    of the holdout share."""
    try:
        rate = base_rate_of(db, no, version)
    except SegcoreError as e:
        st.caption(f"No power hint: {e}.")
        return
    if rate.rate is None:
        return
    if rate.responders == 0 and holdout_pct:
        st.caption(":material/insights: No member of this segment has an outcome in the last "
                   f"{rate.days} days: import outcomes (Data page) to see how small a lift this test could detect.")
        return
    hint = detectable_lift(members, float(holdout_pct or 0), rate.rate)
    st.caption(":material/insights: " + power_hint_text(hint, rate))

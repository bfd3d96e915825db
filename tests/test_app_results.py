"""Campaign results in the dashboard (AppTest): the Review page's Results tab against segcore's numbers, its honest
states in words, its CSV export; the result on the logged record; the power hint before logging.

Each test logs segments of the demo copy with a holdout and imports outcomes of a kind the demo does not have
(REPLY), so the expected numbers come from segcore.results alone, on the same data."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pandas as pd
import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

from segcore import (
    Database,
    base_rate,
    campaign_results,
    detectable_lift,
    import_outcomes,
    results_frame,
    segment_results,
)
from segcore._engine import ActionRequest, apply_action, create_segment, get_segment
from segcore._filter_tree import from_json
from segcore._lifecycle import create_campaign, log_segment, logged_members
from tests.apptest_paths import path_of
from tests.apptest_support import REVIEW, new_app, open_builder, run, texts

TODAY = dt.date.today()
LOG_DAY = TODAY - dt.timedelta(days=40)


def build(db: Database, no: str, countries: list[str], campaign: str | None = "SPRING") -> int:
    create_segment(db, no, description=f"Target {no}", campaign_no=campaign)
    apply_action(db, no, ActionRequest("add", filter=from_json({"field": "country", "op": "in", "value": countries})))
    return get_segment(db, no).size


def groups(db: Database, no: str) -> tuple[list[str], list[str]]:
    """(treated, control) contact numbers of a logged segment, sorted."""
    rows, _ = logged_members(db, no, limit=100_000)
    treated = sorted(r["contact_no"] for r in rows if not r["holdout"])
    control = sorted(r["contact_no"] for r in rows if r["holdout"])
    return treated, control


def replies(db: Database, rows: list[tuple[str, dt.date, float | None]]) -> None:
    """Import REPLY outcomes (contact, date, amount) through the outcomes import."""
    lines = ["contact_no,date,kind,amount,reference"]
    lines += [f"{c},{d.isoformat()},REPLY,{'' if a is None else a},R{i}" for i, (c, d, a) in enumerate(rows)]
    report = import_outcomes(db, "\n".join(lines).encode())
    assert report.rows_rejected == 0 and report.inserted == len(rows)


@pytest.fixture
def spring(app_db: Database) -> Database:
    """Campaign SPRING: FR logged 40 days ago with a 30 % holdout and a known effect (about 30 % of the treated
    replied in the window against 10 % of the control group, plus replies outside the window that must not count);
    DE logged today (too early); NL|BE logged 40 days ago without a holdout."""
    create_campaign(app_db, "SPRING", description="Spring sale")
    build(app_db, "FR", ["FR"])
    log_segment(app_db, "FR", template="EMAIL", date=LOG_DAY, holdout_pct=30, seed=11)
    treated, control = groups(app_db, "FR")
    rows = [(c, LOG_DAY + dt.timedelta(days=1 + i % 25), 20.0 + i % 7) for i, c in enumerate(treated) if i % 10 < 3]
    rows += [(c, LOG_DAY + dt.timedelta(days=3 + i % 20), 15.0) for i, c in enumerate(control) if i % 10 == 0]
    # The log day itself and the day after the window do not count.
    rows += [(treated[1], LOG_DAY, 99.0), (control[1], LOG_DAY + dt.timedelta(days=31), 99.0)]
    replies(app_db, rows)
    build(app_db, "DE", ["DE"])
    log_segment(app_db, "DE", template="EMAIL", date=TODAY, holdout_pct=20, seed=3)
    build(app_db, "NLBE", ["NL", "BE"])
    log_segment(app_db, "NLBE", template="LETTER", date=LOG_DAY)
    return app_db


def open_results(kinds: list[str] | None = None) -> Any:
    at = run(new_app())
    at.switch_page(REVIEW)
    run(at)
    at.selectbox(key="rv.campaign").set_value("SPRING")
    at.session_state["rv.tab"] = "Results"
    run(at)
    if kinds is not None:
        at.multiselect(key="rv.res.kinds").set_value(kinds)
        run(at)
    return at


def results_shown(at: Any) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if "Lift [95%]" in d.value.columns).set_index("Segment")


def with_interval(rate: float, low: float, high: float) -> str:
    return f"{rate * 100:.1f}% [{low * 100:.1f}%, {high * 100:.1f}%]"


def points(value: float) -> str:
    return f"{value * 100:+.1f}".replace("-", "−")


def test_results_tab_shows_segcores_numbers_with_their_intervals(spring: Database) -> None:
    at = open_results(["REPLY"])
    table = results_shown(at)
    assert list(table.index) == ["FR", "NLBE", "DE"]  # by log date, then number
    r = segment_results(spring, "FR", kinds="REPLY")
    assert r.state == "ok" and r.p_value < 0.05 and r.lift_abs > 0.1  # the planted effect is found
    fr = table.loc["FR"]
    assert (fr["Treated"], fr["Treated responders"]) == (r.treated.contacts, r.treated.responders)
    assert (fr["Control"], fr["Control responders"]) == (r.control.contacts, r.control.responders)
    assert fr["Treated rate [95%]"] == with_interval(r.treated.rate, r.treated.rate_low, r.treated.rate_high)
    assert fr["Control rate [95%]"] == with_interval(r.control.rate, r.control.rate_low, r.control.rate_high)
    assert fr["Lift [95%]"] == f"{points(r.lift_abs)} pts [{points(r.lift_abs_low)}, {points(r.lift_abs_high)}]"
    assert fr["p-value (test)"].endswith("(z-test)" if r.test == "z" else "(Fisher)")
    assert fr["State"] == "difference shown" and fr["Days"] == "30 of 30"
    assert fr["Revenue / contact, treated"] == f"{r.treated.revenue_per_contact:,.2f}"
    assert fr["Incremental responders [95%]"].startswith(f"+{r.incremental_responders:,.0f} [")
    # Honest states, in words.
    assert table.loc["DE", "State"] == "too early" and table.loc["DE", "Treated rate [95%]"] == "–"
    assert table.loc["NLBE", "State"] == "no control group" and table.loc["NLBE", "Lift [95%]"] == "–"
    # No rate anywhere without its interval.
    for col in ("Treated rate [95%]", "Control rate [95%]", "Lift [95%]"):
        assert all(v == "–" or "[" in v for v in table[col]), col
    # The picked segment's result in words, and its cumulative chart.
    assert any("responded differently" in m for m in texts(at.markdown))
    assert any(f"{r.treated.responders:,} of {r.treated.contacts:,} responded" in m for m in texts(at.markdown))
    assert len(at.get("plotly_chart")) == 1


def test_states_are_said_in_words_for_the_picked_segment(spring: Database) -> None:
    at = open_results(["REPLY"])
    at.selectbox(key="rv.res.pick").set_value("DE")
    run(at)
    assert any(i.startswith("Too early: the 30-day window starts on") for i in texts(at.info))
    assert not at.get("plotly_chart")
    at.selectbox(key="rv.res.pick").set_value("NLBE")
    run(at)
    assert any(w.startswith("No control group") for w in texts(at.warning))
    # The treated rate still comes with its interval.
    r = segment_results(spring, "NLBE", kinds="REPLY")
    assert any(with_interval(r.treated.rate, r.treated.rate_low, r.treated.rate_high) in m for m in texts(at.markdown))


def test_too_few_responders_are_said(spring: Database) -> None:
    # A window of 2 days holds only the first replies: fewer than 10 in both groups together.
    at = open_results(["REPLY"])
    at.number_input(key="rv.res.window").set_value(1)
    run(at)
    r = segment_results(spring, "FR", kinds="REPLY", window_days=1)
    assert r.state == "too_few_responders"
    assert results_shown(at).loc["FR", "State"] == "not enough responders to say"
    assert any(w.startswith("Not enough responders to say") for w in texts(at.warning))


def test_metric_choices_change_the_numbers(spring: Database) -> None:
    at = open_results()
    # Any outcome (the demo's orders and sign-ups too) by default.
    r = segment_results(spring, "FR")
    assert results_shown(at).loc["FR", "Treated responders"] == r.treated.responders
    at.checkbox(key="rv.res.positive").check()
    run(at)
    r = segment_results(spring, "FR", include_positive_interactions=True)
    assert results_shown(at).loc["FR", "Treated responders"] == r.treated.responders


def test_csv_download_is_the_cores_results_frame(spring: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    stored: list[tuple[bytes, str, str | None]] = []
    keep = MemoryMediaFileStorage.load_and_get_id

    def spy(self: Any, data: Any, mimetype: str, kind: Any, filename: str | None = None) -> str:
        stored.append((bytes(data) if not isinstance(data, str) else data.encode(), mimetype, filename))
        return keep(self, data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", spy)
    at = open_results(["REPLY"])
    [button] = at.get("download_button")
    assert button.proto.label == "Download results (CSV)"
    [(data, mime, name)] = [s for s in stored if s[2] == "results-SPRING.csv"][-1:]
    assert mime == "text/csv"
    shown = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig")
    expected = results_frame(campaign_results(spring, "SPRING", kinds="REPLY"))
    assert list(shown.columns) == list(expected.columns)
    assert list(shown["segment_no"]) == ["FR", "NLBE", "DE"]
    assert list(shown["state"]) == ["ok", "no_control", "too_early"]
    for col in ("treated_contacts", "treated_responders", "control_responders", "lift_abs", "lift_abs_low",
                "p_value", "incremental_revenue"):
        pd.testing.assert_series_equal(shown[col].astype(float), expected[col].astype(float), check_names=False)


def test_no_logged_segment_says_so(app_db: Database) -> None:
    create_campaign(app_db, "SPRING")
    at = open_results()
    assert any("No logged segment here yet" in i for i in texts(at.info))


def test_the_logged_record_shows_its_result(spring: Database) -> None:
    at = open_builder("FR")
    at.session_state["bd.tab"] = "Review & log"
    run(at)
    r = segment_results(spring, "FR")
    shown = texts(at.markdown)
    assert "**Result**" in shown
    assert any(with_interval(r.treated.rate, r.treated.rate_low, r.treated.rate_high) in m for m in shown)
    assert any(f"{points(r.lift_abs)} pts [" in m for m in shown)
    at = open_builder("DE")
    at.session_state["bd.tab"] = "Review & log"
    run(at)
    assert any(i.startswith("Too early: the 30-day window starts on") for i in texts(at.info))


# ------------------------------------------------------------------------------------------------- power hint


def hint_of(at: Any) -> str:
    """The power hint's words (after its icon)."""
    text = next(c for c in texts(at.caption) if "can detect a lift" in c or "No holdout" in c)
    return text.removeprefix(":material/insights: ")


def test_power_hint_follows_the_holdout_share(app_db: Database) -> None:
    size = build(app_db, "FR", ["FR"], campaign=None)
    at = open_builder("FR")
    at.session_state["bd.tab"] = "Review & log"
    run(at)
    assert hint_of(at).startswith("No holdout")
    rate = base_rate(app_db, segment_no="FR")
    assert rate.responders > 0  # the demo's outcomes of the last 90 days
    seen = []
    for share in (10, 30):
        at.number_input(key="bd.log.holdout").set_value(share)
        run(at)
        hint = detectable_lift(size, share, rate.rate)
        text = hint_of(at)
        assert f"{hint.treated:,} contacted against {hint.control:,} held out" in text
        assert f"lift of {points(hint.min_lift_abs)} points" in text
        seen.append(text)
        # Right under the row holding the holdout input.
        box = next(c for c in at.caption if c.value.endswith(text))
        where = path_of(at, at.number_input(key="bd.log.holdout"))
        assert path_of(at, box) == [*where[:-3], where[-3] + 1]
    assert seen[0] != seen[1]
    # A bigger control group detects a smaller lift.
    assert detectable_lift(size, 30, rate.rate).min_lift_abs < detectable_lift(size, 10, rate.rate).min_lift_abs
    # The dialog repeats it before anything is written.
    at.button(key="bd.log.go").click()
    run(at)
    assert sum(seen[1] in c for c in texts(at.caption)) == 2  # under the input and in the dialog


def test_power_hint_without_outcomes_says_what_to_do(app_db: Database) -> None:
    from sqlalchemy import delete

    from segcore._models import Outcome, table_of

    with app_db.write() as conn:
        conn.execute(delete(table_of(Outcome)))
    build(app_db, "FR", ["FR"], campaign=None)
    at = open_builder("FR")
    at.session_state["bd.tab"] = "Review & log"
    run(at)
    at.number_input(key="bd.log.holdout").set_value(20)
    run(at)
    assert any("import outcomes" in c for c in texts(at.caption))

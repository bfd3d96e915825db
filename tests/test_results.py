"""Results of a logged segment (issue 14), on SQLite and PostgreSQL: the groups, the window, the states, the numbers.

Every scenario is written by hand (who is held out comes from the log's own seeded draw), so the expected counts
are known exactly and the statistics are compared with SciPy/statsmodels called directly.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json

import numpy as np
import pytest
from scipy.stats import fisher_exact
from sqlalchemy import func, inspect, select, text, update
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from segcore._db import Database
from segcore._engine import ActionRequest, apply_action, create_segment
from segcore._errors import NotFoundError, UsageError
from segcore._lifecycle import cancel_logged, create_campaign, log_segment, logged_members
from segcore._models import SCHEMA_VERSION, Interaction, Outcome, SchemaInfo
from segcore.imports import import_interactions, import_outcomes
from segcore.results import (
    MIN_RESPONDERS,
    base_rate,
    campaign_results,
    normalise_kinds,
    response_curve,
    results_frame,
    segment_results,
    to_v3,
)
from segcore.results.cli import add_campaign_results_command, add_results_command, results_text
from tests.factories import add_contacts, person

DAY = dt.date(2024, 5, 2)  # the log day
LATER = DAY + dt.timedelta(days=60)  # the whole 30-day window has passed


def _contacts(db: Database, n: int) -> list[str]:
    nos = [f"P{i:03d}" for i in range(1, n + 1)]
    add_contacts(db, [person(no, country="FR") for no in nos])
    return nos


def _log(db: Database, no: str, nos: list[str], *, holdout: float | None = 25, campaign: str | None = "SPRING") -> None:
    create_segment(db, no, description="Spring mailing", campaign_no=campaign, owner="ann")
    apply_action(db, no, ActionRequest("add_contacts", contact_nos=tuple(nos)), user="ann")
    log_segment(db, no, template="EMAIL", date=DAY, holdout_pct=holdout, seed=5 if holdout else None, user="ann")


def _groups(db: Database, no: str) -> tuple[list[str], list[str]]:
    rows, _ = logged_members(db, no, limit=1000)
    treated = sorted(r["contact_no"] for r in rows if not r["holdout"])
    control = sorted(r["contact_no"] for r in rows if r["holdout"])
    return treated, control


def _outcomes(db: Database, rows: list[tuple[str, dt.date, str, str, str]]) -> None:
    body = "contact_no,date,kind,amount,reference\n" + "".join(
        f"{c},{d.isoformat()},{k},{a},{r}\n" for c, d, k, a, r in rows
    )
    report = import_outcomes(db, body.encode(), strict=True)
    assert report.rows_valid == len(rows)


@pytest.fixture
def scenario(db: Database) -> tuple[Database, list[str], list[str]]:
    """200 members logged on DAY with a 25 % holdout (150 treated, 50 control) and outcomes around the window."""
    create_campaign(db, "SPRING", description="Spring sale")
    nos = _contacts(db, 200)
    _log(db, "S1", nos)
    treated, control = _groups(db, "S1")
    d = dt.timedelta
    rows = []
    # In the window: 30 treated responders (one buys twice), 6 control responders.
    for i, c in enumerate(treated[:30]):
        rows.append((c, DAY + d(days=1 + i % 30), "ORDER", "20.00", f"T{i}"))
    rows.append((treated[0], DAY + d(days=10), "ORDER", "5.50", "T-again"))
    for i, c in enumerate(control[:6]):
        rows.append((c, DAY + d(days=30), "ORDER", "10", f"C{i}"))
    # Outside the window or of another kind: never counted as an ORDER response.
    rows.append((treated[40], DAY, "ORDER", "99", "ON-LOG-DAY"))
    rows.append((treated[41], DAY - d(days=1), "ORDER", "99", "BEFORE"))
    rows.append((treated[42], DAY + d(days=31), "ORDER", "99", "AFTER"))
    rows.append((control[10], DAY + d(days=31), "ORDER", "99", "AFTER-C"))
    rows.append((treated[43], DAY + d(days=5), "SIGNUP", "", ""))
    rows.append((control[11], DAY + d(days=5), "SIGNUP", "", ""))
    _outcomes(db, rows)
    return db, treated, control


# ------------------------------------------------------------------------------------------------ the numbers


def test_groups_counts_and_statistics_match_scipy_and_statsmodels(scenario) -> None:
    db, treated, control = scenario
    r = segment_results(db, "S1", kinds=["order"], today=LATER)
    assert (len(treated), len(control)) == (150, 50)
    assert r.state == "ok" and r.days_observed == 30 and r.kinds == ("ORDER",)
    assert (r.window_start, r.window_end) == (DAY + dt.timedelta(days=1), DAY + dt.timedelta(days=30))
    assert (r.treated.contacts, r.treated.responders, r.control.contacts, r.control.responders) == (150, 30, 50, 6)
    assert r.treated.revenue == pytest.approx(30 * 20 + 5.5) and r.control.revenue == pytest.approx(60)
    assert r.treated.revenue_per_contact == pytest.approx(605.5 / 150)
    lo, hi = proportion_confint(30, 150, method="wilson")
    assert (r.treated.rate, r.treated.rate_low, r.treated.rate_high) == pytest.approx((0.2, lo, hi))
    lo, hi = proportion_confint(6, 50, method="wilson")
    assert (r.control.rate_low, r.control.rate_high) == pytest.approx((lo, hi))
    lo, hi = confint_proportions_2indep(30, 150, 6, 50, method="newcomb", compare="diff")
    assert (r.lift_abs, r.lift_abs_low, r.lift_abs_high) == pytest.approx((0.2 - 0.12, lo, hi))
    assert r.lift_rel == pytest.approx(0.2 / 0.12 - 1)
    # 6 control responders is a cell under 10: Fisher's exact test.
    assert r.test == "fisher"
    assert r.p_value == pytest.approx(fisher_exact([[30, 120], [6, 44]]).pvalue)
    rev_t = np.zeros(150)
    rev_t[:30] = 20
    rev_t[0] += 5.5
    rev_c = np.zeros(50)
    rev_c[:6] = 10
    cm = CompareMeans(DescrStatsW(rev_t), DescrStatsW(rev_c))
    lo, hi = cm.tconfint_diff(usevar="unequal")
    assert (r.revenue_lift, r.revenue_lift_low, r.revenue_lift_high) == pytest.approx(
        (rev_t.mean() - rev_c.mean(), lo, hi)
    )
    assert r.incremental_responders == pytest.approx(0.08 * 150)
    assert r.incremental_revenue == pytest.approx((rev_t.mean() - rev_c.mean()) * 150)


def test_any_kind_counts_signups_too_and_the_z_test_takes_over_with_big_cells(scenario) -> None:
    db, treated, control = scenario
    r = segment_results(db, "S1", today=LATER)
    assert r.kinds is None and (r.treated.responders, r.control.responders) == (31, 7)
    assert segment_results(db, "S1", kinds="SIGNUP", today=LATER).treated.responders == 1
    # Ten more control responders: every cell is 10 or more, so the z-test.
    _outcomes(db, [(c, DAY + dt.timedelta(days=2), "ORDER", "1", f"X{i}") for i, c in enumerate(control[12:22])])
    r = segment_results(db, "S1", kinds="ORDER", today=LATER)
    assert (r.control.responders, r.test) == (16, "z")
    _, p = proportions_ztest([30, 16], [150, 50])
    assert r.p_value == pytest.approx(p)


def test_the_window_counts_only_days_that_have_passed(scenario) -> None:
    db, _treated, _control = scenario
    r = segment_results(db, "S1", kinds="ORDER", today=DAY + dt.timedelta(days=5))
    # Treated responders on days 1..5 only; the control's orders are on day 30.
    assert r.days_observed == 5 and (r.treated.responders, r.control.responders) == (5, 0)
    r = segment_results(db, "S1", kinds="ORDER", today=DAY)
    assert r.state == "too_early" and r.days_observed == 0 and r.treated.responders is None
    assert r.treated.contacts == 150 and r.lift_abs is None and "too early" in r.message
    # A window of 10 days: the day-30 orders are after it.
    r = segment_results(db, "S1", kinds="ORDER", window_days=10, today=LATER)
    assert r.days_observed == 10 and r.control.responders == 0 and r.treated.responders == 10
    with pytest.raises(UsageError):
        segment_results(db, "S1", window_days=0)
    with pytest.raises(UsageError):
        segment_results(db, "S1", window_days=366)


def test_a_cancelled_log_shows_no_result(scenario) -> None:
    db, _treated, _control = scenario
    cancel_logged(db, "S1", user="ann")
    r = segment_results(db, "S1", today=LATER)
    assert r.state == "cancelled"
    assert r.treated.responders is None and r.treated.rate is None and r.lift_abs is None and r.p_value is None
    assert response_curve(db, "S1", today=LATER).points == ()


def test_duplicate_references_count_once(scenario) -> None:
    db, treated, _control = scenario
    before = segment_results(db, "S1", kinds="ORDER", today=LATER)
    # The same order numbers again, one with a corrected amount: updated, not added.
    report = import_outcomes(
        db, f"contact_no,date,kind,amount,reference\n{treated[0]},{DAY + dt.timedelta(days=1)},ORDER,25,T0\n".encode()
    )
    assert (report.inserted, report.updated) == (0, 1)
    after = segment_results(db, "S1", kinds="ORDER", today=LATER)
    assert after.treated.responders == before.treated.responders
    assert after.treated.revenue == pytest.approx(before.treated.revenue + 5)
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(Outcome).where(Outcome.reference == "T0")).scalar_one() == 1


def test_no_control_group_gives_treated_numbers_without_a_lift(db: Database) -> None:
    nos = _contacts(db, 60)
    _log(db, "S2", nos, holdout=None, campaign=None)
    _outcomes(db, [(c, DAY + dt.timedelta(days=3), "ORDER", "1", "") for c in nos[:12]])
    r = segment_results(db, "S2", today=LATER)
    assert r.state == "no_control" and r.control.contacts == 0 and r.control.rate is None
    assert (r.treated.responders, r.treated.contacts) == (12, 60) and r.treated.rate_low is not None
    assert r.lift_abs is None and r.p_value is None and r.test is None
    curve = response_curve(db, "S2", today=LATER)
    assert curve.state == "no_control" and curve.points[-1].control_rate is None


def test_few_responders_say_so(db: Database) -> None:
    nos = _contacts(db, 80)
    _log(db, "S3", nos, holdout=50, campaign=None)
    treated, control = _groups(db, "S3")
    _outcomes(db, [(treated[0], DAY + dt.timedelta(days=2), "ORDER", "", ""),
                   (control[0], DAY + dt.timedelta(days=2), "ORDER", "", "")])
    r = segment_results(db, "S3", today=LATER)
    assert r.state == "too_few_responders" and r.treated.responders + r.control.responders < MIN_RESPONDERS
    # The numbers are still there, with their intervals: never a bare percentage.
    assert r.lift_abs == pytest.approx(0) and r.lift_abs_low < 0 < r.lift_abs_high and r.test == "fisher"
    assert "not enough responders" in r.message


def test_positive_interactions_can_count_but_not_the_logs_own(scenario) -> None:
    db, treated, control = scenario
    body = "contact_no,date,template,evaluation\n" + "".join(
        f"{c},{(DAY + dt.timedelta(days=4)).isoformat()},CALL,{ev}\n"
        for c, ev in ((control[20], "positive"), (control[21], "very_positive"), (control[22], "negative"))
    )
    import_interactions(db, body.encode(), strict=True)
    with db.write() as conn:
        # Even evaluated positive, the log's own rows are the treatment, not a response.
        conn.execute(update(Interaction).where(Interaction.logged_segment_id.is_not(None)).values(evaluation="positive"))
    off = segment_results(db, "S1", kinds="ORDER", today=LATER)
    on = segment_results(db, "S1", kinds="ORDER", include_positive_interactions=True, today=LATER)
    assert on.control.responders == off.control.responders + 2
    assert on.treated.responders == off.treated.responders


def test_campaign_results_side_by_side_and_the_table(scenario) -> None:
    db, _treated, _control = scenario
    extra = [f"Q{i:03d}" for i in range(1, 61)]
    add_contacts(db, [person(no) for no in extra])
    _log(db, "S4", extra, holdout=20)
    results = campaign_results(db, "SPRING", kinds="ORDER", today=LATER)
    assert [r.segment_no for r in results] == ["S1", "S4"]
    assert results[0] == segment_results(db, "S1", kinds="ORDER", today=LATER)
    frame = results_frame(results)
    assert list(frame["segment_no"]) == ["S1", "S4"]
    assert {"treated_rate", "control_rate_low", "lift_abs_high", "p_value", "state"} <= set(frame.columns)
    with pytest.raises(NotFoundError):
        campaign_results(db, "NOPE")
    with pytest.raises(NotFoundError):
        segment_results(db, "NOPE")


def test_response_curve_is_cumulative_and_ends_at_the_result(scenario) -> None:
    db, _treated, _control = scenario
    curve = response_curve(db, "S1", kinds="ORDER", today=LATER)
    r = segment_results(db, "S1", kinds="ORDER", today=LATER)
    assert curve.state == "ok" and len(curve.points) == 30 and curve.points[0].date == DAY + dt.timedelta(days=1)
    treated = [p.treated_responders for p in curve.points]
    assert treated == sorted(treated) and treated[-1] == r.treated.responders
    last = curve.points[-1]
    assert (last.treated_rate, last.treated_low, last.control_rate, last.control_high) == pytest.approx(
        (r.treated.rate, r.treated.rate_low, r.control.rate, r.control.rate_high)
    )
    assert curve.points[0].control_responders == 0 and curve.points[-1].control_responders == 6
    frame = curve.frame()
    assert len(frame) == 30 and (frame["treated_low"] <= frame["treated_rate"]).all()
    assert response_curve(db, "S1", today=DAY).state == "too_early"


def test_the_json_form_has_the_documented_keys(scenario) -> None:
    db, _treated, _control = scenario
    data = json.loads(json.dumps(segment_results(db, "S1", kinds="ORDER", today=LATER).as_dict()))
    group_keys = {"contacts", "responders", "rate", "rate_low", "rate_high", "revenue", "revenue_per_contact"}
    assert set(data["treated"]) == group_keys and set(data["control"]) == group_keys
    assert {"lift_abs", "lift_abs_low", "lift_abs_high", "lift_rel", "p_value", "test", "window_days", "state",
            "days_observed", "kinds"} <= set(data)
    assert data["test"] == "fisher" and data["window_days"] == 30 and data["state"] == "ok"


def test_cli_handlers_print_text_and_json(scenario) -> None:
    db, _treated, _control = scenario
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    seg = sub.add_parser("segment").add_subparsers()
    add_results_command(seg)
    camp = sub.add_parser("campaign").add_subparsers()
    add_campaign_results_command(camp)
    args = parser.parse_args(["segment", "results", "S1", "--kinds", "order", "--window", "30",
                              "--today", LATER.isoformat()])
    out, data = args.handler(db, args)
    assert data["treated"]["responders"] == 30 and data["control"]["responders"] == 6
    assert "state: ok" in out and "Fisher" in out and "[" in out and out == results_text(segment_results(
        db, "S1", kinds="ORDER", today=LATER))
    args = parser.parse_args(["campaign", "results", "SPRING", "--today", LATER.isoformat()])
    out, data = args.handler(db, args)
    assert [d["segment_no"] for d in data] == ["S1"] and "segment S1" in out
    with pytest.raises(SystemExit):
        parser.parse_args(["segment", "results", "S1", "--window", "0"])


def test_kinds_are_codes() -> None:
    assert normalise_kinds(None) is None and normalise_kinds("") is None
    assert normalise_kinds(" order, signup ,ORDER") == ("ORDER", "SIGNUP")
    with pytest.raises(UsageError):
        normalise_kinds(["no spaces"])


def test_base_rate_of_all_contacts_and_of_a_segment(scenario) -> None:
    db, treated, control = scenario
    today = DAY + dt.timedelta(days=40)
    # Last 90 days up to DAY+40: every order of the scenario except none (all within DAY-1 .. DAY+31).
    all_rate = base_rate(db, "ORDER", today=today)
    assert all_rate.population == "all contacts" and all_rate.contacts == 200
    assert all_rate.responders == 30 + 6 + 4  # + the log-day, before and two after-window buyers
    assert all_rate.rate == pytest.approx(40 / 200)
    short = base_rate(db, "ORDER", days=5, today=DAY + dt.timedelta(days=31))
    # DAY+27 .. DAY+31: four treated buyers (days 27-30), the six control buyers (day 30), two on day 31.
    assert short.responders == 4 + 6 + 2
    create_segment(db, "HALF", description="half", owner="ann")
    apply_action(db, "HALF", ActionRequest("add_contacts", contact_nos=tuple(control)), user="ann")
    seg = base_rate(db, ["ORDER"], segment_no="HALF", today=today)
    assert seg.population == "segment HALF" and seg.contacts == 50 and seg.responders == 7
    with pytest.raises(NotFoundError):
        base_rate(db, segment_no="NOPE")


# ------------------------------------------------------------------------------------------------ the schema


def test_a_version_2_database_migrates_to_3_keeping_its_data(db: Database) -> None:
    nos = _contacts(db, 60)
    _log(db, "S5", nos, holdout=10, campaign=None)
    with db.write() as conn:
        # Back to version 2: no outcomes table.
        conn.execute(text("DROP TABLE outcomes"))
        conn.execute(update(SchemaInfo).values(version=2))
    with db.read() as conn:
        assert not inspect(conn).has_table("outcomes")
    with db.write() as conn:
        to_v3(conn)
        conn.execute(update(SchemaInfo).values(version=3))
        to_v3(conn)  # a second run finds the table and changes nothing
    with db.read() as conn:
        insp = inspect(conn)
        assert insp.has_table("outcomes")
        names = {ix["name"] for ix in insp.get_indexes("outcomes")}
        assert {"ix_outcomes_window", "ix_outcomes_contact_date"} <= names
    assert SCHEMA_VERSION >= 3  # later versions (4: accounts) keep the outcomes table
    _outcomes(db, [(nos[0], DAY + dt.timedelta(days=1), "ORDER", "1", "R1")])
    r = segment_results(db, "S5", today=LATER)
    assert r.treated.contacts + r.control.contacts == 60 and r.treated.responders + r.control.responders == 1

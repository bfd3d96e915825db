"""Demo data: deterministic for a seed, plausible, and written through the importer's own path."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from segcore import Database, UsageError, validate_contacts, validate_interactions
from segcore._demo import DemoData, contacts_csv_frame, generate_demo, load_demo, write_demo_csv
from segcore._models import Contact, ContactCode, Interaction, Outcome, ProfileAnswer
from segcore.imports.check import COUNTRY_CODES, LANGUAGE_CODES

TODAY = dt.date(2025, 6, 30)


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return generate_demo(6000, seed=11, today=TODAY)


def test_same_seed_same_data() -> None:
    a = generate_demo(1500, seed=3, today=TODAY)
    b = generate_demo(1500, seed=3, today=TODAY)
    pd.testing.assert_frame_equal(a.batch.contacts, b.batch.contacts)
    pd.testing.assert_frame_equal(a.batch.codes, b.batch.codes)
    pd.testing.assert_frame_equal(a.batch.profile, b.batch.profile)
    pd.testing.assert_frame_equal(a.interactions, b.interactions)
    c = generate_demo(1500, seed=4, today=TODAY)
    assert not a.batch.contacts["name"].equals(c.batch.contacts["name"])


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 25])
def test_tiny_sizes_are_consistent(n: int) -> None:
    data = generate_demo(n, seed=1, today=TODAY)
    c = data.batch.contacts
    assert len(c) == n and c["contact_no"].is_unique
    companies = set(c.loc[c["type"] == "company", "contact_no"])
    assert set(c.loc[c["company_no"] != "", "company_no"]) <= companies


def test_size_is_bounded() -> None:
    with pytest.raises(UsageError):
        generate_demo(-1)
    with pytest.raises(UsageError):
        generate_demo(1_000_001)


def test_structure(demo: DemoData) -> None:
    c = demo.batch.contacts
    assert c["contact_no"].str.fullmatch(r"CT\d{6}").all() and c["contact_no"].is_unique
    company = c["type"] == "company"
    assert 0.13 <= company.mean() <= 0.17
    # Every person's company exists and is a company; companies belong to nobody.
    companies = set(c.loc[company, "contact_no"])
    assert set(c.loc[c["company_no"] != "", "company_no"]) <= companies
    assert (c.loc[company, "company_no"] == "").all()
    sizes = c.loc[c["company_no"] != ""].groupby("company_no").size()
    assert sizes.max() <= 20 and 2 <= sizes.mean() <= 5
    assert 0.15 <= ((~company) & (c["company_no"] == "")).mean() <= 0.45
    # Companies have no birth date and an unknown gender.
    assert (c.loc[company, "birth_date"] == "").all() and (c.loc[company, "gender"] == "unknown").all()


def test_people_and_places(demo: DemoData) -> None:
    c = demo.batch.contacts
    person = c["type"] == "person"
    assert set(c["country"]) <= COUNTRY_CODES and set(c["language"]) <= LANGUAGE_CODES
    shares = c["country"].value_counts(normalize=True)
    assert shares.index[0] == "FR" and shares["FR"] > 0.15 and shares.get("DK", 0) < 0.03
    # Languages follow countries.
    assert (c.loc[c["country"] == "DE", "language"].isin(["de", "en"])).all()
    assert (c.loc[c["country"] == "BE", "language"].isin(["fr", "nl", "de", "en"])).all()
    born = pd.to_datetime(c.loc[person & (c["birth_date"] != ""), "birth_date"])
    assert born.min() >= pd.Timestamp("1940-01-01") and born.max() <= pd.Timestamp("2008-12-31")
    age = (pd.Timestamp(TODAY) - born).dt.days / 365.25
    assert 35 <= age.median() <= 55
    genders = c.loc[person, "gender"].value_counts(normalize=True)
    assert 0.4 < genders["female"] < 0.6 and 0.4 < genders["male"] < 0.6
    assert 0.01 <= c["exclude_from_segments"].mean() <= 0.035
    sources = c["acquisition_source"].value_counts(normalize=True)
    assert set(sources.index) == {"organic", "ads", "referral", "store", "event", "partner"}
    assert sources.index[0] == "organic"


def test_emails(demo: DemoData) -> None:
    c = demo.batch.contacts
    mail = c.loc[c["email"] != "", "email"]
    assert 0.85 <= len(mail) / len(c) <= 0.95
    assert mail.is_unique and (mail == mail.str.lower()).all()
    assert mail.str.fullmatch(r"[a-z0-9.]+@[a-z0-9.-]+\.[a-z]{2,}").all()
    assert (c.loc[c["email"] != "", "email_domain"] == mail.str.split("@").str[1]).all()
    assert {"contoso.com", "fabrikam.com", "example.org"} <= set(c["email_domain"])


def test_purchases_are_consistent(demo: DemoData) -> None:
    c = demo.batch.contacts
    bought = c["purchase_count"] > 0
    assert (c.loc[~bought, "last_purchase_date"] == "").all()
    assert (c.loc[bought, "last_purchase_date"] != "").all()
    assert (c.loc[~bought, "total_spent"] == 0).all() and (c.loc[bought, "total_spent"] > 0).all()
    assert (c.loc[bought, "last_purchase_date"] >= c.loc[bought, "acquisition_date"]).all()
    assert (c["last_purchase_date"] <= TODAY.isoformat()).all()
    # Skewed: many 0-3, a long tail.
    assert (c["purchase_count"] <= 3).mean() > 0.6 and c["purchase_count"].max() > 30
    # Spend grows with purchases.
    ranks = c[["purchase_count", "total_spent"]].rank()
    assert np.corrcoef(ranks["purchase_count"], ranks["total_spent"])[0, 1] > 0.8
    acquired = pd.to_datetime(c["acquisition_date"])
    assert acquired.min() >= pd.Timestamp(TODAY) - pd.Timedelta(days=8 * 366)
    # Churn risk follows recency.
    days = (pd.Timestamp(TODAY) - pd.to_datetime(c.loc[bought, "last_purchase_date"])).dt.days
    risk = c.loc[bought, "churn_risk"]
    assert (risk[days > 365] == "high").mean() > 0.8 and (risk[days < 90] == "low").mean() > 0.8
    assert c["rating"].dropna().between(1, 5).all()


def test_codes_and_answers(demo: DemoData) -> None:
    codes, profile = demo.batch.codes, demo.batch.profile
    assert set(codes["kind"]) == {"mailing_groups", "industry_groups", "job_responsibilities"}
    assert (codes["code"] == codes["code"].str.upper()).all()
    assert not codes.duplicated().any() and not profile.duplicated().any()
    assert set(profile["questionnaire"]) == {"CUSTSAT", "INTEREST", "CHANNEL"}
    assert set(profile.loc[profile["questionnaire"] == "CUSTSAT", "answer"]) == {"HIGH", "MED", "LOW"}
    c = demo.batch.contacts
    standalone = set(c.loc[(c["type"] == "person") & (c["company_no"] == ""), "contact_no"])
    jobs = codes.loc[codes["kind"] == "job_responsibilities", "contact_no"]
    assert not set(jobs) & standalone


def test_interactions(demo: DemoData) -> None:
    i = demo.interactions
    c = demo.batch.contacts
    assert 1.6 <= len(i) / len(c) <= 2.6
    assert set(i["contact_no"]) <= set(c["contact_no"])
    assert set(i["template"]) == {"EMAIL", "CALL", "MEETING", "LETTER"}
    dates = pd.to_datetime(i["date"])
    assert dates.max() <= pd.Timestamp(TODAY) and dates.min() >= pd.Timestamp(TODAY) - pd.Timedelta(days=731)
    recent_mail = i[(i["template"] == "EMAIL") & (dates >= pd.Timestamp(TODAY) - pd.Timedelta(days=30))]
    assert recent_mail["contact_no"].nunique() > 0.05 * len(c)
    campaigns = i.loc[i["campaign_no"] != "", "campaign_no"]
    assert campaigns.str.fullmatch(r"CP-20\d\d-(0[1-9]|1[0-2])").all()
    assert set(i["evaluation"]) - {""} <= {
        "very_positive",
        "positive",
        "neutral",
        "negative",
        "very_negative",
    }
    calls = i[i["template"] == "CALL"]
    assert calls["duration_min"].notna().all() and (calls["salesperson"] != "").all()
    assert i.loc[i["template"] == "EMAIL", "duration_min"].isna().all()
    assert (i["cost"] >= 0).all()


def test_csv_files_pass_the_importers_own_checks(sqlite_db: Database, tmp_path: Path) -> None:
    contacts_csv, interactions_csv = write_demo_csv(tmp_path, 800, seed=5, today=TODAY)
    report = validate_contacts(sqlite_db, contacts_csv)
    assert (report.rows_total, report.rows_valid, report.errors) == (800, 800, ())
    frame = contacts_csv_frame(generate_demo(800, seed=5, today=TODAY).batch)
    assert list(frame.columns)[:3] == ["contact_no", "type", "company_no"]
    assert frame["mailing_groups"].str.contains(";").any() and frame["profile"].str.contains("=").any()
    from segcore import import_contacts

    import_contacts(sqlite_db, contacts_csv, strict=True)
    report = validate_interactions(sqlite_db, interactions_csv)
    assert report.errors == () and report.rows_valid == report.rows_total > 800


def test_load_demo_writes_through_the_import_path(db: Database) -> None:
    summary = load_demo(db, 400, seed=9, today=TODAY)
    data = generate_demo(400, seed=9, today=TODAY)
    assert (summary.contacts, summary.inserted, summary.updated) == (400, 400, 0)
    assert summary.interactions == len(data.interactions)
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(Contact)).scalar_one() == 400
        assert conn.execute(select(func.count()).select_from(ContactCode)).scalar_one() == len(
            data.batch.codes
        )
        assert conn.execute(select(func.count()).select_from(ProfileAnswer)).scalar_one() == len(
            data.batch.profile
        )
        assert (
            conn.execute(select(func.count()).select_from(Interaction)).scalar_one() == summary.interactions
        )
        rows = conn.execute(
            select(Contact.id, Contact.contact_no, Contact.type, Contact.company_no, Contact.org_id)
        )
        by_no = {r.contact_no: r for r in rows}
    for r in by_no.values():
        if r.type == "company":
            assert r.org_id == r.id
        elif r.company_no:
            assert r.org_id == by_no[r.company_no].id
        else:
            assert r.org_id is None
    # Loading again updates the same numbers instead of adding contacts.
    again = load_demo(db, 400, seed=9, today=TODAY)
    assert (again.inserted, again.updated) == (0, 400)


def test_outcomes_are_seeded_and_leave_contacts_and_interactions_as_they_were() -> None:
    a = generate_demo(1500, seed=3, today=TODAY)
    b = generate_demo(1500, seed=3, today=TODAY)
    assert a.outcomes is not None and b.outcomes is not None
    pd.testing.assert_frame_equal(a.outcomes, b.outcomes)
    o = a.outcomes
    assert set(o["kind"]) == {"ORDER", "SIGNUP"} and o["reference"].is_unique
    assert o.loc[o["kind"] == "ORDER", "amount"].gt(0).all() and o.loc[o["kind"] == "SIGNUP", "amount"].isna().all()
    days = (pd.Timestamp(TODAY) - pd.to_datetime(o["date"])).dt.days
    assert days.between(0, 119).all()
    assert set(o["contact_no"]) <= set(a.batch.contacts["contact_no"])


def test_load_demo_logs_a_campaign_whose_contacted_members_respond_more(sqlite_db: Database) -> None:
    from segcore.results import segment_results

    summary = load_demo(sqlite_db, 6000, seed=7, today=TODAY, logged_campaign=True)
    assert summary.logged_segment == "DEMO-NEWSLETTER" and summary.outcomes > 0
    r = segment_results(sqlite_db, "DEMO-NEWSLETTER", kinds="ORDER", today=TODAY)
    assert r.state == "ok" and r.control.contacts > 100 and r.days_observed == 30
    # A real, moderate effect, seeded: the treated rate is above the control's.
    assert 0 < r.lift_abs < 0.1 and r.campaign_no == "DEMO-SPRING"
    with sqlite_db.read() as conn:
        outcomes = conn.execute(select(func.count()).select_from(Outcome)).scalar_one()
    # Loading again: references update the same outcomes, and the logged segment is not made twice.
    again = load_demo(sqlite_db, 6000, seed=7, today=TODAY, logged_campaign=True)
    assert again.logged_segment is None and again.outcomes == 0
    with sqlite_db.read() as conn:
        assert conn.execute(select(func.count()).select_from(Outcome)).scalar_one() == outcomes


def test_a_demo_too_small_to_log_leaves_no_half_made_campaign(sqlite_db: Database) -> None:
    from segcore import list_campaigns, list_segments

    # 150 contacts: the newsletter readers in FR, DE and BE are under the minimum segment size of 50.
    summary = load_demo(sqlite_db, 150, seed=7, today=TODAY, logged_campaign=True)
    assert summary.logged_segment is None
    assert list_segments(sqlite_db) == [] and list_campaigns(sqlite_db) == []
    with sqlite_db.read() as conn:
        stored = conn.execute(select(func.count()).select_from(Outcome)).scalar_one()
    # The demo's own outcomes are written all the same.
    assert stored == summary.outcomes > 0


def test_the_logged_campaigns_extra_orders_go_in_with_the_other_outcomes(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One outcome write for the demo and the campaign's extra orders together (a second write re-reads every
    # contact number: it cost seconds at 100,000 contacts).
    import segcore._demo as demo

    calls: list[int] = []
    real = demo.write_outcomes

    def counting(conn, frame, **kw):  # type: ignore[no-untyped-def]
        calls.append(len(frame))
        return real(conn, frame, **kw)

    monkeypatch.setattr(demo, "write_outcomes", counting)
    summary = load_demo(sqlite_db, 6000, seed=7, today=TODAY, logged_campaign=True)
    assert len(calls) == 1 and calls[0] == summary.outcomes
    with sqlite_db.read() as conn:
        extra = conn.execute(select(func.count()).where(Outcome.reference.like("DEMO7-C%"))).scalar_one()
    assert extra > 0

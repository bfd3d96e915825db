"""Custom fields in the dashboard: the Builder's widgets and text form, charts by any dimension, Review, Contacts.

The custom fields are made the way a user makes them: by importing a CSV whose columns the built-in fields do not
know (Loyalty Tier -> a code field, Signup -> a date, Points -> a decimal number, Tags -> a list, Vip -> yes/no).
AppTest cannot look inside Plotly figures: the charts' contents are checked through ui/charts.py's functions, and
the pages are checked for what they show around them (and for rendering without an exception).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

import segcore
from segcore._browse import value_counts
from segcore._db import Database
from segcore._engine import ActionRequest, apply_action, create_segment
from segcore._filter_tree import from_json
from segcore._lifecycle import submit_segment
from segcore._preview import preview_step
from segcore._stats import DIMENSIONS, UNKNOWN, Distribution, dimension_of
from segcore.fields import fields_of
from segcore.fields.custom import delete_custom_field
from tests.apptest_support import (
    BUILDER,
    CONTACTS,
    REVIEW,
    add_condition,
    assert_preview_shown,
    button,
    metrics,
    new_app,
    open_builder,
    run,
    texts,
)
from ui import filter_builder as fb
from ui.charts import (
    AFTER_NAME,
    BEFORE_NAME,
    dimension_choices,
    distribution_figure,
    preview_with_figures,
)
from ui.review_charts import composition_figure

CSV = b"""contact_no,type,name,Loyalty Tier,Signup,Points,Tags,Vip
C1,person,Ann,GOLD,2021-03-01,12.5,A;B,yes
C2,person,Bob,SILVER,2022-05-02,3,B,no
C3,person,Cid,GOLD,2020-11-20,150,A,yes
C4,person,Dee,SILVER,2023-01-15,40.25,C;A,no
C5,person,Eve,GOLD,2019-07-07,7,B,no
C6,person,Fay,SILVER,2021-09-30,0.5,A,yes
"""
GOLD = 3
DIMS = "pv.dims"


@pytest.fixture
def cf_db(app_db: Database) -> Database:
    """The demo database plus six contacts carrying five custom fields, made by an import."""
    report = segcore.import_contacts(app_db, CSV)
    assert report.rows_valid == 6 and not report.errors
    types = {s.name: s.type for s in fields_of(app_db).custom}
    assert types == {
        "loyalty_tier": "code",
        "signup": "date",
        "points": "number",
        "tags": "list",
        "vip": "boolean",
    }
    return app_db


def counts(db: Database, flt: dict[str, Any], no: str = "S1", kind: str = "add") -> Any:
    """The engine's preview of a step whose filter uses custom fields (so it is read with the registry)."""
    return preview_step(
        db, no, ActionRequest(kind, filter=from_json(flt, fields_of(db))), dimensions=()
    ).counts


def infos(at: Any) -> list[str]:
    return texts(at.info)


# ------------------------------------------------------------------------------------------------- the widgets


def test_field_picker_offers_custom_fields_after_the_built_in_ones(cf_db: Database) -> None:
    create_segment(cf_db, "S1")
    at = open_builder("S1")
    options = at.selectbox(key="fb.g1.add").options
    assert "Loyalty Tier (custom)" in options
    custom = [o for o in options if o.endswith("(custom)")]
    assert custom == [
        "Loyalty Tier (custom)",
        "Points (custom)",
        "Signup (custom)",
        "Tags (custom)",
        "Vip (custom)",
    ]
    # Built-in fields first, then the custom ones, then the related-record conditions.
    first_custom = options.index(custom[0])
    assert "Country" in options[:first_custom] and "Total spent" in options[:first_custom]
    assert options[first_custom + len(custom) :] == ["Interactions (at least N that…)", "Profile answer"]


def test_a_custom_code_field_gives_a_multiselect_with_counts_and_a_preview(cf_db: Database) -> None:
    create_segment(cf_db, "S1")
    at = open_builder("S1")
    add_condition(at, "g1", "loyalty_tier")
    tiers = at.multiselect(key="fb.c2.in.v")
    assert sorted(tiers.options) == ["GOLD (3)", "SILVER (3)"]
    tiers.set_value(["GOLD"])
    run(at)
    flt = {"field": "loyalty_tier", "op": "in", "value": ["GOLD"]}
    expected = counts(cf_db, flt)
    matched, _total = segcore.count_filter(cf_db, segcore.parse_text("loyalty_tier=GOLD", fields_of(cf_db)))
    assert expected.added == matched == GOLD
    assert_preview_shown(at, expected)
    assert any("Loyalty Tier is GOLD" in i for i in infos(at))
    assert not at.button(key="bd.apply").disabled

    # Into the text form and back to a filter: the same text, the same preview.
    button(at, ":material/edit_note: Edit as text").click()
    run(at)
    assert at.text_area(key="fb.text").value == "loyalty_tier=GOLD"
    assert_preview_shown(at, expected)

    # Applying writes the step with the custom field.
    at.button(key="bd.apply").click()
    run(at)
    assert segcore.get_segment(cf_db, "S1").size == GOLD
    assert any(e.description.startswith("Loyalty Tier is GOLD") for e in segcore.criteria_log(cf_db, "S1"))


def test_each_custom_type_gets_the_widgets_of_its_type(cf_db: Database) -> None:
    create_segment(cf_db, "S1")
    at = open_builder("S1")
    fields = fields_of(cf_db)

    # number: a range slider between the smallest and the largest value, on a round step.
    add_condition(at, "g1", "points")
    slider = at.slider(key="fb.c2.between.v")
    assert slider.min <= 0.5 and slider.max >= 150
    slider.set_value((1.0, 50.0))
    run(at)

    # date: the date presets and ranges.
    add_condition(at, "g1", "signup")
    ops = at.selectbox(key="fb.c3.op").options
    assert ops[:3] == ["in the last 30 days", "in the last 90 days", "in the last 365 days"]
    at.selectbox(key="fb.c3.op").set_value("ge")
    run(at)
    at.date_input(key="fb.c3.ge.v").set_value(dt.date(2021, 1, 1))
    run(at)

    # list: has any / all / none of, with counts.
    add_condition(at, "g1", "tags")
    assert at.selectbox(key="fb.c4.op").options == ["has any of", "has all of", "has none of"]
    tags = at.multiselect(key="fb.c4.has_any.v")
    assert tags.options == ["A (4)", "B (3)", "C (1)"]
    tags.set_value(["A"])
    run(at)

    # yes/no: is yes / is no.
    add_condition(at, "g1", "vip")
    assert at.selectbox(key="fb.c5.op").options == ["is yes", "is no"]
    at.selectbox(key="fb.c5.op").set_value("is_false")
    run(at)

    flt = {"all": [
        {"field": "points", "op": "between", "value": [1, 50]},
        {"field": "signup", "op": "ge", "value": "2021-01-01"},
        {"field": "tags", "op": "has_any", "value": ["A"]},
        {"field": "vip", "op": "is_false"},
    ]}  # fmt: skip
    expected = counts(cf_db, flt)
    assert expected.added == 1  # C4: 40.25 points, 2023, tags C;A, not a VIP
    assert_preview_shown(at, expected)
    description = next(i for i in infos(at) if "Filter:" in i)
    assert segcore.describe(from_json(flt, fields), fields) in description

    # The whole widget filter has a text form, and it reads back to the same filter.
    button(at, ":material/edit_note: Edit as text").click()
    run(at)
    text = at.text_area(key="fb.text").value
    assert "points=1..50" in text and "tags=" in text
    assert segcore.to_json(segcore.parse_text(text, fields)) == segcore.to_json(from_json(flt, fields))
    assert_preview_shown(at, expected)


def test_a_custom_text_field_gets_a_text_box(cf_db: Database) -> None:
    segcore.import_contacts(cf_db, b"contact_no,Nickname\nC1,Annie\nC2,Bobby\nC3,Cid the Kid\n")
    assert fields_of(cf_db).get("nickname").type == "text"
    create_segment(cf_db, "S1")
    at = open_builder("S1")
    add_condition(at, "g1", "nickname")
    assert at.selectbox(key="fb.c2.op").value == "contains"
    at.text_input(key="fb.c2.contains.v").input("bb")
    run(at)
    assert_preview_shown(at, counts(cf_db, {"field": "nickname", "op": "contains", "value": "bb"}))
    assert metrics(at)["Added"] == "+1"


def test_the_text_form_accepts_custom_fields(cf_db: Database) -> None:
    create_segment(cf_db, "S1")
    at = open_builder("S1")
    at.segmented_control(key="fb.mode").set_value("text")
    run(at)
    # The custom fields are named under the box: the text form takes names, not labels.
    assert any("`loyalty_tier` (Loyalty Tier, code)" in c for c in texts(at.caption))
    text = "loyalty_tier=GOLD|SILVER\nsignup=2021-01-01.."
    at.text_area(key="fb.text").input(text)
    run(at)
    assert not at.error
    fields = fields_of(cf_db)
    node = segcore.parse_text(text, fields)
    assert any(segcore.describe(node, fields) in i for i in infos(at))
    expected = counts(cf_db, segcore.to_json(node))
    assert expected.added == 4  # C1, C2, C4, C6
    assert_preview_shown(at, expected)
    # A field that does not exist is still refused, by name.
    at.text_area(key="fb.text").input("loyalty=GOLD")
    run(at)
    assert any("unknown field" in e for e in texts(at.error))


def test_a_logged_step_on_custom_fields_goes_back_into_the_builder(cf_db: Database) -> None:
    _with_members(cf_db)
    at = open_builder("S1")
    at.selectbox(key="bd.loadstep").set_value(1)
    run(at)
    at.button(key="bd.loadbtn").click()
    run(at)
    assert at.text_area(key="fb.text").value == "loyalty_tier=GOLD|SILVER"
    assert any("Loyalty Tier is GOLD or SILVER" in i for i in infos(at))


def test_a_condition_on_a_deleted_custom_field_is_shown_and_left_out(cf_db: Database) -> None:
    create_segment(cf_db, "S1")
    at = open_builder("S1")
    add_condition(at, "g1", "country")
    at.multiselect(key="fb.c2.in.v").set_value(["FR"])
    run(at)
    add_condition(at, "g1", "loyalty_tier")
    at.multiselect(key="fb.c3.in.v").set_value(["GOLD"])
    run(at)
    delete_custom_field(cf_db, "loyalty_tier")
    run(at)
    assert any("loyalty_tier" in w and "no longer a field" in w for w in texts(at.warning))
    # The other condition still previews on its own.
    assert_preview_shown(at, counts(cf_db, {"field": "country", "op": "in", "value": ["FR"]}))
    assert "Loyalty Tier (custom)" not in at.selectbox(key="fb.g1.add").options


def test_slider_scale_fits_every_value() -> None:
    fields = segcore.FieldRegistry.of(
        (
            segcore.fields.custom_spec(1, "score", "Score", "number"),
            segcore.fields.custom_spec(2, "visits", "Visits", "number", integer=True),
        )
    )
    assert fb.slider_scale(fields.get("score"), 0.5, 150.0) == (0.0, 150.0, 1.0, "%.0f")
    assert fb.slider_scale(fields.get("score"), 0.12, 0.87) == (0.12, 0.87, 0.01, "%.2f")
    lo, hi, step, _ = fb.slider_scale(fields.get("score"), 3.3, 3.3)
    assert lo <= 3.3 <= hi and hi > lo
    assert fb.slider_scale(fields.get("visits"), 2.0, 2.0) == (2, 3, 1, "%d")
    # Built-in money keeps its whole-unit ends and a step of 10.
    assert fb.slider_scale(fields.get("total_spent"), 0.0, 999.5) == (0.0, 1000.0, 10.0, "%.0f")


# ------------------------------------------------------------------------------------------------- charts


def _with_members(db: Database) -> None:
    create_segment(db, "S1", description="Loyal customers")
    fields = fields_of(db)
    flt = segcore.parse_text("loyalty_tier=GOLD|SILVER", fields)
    apply_action(db, "S1", ActionRequest("add", filter=flt))
    # Enough members that the charts are not masked as a small segment's.
    apply_action(db, "S1", ActionRequest("add", filter=segcore.parse_text("country=FR|DE|BE", fields)))


def test_builder_charts_break_down_by_a_custom_field(cf_db: Database) -> None:
    _with_members(cf_db)
    at = open_builder("S1")
    picker = at.multiselect(key=DIMS)
    assert picker.value == list(DIMENSIONS)
    assert len(at.get("plotly_chart")) == len(DIMENSIONS)
    assert {"Loyalty Tier", "Signup", "Points", "Tags", "Vip"} <= set(picker.options)
    picker.set_value([*DIMENSIONS, "loyalty_tier", "signup"])
    run(at)
    assert len(at.get("plotly_chart")) == len(DIMENSIONS) + 2

    # A pending step draws the same charts, before and after.
    add_condition(at, "g1", "points")
    run(at)
    assert len(at.get("plotly_chart")) == len(DIMENSIONS) + 2
    at.multiselect(key=DIMS).set_value(["points"])
    run(at)
    assert len(at.get("plotly_chart")) == 1

    # The choice is remembered on a page switch; nothing picked draws nothing and says why.
    at.switch_page(CONTACTS)
    run(at)
    at.switch_page(BUILDER)
    run(at)
    assert at.multiselect(key=DIMS).value == ["points"]
    at.multiselect(key=DIMS).set_value([])
    run(at)
    assert not at.get("plotly_chart")
    assert any("Pick what the charts break down by" in c for c in texts(at.caption))


def test_a_deleted_custom_dimension_drops_out_of_the_picker(cf_db: Database) -> None:
    _with_members(cf_db)
    at = open_builder("S1")
    at.multiselect(key=DIMS).set_value(["country", "vip"])
    run(at)
    delete_custom_field(cf_db, "vip")
    run(at)
    assert at.multiselect(key=DIMS).value == ["country"]
    assert len(at.get("plotly_chart")) == 1


def test_preview_figures_of_custom_dimensions(cf_db: Database) -> None:
    _with_members(cf_db)
    fields = fields_of(cf_db)
    request = ActionRequest("refine", filter=segcore.parse_text("signup=2021-01-01..", fields))
    dims = ["country", "loyalty_tier", "signup", "points", "tags", "vip"]
    p, figures = preview_with_figures(cf_db, "S1", request, dimensions=dims, fields=fields)
    assert list(figures) == dims
    titles = {d: f.layout.title.text for d, f in figures.items()}
    assert titles == {
        "country": "Country",
        "loyalty_tier": "Loyalty Tier",
        "signup": "Signup",
        "points": "Points",
        "tags": "Tags",
        "vip": "Vip",
    }
    # Years and number bands in order (low to high, "not set" last), whatever the counts; yes before no.
    signup = list(figures["signup"].data[0].y)
    assert signup == ["2019", "2020", "2021", "2022", "2023", "Not set"]
    points = list(figures["points"].data[0].y)
    assert points == ["0–1", "1–10", "10–100", "100–1k", "Not set"]
    assert list(figures["vip"].data[0].y) == ["Yes", "No", "Not set"]
    # The bars are the preview's counts.
    after = p.after["signup"]
    assert list(figures["signup"].data[1].x) == [
        float(after.counts.get(k, 0)) for k in ("2019", "2020", "2021", "2022", "2023", UNKNOWN)
    ]
    # A bucket only "after" has is still put in its place.
    fig = distribution_figure(
        "signup",
        {
            BEFORE_NAME: Distribution("signup", {"2022": 1}, 1),
            AFTER_NAME: Distribution("signup", {"2020": 1}, 1),
        },
        fields=fields,
    )
    assert list(fig.data[0].y) == ["2020", "2022"]
    # Every dimension of the registry is offered, by title, the seven defaults first.
    choices = dimension_choices(fields)
    assert list(choices)[:7] == list(DIMENSIONS)
    assert {"loyalty_tier", "signup", "points", "tags", "vip"} <= set(choices)


# ------------------------------------------------------------------------------------------------- review


def test_review_composition_by_a_custom_dimension(cf_db: Database) -> None:
    _with_members(cf_db)
    submit_segment(cf_db, "S1")
    at = run(new_app())
    at.switch_page(REVIEW)
    run(at)
    picker = at.multiselect(key="rv.dims")
    assert picker.value == list(DIMENSIONS)
    assert "Signup" in picker.options
    picker.set_value(["signup", "loyalty_tier", "country"])
    run(at)
    assert len(at.get("plotly_chart")) == 3
    # Remembered on this page only: the Builder keeps its own choice.
    assert at.session_state["sx.dims.review"] == ["signup", "loyalty_tier", "country"]


def test_composition_figure_keeps_ordered_buckets_in_order(cf_db: Database) -> None:
    _with_members(cf_db)
    fields = fields_of(cf_db)
    dims = ("signup", "loyalty_tier")
    seg = segcore.segment_distributions(cf_db, "S1", dimensions=dims)
    everyone = segcore.all_distributions(cf_db, dimensions=dims)
    rows = segcore.composition(seg["signup"], everyone["signup"])
    fig = composition_figure("Signup", rows, segment_name="S1", dimension=dimension_of("signup", fields))
    assert list(fig.data[0].x) == ["2019", "2020", "2021", "2022", "2023", "Not set"]
    assert fig.layout.xaxis.type == "category"  # years are buckets, not a number line
    # A dimension with no order of its own: largest share of all contacts first, "Not set" last.
    rows = segcore.composition(seg["loyalty_tier"], everyone["loyalty_tier"])
    fig = composition_figure(
        "Loyalty Tier", rows, segment_name="S1", dimension=dimension_of("loyalty_tier", fields)
    )
    assert list(fig.data[0].x) == ["GOLD", "SILVER", "Not set"]


# ------------------------------------------------------------------------------------------------- contacts


def _open_contact(contact_no: str) -> Any:
    at = run(new_app())
    at.switch_page(CONTACTS)
    run(at)
    at.text_input(key="ct.lookup").input(contact_no)
    return run(at)


def test_contacts_page_shows_a_contact_with_custom_values(cf_db: Database) -> None:
    at = _open_contact("C1")
    assert "Ann · C1" in texts(at.subheader)
    # A custom list field is shown under its label (the core returns it by its code kind).
    assert "**Tags:** A, B" in texts(at.markdown)
    assert value_counts(cf_db, "tags")[0] == ("A", 4)


def test_contacts_page_shows_custom_scalar_values(cf_db: Database) -> None:
    at = _open_contact("C1")
    table = next(d.value for d in at.dataframe if "Field" in d.value.columns)
    shown = dict(zip(table["Field"], table["Value"], strict=True))
    assert shown["Loyalty Tier"] == "GOLD"
    assert shown["Signup"] == "2021-03-01"
    assert shown["Points"] == "12.5"
    assert shown["Vip"] == "yes"

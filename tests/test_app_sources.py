"""Warehouse mode on the dashboard (issue 16): the Data page's Sources section and the Segments page's "Contacts
from" choice, through AppTest on a copy of the demo database.

Adding or showing a source runs Spark: these tests use the one local session of the test run (the `spark` fixture
of tests/spark_support.py; without pyspark or Java they skip on a developer's machine and fail under CI=true).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from segcore import Database, add_user, create_segment, delete_segment
from segcore.spark import Location, SourceSpec, add_source, list_sources
from tests.apptest_paths import path_of
from tests.apptest_support import DATA, SEGMENTS, button, new_app, run, table_with, texts
from tests.spark_support import SPARK_URL

PASSWORD = "correct-horse-42"


@pytest.fixture
def lake(spark: Any, tmp_path: Path) -> Path:
    """Three contacts as Parquet, with a column that matches no built-in field (a custom field of the source)."""
    path = tmp_path / "lake" / "contacts.parquet"
    path.parent.mkdir()
    pq.write_table(pa.table({
        "contact_no": ["L1", "L2", "L3"],
        "name": ["Anna Müller", "Bob Smith", "Zoë Ünal"],
        "country": ["FR", "DE", "FR"],
        "total_spent": pa.array([500.5, 12.0, None], pa.float64()),
        "loyalty": ["GOLD", "SILVER", None],
    }), path)  # fmt: skip
    return path


def _store(db: Database, path: Path, name: str = "LAKE") -> None:
    add_source(db, SourceSpec(name, SPARK_URL, Location("path", str(path), "parquet")), user="setup")


def _stored(db: Database) -> list[str]:
    return [s.name for s in list_sources(db)]


def sources_table(at: Any) -> Any:
    """The list of sources: a static table (a long location wraps and shows whole)."""
    return next(t.value for t in at.table if "Spark" in t.value.columns)


def open_data() -> Any:
    at = run(new_app())
    at.switch_page(DATA)
    return run(at)


def fill_form(at: Any, **values: str) -> Any:
    """Type into the add form (generation 0: no source was added in this session yet) and submit it."""
    for name, value in values.items():
        if name in ("where", "iwhere"):
            at.selectbox(key=f"src.new.{name}.0").set_value(value)
        else:
            at.text_input(key=f"src.new.{name}.0").input(value)
    button(at, "Add source").click()
    return run(at)


def inside(at: Any, element: Any, control: Any) -> bool:
    """Whether `element` is drawn in the block (form, container) that holds `control`."""
    block = path_of(at, control)[:-1]
    return path_of(at, element)[: len(block)] == block


def _source_of(db: Database, no: str) -> str | None:
    from segcore._models import Segment

    with db.read() as conn:
        return conn.execute(select(Segment.source).where(Segment.no == no)).scalar_one()


# ------------------------------------------------------------------------------------------------ the list, Show


def test_the_list_shows_each_source_with_the_segments_built_over_it(app_db: Database, lake: Path) -> None:
    _store(app_db, lake)
    create_segment(app_db, "OVER", description="Over the lake", source="LAKE")
    at = open_data()
    table = sources_table(at).set_index("Name")
    assert list(table.index) == ["LAKE"]
    assert table.loc["LAKE", "Spark"] == SPARK_URL
    assert table.loc["LAKE", "Contacts"] == f"parquet {lake}"
    assert table.loc["LAKE", "Interactions"] == ""
    assert table.loc["LAKE", "Segments"] == "OVER"
    # Show runs Spark: only on a click, and then the row count and the mapped fields.
    assert not any("3 contacts" in m for m in texts(at.markdown))
    button(at, "Show").click()
    run(at)
    assert any("**LAKE**: 3 contacts in parquet" in m and "5 mapped fields" in m for m in texts(at.markdown))
    # Named as a person reads them (labels), with the column feeding each and the name text filters write.
    fields = table_with(at, "Column").set_index("Field")
    assert fields.loc["Country", "Column"] == "country" and fields.loc["Contact no.", "Column"] == "contact_no"
    assert fields.loc["Total spent", "In text filters"] == "total_spent"
    assert (fields.loc["loyalty", "Kind"], fields.loc["Country", "Kind"]) == ("custom field (text)", "built-in")
    assert not at.error


def test_without_sources_the_section_says_what_one_is(app_db: Database) -> None:
    at = open_data()
    assert any(c.startswith("None yet. A source is a Spark table") for c in texts(at.caption))
    assert not any(b.label in ("Show", "Remove") for b in at.button)
    assert "Add source" in [b.label for b in at.button]


# ------------------------------------------------------------------------------------------------ adding


def test_an_administrator_adds_a_parquet_source(app_db: Database, lake: Path) -> None:
    at = fill_form(open_data(), name="LAKE", location=str(lake))
    assert _stored(app_db) == ["LAKE"]
    assert not at.error
    assert any("Source LAKE added: parquet" in s and "5 mapped fields" in s for s in texts(at.success))
    assert list(sources_table(at)["Name"]) == ["LAKE"]
    # The form starts empty again, with the default Spark.
    assert at.text_input(key="src.new.name.1").value == ""
    assert at.text_input(key="src.new.spark.1").value == "local[2]"
    assert at.selectbox(key=W_PICK).value == "LAKE"


def test_a_mapping_file_names_the_columns(app_db: Database, lake: Path) -> None:
    at = open_data()
    mapping = {"columns": {"contact_no": "contact_no", "name": "name", "country": "country"}}
    at.file_uploader(key="src.new.mapping.0").upload("lake.json", json.dumps(mapping).encode(), "application/json")
    at = fill_form(at, name="LAKE", location=str(lake))
    assert _stored(app_db) == ["LAKE"] and not at.error
    assert any("3 mapped fields" in s for s in texts(at.success))


W_PICK = "src.pick"
BAD = [
    pytest.param({"location": "/nonexistent/contacts.parquet"}, "Source BAD: no parquet data at /nonexistent",
                 id="missing-path"),
    pytest.param({"where": "table", "location": "no_such_table"}, "Source BAD: Spark has no table 'no_such_table'",
                 id="missing-table"),
    pytest.param({"spark": "yarn"}, "'yarn' is not a Spark URL", id="bad-url"),
    pytest.param({"location": ""}, "The path of a source cannot be empty.", id="no-location"),
]  # fmt: skip


@pytest.mark.parametrize(("values", "message"), BAD)
def test_a_bad_configuration_is_one_line_next_to_the_form_and_adds_nothing(
    app_db: Database, lake: Path, values: dict[str, str], message: str
) -> None:
    at = open_data()
    form = {"name": "BAD", "location": str(lake), **values}
    if "spark" in form:
        at.text_input(key="src.new.spark.0").set_value("")
    at = fill_form(at, **form)
    assert _stored(app_db) == []
    assert not at.exception and len(at.error) == 1
    error = at.error[0]
    assert message in error.value and "\n" not in error.value, error.value
    assert inside(at, error, button(at, "Add source"))
    # What was typed is kept, to be corrected.
    assert at.text_input(key="src.new.name.0").value == "BAD"


def test_a_mapping_that_does_not_fit_is_refused_in_one_line(app_db: Database, lake: Path) -> None:
    at = open_data()
    wrong = {"columns": {"contact_no": "contact_no", "name": "rating"}}
    at.file_uploader(key="src.new.mapping.0").upload("wrong.json", json.dumps(wrong).encode(), "application/json")
    at = fill_form(at, name="BAD", location=str(lake))
    assert _stored(app_db) == []
    assert [e.value for e in at.error] == ["Source BAD: column 'name' is string, but rating needs a number."]
    at.file_uploader(key="src.new.mapping.0").upload("notes.json", b"{not json", "application/json")
    at = fill_form(at)
    assert len(at.error) == 1 and at.error[0].value.startswith("Notes.json is not a JSON mapping")
    assert _stored(app_db) == []


# ------------------------------------------------------------------------------------------------ removing


def test_remove_is_refused_while_a_segment_uses_the_source(app_db: Database, lake: Path) -> None:
    _store(app_db, lake)
    create_segment(app_db, "OVER", description="Over the lake", source="LAKE")
    at = open_data()
    button(at, "Remove").click()
    run(at)
    assert [e.value for e in at.error] == ["Source LAKE is used by segment OVER."]
    assert inside(at, at.error[0], button(at, "Show")) or path_of(at, at.error[0]) > path_of(at, button(at, "Show"))
    assert _stored(app_db) == ["LAKE"]
    delete_segment(app_db, "OVER")
    at = open_data()
    button(at, "Remove").click()
    run(at)
    assert _stored(app_db) == [] and not at.error
    assert any("Source LAKE removed" in s for s in texts(at.success))
    assert any(c.startswith("None yet.") for c in texts(at.caption))


# ------------------------------------------------------------------------------------------------ roles


def _sign_in(name: str) -> Any:
    at = run(new_app())
    at.text_input(key="sx.signin.name").input(name)
    at.text_input(key="sx.signin.password").input(PASSWORD)
    button(at, "Sign in").click()
    return run(at)


def test_a_viewer_sees_the_sources_but_no_write_control(app_db: Database, lake: Path) -> None:
    _store(app_db, lake)
    add_user(app_db, "ada", "admin", PASSWORD, user="setup")
    add_user(app_db, "vic", "viewer", PASSWORD, user="ada")
    at = _sign_in("vic")
    at.switch_page(DATA)
    run(at)
    assert list(sources_table(at)["Name"]) == ["LAKE"]
    labels = {b.label for b in at.button}
    assert "Show" in labels and not labels & {"Add source", "Remove"}
    assert not [f for f in at.text_input if (f.key or "").startswith("src.new.")]
    assert any("Sources are added and removed by whoever may import data. Importing data needs the admin role; "
               "vic is a viewer." == c for c in texts(at.caption))  # fmt: skip
    # The administrator sees them.
    at = _sign_in("ada")
    at.switch_page(DATA)
    run(at)
    assert {"Show", "Remove", "Add source"} <= {b.label for b in at.button}


# ------------------------------------------------------------------------------------------------ Contacts from


def _create(at: Any, no: str, source: str | None = None) -> Any:
    at.text_input(key="seg.new.no").input(no)
    at.text_input(key="seg.new.desc").input(f"{no} segment")
    if source is not None:
        at.selectbox(key="seg.new.source").set_value(source)
    button(at, "Create and open").click()
    return run(at)


def open_segments() -> Any:
    at = run(new_app())
    at.switch_page(SEGMENTS)
    return run(at)


def test_a_segment_is_built_over_the_source_chosen_when_it_is_created(app_db: Database, lake: Path) -> None:
    at = open_segments()
    assert not [s for s in at.selectbox if s.key == "seg.new.source"]  # no source: nothing to choose
    _store(app_db, lake)
    at = open_segments()
    choice = at.selectbox(key="seg.new.source")
    assert choice.value == "" and choice.options == ["This database", "LAKE (Spark)"]
    at = _create(at, "OVER", "LAKE")
    assert _source_of(app_db, "OVER") == "LAKE"
    # The Builder it opens says where the members come from.
    assert any("contacts from LAKE (Spark)" in c for c in texts(at.caption))
    # The default: this database's contacts.
    _create(open_segments(), "HERE")
    assert _source_of(app_db, "HERE") is None
    table = table_with(open_segments(), "Contacts from").set_index("No.")
    assert (table.loc["OVER", "Contacts from"], table.loc["HERE", "Contacts from"]) == ("LAKE", "")
    # And the source lists it.
    assert sources_table(open_data()).set_index("Name").loc["LAKE", "Segments"] == "OVER"



def test_the_builder_previews_and_applies_a_step_over_a_source(app_db: Database, lake: Path) -> None:
    from segcore import get_segment, member_contact_nos
    from tests.apptest_support import open_builder
    from tests.test_app_builder import to_text_form

    _store(app_db, lake)
    create_segment(app_db, "OVER", source="LAKE")
    at = open_builder("OVER")
    assert any("contacts from LAKE (Spark)" in c for c in texts(at.caption))
    to_text_form(at, "country=FR")
    shown = {m.label: m.value for m in at.metric}
    assert (shown["Members now"], shown["After this step"], shown["Added"]) == ("0", "2", "+2")
    # Who would enter: the source's contacts, read from Spark.
    sample = table_with(at, "contact_no")
    assert sorted(sample["contact_no"]) == ["L1", "L3"] and "Anna Müller" in set(sample["name"])
    at.button(key="bd.apply").click()
    run(at)
    assert member_contact_nos(app_db, "OVER") == ["L1", "L3"] and get_segment(app_db, "OVER").size == 2
    assert not at.exception


def test_a_dynamic_segment_is_saved_over_the_source_chosen(app_db: Database, lake: Path) -> None:
    from segcore import get_dynamic
    from tests.test_app_builder import to_text_form

    _store(app_db, lake)
    at = run(new_app())
    at.switch_page("pages/dynamic.py")
    run(at)
    choice = at.selectbox(key="dy.new.source")
    assert choice.options == ["This database", "LAKE (Spark)"]
    choice.set_value("LAKE")
    run(at)
    to_text_form(at, "country=FR")
    assert any("**2** of 3 contacts match" in c for c in texts(at.caption))
    at.text_input(key="dy.new.no").input("LAKE-FR")
    run(at)
    at.button(key="dy.create").click()
    run(at)
    info = get_dynamic(app_db, "LAKE-FR")
    assert (info.source, info.last_count, info.last_total) == ("LAKE", 2, 3)


def test_the_builder_reads_a_filter_on_the_sources_own_custom_field(app_db: Database, lake: Path) -> None:
    from segcore import member_contact_nos
    from tests.apptest_support import open_builder
    from tests.test_app_builder import to_text_form

    _store(app_db, lake)
    create_segment(app_db, "OVER", source="LAKE")
    at = open_builder("OVER")
    to_text_form(at, "loyalty=gold|silver\ncountry=FR")
    assert not at.error, texts(at.error)
    # The text form lists the source's custom fields, not this database's.
    assert any("Custom fields:" in c and "loyalty" in c for c in texts(at.caption)), texts(at.caption)
    shown = {m.label: m.value for m in at.metric}
    assert (shown["Members now"], shown["After this step"], shown["Added"]) == ("0", "1", "+1")
    at.button(key="bd.apply").click()
    run(at)
    assert member_contact_nos(app_db, "OVER") == ["L1"] and not at.exception
    # A name the source does not have: one line saying so, with its position, and nothing to apply.
    to_text_form(at, "tier=GOLD")
    errors = texts(at.error)
    assert len(errors) == 1 and errors[0].split("\n")[0].startswith("Position 0: unknown field 'tier': fields are ")


def test_a_dynamic_segment_over_a_source_filters_on_its_custom_field(app_db: Database, lake: Path) -> None:
    from segcore import get_dynamic
    from tests.test_app_builder import to_text_form

    _store(app_db, lake)
    at = run(new_app())
    at.switch_page("pages/dynamic.py")
    run(at)
    at.selectbox(key="dy.new.source").set_value("LAKE")
    run(at)
    to_text_form(at, "loyalty=GOLD")
    assert any("**1** of 3 contacts match" in c for c in texts(at.caption)), texts(at.caption)
    at.text_input(key="dy.new.no").input("LAKE-GOLD")
    run(at)
    at.button(key="dy.create").click()
    run(at)
    info = get_dynamic(app_db, "LAKE-GOLD")
    assert (info.source, info.last_count, info.last_total) == ("LAKE", 1, 3)
    # Its detail counts the source, not this database.
    assert [m.value for m in at.metric if m.label == "Contacts in segment"] == ["1"]

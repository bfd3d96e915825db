"""The Data page's import flow and custom fields through AppTest, on a copy of the demo database.

The page keeps the uploaded file in the session (pages/data.py K_UPLOAD: name and bytes), so these tests hand it a
file by setting that state; one test goes through the uploader widget too. The mapping table is an st.data_editor:
a cell edit is made the way AppTest allows, by assigning the editor's edit state before a run.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import segcore
from segcore import Database
from segcore._browse import contact_count, contact_detail
from tests.apptest_support import DATA, DEMO_N, ROOT, button, metrics, new_app, run, table_with, texts

K_UPLOAD = "sx.import.upload"
FRENCH = ROOT / "tests" / "data" / "french_contacts_cp1252.csv"
SKIP, NEW = "(skip)", "(new custom field)"


def open_data() -> Any:
    at = run(new_app())
    at.switch_page(DATA)
    return run(at)


def hand_file(at: Any, path: Path = FRENCH, name: str = "clients.csv") -> Any:
    at.session_state[K_UPLOAD] = (name, path.read_bytes())
    return run(at)


def mapping(at: Any) -> Any:
    """The mapping table as shown: one row per file column."""
    return at.data_editor[0].value.set_index("source")


def edit_mapping(at: Any, source: str, column: str, value: str) -> Any:
    editor = at.data_editor[0]
    row = list(editor.value["source"]).index(source)
    at.session_state[editor.key] = {"edited_rows": {row: {column: value}}, "added_rows": [], "deleted_rows": []}
    return run(at)


def preview(at: Any) -> Any:
    return table_with(at, "contact_no")


def block_with(at: Any, key: str) -> Any:
    """The innermost column or tab holding the widget with this key: a message "next to" a control is in it."""

    def widgets(col: Any) -> list[Any]:
        return [*col.selectbox, *col.text_input, *col.checkbox, *col.button]

    holding = [col for col in [*at.columns, *at.tabs] if any(w.key == key for w in widgets(col))]
    assert holding, f"no column holds {key}"
    return min(holding, key=lambda col: len(widgets(col)))


def element_after(at: Any, key: str) -> Any:
    """The element drawn right after the widget with this key (where a message about that widget goes)."""

    def walk(block: Any) -> Any:
        for node in block.children.values():
            if hasattr(node, "children") and not getattr(node, "key", None):
                yield from walk(node)
            else:
                yield node

    nodes = list(walk(at.main))
    at_key = next(i for i, node in enumerate(nodes) if getattr(node, "key", None) == key)
    return nodes[at_key + 1]


def choose_dmy(at: Any) -> Any:
    at.selectbox(key="dt.imp.dates").set_value("DMY")
    return run(at)


def import_valid_rows(at: Any) -> Any:
    button(at, "Check the file").click()
    run(at)
    at.radio(key="dt.choice.contacts").set_value("valid")
    button(at, "Go").click()
    return run(at)


def gold(db: Database) -> int:
    return segcore.count_filter(db, segcore.parse_text("fidelite=GOLD", segcore.fields_of(db)))[0]


# ------------------------------------------------------------------------------------------------ import


def test_french_file_is_read_mapped_and_previewed(app_db: Database) -> None:
    at = hand_file(open_data())
    assert any("Read: CSV, ';' separated, Windows-1252" in m for m in texts(at.markdown))
    table = mapping(at)
    assert table.loc["Nom", "field"] == "last_name" and table.loc["Prénom", "field"] == "first_name"
    assert table.loc["N° client", "field"] == "contact_no" and table.loc["Adresse e-mail", "field"] == "email"
    assert (table.loc["Fidélité", "field"], table.loc["Fidélité", "name"]) == (NEW, "fidelite")
    assert table.loc["Pays", "rule"] == "country names (fr) to ISO codes"
    assert table.loc["Montant total", "problems"] == 1  # "abc"
    assert table.loc["Montant total", "samples"].startswith("1 234,50")
    shown = preview(at)
    assert list(shown["name"][:2]) == ["Jean Dupont", "Élodie Martin"]
    assert list(shown["fidelite"][:3]) == ["GOLD", "SILVER", "GOLD"]
    assert list(shown["country"][:3]) == ["FR", "BE", "CH"]
    assert list(shown["total_spent"][:2]) == ["1234.50", "89.90"]


def test_ambiguous_dates_are_asked_next_to_the_date_order(app_db: Database) -> None:
    at = hand_file(open_data())
    dates = block_with(at, "dt.imp.dates")
    assert any("Date de naissance" in w for w in texts(dates.warning))
    assert button(at, "Check the file").disabled
    at = choose_dmy(at)
    assert not any("date order" in w for w in texts(at.warning))
    assert not button(at, "Check the file").disabled
    assert mapping(at).loc["Date de naissance", "rule"] == "dates DD/MM/YYYY"
    assert list(preview(at)["birth_date"][:2]) == ["1980-12-01", "1975-03-05"]


def test_check_then_import_the_valid_rows(app_db: Database) -> None:
    at = choose_dmy(hand_file(open_data()))
    button(at, "Check the file").click()
    run(at)
    shown = metrics(at)
    assert (shown["Rows read"], shown["Valid"], shown["Rejected"]) == ("5", "4", "1")
    # New and updated rows each on a card of their own: one card holding "12,345 / 7,655" was cut at 1440 px.
    assert (shown["New"], shown["To update"]) == ("4", "0")
    assert "**Rejected rows** (2 problems)" in texts(at.markdown)
    rejected = table_with(at, "reason")
    # The column is named as in the file, not as our field.
    assert set(rejected["line"]) == {6} and set(rejected["column"]) <= {"Montant total", "Adresse e-mail"}
    assert any("new custom fields to create: fidelite" in c for c in texts(at.caption))
    assert contact_count(app_db) == DEMO_N  # a check writes nothing
    at.radio(key="dt.choice.contacts").set_value("valid")
    button(at, "Go").click()
    run(at)
    assert any("4 inserted" in s for s in texts(at.success))
    # The import reports the problems the check found, each once.
    assert texts(at.markdown).count("**Rejected rows** (2 problems)") == 1
    assert contact_count(app_db) == DEMO_N + 4
    first = contact_detail(app_db, "FR0001")
    assert first.fields["name"] == "Jean Dupont" and first.fields["birth_date"] == dt.date(1980, 12, 1)
    assert first.fields["country"] == "FR" and float(first.fields["total_spent"]) == 1234.5
    assert gold(app_db) == 2  # FR0001, FR0003 (FR0005 was rejected)
    assert [f.name for f in segcore.list_custom_fields(app_db)] == ["fidelite"]
    # The new field is listed under Custom fields, and the next file starts from the uploader.
    assert list(table_with(at, "used_by")["name"]) == ["fidelite"]
    button(at, "Import another file").click()
    run(at)
    assert at.file_uploader(key="dt.up.contacts.1").value is None


def test_skipping_a_column_removes_it_from_the_preview(app_db: Database) -> None:
    at = hand_file(open_data())
    assert "country" in preview(at).columns
    at = edit_mapping(at, "Pays", "field", SKIP)
    assert mapping(at).loc["Pays", "field"] == SKIP
    assert "country" not in preview(at).columns
    # Undo puts the suggestion back.
    button(at, "Undo my changes to the matches").click()
    run(at)
    assert "country" in preview(at).columns


def test_a_field_taken_by_another_column_moves(app_db: Database) -> None:
    at = hand_file(open_data())
    at = edit_mapping(at, "Nom", "field", "name")
    table = mapping(at)
    assert table.loc["Nom", "field"] == "name"
    assert list(preview(at)["name"][:1]) == ["Dupont"]


def test_a_refused_choice_is_said_under_the_table_and_not_kept(app_db: Database) -> None:
    at = hand_file(open_data())
    at = edit_mapping(at, "N° client", "field", SKIP)
    at = edit_mapping(at, "Adresse e-mail", "field", SKIP)  # then nothing tells which contact a row is
    assert any("no column for the contact number or the e-mail address" in e for e in texts(at.error))
    assert mapping(at).loc["Adresse e-mail", "field"] == "email"  # the refused choice is not kept
    assert not at.exception


def test_new_field_type_and_name_are_chosen_in_the_table(app_db: Database) -> None:
    at = choose_dmy(hand_file(open_data()))
    at = edit_mapping(at, "Fidélité", "type", "code")
    assert mapping(at).loc["Fidélité", "type"] == "code"
    at = edit_mapping(at, "Fidélité", "name", "loyalty")
    assert (mapping(at).loc["Fidélité", "field"], mapping(at).loc["Fidélité", "name"]) == (NEW, "loyalty")
    assert "loyalty" in preview(at).columns
    # A built-in field keeps its type: the edit is not applied, and the page says why.
    at = edit_mapping(at, "Pays", "type", "text")
    assert mapping(at).loc["Pays", "type"] == "code"
    assert any("Only a new custom field" in i for i in texts(at.info))
    import_valid_rows(at)
    assert [(f.name, f.type) for f in segcore.list_custom_fields(app_db)] == [("loyalty", "code")]


def test_saved_mapping_is_used_for_the_next_file_with_these_columns(app_db: Database) -> None:
    at = hand_file(open_data())
    at = edit_mapping(at, "Pays", "field", SKIP)
    at.text_input(key="dt.imp.save.name").input("French CRM")
    button(at, "Save mapping").click()
    run(at)
    assert [m["name"] for m in segcore.list_mappings(app_db)] == ["French CRM"]
    assert any("Mapping 'French CRM' saved" in s for s in texts(at.success))
    assert any("Using the saved mapping 'French CRM'" in i for i in texts(at.info))
    # The same file again, after starting over: the saved mapping (without Pays) is offered at once.
    button(at, "Choose another file").click()
    run(at)
    at = hand_file(at, name="clients-june.csv")
    assert any("Using the saved mapping 'French CRM'" in i for i in texts(at.info))
    assert mapping(at).loc["Pays", "field"] == SKIP and "country" not in preview(at).columns


def test_import_through_the_uploader_widget(app_db: Database) -> None:
    at = open_data()
    at.file_uploader(key="dt.up.contacts.0").upload("clients.csv", FRENCH.read_bytes(), "text/csv")
    run(at)
    assert mapping(at).loc["Nom", "field"] == "last_name"
    at = choose_dmy(at)
    at = import_valid_rows(at)
    assert contact_count(app_db) == DEMO_N + 4


def _workbook() -> bytes:
    import io

    import openpyxl

    wb = openpyxl.Workbook()
    notes = wb.active
    notes.title = "Lisez-moi"
    notes.append(["Notes"])
    notes.append(["Export du CRM, juin"])
    clients = wb.create_sheet("Clients")
    for line in FRENCH.read_bytes().decode("cp1252").splitlines():
        clients.append(line.split(";"))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_a_workbook_opens_on_the_sheet_that_can_be_imported(app_db: Database, tmp_path: Path) -> None:
    path = tmp_path / "export.xlsx"
    path.write_bytes(_workbook())
    at = hand_file(open_data(), path=path, name="export.xlsx")
    assert any("Read: Excel sheet 'Clients'" in m for m in texts(at.markdown))
    assert at.selectbox(key="dt.imp.sheet").value == "Clients"
    assert "showing sheet 'Clients'" in element_after(at, "dt.imp.sheet").value
    assert mapping(at).loc["Nom", "field"] == "last_name"
    # The other sheet cannot be imported: said next to the sheet selector, which stays on Clients.
    at.selectbox(key="dt.imp.sheet").set_value("Lisez-moi")
    run(at)
    assert at.selectbox(key="dt.imp.sheet").value == "Clients"
    assert "no column for the contact number" in element_after(at, "dt.imp.sheet").value


def test_interactions_are_mapped_checked_and_imported(app_db: Database, tmp_path: Path) -> None:
    today = dt.date.today()
    path = tmp_path / "interactions.csv"
    path.write_text(f"Kundennummer;Datum;Vorlage;Kosten\nCT000001;{today:%d.%m.%Y};EMAIL;1,50\n"
                    f"NOPE;{today:%d.%m.%Y};CALL;2\n", encoding="utf-8")
    at = open_data()
    at.segmented_control(key="dt.kind").set_value("interactions")
    at = hand_file(run(at), path=path, name="interactions.csv")
    table = mapping(at)
    assert list(table["field"]) == ["contact_no", "date", "template", "cost"]
    assert at.selectbox(key="dt.imp.dates") is not None and not [s for s in at.selectbox if s.key == "dt.imp.key"]
    button(at, "Check the file").click()
    run(at)
    assert metrics(at)["Rejected"] == "1" and metrics(at)["To add"] == "1"
    button(at, "Go").click()
    run(at)
    assert any("1 inserted" in s for s in texts(at.success))


def outcome_rows(db: Database) -> list[tuple[str, dt.date, str, float | None, str | None]]:
    from sqlalchemy import select

    from segcore._models import Contact, Outcome

    with db.read() as conn:
        rows = conn.execute(
            select(Contact.contact_no, Outcome.date, Outcome.kind, Outcome.amount, Outcome.reference)
            .join(Contact, Contact.id == Outcome.contact_id)
            .where(Outcome.kind == "ORDER", Outcome.reference.like("B-%"))
            .order_by(Outcome.reference)
        ).all()
    return [(c, d, k, None if a is None else float(a), r) for c, d, k, a, r in rows]


def test_outcomes_are_mapped_checked_and_imported_all_or_nothing(app_db: Database, tmp_path: Path) -> None:
    today = dt.date.today()
    path = tmp_path / "orders.csv"
    path.write_text(
        "Kunde;Bestelldatum;Art;Betrag;Bestellnummer\n"
        f"CT000001;{today:%d.%m.%Y};order;1.234,50;B-1\n"
        f"CT000002;{today:%d.%m.%Y};ORDER;;B-2\n"
        f"NOPE;{today:%d.%m.%Y};ORDER;10;B-3\n",
        encoding="utf-8",
    )
    at = open_data()
    assert list(at.segmented_control(key="dt.kind").options) == ["Contacts", "Interactions", "Outcomes"]
    at.segmented_control(key="dt.kind").set_value("outcomes")
    at = run(at)
    assert any("contact number, date and kind" in c for c in texts(at.caption))
    at = hand_file(at, path=path, name="orders.csv")
    table = mapping(at)
    assert list(table["field"]) == ["contact_no", "date", "kind", "amount", "reference"]
    assert not [s for s in at.selectbox if s.key == "dt.imp.key"]
    button(at, "Check the file").click()
    run(at)
    shown = metrics(at)
    assert (shown["Rows read"], shown["Valid"], shown["Rejected"], shown["To add"], shown["To update"]) == (
        "3", "2", "1", "2", "0")
    assert set(table_with(at, "reason")["line"]) == {4}
    assert outcome_rows(app_db) == []  # a check writes nothing
    # "Import nothing" leaves the database as it was.
    at.radio(key="dt.choice.outcomes").set_value("nothing")
    button(at, "Go").click()
    run(at)
    assert outcome_rows(app_db) == [] and any("Nothing was imported" in i for i in texts(at.info))
    # The same file again, the valid rows this time.
    at = hand_file(at, path=path, name="orders.csv")
    button(at, "Check the file").click()
    run(at)
    at.radio(key="dt.choice.outcomes").set_value("valid")
    button(at, "Go").click()
    run(at)
    assert any("2 inserted" in s for s in texts(at.success))
    assert outcome_rows(app_db) == [("CT000001", today, "ORDER", 1234.5, "B-1"), ("CT000002", today, "ORDER", None, "B-2")]
    # Imported again, a reference counts once: the two stored outcomes are updated, not added.
    button(at, "Import another file").click()
    run(at)
    at = hand_file(at, path=path, name="orders.csv")
    button(at, "Check the file").click()
    run(at)
    assert (metrics(at)["To add"], metrics(at)["To update"]) == ("0", "2")
    at.radio(key="dt.choice.outcomes").set_value("valid")
    button(at, "Go").click()
    run(at)
    assert any("0 inserted, 2 updated" in s for s in texts(at.success))
    assert len(outcome_rows(app_db)) == 2


def test_an_unreadable_file_is_one_red_line(app_db: Database) -> None:
    at = hand_file(open_data(), path=ROOT / "app.py", name="notes.txt")
    assert at.error and not at.exception


# ------------------------------------------------------------------------------------------------ custom fields


def _with_custom_field(db: Database) -> None:
    plan = segcore.plan_import(db, FRENCH.read_bytes(), date_format="DMY")
    segcore.run_import(db, plan)


def test_custom_field_rename_changes_name_and_label(app_db: Database) -> None:
    _with_custom_field(app_db)
    at = open_data()
    assert at.selectbox(key="dt.cf.pick").value == "fidelite"
    at.text_input(key="dt.cf.name").input("loyalty")
    at.text_input(key="dt.cf.label").input("Loyalty tier")
    button(at, "Rename").click()
    run(at)
    assert [(f.name, f.label) for f in segcore.list_custom_fields(app_db)] == [("loyalty", "Loyalty tier")]
    assert any("named loyalty and labelled 'Loyalty tier'" in s for s in texts(at.success))
    assert at.selectbox(key="dt.cf.pick").value == "loyalty"


def test_refused_custom_field_actions_are_said_next_to_them(app_db: Database) -> None:
    _with_custom_field(app_db)
    segcore.create_dynamic(app_db, "D1", segcore.parse_text("fidelite=GOLD", segcore.fields_of(app_db)))
    at = open_data()
    assert list(table_with(at, "used_by")["used_by"]) == ["dynamic segment D1"]
    # A bad new name: said in the Rename box.
    at.text_input(key="dt.cf.name").input("Fidélité!")
    button(at, "Rename").click()
    run(at)
    assert any("is not a field name" in e for e in texts(block_with(at, "dt.cf.name").error))
    # Delete while a dynamic segment uses it: refused, in the Delete box.
    at.checkbox(key="dt.cf.sure").check()
    run(at)
    button(at, "Delete field").click()
    run(at)
    delete_box = block_with(at, "dt.cf.sure")
    assert any("in use by dynamic segment D1" in e for e in texts(delete_box.error))
    assert not any("in use" in e for e in texts(block_with(at, "dt.cf.name").error))
    assert [f.name for f in segcore.list_custom_fields(app_db)] == ["fidelite"]
    # A type its values do not read as: refused, in the Change type box.
    segcore.delete_dynamic(app_db, "D1")
    at = open_data()
    at.selectbox(key="dt.cf.type").set_value("number")
    run(at)
    button(at, "Change type").click()
    run(at)
    assert any("cannot become number" in e for e in texts(block_with(at, "dt.cf.type").error))
    # Nothing uses it now: deleted after the confirmation.
    at.checkbox(key="dt.cf.sure").check()
    run(at)
    button(at, "Delete field").click()
    run(at)
    assert segcore.list_custom_fields(app_db) == []
    assert any("fidelite deleted" in s for s in texts(at.success))

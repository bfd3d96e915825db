"""The audit trail (issue 15): one row per write, in the write's own transaction, append-only, filterable."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from segcore import (
    ActionRequest,
    add_user,
    apply_action,
    copy_segment,
    create_dynamic,
    create_segment,
    delete_custom_field,
    delete_dynamic,
    delete_segment,
    freeze_dynamic,
    import_contacts,
    redo,
    refresh_dynamic,
    rename_custom_field,
    retype_custom_field,
    reuse_criteria,
    save_criteria,
    set_preference,
    set_settings,
    undo,
    update_dynamic,
    update_segment,
)
from segcore._db import Database
from segcore._errors import NotFoundError
from segcore._filter_text import parse_text
from segcore._models import AuditEntry, table_of
from segcore.auth import audit_rows, record
from segcore.imports import delete_mapping, plan_import, save_mapping
from tests.factories import add_contacts, person

audit_t = table_of(AuditEntry)
ADD_FR = ActionRequest("add", parse_text(["country=FR"]))
SEGCORE = Path(__file__).resolve().parent.parent / "segcore"


def population(db: Database) -> None:
    add_contacts(db, [person("P1", country="FR"), person("P2", country="FR"), person("P3", country="DE")])


def trail(db: Database, **filters: object) -> list[tuple[str, str, str, str, str | None, str | None]]:
    """(user, kind, object, summary, before, after), oldest first."""
    rows = audit_rows(db, reader="anyone", **filters)  # type: ignore[arg-type]
    return [(r.user, r.kind, r.object, r.summary, r.before, r.after) for r in reversed(rows)]


def count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(audit_t)).scalar_one())


def test_segment_actions_leave_one_row_each(db: Database) -> None:
    population(db)
    create_segment(db, "S", description="Spring", user="mark")
    apply_action(db, "S", ADD_FR, user="mark")
    undo(db, "S", user="max")
    redo(db, "S", user="max")
    update_segment(db, "S", description="Summer", user="mark")
    copy_segment(db, "S", "S2", user="max")
    delete_segment(db, "S2", user="max")
    assert trail(db, object="segment S") == [
        ("mark", "segment.create", "segment S", "segment S created", None,
         "description 'Spring', campaign -, owner mark"),
        ("mark", "segment.apply", "segment S", "step 1 Add: Country is FR (+2 −0)", "0 members", "2 members"),
        ("max", "segment.undo", "segment S", "undid step 1 Add: Country is FR (+0 −2)", "2 members", "0 members"),
        ("max", "segment.redo", "segment S", "redid step 1 Add: Country is FR (+2 −0)", "0 members", "2 members"),
        ("mark", "segment.update", "segment S", "description changed", "description 'Spring', campaign -",
         "description 'Summer', campaign -"),
    ]
    assert [k for _, k, *_ in trail(db, object="segment S2")] == [
        "segment.copy", "segment.apply", "segment.delete"]
    assert trail(db, kind="segment.delete")[0][4] == "draft, 2 members, owner max"


def test_a_change_that_rolls_back_leaves_no_audit_row(db: Database) -> None:
    population(db)
    create_segment(db, "SRC", user="mark")
    apply_action(db, "SRC", ADD_FR, user="mark")
    create_segment(db, "GONE", user="mark")
    apply_action(db, "SRC", ActionRequest("reuse_segment", source_segment_no="GONE"), user="mark")
    save_criteria(db, "SRC", "TWO", user="mark")
    delete_segment(db, "GONE", user="mark")
    create_segment(db, "T", user="mark")
    before = count(db)
    # Step 1 (Add) applies and writes its audit row; step 2 cannot find GONE: the whole replay rolls back.
    with pytest.raises(NotFoundError, match="GONE"):
        reuse_criteria(db, "TWO", "T", user="mark")
    assert count(db) == before
    assert trail(db, object="segment T", kind="segment.apply") == []


def test_record_commits_and_rolls_back_with_its_transaction(db: Database) -> None:
    with pytest.raises(RuntimeError), db.write() as conn:
        record(conn, "mark", "test.kind", "thing", "never kept")
        raise RuntimeError("the change fails after its audit row")
    assert count(db) == 0
    with db.write() as conn:
        record(conn, "mark", "test.kind", "thing", "kept")
    assert trail(db) == [("mark", "test.kind", "thing", "kept", None, None)]


def test_settings_preferences_and_dynamic_segments_are_audited(db: Database) -> None:
    population(db)
    set_settings(db, {"minimum_segment_size": 1000, "log_requires_approval": 0}, user="ada")  # the switch is 0 already
    set_preference(db, "mark", "date_order", "MDY")
    create_dynamic(db, "BIG", parse_text(["country=FR"]), user="mark")
    update_dynamic(db, "BIG", filter=parse_text(["country=DE"]), user="mark")
    refresh_dynamic(db, "BIG", user="mark")
    freeze_dynamic(db, "BIG", "FROZEN", user="mark")
    delete_dynamic(db, "BIG", user="mark")
    assert trail(db, kind="setting") == [
        ("ada", "setting.set", "setting minimum_segment_size", "minimum_segment_size changed", "50", "1,000")]
    assert trail(db, kind="preference") == [
        ("mark", "preference.set", "preference date_order of mark", "date_order changed", "DMY", "MDY")]
    dyn = trail(db, object="dynamic segment BIG")
    assert [(k, s) for _, k, _, s, _, _ in dyn] == [
        ("dynamic.create", "dynamic segment BIG created"),
        ("dynamic.update", "filter changed"),
        ("dynamic.refresh", "counted 1 of 3 contacts"),
        ("dynamic.freeze", "frozen into segment FROZEN"),
        ("dynamic.delete", "dynamic segment BIG deleted"),
    ]
    assert dyn[1][4:] == ("'': Country is FR", "'': Country is DE")
    assert [k for _, k, *_ in trail(db, object="segment FROZEN")] == ["segment.create", "segment.apply"]


def test_imports_mappings_and_custom_fields_are_audited(db: Database) -> None:
    import_contacts(db, b"contact_no,name,Tier\nC1,Ann,GOLD\nC2,Bo,SILVER\n", user="ada")
    plan = plan_import(db, b"contact_no,name,Tier\nC1,Ann,GOLD\n", "contacts")
    save_mapping(db, "crm", plan.mapping, user="ada")
    delete_mapping(db, "crm", user="ada")
    rename_custom_field(db, "tier", "loyalty", label="Loyalty", user="ada")
    retype_custom_field(db, "loyalty", "code", user="ada")
    delete_custom_field(db, "loyalty", user="ada")
    rows = trail(db, user="ada")
    assert [(k, o) for _, k, o, *_ in rows] == [
        ("field.create", "custom field tier"),
        ("import.contacts", "import contacts"),
        ("mapping.save", "mapping crm"),
        ("mapping.delete", "mapping crm"),
        ("field.rename", "custom field tier"),
        ("field.retype", "custom field loyalty"),
        ("field.delete", "custom field loyalty"),
    ]
    assert "2 rows read" in rows[1][3] and "2 inserted" in rows[1][3]
    assert rows[4][4:] == ("tier, label 'Tier'", "loyalty, label 'Loyalty'")
    assert rows[5][3:] == ("custom field loyalty retyped, 2 values converted", "text", "code")


def test_users_are_audited(db: Database) -> None:
    from segcore import disable_user, set_role

    add_user(db, "ada", "admin", user="root")
    add_user(db, "bob", "viewer", user="ada")
    set_role(db, "bob", "manager", user="ada")
    disable_user(db, "bob", user="ada")
    rows = reversed(audit_rows(db, object="user bob", reader="ada"))
    assert [(r.user, r.kind, r.before, r.after) for r in rows] == [
        ("ada", "user.add", None, "role viewer"), ("ada", "user.set_role", "viewer", "manager"),
        ("ada", "user.disable", "enabled", "disabled")]
    assert [r.user for r in audit_rows(db, object="user ada", reader="ada")] == ["root"]


def test_audit_rows_filter_by_user_since_kind_and_object(db: Database) -> None:
    population(db)
    create_segment(db, "A", user="mark")
    create_segment(db, "B", user="max")
    apply_action(db, "B", ADD_FR, user="max")
    with db.write() as conn:
        conn.execute(audit_t.update().where(audit_t.c.object == "segment A").values(at=dt.datetime(2020, 1, 1)))
    newest_first = audit_rows(db, reader="x")
    assert [r.object for r in newest_first] == ["segment B", "segment B", "segment A"]
    assert [r.kind for r in audit_rows(db, user="MAX", reader="x")] == ["segment.apply", "segment.create"]
    assert [r.object for r in audit_rows(db, since=dt.date(2021, 1, 1), reader="x")] == ["segment B"] * 2
    assert [r.object for r in audit_rows(db, since=dt.datetime(2019, 12, 31, 23), reader="x")][-1] == "segment A"
    assert len(audit_rows(db, kind="segment", reader="x")) == 3
    assert audit_rows(db, kind="segm", reader="x") == []  # a family is a whole word before the dot
    assert [r.kind for r in audit_rows(db, kind="segment.create", object="Segment B", reader="x")] == [
        "segment.create"]
    assert len(audit_rows(db, limit=1, reader="x")) == 1
    assert audit_rows(db, limit=1, reader="x")[0].as_dict()["object"] == "segment B"


def test_nothing_in_segcore_updates_or_deletes_an_audit_row() -> None:
    """Append-only by construction: only the models, the audit writer and read-only checks name the table."""
    users = {
        str(p.relative_to(SEGCORE))
        for p in SEGCORE.rglob("*.py")
        if re.search(r"\bAuditEntry\b|audit_log|\baudit_t\b", p.read_text(encoding="utf-8"))
    }
    assert users == {"_models.py", "_db.py", "auth/audit.py", "auth/roles.py"}
    for name in ("auth/audit.py", "auth/roles.py"):
        text = (SEGCORE / name).read_text(encoding="utf-8")
        assert not re.search(r"\b(update|delete)\(\s*audit_t", text)
        assert ".update(" not in text and ".delete(" not in text

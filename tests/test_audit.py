"""The audit trail (issue 15): one row per write, in the write's own transaction, append-only, filterable."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from segcore import (
    ActionRequest,
    add_emails,
    add_user,
    apply_action,
    approve_segment,
    cancel_logged,
    copy_segment,
    create_campaign,
    create_dynamic,
    create_group,
    create_segment,
    delete_campaign,
    delete_custom_field,
    delete_dynamic,
    delete_group,
    delete_segment,
    export_group_csv,
    export_members,
    freeze_dynamic,
    get_segment,
    import_contacts,
    list_campaigns,
    list_groups,
    log_segment,
    redo,
    refresh_dynamic,
    reject_segment,
    remove_emails,
    rename_custom_field,
    retype_custom_field,
    reuse_criteria,
    save_criteria,
    set_preference,
    set_settings,
    submit_segment,
    undo,
    update_campaign,
    update_dynamic,
    update_group,
    update_segment,
    withdraw_segment,
)
from segcore._db import Database
from segcore._errors import NotFoundError, RefusedError
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


def test_audit_rows_filter_by_user_since_until_kind_and_object(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    import segcore.auth.audit as audit_module

    population(db)
    with monkeypatch.context() as m:  # the trail refuses back-dating, so segment A is written "in 2020"
        m.setattr(audit_module, "_now", lambda: dt.datetime(2020, 1, 1))
        create_segment(db, "A", user="mark")
    create_segment(db, "B", user="max")
    apply_action(db, "B", ADD_FR, user="max")
    newest_first = audit_rows(db, reader="x")
    assert [r.object for r in newest_first] == ["segment B", "segment B", "segment A"]
    assert [r.kind for r in audit_rows(db, user="MAX", reader="x")] == ["segment.apply", "segment.create"]
    assert [r.object for r in audit_rows(db, since=dt.date(2021, 1, 1), reader="x")] == ["segment B"] * 2
    assert [r.object for r in audit_rows(db, since=dt.datetime(2019, 12, 31, 23), reader="x")][-1] == "segment A"
    assert [r.object for r in audit_rows(db, until=dt.date(2020, 1, 1), reader="x")] == ["segment A"]  # whole day
    assert [r.object for r in audit_rows(db, until=dt.date(2019, 12, 31), reader="x")] == []
    assert len(audit_rows(db, since=dt.date(2020, 1, 1), until=dt.date.today(), reader="x")) == 3
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


# ----------------------------------------------------------------------------------- review, logs, exports, groups


def spring(db: Database) -> None:
    population(db)
    set_settings(db, {"minimum_segment_size": 1}, user="ada")
    create_segment(db, "S", description="Spring", user="mark")
    apply_action(db, "S", ADD_FR, user="mark")


def test_review_transitions_are_audited_with_the_status_before_and_after(db: Database) -> None:
    spring(db)
    submit_segment(db, "S", user="mark", comment="please")
    reject_segment(db, "S", comment="too wide", user="max")
    withdraw_segment(db, "S", user="mark")
    submit_segment(db, "S", user="mark")
    approve_segment(db, "S", user="max")
    review = [r for r in trail(db, object="segment S") if r[1] not in ("segment.create", "segment.apply")]
    assert review == [
        ("mark", "segment.submit", "segment S", "please", "draft", "submitted"),
        ("max", "segment.reject", "segment S", "too wide", "submitted", "rejected"),
        ("mark", "segment.withdraw", "segment S", "", "rejected", "draft"),
        ("mark", "segment.submit", "segment S", "", "draft", "submitted"),
        ("max", "segment.approve", "segment S", "", "submitted", "approved"),
    ]


def test_logging_cancelling_and_exporting_are_audited(db: Database) -> None:
    spring(db)
    log_segment(db, "S", template="email", date="2026-03-01", user="max", follow_up=True)
    export_members(db, "S", "csv", user="mark")
    export_members(db, "S", "xlsx", group="all", user="max")
    cancel_logged(db, "S", user="max")
    rows = [r for r in trail(db, object="segment S") if r[1] not in ("segment.create", "segment.apply")]
    assert rows == [
        ("max", "segment.log", "segment S", "logged as EMAIL on 2026-03-01: 2 interactions, follow-up S-FU",
         "draft", "logged"),
        ("mark", "segment.export", "segment S", "2 rows (contacted members only) as csv", None, "group treated"),
        ("max", "segment.export", "segment S", "2 rows (all with a group column) as xlsx", None, "group all"),
        ("max", "segment.cancel_log", "segment S", "log of segment S cancelled: 2 interactions marked cancelled",
         "log active", "log cancelled"),
    ]


def test_a_refused_export_or_log_leaves_no_audit_row(db: Database) -> None:
    spring(db)
    set_settings(db, {"minimum_segment_size": 5}, user="ada")
    before = count(db)
    with pytest.raises(RefusedError, match="fewer than the minimum"):
        export_members(db, "S", user="mark")
    with pytest.raises(RefusedError, match="fewer than the minimum"):
        log_segment(db, "S", template="EMAIL", user="max")
    assert count(db) == before


def test_campaigns_are_audited(db: Database) -> None:
    create_campaign(db, "C1", description="Spring", start_date="2026-03-01", user="max")
    update_campaign(db, "C1", status="active", user="max")
    update_campaign(db, "C1", user="max")  # nothing changes: nothing to record
    delete_campaign(db, "C1", user="ada")
    assert trail(db, kind="campaign") == [
        ("max", "campaign.create", "campaign C1", "campaign C1 created", None,
         "description 'Spring', 2026-03-01 to -, planned"),
        ("max", "campaign.update", "campaign C1", "campaign C1 changed", "description 'Spring', 2026-03-01 to -, planned",
         "description 'Spring', 2026-03-01 to -, active"),
        ("ada", "campaign.delete", "campaign C1", "campaign C1 deleted", "description 'Spring', 2026-03-01 to -, active",
         None),
    ]


def test_group_changes_and_exports_are_audited(db: Database) -> None:
    population(db)
    create_group(db, "VIP", emails="a@example.org, b@example.org nonsense", user="mark")
    add_emails(db, "VIP", "b@example.org c@example.org", user="mark")
    remove_emails(db, "VIP", "a@example.org", user="mark")
    update_group(db, "VIP", new_name="Gold", user="max")
    export_group_csv(db, "Gold", user="mark")
    delete_group(db, "Gold", user="max")
    assert trail(db, kind="group") == [
        ("mark", "group.create", "group VIP", "group VIP created: 2 addresses added, 0 already there, 1 invalid entry "
         "left out", None, "2 addresses"),
        ("mark", "group.add_emails", "group VIP", "1 address added, 1 already there", "2 addresses", "3 addresses"),
        ("mark", "group.remove_emails", "group VIP", "1 address removed", "3 addresses", "2 addresses"),
        ("max", "group.update", "group Gold", "group VIP renamed to Gold", "VIP: ''", "Gold: ''"),
        ("mark", "group.export", "group Gold", "2 rows as csv", None, None),
        ("max", "group.delete", "group Gold", "group Gold deleted", "2 addresses", None),
    ]


def _failing_after_record(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    """The module's `record` writes its row, then the change fails: the transaction must take both back."""
    import importlib

    mod = importlib.import_module(module)
    real = mod.record

    def record_then_fail(conn, *args, **kwargs):  # type: ignore[no-untyped-def]
        real(conn, *args, **kwargs)
        raise RuntimeError("the change fails after its audit row")

    monkeypatch.setattr(mod, "record", record_then_fail)


@pytest.mark.parametrize("what", ["submit", "log", "export", "group", "campaign"])
def test_a_lifecycle_export_or_group_change_that_rolls_back_leaves_no_audit_row(
    db: Database, monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    spring(db)
    before = count(db)
    module, call, unchanged = {
        "submit": ("segcore._lifecycle", lambda: submit_segment(db, "S", user="mark"),
                   lambda: get_segment(db, "S").status == "draft"),
        "log": ("segcore._lifecycle", lambda: log_segment(db, "S", template="EMAIL", user="max"),
                lambda: get_segment(db, "S").status == "draft"),
        "export": ("segcore._export", lambda: export_members(db, "S", user="mark"), lambda: True),
        "group": ("segcore._groups", lambda: create_group(db, "VIP", emails="a@example.org", user="mark"),
                  lambda: list_groups(db) == []),
        "campaign": ("segcore._lifecycle", lambda: create_campaign(db, "C1", user="max"),
                     lambda: list_campaigns(db) == []),
    }[what]
    _failing_after_record(monkeypatch, module)
    with pytest.raises(RuntimeError, match="fails after its audit row"):
        call()
    assert count(db) == before
    assert unchanged()

"""Roles decided in the core (issue 15): every writing function × every role, on SQLite and PostgreSQL, from the
role table; ownership of segments; open mode; the four-eyes rule."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
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
    delete_mapping,
    delete_segment,
    disable_user,
    enable_user,
    export_group_csv,
    export_members,
    four_eyes_refusal,
    freeze_dynamic,
    get_logged,
    get_segment,
    group_to_segment,
    import_contacts,
    import_interactions,
    import_outcomes,
    load_demo,
    log_segment,
    redo,
    refresh_dynamic,
    reject_segment,
    remove_emails,
    rename_custom_field,
    reset_password,
    retype_custom_field,
    reuse_criteria,
    run_import,
    save_criteria,
    set_email,
    set_preference,
    set_role,
    set_setting,
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
from segcore._errors import RefusedError
from segcore._filter_text import parse_text
from segcore._models import AuditEntry, ContactSource, table_of
from segcore.auth import PERMISSIONS, ROLES, allows, audit_rows, may, open_mode, permissions_of, require
from segcore.imports import Mapping, plan_import, save_mapping
from segcore.spark import Location, SourceSpec, add_source, remove_source
from tests.factories import add_contacts, person
from tests.spark_support import SPARK_URL, spark_available

audit_t = table_of(AuditEntry)
# One account per role; the administrator is made first (a database's first account must be one).
ACCOUNTS = {"admin": "ada", "manager": "max", "marketer": "mark", "viewer": "vic"}
ADMIN = ACCOUNTS["admin"]
ADD_FR = ActionRequest("add", parse_text(["country=FR"]))
CONTACTS_CSV = b"contact_no,name,country,Tier\nN1,Ann,FR,GOLD\n"
INTERACTIONS_CSV = b"contact_no,date,template\nP1,2026-01-05,EMAIL\n"
OUTCOMES_CSV = b"contact_no,date,kind,amount,reference\nP1,2026-01-05,ORDER,10,R1\n"


def accounts(db: Database) -> None:
    add_user(db, ADMIN, "admin")
    for role, name in ACCOUNTS.items():
        if role != "admin":
            add_user(db, name, role, user=ADMIN)


def world(db: Database) -> None:
    """Contacts, a custom field, and the accounts (made after the field: importing it is an administrator's)."""
    add_contacts(db, [person("P1", country="FR", email="p1@example.org"), person("P2", country="DE")])
    import_contacts(db, b"contact_no,name,Tier\nP2,Bo,GOLD\n")
    accounts(db)


def own_segment(db: Database, actor: str, no: str = "S", *, steps: int = 0) -> None:
    """A segment owned by `actor`, built by the administrator (so the actor's own call is the one under test)."""
    create_segment(db, no, description="Mine", owner=actor, user=ADMIN)
    for _ in range(steps):
        apply_action(db, no, ADD_FR, user=ADMIN)


def _mapping(db: Database) -> Mapping:
    return plan_import(db, CONTACTS_CSV, "contacts").mapping


def small_ok(db: Database) -> None:
    """Segments of one member may be exported and logged; four-eyes off (the matrix is about roles; four-eyes has
    its own tests below)."""
    set_settings(db, {"minimum_segment_size": 1, "four_eyes": 0}, user=ADMIN)


def submitted(db: Database, actor: str) -> None:
    """The actor's segment of one member, submitted by the administrator."""
    small_ok(db)
    own_segment(db, actor, steps=1)
    submit_segment(db, "S", user=ADMIN)


def approved(db: Database, actor: str) -> None:
    submitted(db, actor)
    approve_segment(db, "S", user=ADMIN)


def logged_by_admin(db: Database, actor: str) -> None:
    approved(db, actor)
    log_segment(db, "S", template="EMAIL", user=ADMIN)


def exportable(db: Database, owner: str) -> None:
    small_ok(db)
    own_segment(db, owner, steps=1)


def a_group(db: Database, actor: str) -> None:
    create_group(db, "G", emails="p1@example.org other@example.org", user=ADMIN)


@dataclass(frozen=True)
class Case:
    """One writing function: the permission it needs, what to set up, and the call as `actor`.

    `others` is the permission also needed because the object belongs to another person (the refusal names the
    first of the two the role lacks)."""

    name: str
    permission: str
    call: Callable[[Database, str], object]
    setup: Callable[[Database, str], object] = lambda db, actor: None
    others: str | None = None

    def allowed(self, role: str) -> bool:
        return allows(role, self.permission) and (self.others is None or allows(role, self.others))

    def needed_role(self, role: str) -> str:
        lacking = self.permission if not allows(role, self.permission) else self.others
        assert lacking is not None
        return PERMISSIONS[lacking].role


CASES = [
    Case("create_segment", "segment.edit", lambda db, a: create_segment(db, "NEW", user=a)),
    Case("update_segment", "segment.edit", lambda db, a: update_segment(db, "S", description="New", user=a),
         own_segment),
    Case("delete_segment", "segment.edit", lambda db, a: delete_segment(db, "S", user=a), own_segment),
    Case("copy_segment", "segment.edit", lambda db, a: copy_segment(db, "S", "S2", user=a),
         lambda db, a: own_segment(db, a, steps=1)),
    Case("apply_action", "segment.edit", lambda db, a: apply_action(db, "S", ADD_FR, user=a), own_segment),
    Case("undo", "segment.edit", lambda db, a: undo(db, "S", user=a), lambda db, a: own_segment(db, a, steps=1)),
    Case("redo", "segment.edit", lambda db, a: redo(db, "S", user=a),
         lambda db, a: (own_segment(db, a, steps=1), undo(db, "S", user=ADMIN))),
    Case("save_criteria", "segment.edit", lambda db, a: save_criteria(db, "S", "CRIT", user=a),
         lambda db, a: own_segment(db, a, steps=1)),
    Case("reuse_criteria", "segment.edit", lambda db, a: reuse_criteria(db, "CRIT", "S", user=a),
         lambda db, a: (own_segment(db, a, "SRC", steps=1), save_criteria(db, "SRC", "CRIT", user=ADMIN),
                        own_segment(db, a))),
    Case("create_dynamic", "dynamic.edit",
         lambda db, a: create_dynamic(db, "DYN", parse_text(["country=FR"]), user=a)),
    Case("update_dynamic", "dynamic.edit", lambda db, a: update_dynamic(db, "DYN", description="x", user=a),
         lambda db, a: create_dynamic(db, "DYN", parse_text(["country=FR"]), user=ADMIN)),
    Case("delete_dynamic", "dynamic.edit", lambda db, a: delete_dynamic(db, "DYN", user=a),
         lambda db, a: create_dynamic(db, "DYN", parse_text(["country=FR"]), user=ADMIN)),
    Case("refresh_dynamic", "dynamic.edit", lambda db, a: refresh_dynamic(db, "DYN", user=a),
         lambda db, a: create_dynamic(db, "DYN", parse_text(["country=FR"]), user=ADMIN)),
    Case("freeze_dynamic", "segment.edit", lambda db, a: freeze_dynamic(db, "DYN", "FROZEN", user=a),
         lambda db, a: create_dynamic(db, "DYN", parse_text(["country=FR"]), user=ADMIN)),
    Case("rename_custom_field", "fields.edit", lambda db, a: rename_custom_field(db, "tier", label="T", user=a)),
    Case("retype_custom_field", "fields.edit", lambda db, a: retype_custom_field(db, "tier", "text", user=a)),
    Case("delete_custom_field", "fields.edit", lambda db, a: delete_custom_field(db, "tier", user=a)),
    Case("import_contacts", "import", lambda db, a: import_contacts(db, CONTACTS_CSV, user=a)),
    Case("import_interactions", "import", lambda db, a: import_interactions(db, INTERACTIONS_CSV, user=a)),
    Case("import_outcomes", "import", lambda db, a: import_outcomes(db, OUTCOMES_CSV, user=a)),
    Case("save_mapping", "import", lambda db, a: save_mapping(db, "crm", _mapping(db), user=a)),
    Case("delete_mapping", "import", lambda db, a: delete_mapping(db, "crm", user=a),
         lambda db, a: save_mapping(db, "crm", _mapping(db), user=ADMIN)),
    Case("set_settings", "settings", lambda db, a: set_settings(db, {"minimum_segment_size": 7}, user=a)),
    Case("set_setting", "settings", lambda db, a: set_setting(db, "minimum_segment_size", 7, user=a)),
    Case("run_import", "import",
         lambda db, a: run_import(db, plan_import(db, CONTACTS_CSV, "contacts"), user=a)),
    Case("load_demo", "import", lambda db, a: load_demo(db, 30, seed=3, user=a)),
    # Contact sources (segcore/spark/catalog.py): an administrator's, like imports.
    Case("add_source", "import", lambda db, a: _add_lake(db, a)),
    Case("remove_source", "import", lambda db, a: remove_source(db, "LAKE", user=a),
         lambda db, a: _stored_lake(db)),
    Case("set_email", "users", lambda db, a: set_email(db, "newbie", "newbie@example.org", user=a),
         lambda db, a: add_user(db, "newbie", "viewer", user=ADMIN)),
    Case("group_to_segment", "segment.edit", lambda db, a: group_to_segment(db, "G", "S", user=a),
         lambda db, a: (a_group(db, a), own_segment(db, a))),
    Case("add_user", "users", lambda db, a: add_user(db, "newbie", "viewer", user=a)),
    Case("set_role", "users", lambda db, a: set_role(db, "newbie", "manager", user=a),
         lambda db, a: add_user(db, "newbie", "viewer", user=ADMIN)),
    Case("disable_user", "users", lambda db, a: disable_user(db, "newbie", user=a),
         lambda db, a: add_user(db, "newbie", "viewer", user=ADMIN)),
    Case("enable_user", "users", lambda db, a: enable_user(db, "newbie", user=a),
         lambda db, a: (add_user(db, "newbie", "viewer", user=ADMIN), disable_user(db, "newbie", user=ADMIN))),
    Case("reset_password (another's)", "users",
         lambda db, a: reset_password(db, "newbie", "a long new password", user=a),
         lambda db, a: add_user(db, "newbie", "viewer", user=ADMIN)),
    Case("set_preference", "preferences", lambda db, a: set_preference(db, a, "date_order", "MDY")),
    Case("audit_rows", "audit.read", lambda db, a: audit_rows(db, reader=a)),
    # Review, logging and campaigns (segcore/_lifecycle.py).
    Case("submit_segment", "segment.submit", lambda db, a: submit_segment(db, "S", user=a),
         lambda db, a: (small_ok(db), own_segment(db, a, steps=1))),
    Case("submit_segment (another's)", "segment.submit", lambda db, a: submit_segment(db, "S", user=a),
         lambda db, a: (small_ok(db), own_segment(db, "zed", steps=1)), others="segment.edit_any"),
    Case("withdraw_segment", "segment.submit", lambda db, a: withdraw_segment(db, "S", user=a), submitted),
    Case("approve_segment", "segment.approve", lambda db, a: approve_segment(db, "S", user=a), submitted),
    Case("reject_segment", "segment.reject", lambda db, a: reject_segment(db, "S", comment="too wide", user=a),
         submitted),
    Case("log_segment", "segment.log", lambda db, a: log_segment(db, "S", template="EMAIL", user=a), approved),
    Case("cancel_logged", "segment.cancel_log", lambda db, a: cancel_logged(db, "S", user=a), logged_by_admin),
    Case("create_campaign", "campaign.edit", lambda db, a: create_campaign(db, "C1", user=a)),
    Case("update_campaign", "campaign.edit", lambda db, a: update_campaign(db, "C1", status="active", user=a),
         lambda db, a: create_campaign(db, "C1", user=ADMIN)),
    Case("delete_campaign", "campaign.edit", lambda db, a: delete_campaign(db, "C1", user=a),
         lambda db, a: create_campaign(db, "C1", user=ADMIN)),
    # Exports (segcore/_export.py, export_group_csv in segcore/_groups.py).
    Case("export_members", "segment.export", lambda db, a: export_members(db, "S", user=a), exportable),
    Case("export_members (another's)", "segment.export", lambda db, a: export_members(db, "S", user=a),
         lambda db, a: exportable(db, "zed"), others="segment.export_any"),
    Case("export_group_csv", "segment.export", lambda db, a: export_group_csv(db, "G", user=a), a_group),
    # Known user groups (segcore/_groups.py).
    Case("create_group", "group.edit", lambda db, a: create_group(db, "G", emails="p1@example.org", user=a)),
    Case("update_group", "group.edit", lambda db, a: update_group(db, "G", new_name="G2", user=a), a_group),
    Case("delete_group", "group.edit", lambda db, a: delete_group(db, "G", user=a), a_group),
    Case("add_emails", "group.edit", lambda db, a: add_emails(db, "G", "p2@example.org", user=a), a_group),
    Case("remove_emails", "group.edit", lambda db, a: remove_emails(db, "G", "p1@example.org", user=a), a_group),
]


_LAKE: list[Path] = []


def _lake() -> Path:
    """A two-contact Parquet file, written once per test process."""
    if not _LAKE:
        import tempfile

        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(tempfile.mkdtemp(prefix="perm-lake-")) / "contacts.parquet"
        pq.write_table(pa.table({"contact_no": ["L1", "L2"], "country": ["FR", "DE"]}), path)
        _LAKE.append(path)
    return _LAKE[0]


def _add_lake(db: Database, actor: str) -> object:
    # Only an allowed call reaches Spark (add_source refuses first); it then needs Java (fails under CI=true).
    if may(db, actor, "import"):
        spark_available()
    return add_source(db, SourceSpec("LAKE", SPARK_URL, Location("path", str(_lake()), "parquet")), user=actor)


def _stored_lake(db: Database) -> None:
    # The row as add_source stores it, without Spark: removing reads no data.
    with db.write() as conn:
        conn.execute(table_of(ContactSource).insert().values(
            name="LAKE", spark_url=SPARK_URL, kind="path", location=str(_lake()), format="parquet",
            mapping={"kind": "contacts", "columns": {"contact_no": "contact_no"}}, created_by=ADMIN,
        ))


# Functions that take `user` but write nothing: they answer a question about that user.
READERS = {"may", "why_not", "permissions_of", "four_eyes_refusal", "get_preference", "preferences_of"}


def test_every_writer_of_the_public_api_is_in_the_matrix() -> None:
    """A new writer that takes `user` must get its row here, or it is not known to obey the roles."""
    import inspect

    import segcore

    takes_user = {
        name for name in segcore.__all__
        if inspect.isfunction(obj := getattr(segcore, name)) and {"user", "reader"} & set(inspect.signature(obj).parameters)
    }  # fmt: skip
    assert takes_user - READERS - {c.name.split(" ")[0] for c in CASES} == set()


def _audit_count(db: Database, user: str) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(audit_t).where(audit_t.c.user == user)).scalar_one())


def test_every_permission_of_the_table_is_exercised() -> None:
    """The matrix below covers every permission of the table (segment.edit_any also by the ownership test)."""
    covered = {c.permission for c in CASES} | {c.others for c in CASES if c.others}
    assert covered == set(PERMISSIONS)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_permission_matrix(db: Database, case: Case, role: str) -> None:
    world(db)
    actor = ACCOUNTS[role]
    case.setup(db, actor)
    before = _audit_count(db, actor)
    if case.allowed(role):
        case.call(db, actor)
        if case.permission != "audit.read":
            assert _audit_count(db, actor) > before, f"{case.name} as {role} left no audit row"
    else:
        needed = case.needed_role(role)
        with pytest.raises(RefusedError, match=f"needs the {needed} role; {actor} is a {role}"):
            case.call(db, actor)
        assert _audit_count(db, actor) == before, f"a refused {case.name} wrote an audit row"


def test_a_refused_step_changes_nothing(db: Database) -> None:
    world(db)
    own_segment(db, "vic")
    with pytest.raises(RefusedError, match="building and editing segments needs the marketer role"):
        apply_action(db, "S", ADD_FR, user="vic")
    info = get_segment(db, "S")
    assert (info.size, info.head_seq, info.version) == (0, 0, 0)


def test_a_marketer_works_on_their_own_segments_only(db: Database) -> None:
    world(db)
    own_segment(db, "max")  # a manager's segment
    with pytest.raises(RefusedError, match="changing another person's segment needs the manager role"):
        apply_action(db, "S", ADD_FR, user="mark")
    with pytest.raises(RefusedError, match="belongs to max"):
        update_segment(db, "S", description="mine now", user="mark")
    with pytest.raises(RefusedError, match="another person's"):
        delete_segment(db, "S", user="mark")
    with pytest.raises(RefusedError, match="another person's"):
        create_segment(db, "FOR-MAX", owner="max", user="mark")
    # Reading is everybody's: a marketer may copy someone else's segment into one of their own.
    assert copy_segment(db, "S", "MINE", user="mark").owner == "mark"
    apply_action(db, "S", ADD_FR, user="ada")
    assert apply_action(db, "S", ADD_FR, user="max").seq == 2  # the owner
    own_segment(db, "mark", "M")
    assert apply_action(db, "M", ADD_FR, user="max").seq == 1  # a manager changes anyone's


def test_pages_that_name_only_the_owner_act_as_the_owner(db: Database) -> None:
    world(db)
    assert create_segment(db, "OWN", owner="mark").owner == "mark"
    with pytest.raises(RefusedError, match="needs the marketer role; vic is a viewer"):
        create_segment(db, "VIEW", owner="vic")


@pytest.mark.parametrize("who, message", [
    ("ghost", "'ghost' is not an enabled account"),
    ("", "this database has accounts: sign in first"),
])
def test_an_unknown_or_missing_account_is_refused(db: Database, who: str, message: str) -> None:
    world(db)
    with pytest.raises(RefusedError, match=message):
        create_segment(db, "X", user=who)


def test_a_disabled_account_is_refused_and_names_are_folded(db: Database) -> None:
    world(db)
    create_segment(db, "X", user="Mark")  # one person, however typed
    disable_user(db, "mark", user=ADMIN)
    with pytest.raises(RefusedError, match="'mark' is not an enabled account"):
        create_segment(db, "Y", user="mark")


def test_open_mode_lets_everyone_do_everything(db: Database) -> None:
    add_contacts(db, [person("P1", country="FR")])
    with db.read() as conn:
        assert open_mode(conn)
        require(conn, "anybody", "users")
    create_segment(db, "S", user="anybody")
    apply_action(db, "S", ADD_FR, user="somebody else")
    set_settings(db, {"minimum_segment_size": 3}, user="")
    assert permissions_of(db, "anybody") == frozenset(PERMISSIONS)


def test_permissions_of_follows_the_role_table(db: Database) -> None:
    world(db)
    for role, name in ACCOUNTS.items():
        assert permissions_of(db, name) == {p for p in PERMISSIONS if allows(role, p)}
    assert permissions_of(db, "ghost") == frozenset()


def test_the_role_table_is_ordered() -> None:
    assert ROLES == ("viewer", "marketer", "manager", "admin")
    assert allows("manager", "segment.approve") and not allows("marketer", "segment.approve")
    assert allows("admin", "segment.approve") and allows("viewer", "preferences")
    assert not allows("manager", "settings") and allows("admin", "users")
    with pytest.raises(ValueError):
        allows("root", "users")


def test_a_refusal_names_the_role_needed(db: Database) -> None:
    world(db)
    with db.read() as conn, pytest.raises(RefusedError, match="^approving needs the manager role; mark is a marketer$"):
        require(conn, "mark", "segment.approve")


# --------------------------------------------------------------------------------------------------- four-eyes


def _segment_id(db: Database, no: str) -> int:
    return get_segment(db, no).id


def _refusal(db: Database, no: str, user: str) -> str | None:
    with db.read() as conn:
        return four_eyes_refusal(conn, _segment_id(db, no), user)


def _submitted(db: Database, owner: str = "mark") -> None:
    create_segment(db, "S", description="Spring", user=owner)
    apply_action(db, "S", ADD_FR, user=owner)
    submit_segment(db, "S", user=owner)


def test_four_eyes_refuses_who_submitted_and_names_who_else_may(db: Database) -> None:
    world(db)
    add_user(db, "mia", "manager", user=ADMIN)
    _submitted(db, owner="max")
    refusal = _refusal(db, "S", "max")
    assert refusal == ("four-eyes: max submitted segment S since its last approval, so another manager approves it: "
                       "ada, mia")
    assert _refusal(db, "S", "mia") is None


def test_four_eyes_counts_submitting_alone(db: Database) -> None:
    world(db)
    create_segment(db, "S", description="Spring", owner="mark", user=ADMIN)
    apply_action(db, "S", ADD_FR, user=ADMIN)
    submit_segment(db, "S", user="max")
    assert _refusal(db, "S", "max") is not None and "max submitted segment S" in _refusal(db, "S", "max")
    assert _refusal(db, "S", "mark") is None  # owning it is not changing it


def test_four_eyes_counts_changes_since_the_last_approval_only(db: Database) -> None:
    world(db)
    add_user(db, "mia", "manager", user=ADMIN)
    _submitted(db)
    apply_action(db, "S", ADD_FR, user="max")  # max changes it: back to draft
    submit_segment(db, "S", user="mark")
    assert "max changed segment S" in (_refusal(db, "S", "max") or "")
    approve_segment(db, "S", user="mia")
    # A new round: max's change is before the approval, mia's undo after it.
    undo(db, "S", user="mia")
    submit_segment(db, "S", user="mark")
    assert _refusal(db, "S", "max") is None
    refusal = _refusal(db, "S", "mia")
    assert refusal is not None and "mia changed segment S" in refusal and refusal.endswith("approves it: ada, max")


def test_four_eyes_says_when_nobody_else_can(db: Database) -> None:
    world(db)
    _submitted(db, owner="ada")
    assert (_refusal(db, "S", "ada") or "").endswith("so another manager approves it: max")
    # max is the only other approver; once he has changed it too, nobody is left.
    apply_action(db, "S", ADD_FR, user="max")
    assert _refusal(db, "S", "ada") == (
        "four-eyes: ada submitted segment S since its last approval, so no other manager or administrator can "
        "approve it yet: ask an administrator to add one"
    )


def test_four_eyes_is_a_setting_and_off_in_open_mode(db: Database) -> None:
    add_contacts(db, [person("P1", country="FR")])
    _submitted(db, owner="solo")
    assert _refusal(db, "S", "solo") is None  # no accounts: as before
    accounts(db)
    assert _refusal(db, "S", "solo") is not None
    set_settings(db, {"four_eyes": 0}, user=ADMIN)
    assert _refusal(db, "S", "solo") is None


def test_four_eyes_ignores_a_deleted_namesake(db: Database) -> None:
    world(db)
    create_segment(db, "S", user="max")
    apply_action(db, "S", ADD_FR, user="max")
    delete_segment(db, "S", user="max")
    create_segment(db, "S", description="Again", owner="mark", user=ADMIN)
    apply_action(db, "S", ADD_FR, user="mark")
    submit_segment(db, "S", user="mark")
    assert _refusal(db, "S", "max") is None


def test_audit_reading_is_for_managers(db: Database) -> None:
    world(db)
    assert audit_rows(db, reader="max")
    with pytest.raises(RefusedError, match="reading the audit trail needs the manager role"):
        audit_rows(db, reader="mark", since=dt.date(2000, 1, 1))


# ------------------------------------------------------------------------------------- four-eyes, in approve_segment


def _kinds(db: Database, no: str = "S") -> list[tuple[str, str]]:
    return [(r.user, r.kind) for r in reversed(audit_rows(db, reader=ADMIN, object=f"segment {no}"))]


def test_approving_what_you_submitted_is_refused_and_names_who_else_may(db: Database) -> None:
    world(db)
    add_user(db, "mia", "manager", user=ADMIN)
    set_settings(db, {"minimum_segment_size": 1}, user=ADMIN)
    _submitted(db, owner="max")
    with pytest.raises(RefusedError, match=r"^four-eyes: max submitted segment S since its last approval, so another "
                                           r"manager approves it: ada, mia$"):
        approve_segment(db, "S", user="max")
    assert get_segment(db, "S").status == "submitted"
    assert ("max", "segment.approve") not in _kinds(db)
    # Someone who neither submitted nor changed it approves; then logging is the submitter's again.
    assert approve_segment(db, "S", user="mia").status == "approved"
    log_segment(db, "S", template="EMAIL", user="max")
    assert _kinds(db)[-3:] == [("max", "segment.submit"), ("mia", "segment.approve"), ("max", "segment.log")]


def test_a_manager_who_did_not_submit_approves_a_marketers_segment(db: Database) -> None:
    world(db)
    _submitted(db, owner="mark")
    with pytest.raises(RefusedError, match="^approving needs the manager role; mark is a marketer$"):
        approve_segment(db, "S", user="mark")
    assert approve_segment(db, "S", user="max", comment="fine").status == "approved"
    (row,) = audit_rows(db, reader=ADMIN, kind="segment.approve")
    assert (row.user, row.object, row.summary, row.before, row.after) == ("max", "segment S", "fine", "submitted",
                                                                         "approved")


def test_four_eyes_refuses_a_manager_who_changed_it_and_can_be_turned_off(db: Database) -> None:
    world(db)
    create_segment(db, "S", description="Spring", owner="mark", user="mark")
    apply_action(db, "S", ADD_FR, user="max")  # max changes mark's segment
    submit_segment(db, "S", user="mark")
    with pytest.raises(RefusedError, match="four-eyes: max changed segment S .* approves it: ada$"):
        approve_segment(db, "S", user="max")
    set_settings(db, {"four_eyes": 0}, user=ADMIN)
    assert approve_segment(db, "S", user="max").status == "approved"


def test_withdrawing_is_the_owners_or_a_managers(db: Database) -> None:
    world(db)
    _submitted(db, owner="max")
    with pytest.raises(RefusedError, match="changing another person's segment needs the manager role; mark is a "
                                           "marketer and this belongs to max"):
        withdraw_segment(db, "S", user="mark")
    assert withdraw_segment(db, "S", user="ada").status == "draft"


def test_a_marketer_exports_their_own_segment_only(db: Database) -> None:
    world(db)
    set_settings(db, {"minimum_segment_size": 1}, user=ADMIN)
    own_segment(db, "max", "THEIRS", steps=1)
    own_segment(db, "mark", "MINE", steps=1)
    with pytest.raises(RefusedError, match="exporting another person's segment needs the manager role; mark is a "
                                           "marketer and this belongs to max"):
        export_members(db, "THEIRS", user="mark")
    assert export_members(db, "MINE", user="mark").count(b"\n") == 2  # header and one member
    assert export_members(db, "MINE", user="max")  # a manager exports anyone's
    assert [(r.user, r.object) for r in reversed(audit_rows(db, reader=ADMIN, kind="segment.export"))] == [
        ("mark", "segment MINE"), ("max", "segment MINE")]


def test_cancelling_a_log_is_a_managers_and_recorded(db: Database) -> None:
    world(db)
    set_settings(db, {"minimum_segment_size": 1}, user=ADMIN)
    own_segment(db, "mark", steps=1)
    log_segment(db, "S", template="EMAIL", user="max")  # logging needs no approval by default
    with pytest.raises(RefusedError, match="cancelling a logged segment needs the manager role; mark is a marketer"):
        cancel_logged(db, "S", user="mark")
    assert not get_logged(db, "S").cancelled
    assert cancel_logged(db, "S", user="max").cancelled
    assert _kinds(db)[-2:] == [("max", "segment.log"), ("max", "segment.cancel_log")]

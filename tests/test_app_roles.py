"""Every page, signed in under every role (issue 15): the write controls a role may not use are not shown.

One table says, per page, which controls write and which permission each needs; each role then walks every page
once, and the controls it shows must be exactly the ones the core would let it use. Hiding is a courtesy (the
writers refuse anyway, tests/test_permissions.py), but a viewer who sees a button that fails is a broken page.

Sessions are signed in through the real sign-in form, never by writing session state.
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from segcore import add_emails, add_user, create_dynamic, create_group, may
from segcore._db import Database
from segcore._engine import ActionRequest, apply_action, create_segment
from segcore._filter_tree import from_json
from segcore._lifecycle import submit_segment
from tests.apptest_support import BUILDER, DATA, REVIEW, SEGMENTS, button, new_app, run, texts

PASSWORD = "correct-horse-42"
DYNAMIC, GROUPS, AUDIT, CONTACTS = "pages/dynamic.py", "pages/groups.py", "pages/audit.py", "pages/contacts.py"
FR = {"field": "country", "op": "eq", "value": "FR"}
# name → role; "mo" is a second marketer, who does not own MINE.
ACCOUNTS = {"ada": "admin", "vic": "viewer", "mark": "marketer", "mo": "marketer", "meg": "manager"}

# page → control label → (permission, whether it is about MINE, owned by mark). A control is shown exactly when
# the core says the signed-in person may do its permission (on MINE, when it is about MINE).
CONTROLS: dict[str, dict[str, tuple[str, bool]]] = {
    SEGMENTS: {
        "Create and open": ("segment.edit", False),
        "Copy": ("segment.edit", False),
        "Edit": ("segment.edit", True),
        "Delete": ("segment.edit", True),
    },
    BUILDER: {
        "Add to segment": ("segment.edit", True),
        "Undo": ("segment.edit", True),
        "Redo": ("segment.edit", True),
        "Back to draft": ("segment.submit", True),
        "Log segment…": ("segment.log", True),
    },
    DYNAMIC: {
        "Refresh and record": ("dynamic.edit", False),
        "Delete dynamic segment": ("dynamic.edit", False),
        "Save dynamic segment": ("dynamic.edit", False),
        "Freeze 0 contacts": ("segment.edit", False),
    },
    GROUPS: {
        "Create group": ("group.edit", False),
        "Add addresses": ("group.edit", False),
        "Remove these": ("group.edit", False),
        "Delete group": ("group.edit", False),
        "Add 1 matched contact": ("segment.edit", True),  # MINE is the only segment open to change
    },
    REVIEW: {
        "Approve": ("segment.approve", True),
        "Reject": ("segment.reject", True),
        "Create campaign": ("campaign.edit", False),
    },
    DATA: {
        "Save settings": ("settings", False),
        "Rename": ("fields.edit", False),
        "Add source": ("import", False),
    },
}


def _buttons(at: AppTest) -> set[str]:
    return {b.label for b in at.button} | {b.proto.label for b in at.get("download_button")}


@pytest.fixture
def team(app_db: Database) -> Database:
    """MINE: mark's submitted segment of French contacts; a dynamic segment, a group, then the five accounts."""
    create_segment(app_db, "MINE", description="French contacts", owner="mark")
    apply_action(app_db, "MINE", ActionRequest("add", filter=from_json(FR)), user="mark")
    submit_segment(app_db, "MINE", user="mark")
    create_dynamic(app_db, "DYN", from_json({"field": "contact_no", "op": "eq", "value": "NOBODY"}),
                   description="Nobody", owner="mark")
    email = _first_email(app_db)
    create_group(app_db, "FAIR", description="Trade fair", emails=[email, "stranger@example.org"])
    add_emails(app_db, "FAIR", ["late@example.org"])
    from segcore import import_contacts

    import_contacts(app_db, b"contact_no,Tier\nCT000001,GOLD\n")  # a custom field for the Data page
    add_user(app_db, "ada", "admin", PASSWORD, user="setup")
    for name, role in ACCOUNTS.items():
        if name != "ada":
            add_user(app_db, name, role, PASSWORD, user="ada")
    return app_db


def _first_email(db: Database) -> str:
    from sqlalchemy import select

    from segcore._models import Contact

    with db.read() as conn:
        return conn.execute(select(Contact.email).where(Contact.email.is_not(None)).order_by(Contact.id)).scalars().first()


def _sign_in(name: str) -> AppTest:
    at = new_app()
    at.query_params["segment"] = "MINE"
    run(at)
    at.text_input(key="sx.signin.name").input(name)
    at.text_input(key="sx.signin.password").input(PASSWORD)
    button(at, "Sign in").click()
    return run(at)


# Controls that sit in a tab other than the first: the page is seen with the first tab, then with this one.
OTHER_TAB = {BUILDER: ("bd.tab", "Review & log"), REVIEW: ("rv.tab", "Campaigns")}


def _visit(at: AppTest, page: str) -> set[str]:
    at.switch_page(page)
    shown = _buttons(run(at))
    if page in OTHER_TAB:
        key, tab = OTHER_TAB[page]
        at.session_state[key] = tab
        shown |= _buttons(run(at))
    return shown


@pytest.mark.parametrize("name", list(ACCOUNTS))
def test_every_page_shows_exactly_the_write_controls_the_role_may_use(team: Database, name: str) -> None:
    at = _sign_in(name)
    assert "Segments" in texts(at.header), f"{name} could not sign in"
    for page, controls in CONTROLS.items():
        shown = _visit(at, page)
        for label, (permission, about_mine) in controls.items():
            expected = may(team, name, permission, owner="mark" if about_mine else None)
            assert (label in shown) == expected, (
                f"{ACCOUNTS[name]} {name} on {page}: {label!r} {'missing' if expected else 'shown'}"
            )


def test_a_viewer_sees_no_write_control_on_any_page(team: Database) -> None:
    at = _sign_in("vic")
    writes: set[str] = {label for controls in CONTROLS.values() for label in controls}
    for page in (*CONTROLS, CONTACTS):
        assert not (_visit(at, page) & writes), page
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(AUDIT)


def test_a_signed_out_session_sees_only_the_sign_in_on_every_page(team: Database) -> None:
    at = run(new_app())
    for page in (*CONTROLS, CONTACTS, AUDIT):
        at.switch_page(page)
        run(at)
        assert texts(at.header) == ["Sign in"], page
        assert [b.label for b in at.button] == ["Sign in"], page
        assert not at.dataframe and not at.metric, page


def test_every_write_a_page_makes_names_who_acts() -> None:
    """A writer called without `user=` acts as the server's account, which is no account: every call of a segcore
    function that takes `user` (or `reader`) from pages/ or ui/ passes it, by keyword or by position."""
    import ast
    import inspect
    from pathlib import Path

    import segcore
    import segcore.spark

    takes: dict[str, tuple[str, int]] = {}
    # The public API and its public subpackage (warehouse mode: add_source, remove_source).
    for module in (segcore, segcore.spark):
        for name in module.__all__:
            obj = getattr(module, name)
            if callable(obj) and not inspect.isclass(obj):
                params = list(inspect.signature(obj).parameters)
                for p in ("user", "reader"):
                    if p in params:
                        takes[name] = (p, params.index(p))
    assert {"apply_action", "create_dynamic", "delete_group", "set_settings", "export_members", "add_source",
            "remove_source"} <= set(takes)
    root = Path(__file__).resolve().parent.parent
    missing = []
    for path in sorted([*root.glob("pages/*.py"), *root.glob("ui/*.py")]):
        if path.name == "bench_preview.py":  # a benchmark on its own throwaway database, without accounts
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            called = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            if called not in takes:
                continue
            param, position = takes[called]
            if param in {k.arg for k in node.keywords} or len(node.args) > position:
                continue
            missing.append(f"{path.relative_to(root)}:{node.lineno} {called}")
    assert missing == []

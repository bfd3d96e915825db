"""The dashboard on a database with accounts (issue 15): sign-in, sign-out, the session check, per-role hiding on
Review and Data, the Audit page, and creating the first administrator from the Data page in open mode.

Sessions are signed in only through the real sign-in form (filled and submitted), never by writing session state.
"""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from segcore import RefusedError, add_user, approve_segment, disable_user, get_segment, list_users
from segcore._db import Database
from segcore._engine import ActionRequest, apply_action, create_segment
from segcore._filter_tree import from_json
from segcore._lifecycle import submit_segment
from tests.apptest_support import DATA, REVIEW, button, new_app, run, texts

AUDIT = "pages/audit.py"
PASSWORD = "correct-horse-42"


def _submitted_segment(db: Database, no: str = "S1") -> None:
    """A segment waiting for review, made before the accounts exist (open mode: any name may act)."""
    create_segment(db, no, description="French contacts")
    apply_action(db, no, ActionRequest("add", filter=from_json({"field": "country", "op": "eq", "value": "FR"})))
    submit_segment(db, no, user="sam")


def _accounts(db: Database) -> None:
    add_user(db, "ada", "admin", PASSWORD, user="setup")
    for name, role in (("vic", "viewer"), ("mark", "marketer"), ("meg", "manager")):
        add_user(db, name, role, PASSWORD, user="ada")


def _sign_in(at: AppTest, name: str, password: str = PASSWORD) -> AppTest:
    at.text_input(key="sx.signin.name").input(name)
    at.text_input(key="sx.signin.password").input(password)
    button(at, "Sign in").click()
    return run(at)


def _only_sign_in(at: AppTest) -> None:
    assert texts(at.header) == ["Sign in"]
    assert [b.label for b in at.button] == ["Sign in"]
    assert [t.label for t in at.text_input] == ["Name", "Password"]
    assert not at.dataframe
    assert "Working as" not in [t.label for t in at.text_input]


def _page(at: AppTest, page: str) -> AppTest:
    at.switch_page(page)
    return run(at)


def test_a_database_with_accounts_shows_only_the_sign_in_form(app_db: Database) -> None:
    _submitted_segment(app_db)
    _accounts(app_db)
    at = run(new_app())
    _only_sign_in(at)
    # A page asked for directly shows the same form, and nothing of the page.
    _only_sign_in(_page(at, REVIEW))


def test_a_wrong_password_shows_the_error_next_to_the_form(app_db: Database) -> None:
    _accounts(app_db)
    at = _sign_in(run(new_app()), "ada", "not-the-password")
    _only_sign_in(at)
    assert any("wrong name or password" in e.lower() for e in texts(at.error))
    # The password is not kept in the session after the attempt.
    assert at.text_input(key="sx.signin.password").value == ""


def test_signing_in_shows_the_name_instead_of_working_as(app_db: Database) -> None:
    _accounts(app_db)
    at = _sign_in(run(new_app()), "Ada")
    assert "Segments" in texts(at.header)
    assert "Working as" not in [t.label for t in at.text_input]
    assert any("**ada** · admin" in m for m in texts(at.sidebar.markdown))
    assert "Sign out" in [b.label for b in at.sidebar.button]


def test_a_viewer_sees_no_approve_button_on_review(app_db: Database) -> None:
    _submitted_segment(app_db)
    _accounts(app_db)
    at = _page(_sign_in(run(new_app()), "vic"), REVIEW)
    assert "Review" in texts(at.header)
    labels = [b.label for b in at.button]
    assert "Approve" not in labels and "Reject" not in labels
    assert any("need the manager role" in c for c in texts(at.caption))
    # Nor import or settings on Data.
    at = _page(at, DATA)
    assert "Save settings" not in [b.label for b in at.button]
    assert any("Importing data needs the admin role" in c for c in texts(at.caption))


def test_a_marketer_cannot_approve_but_a_manager_can(app_db: Database) -> None:
    _submitted_segment(app_db)
    _accounts(app_db)
    at = _page(_sign_in(run(new_app()), "mark"), REVIEW)
    assert "Approve" not in [b.label for b in at.button]
    # Hiding is a courtesy: the core refuses the marketer whatever the page shows.
    with pytest.raises(RefusedError, match="approving needs the manager role"):
        approve_segment(app_db, "S1", user="mark")
    assert get_segment(app_db, "S1").status == "submitted"

    at = _page(_sign_in(run(new_app()), "meg"), REVIEW)
    button(at, "Approve").click()
    run(at)
    assert get_segment(app_db, "S1").status == "approved"
    assert any("S1 approved" in s for s in texts(at.success))


def test_signed_out_sessions_see_only_the_sign_in(app_db: Database) -> None:
    _accounts(app_db)
    at = _sign_in(run(new_app()), "meg")
    assert "Segments" in texts(at.header)
    button(at, "Sign out").click()
    run(at)
    _only_sign_in(at)
    assert any("Signed out" in s for s in texts(at.success))
    _only_sign_in(_page(at, DATA))


def test_the_session_is_checked_on_every_run(app_db: Database) -> None:
    _accounts(app_db)
    at = _sign_in(run(new_app()), "mark")
    assert "Segments" in texts(at.header)
    disable_user(app_db, "mark", user="ada")
    run(at)
    _only_sign_in(at)
    assert any("no longer enabled" in w for w in texts(at.warning))


def test_the_audit_page_lists_an_action_and_filters(app_db: Database) -> None:
    _submitted_segment(app_db)
    _accounts(app_db)
    at = _page(_sign_in(run(new_app()), "meg"), REVIEW)
    button(at, "Approve").click()
    run(at)
    at = _page(at, AUDIT)
    assert "Audit" in texts(at.header)
    table = at.dataframe[0].value
    approvals = table[table["Kind"] == "segment.approve"]
    assert list(approvals["Who"]) == ["meg"] and list(approvals["Object"]) == ["segment S1"]
    assert "user.sign_in" in set(table["Kind"])
    at.selectbox(key="au.kind").set_value("user")
    run(at)
    kinds = set(at.dataframe[0].value["Kind"])
    assert kinds and all(k.startswith("user.") for k in kinds)
    at.selectbox(key="au.kind").set_value("__any__")
    at.selectbox(key="au.user").set_value("meg")
    run(at)
    assert set(at.dataframe[0].value["Who"]) == {"meg"}
    csv = next(d for d in at.get("download_button"))
    assert csv.proto.label == "Download CSV"


def test_audit_is_hidden_from_a_marketer_and_refused_by_the_core(app_db: Database) -> None:
    from segcore import audit_rows

    _accounts(app_db)
    at = _sign_in(run(new_app()), "mark")
    assert "Segments" in texts(at.header)
    with pytest.raises(RefusedError, match="manager role"):
        audit_rows(app_db, reader="mark")
    # Not in the marketer's navigation at all (AppTest cannot even switch to it), while a manager has it.
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(AUDIT)
    at = _page(_sign_in(run(new_app()), "meg"), AUDIT)
    assert "Audit" in texts(at.header)


def test_creating_the_first_administrator_from_the_data_page(app_db: Database) -> None:
    at = _page(run(new_app()), DATA)
    assert "Working as" in [t.label for t in at.text_input]
    at.text_input(key="sx.admin.name").input("Ada")
    at.text_input(key="sx.admin.password").input(PASSWORD)
    at.text_input(key="sx.admin.password2").input("something-else")
    button(at, "Create administrator").click()
    run(at)
    assert any("passwords differ" in e for e in texts(at.error))
    assert list_users(app_db) == []

    at.text_input(key="sx.admin.password").input(PASSWORD)
    at.text_input(key="sx.admin.password2").input(PASSWORD)
    button(at, "Create administrator").click()
    run(at)
    assert [(a.name, a.role) for a in list_users(app_db)] == [("ada", "admin")]
    _only_sign_in(at)
    assert any("Administrator ada created" in s for s in texts(at.success))
    at = _sign_in(at, "ada")
    assert "Data" in texts(at.header)
    assert "Save settings" in [b.label for b in at.button]


# ---------------------------------------------------------------------------------------------- single sign-on

# What .streamlit/secrets.toml holds for an OpenID Connect provider (no provider is reached: st.user is faked).
OIDC = {"auth": {
    "redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "not-a-real-secret-0123456789",
    "client_id": "segment-explorer", "client_secret": "not-a-real-secret",
    "server_metadata_url": "https://login.example.com/.well-known/openid-configuration",
}}  # fmt: skip


def _sso_app(user: dict[str, object] | None = None) -> AppTest:
    at = new_app()
    at.secrets = OIDC
    at.user = user if user is not None else {"is_logged_in": False}
    return at


def test_without_an_auth_section_there_is_no_single_sign_on_button(app_db: Database) -> None:
    _accounts(app_db)
    at = run(new_app())
    assert "Sign in with your company account" not in [b.label for b in at.button]


def test_single_sign_on_offers_the_provider_beside_the_password_form(app_db: Database) -> None:
    _accounts(app_db)
    at = run(_sso_app())
    assert texts(at.header) == ["Sign in"]
    assert [b.label for b in at.button] == ["Sign in with your company account", "Sign in"]
    assert not at.dataframe


def test_a_mapped_address_signs_in_with_its_accounts_role(app_db: Database) -> None:
    from segcore import audit_rows, set_email

    _submitted_segment(app_db)
    _accounts(app_db)
    set_email(app_db, "meg", "Meg.Manager@Example.com", user="ada")
    at = run(_sso_app({"is_logged_in": True, "email": "meg.manager@example.com", "name": "Meg"}))
    assert "Segments" in texts(at.header)
    assert any("**meg** · manager" in m for m in texts(at.sidebar.markdown))
    at = _page(at, REVIEW)
    button(at, "Approve").click()
    run(at)
    assert get_segment(app_db, "S1").status == "approved"
    rows = audit_rows(app_db, user="meg", kind="user", reader="ada")
    assert any(r.kind == "user.sign_in" and "single sign-on" in r.summary for r in rows)
    button(at, "Sign out").click()
    run(at)
    _only_sign_in_or_sso(at)
    assert at.user == {"is_logged_in": False}  # the provider's identity is forgotten too


def test_an_address_no_account_has_is_refused_with_what_to_do(app_db: Database) -> None:
    from segcore import audit_rows

    _accounts(app_db)
    at = run(_sso_app({"is_logged_in": True, "email": "stranger@example.com"}))
    assert texts(at.header) == ["Sign in"] and not at.dataframe
    assert any("No account here has the address stranger@example.com, so it has no role" in e for e in texts(at.error))
    assert "Use another company account" in [b.label for b in at.button]
    run(at)  # a rerun does not try again (one failed sign-in in the trail, not one per run)
    failed = [r for r in audit_rows(app_db, kind="user.sign_in_failed", reader="ada") if "stranger" in r.object]
    assert len(failed) == 1


def test_a_disabled_account_cannot_sign_in_through_single_sign_on(app_db: Database) -> None:
    from segcore import set_email

    _accounts(app_db)
    set_email(app_db, "mark", "mark@example.com", user="ada")
    disable_user(app_db, "mark", user="ada")
    at = run(_sso_app({"is_logged_in": True, "email": "mark@example.com"}))
    assert texts(at.header) == ["Sign in"]
    assert any("Account mark is disabled: ask an administrator." in e for e in texts(at.error))


def _only_sign_in_or_sso(at: AppTest) -> None:
    assert texts(at.header) == ["Sign in"]
    assert not at.dataframe


# ---------------------------------------------------------------------------------------------- the Team section


def test_an_administrator_manages_the_team_on_the_data_page(app_db: Database) -> None:
    from segcore import audit_rows, get_user

    _accounts(app_db)
    at = _page(_sign_in(run(new_app()), "ada"), DATA)
    assert "Team" in texts(at.subheader)
    team = next(d.value for d in at.dataframe if "Signs in with" in d.value.columns)
    assert list(team["Name"]) == ["ada", "mark", "meg", "vic"]
    # Neither a password nor an address: refused by the form, nothing added.
    at.text_input(key="tm.new.name").input("carol")
    button(at, "Add account").click()
    run(at)
    assert any("Give a password, or the e-mail address" in e for e in texts(at.error))
    assert [a.name for a in list_users(app_db)] == ["ada", "mark", "meg", "vic"]
    # A single sign-on account: an e-mail address and no password.
    at.text_input(key="tm.new.name").input("carol")
    at.text_input(key="tm.new.email").input("Carol@Example.com")
    at.selectbox(key="tm.new.role").set_value("manager")
    button(at, "Add account").click()
    run(at)
    assert any("Account carol added (manager); signs in with single sign-on as carol@example.com" in s
               for s in texts(at.success))
    carol = get_user(app_db, "carol")
    assert (carol.role, carol.email, carol.has_password) == ("manager", "carol@example.com", False)
    # Change mark: role and e-mail in one save; then disable him.
    at.selectbox(key="tm.pick").set_value("mark")
    run(at)
    at.selectbox(key="tm.role.mark").set_value("manager")
    at.text_input(key="tm.email.mark").input("mark@example.com")
    button(at, "Save").click()
    run(at)
    assert any("mark: role manager, e-mail mark@example.com." in s for s in texts(at.success))
    button(at, "Disable").click()
    run(at)
    assert get_user(app_db, "mark").enabled is False
    # The last administrator stays: the core's refusal shows by the form.
    at.selectbox(key="tm.pick").set_value("ada")
    run(at)
    at.selectbox(key="tm.role.ada").set_value("viewer")
    button(at, "Save").click()
    run(at)
    assert any("ada is the last administrator" in e for e in texts(at.error))
    kinds = {r.kind for r in audit_rows(app_db, user="ada", kind="user", reader="ada")}
    assert {"user.add", "user.set_role", "user.set_email", "user.disable"} <= kinds


def test_the_team_section_is_an_administrators(app_db: Database) -> None:
    _accounts(app_db)
    at = _page(_sign_in(run(new_app()), "meg"), DATA)
    assert "Team" not in texts(at.subheader)
    assert "Add account" not in [b.label for b in at.button]

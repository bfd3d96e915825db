"""The Data page's Team section (administrators): every account with its role, and the forms to add one, change a
role or an e-mail address (which single sign-on maps to the account), disable or enable it, or set a new password.

Every rule (the first account is an admin, the last admin stays, names and addresses are unique, passwords are
hashed) is segcore's; this module draws the controls and reports the core's answer by the control that caused it.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from segcore import (
    ROLES,
    Database,
    add_user,
    disable_user,
    enable_user,
    list_users,
    reset_password,
    set_email,
    set_role,
)
from ui import state
from ui.format import when
from ui.tables import table_height

__all__ = ["team_section"]

SLOT_ADD, SLOT_EDIT = "tm.add", "tm.edit"
W_NAME, W_ROLE, W_EMAIL, W_PW = "tm.new.name", "tm.new.role", "tm.new.email", "tm.new.password"
W_PICK = "tm.pick"


def _add() -> None:
    ss = st.session_state
    password = ss.get(W_PW) or None
    ss[W_PW] = ""  # a password never stays in the session
    if password is None and not (ss.get(W_EMAIL) or "").strip():
        state.flash("error", "Give a password, or the e-mail address single sign-on knows: else nobody can sign in "
                    "with this account.", SLOT_ADD)
        return
    with state.core_errors(to_flash=True, slot=SLOT_ADD):
        account = add_user(state.get_db(), (ss.get(W_NAME) or "").strip(), ss.get(W_ROLE) or "viewer", password,
                           email=(ss.get(W_EMAIL) or "").strip() or None, user=state.user())
        how = "a password" if account.has_password else f"single sign-on as {account.email}"
        state.flash("success", f"Account {account.name} added ({account.role}); signs in with {how}.", SLOT_ADD)
        for key in (W_NAME, W_EMAIL):
            ss.pop(key, None)


def _save(name: str) -> None:
    ss, db = st.session_state, state.get_db()
    role, email = ss.get(f"tm.role.{name}"), (ss.get(f"tm.email.{name}") or "").strip()
    password = ss.get(f"tm.pw.{name}") or ""
    ss[f"tm.pw.{name}"] = ""
    with state.core_errors(to_flash=True, slot=SLOT_EDIT):
        current = next(a for a in list_users(db) if a.name == name)
        done = []
        if role and role != current.role:
            set_role(db, name, role, user=state.user())
            done.append(f"role {role}")
        if email != (current.email or ""):
            set_email(db, name, email or None, user=state.user())
            done.append(f"e-mail {email}" if email else "no e-mail address")
        if password:
            reset_password(db, name, password, user=state.user())
            done.append("a new password")
        state.flash("success", f"{name}: " + (", ".join(done) if done else "nothing changed") + ".", SLOT_EDIT)


def _toggle(name: str, enabled: bool) -> None:
    with state.core_errors(to_flash=True, slot=SLOT_EDIT):
        (disable_user if enabled else enable_user)(state.get_db(), name, user=state.user())
        state.flash("success", f"{name} {'disabled' if enabled else 'enabled'}.", SLOT_EDIT)


def team_section(db: Database) -> None:
    """Accounts and their roles; drawn only for who may manage them (the core refuses the others anyway)."""
    accounts = list_users(db)
    if accounts:
        st.dataframe(pd.DataFrame({
            "Name": [a.name for a in accounts], "Role": [a.role for a in accounts],
            "State": ["enabled" if a.enabled else "disabled" for a in accounts],
            "Signs in with": ["password" if a.has_password else "single sign-on" for a in accounts],
            "E-mail (single sign-on)": [a.email or "" for a in accounts],
            "Last sign-in (UTC)": [when(a.last_sign_in_at) if a.last_sign_in_at else "never" for a in accounts],
        }), hide_index=True, height=table_height(len(accounts), max_rows=8))  # fmt: skip
    add, edit = st.columns(2, gap="large")
    with add, st.form("tm.add.form", border=True, enter_to_submit=False):
        st.markdown("**Add an account**")
        a, b = st.columns([3, 2])
        a.text_input("Name", key=W_NAME, max_chars=60, help="Lower-case letters, digits, '.', '_', '-' or '@'.")
        b.selectbox("Role", ROLES, key=W_ROLE, index=ROLES.index("marketer"))
        st.text_input("E-mail address", key=W_EMAIL, max_chars=254,
                      help="The address your company's sign-in vouches for: single sign-on gives it this account.")
        st.text_input("Password", key=W_PW, type="password", max_chars=1024,
                      help="At least 8 characters; leave empty for an account that signs in only through single "
                      "sign-on (then give its e-mail address).")
        st.form_submit_button("Add account", type="primary", icon=":material/person_add:", on_click=_add)
        state.show_flashes(SLOT_ADD)
    if not accounts:
        return
    with edit, st.container(border=True):
        st.markdown("**Change an account**")
        names = [a.name for a in accounts]
        name = st.selectbox("Account", names, key=W_PICK)
        current = next(a for a in accounts if a.name == name)
        a, b = st.columns([2, 3])
        state.seed_widget(f"tm.role.{name}", current.role)
        a.selectbox("Role", ROLES, key=f"tm.role.{name}")
        state.seed_widget(f"tm.email.{name}", current.email or "")
        b.text_input("E-mail address", key=f"tm.email.{name}", max_chars=254)
        st.text_input("New password", key=f"tm.pw.{name}", type="password", max_chars=1024,
                      help="Leave empty to keep the password; a new one also lifts a lock-out.")
        with st.container(horizontal=True):
            st.button("Save", key="tm.save", on_click=_save, args=(name,))
            st.button("Disable" if current.enabled else "Enable", key="tm.toggle", on_click=_toggle,
                      args=(name, current.enabled), icon=":material/block:" if current.enabled else None)
        state.show_flashes(SLOT_EDIT)

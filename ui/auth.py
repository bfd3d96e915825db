"""Signing in, when the database has accounts (issue 15): the sign-in form, single sign-on through the company's
OpenID Connect provider (Streamlit's `st.login`, when `.streamlit/secrets.toml` has an `[auth]` section), the session
check on every run, the signed-in name and "Sign out" in the sidebar, and the form that creates a database's first
administrator.

Without accounts nothing here stops a page: the app works as it always did (open mode). Everything that decides
(passwords, lock-out, idle expiry, roles) is segcore's: sign_in, check_session, permissions_of, add_user.
"""

from __future__ import annotations

import streamlit as st

from segcore import Database, SegcoreError, add_user, check_session, list_users, sign_in, sso_sign_in
from ui import state
from ui.format import sentence

K_MSG = "sx.auth.msg"  # (kind, text) to show above the sign-in form on the next run (expired, signed out, …)
K_ERROR = "sx.auth.error"  # the refusal of the last sign-in attempt, shown under the form
W_NAME, W_PASSWORD = "sx.signin.name", "sx.signin.password"
W_ADMIN_NAME, W_ADMIN_PW, W_ADMIN_PW2 = "sx.admin.name", "sx.admin.password", "sx.admin.password2"
SLOT_FIRST_ADMIN = "sx.admin"
K_SSO = "sx.auth.sso"  # True while the session came from single sign-on (signing out then also ends st.user's)
# Keys of secrets.toml's [auth] that are settings, not a named provider's section ([auth.microsoft] ...).
_AUTH_SETTINGS = {"redirect_uri", "cookie_secret", "expose_tokens", "client_id", "client_secret",
                  "server_metadata_url", "client_kwargs"}


def sso_provider() -> tuple[bool, str | None]:
    """(configured, provider): whether secrets.toml configures OpenID Connect, and the named provider to pass to
    st.login (None: the settings sit directly in [auth])."""
    try:
        auth = st.secrets.get("auth")
    except Exception:  # noqa: BLE001 - no secrets file, or one Streamlit cannot read: no single sign-on
        return False, None
    if not auth or not hasattr(auth, "keys"):
        return False, None
    named = [k for k in auth.keys() if k not in _AUTH_SETTINGS and hasattr(auth[k], "keys")]
    return True, (named[0] if named and "client_id" not in auth else None)


def _sso_identity() -> str | None:
    """The e-mail address the identity provider vouched for in this browser, when someone signed in with it."""
    try:
        if st.user.is_logged_in:
            return str(st.user.get("email") or "")
    except Exception:  # noqa: BLE001 - st.user outside a configured app: nobody signed in through it
        return None
    return None


def has_accounts(db: Database) -> bool:
    """Whether the database has at least one account (then every page needs a signed-in person)."""
    return bool(list_users(db))


def _say_next(kind: str, text: str) -> None:
    st.session_state[K_MSG] = (kind, text)


def gate(db: Database) -> bool:
    """True when the page may run: no accounts (open mode), or a signed-in session that is still valid.

    The session is checked on every run (idle expiry, a disabled account, a changed role); an ended one is
    forgotten with the reason, which the sign-in form then shows."""
    session = state.signed_in()
    if not has_accounts(db):
        if session is not None:  # a session of another database (the URL changed): open mode has none
            st.session_state.pop(state.K_SESSION, None)
        return True
    if session is None:
        return _sso_session(db)
    try:
        st.session_state[state.K_SESSION] = check_session(db, session)
    except SegcoreError as e:
        st.session_state.pop(state.K_SESSION, None)
        _say_next("warning", sentence(e))
        if st.session_state.pop(K_SSO, False):
            # The provider's identity would open a new session at once: an expired one must sign in again there.
            st.logout()
        return False
    return True


def _sso_session(db: Database) -> bool:
    """Open a session for the person the identity provider signed in (st.user), with the role an administrator
    mapped to their address; a refusal (an address with no account, a disabled one) shows under the form."""
    configured, _ = sso_provider()
    email = _sso_identity() if configured else None
    if email is None or st.session_state.get(K_ERROR):
        return False
    try:
        st.session_state[state.K_SESSION] = sso_sign_in(db, email)
    except SegcoreError as e:
        st.session_state[K_ERROR] = sentence(e)
        return False
    st.session_state[K_SSO] = True
    state.flash("success", f"Signed in as {st.session_state[state.K_SESSION].name}.")
    return True


def _try_sign_in() -> None:
    name = (st.session_state.get(W_NAME) or "").strip()
    password = st.session_state.get(W_PASSWORD) or ""
    st.session_state[W_PASSWORD] = ""  # the password never stays in the session
    st.session_state.pop(K_ERROR, None)
    if not name or not password:
        st.session_state[K_ERROR] = "Enter your name and your password."
        return
    try:
        st.session_state[state.K_SESSION] = sign_in(state.get_db(), name, password)
    except SegcoreError as e:
        st.session_state[K_ERROR] = sentence(e)
        return
    st.session_state.pop(K_MSG, None)
    state.flash("success", f"Signed in as {st.session_state[state.K_SESSION].name}.")


def sign_in_form() -> None:
    """The only thing a signed-out session sees once the database has accounts."""
    _, middle, _ = st.columns([1, 2, 1])
    with middle:
        st.header("Sign in", anchor=False)
        st.caption("This Segment Explorer has accounts: sign in with yours. An administrator adds accounts "
                   "(`python -m segcore user add NAME --role ROLE --password-stdin`).")
        waiting = st.session_state.pop(K_MSG, None)
        if waiting:
            getattr(st, waiting[0], st.info)(waiting[1])
        configured, provider = sso_provider()
        if configured:
            if _sso_identity() is not None:
                # Signed in with the provider but refused here: offer to leave that identity for another one.
                st.button("Use another company account", icon=":material/logout:", key="sx.sso.out",
                          on_click=_sso_sign_out)
            else:
                st.button("Sign in with your company account", type="primary", icon=":material/badge:",
                          key="sx.sso.in", on_click=st.login, args=(provider,) if provider else (),
                          width="stretch")
            st.caption("Or with a name and password:")
        with st.form("sx.signin", border=True):
            st.text_input("Name", key=W_NAME, max_chars=60, autocomplete="username")
            st.text_input("Password", key=W_PASSWORD, type="password", max_chars=1024,
                          autocomplete="current-password")
            st.form_submit_button("Sign in", type="primary", icon=":material/login:", on_click=_try_sign_in)
        error = st.session_state.get(K_ERROR)
        if error:
            st.error(error, icon=":material/lock:")


def _sign_out() -> None:
    st.session_state.pop(state.K_SESSION, None)
    st.session_state.pop(K_ERROR, None)
    _say_next("success", "Signed out.")
    if st.session_state.pop(K_SSO, False):
        st.logout()  # also forget the provider's identity cookie, or the next run would sign in again


def _sso_sign_out() -> None:
    st.session_state.pop(K_ERROR, None)
    st.logout()


def sidebar_identity(db: Database) -> None:
    """Who acts: the signed-in name (read-only) and "Sign out"; without accounts the "Working as" box and a link to
    create the first administrator."""
    session = state.signed_in()
    if session is None:
        state.user_input()
        st.caption("No accounts yet: anyone acts under any name.")
        st.page_link(state.PAGES["data"], label="Create the first administrator", icon=":material/person_add:")
        return
    with st.container(border=True):
        st.caption("Signed in as")
        st.markdown(f"**{session.name}** · {session.role}")
        st.button("Sign out", icon=":material/logout:", key="sx.signout", on_click=_sign_out)


def _create_first_admin() -> None:
    name = (st.session_state.get(W_ADMIN_NAME) or "").strip()
    pw, pw2 = st.session_state.get(W_ADMIN_PW) or "", st.session_state.get(W_ADMIN_PW2) or ""
    st.session_state[W_ADMIN_PW] = st.session_state[W_ADMIN_PW2] = ""
    if pw != pw2:
        state.flash("error", "The two passwords differ: type the same password twice.", SLOT_FIRST_ADMIN)
        return
    with state.core_errors(to_flash=True, slot=SLOT_FIRST_ADMIN):
        account = add_user(state.get_db(), name, "admin", pw, user=state.user())
        st.session_state.pop(K_ERROR, None)
        _say_next("success", f"Administrator {account.name} created: from now on everyone signs in. "
                             "Sign in with that name and password.")


def first_admin_form(db: Database) -> None:
    """On a database without accounts: create the first administrator, after which the app asks to sign in."""
    if has_accounts(db):
        return
    with st.expander("Create the first administrator", icon=":material/person_add:"):
        st.caption("Today anyone who reaches this app acts under any name. Once an administrator exists, everyone "
                   "signs in, and roles decide who may build, approve, import or change settings.")
        with st.form("sx.first_admin", border=False, enter_to_submit=False):
            st.text_input("Name", key=W_ADMIN_NAME, max_chars=60)
            st.text_input("Password", key=W_ADMIN_PW, type="password", max_chars=1024,
                          help="At least 8 characters.")
            st.text_input("Password again", key=W_ADMIN_PW2, type="password", max_chars=1024)
            st.form_submit_button("Create administrator", icon=":material/person_add:", on_click=_create_first_admin)
        state.show_flashes(SLOT_FIRST_ADMIN)

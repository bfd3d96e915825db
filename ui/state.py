"""Session and process state: the database handle, first-start demo data, the open segment, who is working,
flash messages.

The handle is cached per database URL (st.cache_resource keyed by the resolved URL), so a test or a user that
points SEGCORE_DATABASE_URL elsewhere never gets another database's engine. Everything a page must remember across
page switches lives in st.session_state under the `sx.` keys below, never only in widget keys: Streamlit drops
the state of widgets that were not rendered on the last run.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st

from segcore import (
    PREFERENCES,
    ConflictError,
    Database,
    SegcoreError,
    contact_count,
    current_user,
    get_preference,
    load_demo,
    may,
    permissions_of,
    resolve_url,
    set_preference,
    why_not,
)
from ui.format import sentence

PAGES = {
    "segments": "pages/segments.py",
    "builder": "pages/builder.py",
    "dynamic": "pages/dynamic.py",
    "groups": "pages/groups.py",
    "contacts": "pages/contacts.py",
    "review": "pages/review.py",
    "data": "pages/data.py",
    "audit": "pages/audit.py",
}
DEMO_CONTACTS_DEFAULT = 20_000
K_OPEN = "sx.open_segment"
K_FLASH = "sx.flash"
K_USER = "sx.user"
K_SESSION = "sx.session"  # the segcore Session of the signed-in person (ui/auth.py), when the database has accounts
W_USER = "sx.user.input"


@st.cache_resource(show_spinner=False)
def _open(url: str) -> Database:
    return Database.open(url)


@st.cache_resource(show_spinner=False)
def _seed_lock(url: str) -> threading.Lock:
    # One lock per database: two first visitors must not both load the demo contacts.
    return threading.Lock()


def db_url() -> str:
    return resolve_url()


def get_db() -> Database:
    """The open database for SEGCORE_DATABASE_URL (or the embedded default), one engine per URL and process."""
    return _open(db_url())


def demo_size() -> int:
    """How many demo contacts a first start creates (SEGCORE_DEMO_CONTACTS overrides, e.g. for quick tests)."""
    try:
        return max(1, int(os.environ.get("SEGCORE_DEMO_CONTACTS", DEMO_CONTACTS_DEFAULT)))
    except ValueError:
        return DEMO_CONTACTS_DEFAULT


def ensure_demo_data(db: Database) -> None:
    """On the first start of an empty database, create demo contacts with a visible progress bar, then go on."""

    flag = f"sx.has_data::{db.url}"
    if st.session_state.get(flag):
        return
    with _seed_lock(db.url):
        # Demo data is an import: on an empty database with accounts, only an administrator's first visit loads it.
        if contact_count(db) == 0 and can("import"):
            _load_demo(db, demo_size())
    st.session_state[flag] = True


def _load_demo(db: Database, n: int) -> None:

    box = st.container(border=True)
    box.markdown(f"**First start: creating {n:,} demo contacts** so there is something to segment.")
    bar = box.progress(0.0, text="Generating contacts…")

    def progress(done: int, total: int, stage: str) -> None:
        frac = min(1.0, done / total) if total else 1.0
        bar.progress(frac, text=f"{stage.capitalize()}: {done:,} of {total:,}")

    try:
        # A logged demo campaign with a holdout and outcomes: the Review page's Results tab shows a lift.
        summary = load_demo(db, n, progress=progress, logged_campaign=True, user=user())
    except SegcoreError as e:
        st.error(str(e))
        st.stop()
    bar.progress(1.0, text=f"Done: {summary.contacts:,} contacts and {summary.interactions:,} interactions")
    box.empty()


# --------------------------------------------------------------------------------------------- open segment


def current_segment_no() -> str | None:
    """The segment the URL names (so a link can be shared), else the one opened last in this session."""
    no = st.query_params.get("segment")
    if no:
        st.session_state[K_OPEN] = no
        return no
    return st.session_state.get(K_OPEN)


def remember_segment(no: str | None) -> None:
    if no:
        st.session_state[K_OPEN] = no
    else:
        st.session_state.pop(K_OPEN, None)


def open_segment(no: str) -> None:
    """Open a segment in the Builder; the URL carries it."""
    remember_segment(no)
    st.switch_page(PAGES["builder"], query_params={"segment": no})


# --------------------------------------------------------------------------------------------- who is working


def signed_in_user() -> str:
    """The signed-in user's e-mail or name when the app runs with authentication, else the server account."""
    try:
        if st.user.is_logged_in:
            return str(st.user.get("email") or st.user.get("name") or "")
    except Exception:  # noqa: BLE001 - no authentication configured: fall back to the account
        pass
    return current_user()


def signed_in() -> Any:
    """The signed-in session (segcore Session) once the database has accounts, else None."""
    return st.session_state.get(K_SESSION)


def user() -> str:
    """Who acts in this browser session: the signed-in account when the database has accounts; without accounts,
    the name given under "Working as", else `signed_in_user()`.

    Every write a page makes passes it on, so the criteria log and the review history say who did what."""
    session_ = signed_in()
    if session_ is not None:
        return str(session_.name)
    return (st.session_state.get(K_USER) or "").strip()[:60] or signed_in_user()


def can(permission: str, *, owner: str | None = None) -> bool:
    """Whether the working user may do `permission`, on an object of `owner` when it has one (segcore's `may`, the
    writers' own check; everything without accounts).

    Pages hide what the user may not do with it; hiding is a courtesy, the core refuses anyway."""
    try:
        if owner is None:
            return permission in permissions_of(get_db(), user())
        return may(get_db(), user(), permission, owner=owner)
    except SegcoreError:
        return False


def refusal(permission: str, *, owner: str | None = None) -> str | None:
    """Why the working user may not do `permission` (the core's own words, capitalised), or None when they may."""
    try:
        reason = why_not(get_db(), user(), permission, owner=owner)
    except SegcoreError as e:
        reason = str(e)
    return None if reason is None else sentence(reason)


def user_input() -> None:
    """The "Working as" box; its value is kept under our own key, so it survives page switches."""

    def keep() -> None:
        st.session_state[K_USER] = (st.session_state.get(W_USER) or "").strip()[:60]

    seed_widget(W_USER, user())
    st.text_input("Working as", key=W_USER, on_change=keep, max_chars=60,
                  help="Your name as the criteria log, the review history and logged segments record it.")


# --------------------------------------------------------------------------------------------- preferences


def preference(key: str) -> str:
    """The working user's preference (segcore._preferences), or its default when it cannot be read."""
    try:
        return get_preference(get_db(), user(), key)
    except SegcoreError:
        return PREFERENCES[key].default


def seed_preference_widget(widget_key: str, pref_key: str) -> None:
    """Seed a widget with the working user's preference; a change of "Working as" seeds it again."""
    owner = f"{widget_key}.user"
    if st.session_state.get(owner) != user():
        st.session_state.pop(widget_key, None)
        st.session_state[owner] = user()
    seed_widget(widget_key, preference(pref_key))


def save_preference(pref_key: str, widget_key: str) -> None:
    """on_change of a preference widget: remember the choice for this user (an error shows by the widget)."""
    with core_errors(to_flash=True, slot=widget_key):
        set_preference(get_db(), user(), pref_key, st.session_state.get(widget_key))


# --------------------------------------------------------------------------------------------- messages


def flash(kind: str, text: str, slot: str | None = None) -> None:
    """A message to show on the next run (callbacks cannot draw where the page wants them).

    With a `slot`, the message waits for `show_flashes(slot)`, which the page calls right by the control that
    caused it (an error shows at its button, not at the top of the page)."""
    st.session_state.setdefault(K_FLASH, []).append((kind, text, slot))


_SHOW = {"success": st.success, "warning": st.warning, "error": st.error}


def show_flashes(slot: str | None = None) -> None:
    """Show (and forget) the waiting messages of one slot; the page header shows those without one."""
    waiting = st.session_state.get(K_FLASH, [])
    mine = [f for f in waiting if (f[2] if len(f) > 2 else None) == slot]
    if not mine:
        return
    st.session_state[K_FLASH] = [f for f in waiting if f not in mine]
    for kind, text, *_ in mine:
        _SHOW.get(kind, st.info)(text)


def show_leftover_flashes() -> None:
    """At the end of a page: the messages whose control was not drawn this run (e.g. another tab is open)."""
    for kind, text, *_ in st.session_state.pop(K_FLASH, []):
        _SHOW.get(kind, st.info)(text)


@contextmanager
def core_errors(*, to_flash: bool = False, slot: str | None = None) -> Iterator[None]:
    """Show a SegcoreError as one line (never a traceback); a conflict as "segment changed, review and retry".

    `to_flash` keeps it for the next run (in a callback), shown by `show_flashes(slot)`."""
    try:
        yield
    except ConflictError as e:
        _say("warning", f"{e}. The page now shows the current segment.", to_flash, slot)
    except SegcoreError as e:
        _say("error", str(e), to_flash, slot)


def _say(kind: str, text: str, to_flash: bool, slot: str | None = None) -> None:
    if to_flash:
        flash(kind, text, slot)
    else:
        getattr(st, kind)(text)


def session(key: str, default: Any) -> Any:
    """A session value under our own key, created with `default` the first time."""
    if key not in st.session_state:
        st.session_state[key] = default
    return st.session_state[key]


def seed_widget(key: str, value: Any) -> str:
    """Give a widget its value from our model when Streamlit has forgotten it (e.g. after a page switch).

    Setting session state before the widget exists (instead of passing `value=`) avoids Streamlit's warning about
    a widget that has both."""
    if key not in st.session_state:
        st.session_state[key] = value
    return key

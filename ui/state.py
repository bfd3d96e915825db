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
    ConflictError,
    Database,
    SegcoreError,
    contact_count,
    current_user,
    load_demo,
    resolve_url,
)

PAGES = {
    "segments": "pages/segments.py",
    "builder": "pages/builder.py",
    "dynamic": "pages/dynamic.py",
    "groups": "pages/groups.py",
    "contacts": "pages/contacts.py",
    "review": "pages/review.py",
    "data": "pages/data.py",
}
DEMO_CONTACTS_DEFAULT = 20_000
K_OPEN = "sx.open_segment"
K_FLASH = "sx.flash"
K_USER = "sx.user"
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
        if contact_count(db) == 0:
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
        summary = load_demo(db, n, progress=progress)
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


def user() -> str:
    """Who acts in this browser session: the name given under "Working as", else `signed_in_user()`.

    Every write a page makes passes it on, so the criteria log and the review history say who did what."""
    return (st.session_state.get(K_USER) or "").strip()[:60] or signed_in_user()


def user_input() -> None:
    """The "Working as" box; its value is kept under our own key, so it survives page switches."""

    def keep() -> None:
        st.session_state[K_USER] = (st.session_state.get(W_USER) or "").strip()[:60]

    seed_widget(W_USER, user())
    st.text_input("Working as", key=W_USER, on_change=keep, max_chars=60,
                  help="Your name as the criteria log, the review history and logged segments record it.")


# --------------------------------------------------------------------------------------------- messages


def flash(kind: str, text: str) -> None:
    """A message to show on the next run (callbacks cannot draw where the page wants them)."""
    st.session_state.setdefault(K_FLASH, []).append((kind, text))


def show_flashes() -> None:
    for kind, text in st.session_state.pop(K_FLASH, []):
        {"success": st.success, "warning": st.warning, "error": st.error}.get(kind, st.info)(text)


@contextmanager
def core_errors(*, to_flash: bool = False) -> Iterator[None]:
    """Show a SegcoreError as one line (never a traceback); a conflict as "segment changed, review and retry"."""
    try:
        yield
    except ConflictError as e:
        _say("warning", f"{e}. The page now shows the current segment.", to_flash)
    except SegcoreError as e:
        _say("error", str(e), to_flash)


def _say(kind: str, text: str, to_flash: bool) -> None:
    if to_flash:
        flash(kind, text)
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

"""The shared frame of every page: page header and the open segment's box in the sidebar."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

from segcore import (
    Database,
    NotFoundError,
    SegcoreError,
    SegmentInfo,
    get_segment,
    status_history,
)
from ui import auth, state
from ui import filter_builder as fb
from ui.format import STATUS_COLORS, n

_frame = threading.local()
_ASSETS = Path(__file__).resolve().parent


def navigation_pages(*, audit: bool | None = None) -> list[st.Page]:
    """The app's pages, in menu order (app.py and the page guard below use the same list); Audit only for those who
    may read it (managers and administrators, everyone without accounts) unless `audit` says otherwise."""
    audit = state.can("audit.read") if audit is None else audit
    return [
        st.Page(state.PAGES["segments"], title="Segments", icon=":material/view_list:", default=True),
        st.Page(state.PAGES["builder"], title="Builder", icon=":material/tune:"),
        st.Page(state.PAGES["dynamic"], title="Dynamic segments", icon=":material/auto_mode:"),
        st.Page(state.PAGES["groups"], title="Known user groups", icon=":material/group:"),
        st.Page(state.PAGES["contacts"], title="Contacts", icon=":material/contacts:"),
        st.Page(state.PAGES["review"], title="Review", icon=":material/fact_check:"),
        st.Page(state.PAGES["data"], title="Data", icon=":material/database:"),
        *([st.Page(state.PAGES["audit"], title="Audit", icon=":material/history:")] if audit else []),
    ]


@contextmanager
def app_frame() -> Iterator[None]:
    """Marks a page run that app.py started (so the page guard knows the frame is there)."""
    _frame.active = True
    try:
        yield
    finally:
        _frame.active = False


def render_app() -> None:
    """The whole app: page config, logo, sign-in (once the database has accounts), first-start demo data,
    navigation, the sidebar box, then the page."""
    st.set_page_config(page_title="Segment Explorer", page_icon=str(_ASSETS / "logo_icon.svg"), layout="wide")
    st.logo(str(_ASSETS / "logo.svg"), icon_image=str(_ASSETS / "logo_icon.svg"), size="large")
    # Less empty space above the page title: the Builder's preview then starts above the fold at 1440x900.
    st.html("<style>[data-testid='stMainBlockContainer']{padding-top:2.2rem}</style>")
    try:
        db = state.get_db()
    except SegcoreError as e:  # a bad SEGCORE_DATABASE_URL: say so, in one line
        st.error(str(e))
        st.stop()
    if not auth.gate(db):
        # Signed out on a database with accounts: only the sign-in form. The pages stay registered (menu hidden),
        # so the address asked for (a shared link) opens once signed in.
        st.navigation(navigation_pages(audit=True), position="hidden")
        auth.sign_in_form()
        st.stop()
    state.ensure_demo_data(db)
    navigation = st.navigation(navigation_pages())
    sidebar_segment_box()
    with st.sidebar:
        auth.sidebar_identity(db)
    # The filter widgets count this database's values unless the page says otherwise (a segment over a source).
    fb.use_values_of(None)
    with app_frame():
        navigation.run()


def page_guard() -> None:
    """Make sure the page runs inside render_app's frame.

    While a `pages/` folder sits next to app.py, Streamlit routes with its old folder scheme until the first
    st.navigation call of the process (and AppTest resets that on every run): a shared link to /builder opened
    first would run this file alone, without the wide layout, the frame or the menu. Then the frame is drawn here,
    which runs this same page inside it (same URL path, so the same widget identities), and the outer run stops."""
    if getattr(_frame, "active", False):
        return
    render_app()
    st.stop()


def header(title: str, subtitle: str | None = None) -> None:
    st.header(title, anchor=False)
    if subtitle:
        st.caption(subtitle)
    state.show_flashes()


def open_segment_info() -> SegmentInfo | None:
    """The open segment's header, or None (and forgotten) when none is open or it was deleted."""
    no = state.current_segment_no()
    if not no:
        return None
    try:
        return get_segment(state.get_db(), no)
    except NotFoundError:
        state.remember_segment(None)
        if st.query_params.get("segment") == no:
            del st.query_params["segment"]
        return None
    except SegcoreError as e:
        st.error(str(e))
        return None


def rejection_note(db: Database, info: SegmentInfo) -> None:
    """Under a rejected segment's header: who rejected it, when, and the reviewer's comment, so its owner sees what
    to change before submitting again."""
    if info.status != "rejected":
        return
    events = [e for e in status_history(db, info.no) if e.to_status == "rejected"]
    last = events[-1] if events else None
    who = f" by {last.user}" if last is not None and last.user else ""
    comment = info.status_comment or (last.comment if last is not None else None) or "no comment given"
    st.error(f"**Rejected{who}:** {comment}", icon=":material/block:")


def status_badge(status: str) -> None:
    st.badge(status.capitalize(), color=STATUS_COLORS.get(status, "gray"))  # type: ignore[arg-type]


def sidebar_segment_box() -> None:
    """The open segment with its size and status, on every page, with a link back to the Builder."""
    info = open_segment_info()
    with st.sidebar:
        with st.container(border=True):
            st.caption("Open segment")
            if info is None:
                st.markdown("None yet. Open or create one on **Segments**.")
                return
            st.markdown(f"**{info.no}** · {info.description or 'no description'}")
            status_badge(info.status)
            # The whole box's width for the number: beside the badge, "10,993,120" was cut to "10,…".
            st.metric("Members", n(info.size))
            st.page_link(state.PAGES["builder"], label="Open in Builder", icon=":material/tune:",
                         query_params={"segment": info.no})

"""A team in the real app, in headless Chromium (issue 15): sign in, a marketer cannot approve, the manager who
submitted is refused by four-eyes next to the button, a second manager approves; a signed-out browser sees only
the sign-in form, whatever address it opens. Screenshots go to artifacts/screenshots/.

Uses the server and browser of tests/test_browser.py (a fresh demo database per module); skipped on a machine
without Playwright or /usr/bin/chromium, failed under CI=true.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from segcore import (
    ActionRequest,
    add_user,
    apply_action,
    create_segment,
    from_json,
    get_segment,
    submit_segment,
)
from tests import test_browser as tb

pytestmark = pytest.mark.browser

page = tb.page


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The app on its own database (accounts would lock the other modules out), with a small demo: this test is
    about who may do what, not about volume."""
    yield from tb.serve(tmp_path_factory, 2_000)

PASSWORD = "a long team password"
ACCOUNTS = {"ada": "admin", "mark": "marketer", "max": "manager", "meg": "manager"}


def main(pg: Any) -> Any:
    return pg.locator('[data-testid="stMain"]')


def sign_in(pg: Any, base: str, name: str, path: str = "/review", heading: str = "Review") -> None:
    """Open `path` signed out (a new page load), sign in through the form, and land on that very page."""
    from playwright.sync_api import expect

    pg.goto(f"{base}{path}")
    expect(pg.get_by_role("heading", name="Sign in")).to_be_visible(timeout=180_000)
    tb.settle(pg)
    pg.get_by_label("Name", exact=True).fill(name)
    pg.get_by_label("Password", exact=True).fill(PASSWORD)
    pg.get_by_role("button", name="Sign in").click()
    # The address asked for (a shared link) opens once signed in.
    expect(pg.get_by_role("heading", name=heading, exact=True)).to_be_attached(timeout=60_000)
    tb.settle(pg, 1.0)
    tb.no_exception(pg, f"{path} as {name}")
    expect(pg.locator('[data-testid="stSidebar"]').get_by_text(f"{name} · {ACCOUNTS[name]}")).to_be_visible()


def sign_out(pg: Any) -> None:
    from playwright.sync_api import expect

    pg.locator('[data-testid="stSidebar"]').get_by_role("button", name="Sign out").click()
    expect(pg.get_by_role("heading", name="Sign in")).to_be_visible(timeout=60_000)
    tb.settle(pg)


def test_sign_in_marketer_cannot_approve_second_manager_approves(page: Any, server: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    pg, base, db = page, server["url"], server["db"]
    # First start in open mode: the demo data is loaded, then the team gets its accounts.
    pg.goto(base)
    expect(pg.get_by_role("heading", name="Segments", exact=True)).to_be_visible(timeout=180_000)
    tb.settle(pg)
    create_segment(db, "TEAM-FR", description="French newsletter readers", owner="max")
    apply_action(db, "TEAM-FR", ActionRequest("add", filter=from_json(
        {"field": "country", "op": "eq", "value": "FR"})), user="max")  # fmt: skip
    submit_segment(db, "TEAM-FR", user="max")
    add_user(db, "ada", "admin", PASSWORD, user="setup")
    for name, role in ACCOUNTS.items():
        if name != "ada":
            add_user(db, name, role, PASSWORD, user="ada")

    # Signed out, every address shows the sign-in form only.
    for path in ("", "/builder", "/review", "/data"):
        pg.goto(f"{base}{path}")
        expect(pg.get_by_role("heading", name="Sign in")).to_be_visible(timeout=60_000)
        tb.settle(pg)
        assert main(pg).locator('[data-testid="stDataFrame"]').count() == 0, path
    tb.shot(pg, "team-sign-in")

    # A wrong password: the error sits under the form, the password box is empty again.
    pg.get_by_label("Name", exact=True).fill("mark")
    pg.get_by_label("Password", exact=True).fill("not the password")
    pg.get_by_role("button", name="Sign in").click()
    tb.settle(pg)
    expect(main(pg).get_by_text("Wrong name or password.")).to_be_visible()

    # The marketer sees the segment waiting, but no Approve: the page says who may decide.
    sign_in(pg, base, "mark")
    expect(main(pg).get_by_role("heading", name="TEAM-FR")).to_be_visible()
    assert main(pg).get_by_role("button", name="Approve").count() == 0
    expect(main(pg).get_by_text("Approving and rejecting need the manager role.")).to_be_visible()
    tb.shot(pg, "team-review-marketer")
    # Someone else's segment in the Builder: the marketer may try filters (reading) but not apply them.
    sign_in(pg, base, "mark", "/builder?segment=TEAM-FR", "TEAM-FR")
    expect(main(pg).get_by_text("You can try filters and see their effect here, but not apply them.",
                                exact=False)).to_be_visible()
    assert main(pg).get_by_role("button", name="Add to segment").count() == 0
    tb.shot(pg, "team-builder-not-mine")
    sign_out(pg)

    # The manager who submitted it: four-eyes refuses, next to the button, and names who else may approve.
    sign_in(pg, base, "max")
    main(pg).get_by_role("button", name="Approve").click()
    tb.settle(pg, 1.0)
    refusal = main(pg).locator('[data-testid="stAlertContentError"]').filter(has_text="meg")
    expect(refusal).to_be_visible()
    assert get_segment(db, "TEAM-FR").status == "submitted"
    refusal.scroll_into_view_if_needed()
    tb.settle(pg, 0.3)
    tb.shot(pg, "team-review-four-eyes")
    sign_out(pg)

    # A second manager approves.
    sign_in(pg, base, "meg")
    main(pg).get_by_role("button", name="Approve").click()
    tb.settle(pg, 1.0)
    expect(main(pg).get_by_text("Segment TEAM-FR approved.", exact=False)).to_be_visible()
    assert get_segment(db, "TEAM-FR").status == "approved"
    tb.shot(pg, "team-review-approved")

    # The Audit page shows who did what, newest first.
    sign_in(pg, base, "meg", "/audit", "Audit")
    tb.shot(pg, "team-audit")

    # The administrator's Team section on the Data page.
    sign_out(pg)
    sign_in(pg, base, "ada", "/data", "Data")
    team = pg.get_by_role("heading", name="Team", exact=True)
    team.scroll_into_view_if_needed()
    tb.settle(pg, 0.3)
    tb.shot(pg, "team-data-accounts")

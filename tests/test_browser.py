"""The real app in headless Chromium: every page opens without an exception, and an Add step made through the UI
changes the member count. Screenshots of every page go to artifacts/screenshots/.

Needs Playwright and /usr/bin/chromium: skipped on a machine without them, failed under CI=true.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from segcore._db import Database
from segcore._engine import create_segment, get_segment, member_contact_nos

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
DEMO_N = 20_000
VIEWPORT = {"width": 1440, "height": 900}
IN_CI = os.environ.get("CI", "").lower() == "true"


def _missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true", pytrace=False)
    pytest.skip(f"{what} not available on this machine")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:  # noqa: S310 - our own server
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"streamlit did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`streamlit run app.py` on a free port with a fresh SQLite database; always terminated."""
    yield from serve(tmp_path_factory, DEMO_N)


def serve(tmp_path_factory: pytest.TempPathFactory, demo_n: int) -> Iterator[dict[str, Any]]:
    """The body of a `server` fixture: the app on a fresh database whose first start loads `demo_n` contacts."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("playwright")
    if not Path(CHROMIUM).exists():
        _missing(CHROMIUM)
    folder = tmp_path_factory.mktemp("browser")
    url_db = f"sqlite:///{folder / 'segments.db'}"
    # A segment made before the first start: the first request of the test is a shared link to it.
    db = Database.open(url_db)
    create_segment(db, "LINK", description="Opened from a shared link")
    port = _free_port()
    log = folder / "streamlit.log"
    env = {**os.environ, "SEGCORE_DATABASE_URL": url_db, "SEGCORE_DEMO_CONTACTS": str(demo_n)}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, proc, log)
        yield {"url": base, "db": db, "log": log}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        db.dispose()


@pytest.fixture(scope="module")
def page(server: dict[str, Any]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT)
            pg = context.new_page()
            pg.set_default_timeout(60_000)
            yield pg
        finally:
            browser.close()


def settle(pg: Any, extra: float = 0.8) -> None:
    """Wait until the app has finished its run (the running indicator is gone) and the page has painted."""
    time.sleep(0.3)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and pg.locator('[data-testid="stStatusWidget"]').count():
        time.sleep(0.2)
    time.sleep(extra)


def no_exception(pg: Any, where: str) -> None:
    assert pg.locator('[data-testid="stException"]').count() == 0, f"exception shown on {where}"


# Every metric card's label, value and delta, and every element inside them, whose text is wider than its box
# (Streamlit cuts such text with an ellipsis: "Added +4,…").
_TRUNCATED_JS = """() => {
  const out = [];
  const sel = '[data-testid="stMetricValue"], [data-testid="stMetricLabel"], [data-testid="stMetricDelta"]';
  for (const box of document.querySelectorAll(sel)) {
    for (const el of [box, ...box.querySelectorAll('*')]) {
      if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1) { out.push(box.innerText.trim()); break; }
    }
  }
  return out;
}"""


def truncated_numbers(pg: Any) -> list[str]:
    """The metric texts cut short on the page as it is drawn now."""
    return list(pg.evaluate(_TRUNCATED_JS))


def shot(pg: Any, name: str) -> None:
    """A screenshot at 1440x900, after checking that no metric card on it shows a cut number or label."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / f"{name}.png"))
    cut = truncated_numbers(pg)
    assert not cut, f"{name}: metric cards cut short at {VIEWPORT['width']}x{VIEWPORT['height']}: {cut}"


def metric(pg: Any, label: str, *, sidebar: bool = False) -> str:
    scope = pg.locator('[data-testid="stSidebar"]') if sidebar else pg.locator('[data-testid="stMain"]')
    box = scope.locator('[data-testid="stMetric"]').filter(has=pg.get_by_text(label, exact=True)).first
    return box.locator('[data-testid="stMetricValue"]').inner_text().strip()


def choose(pg: Any, selectbox_text: str, option: str) -> None:
    pg.locator('[data-testid="stSelectbox"]').filter(has_text=selectbox_text).first.click()
    pg.get_by_role("option", name=option, exact=True).click()
    settle(pg)


def test_pages_and_an_add_step(page: Any, server: dict[str, Any]) -> None:
    pg, base, db = page, server["url"], server["db"]
    from playwright.sync_api import expect

    # 1. A shared link is the very first request: the first start loads the demo contacts with a progress bar,
    #    and the Builder opens inside the app's frame (its menu, not the pages folder's file names).
    pg.goto(f"{base}/builder?segment=LINK")
    expect(pg.get_by_role("heading", name="LINK")).to_be_visible(timeout=120_000)
    settle(pg)
    nav = pg.locator('[data-testid="stSidebarNav"]')
    expect(nav.get_by_text("Segments", exact=True)).to_be_visible()
    assert nav.get_by_text("app", exact=True).count() == 0
    no_exception(pg, "builder")
    assert metric(pg, "Members", sidebar=True) == "0"

    # 2. Build "Country is FR" with the widgets, watch the preview, then Add.
    choose(pg, "Add a condition", "Country")
    pg.locator('[data-testid="stMultiSelect"]').first.click()
    pg.get_by_role("option").filter(has_text=re.compile(r"^FR \(")).click()
    pg.keyboard.press("Escape")
    settle(pg, 1.5)
    no_exception(pg, "builder with a pending step")
    expected = metric(pg, "After this step")
    assert expected not in ("0", "")
    pg.get_by_role("button", name="Add to segment").click()
    settle(pg, 1.5)
    expect(pg.locator('[data-testid="stAlertContentSuccess"]').first).to_contain_text("Applied step 1")
    size = get_segment(db, "LINK").size
    assert f"{size:,}" == expected
    assert metric(pg, "Members", sidebar=True) == expected
    assert metric(pg, "Members now") == expected

    # 3. A pending Refine on top, for the Builder screenshot: before/after charts, who would leave.
    pg.get_by_role("radio", name="Refine", exact=True).click()
    settle(pg)
    choose(pg, "Add a condition", "Age")
    settle(pg, 2.5)
    no_exception(pg, "builder refine")
    shot(pg, "builder")

    # 4. Every other page, through the menu (the session, and so the open segment, stays).
    for title, name in (("Segments", "segments"), ("Contacts", "contacts"), ("Data", "data")):
        nav.get_by_text(title, exact=True).click()
        expect(pg.get_by_role("heading", name=title, exact=True)).to_be_visible()
        settle(pg, 2.0)
        no_exception(pg, title)
        assert metric(pg, "Members", sidebar=True) == expected
        shot(pg, name)

    # 5. One contact: its fields, its segment (the one just built), its interactions.
    nav.get_by_text("Contacts", exact=True).click()
    settle(pg, 1.5)
    member = member_contact_nos(db, "LINK")[0]
    pg.get_by_role("textbox", name="Contact no.").fill(member)
    pg.keyboard.press("Enter")
    settle(pg, 2.0)
    heading = pg.get_by_role("heading", name=re.compile(rf"· {member}$"))
    expect(heading).to_be_visible()
    heading.scroll_into_view_if_needed()
    expect(pg.locator('[data-testid="stMain"]').get_by_text("LINK", exact=True).first).to_be_visible()
    no_exception(pg, "contact detail")
    shot(pg, "contact")

    # 6. An import with a bad row: the validation report, then "import the valid rows".
    nav.get_by_text("Data", exact=True).click()
    settle(pg, 1.5)
    pg.locator('input[type="file"]').first.set_input_files(
        files=[{"name": "contacts.csv", "mimeType": "text/csv", "buffer": BAD_CSV}]
    )
    settle(pg, 2.5)
    pg.get_by_role("button", name="Check the file").click()
    settle(pg, 2.5)
    expect(pg.get_by_text("Rejected rows")).to_be_visible()
    # Table cells are drawn on a canvas; their accessible copies are in the page but not "visible".
    expect(pg.get_by_text("is not one of company, person")).to_be_attached()
    no_exception(pg, "import report")
    shot(pg, "import")
    pg.get_by_role("button", name="Go").click()
    settle(pg, 2.0)
    expect(pg.locator('[data-testid="stAlertContentSuccess"]').first).to_contain_text("2 inserted")
    no_exception(pg, "import done")

    nav.get_by_text("Segments", exact=True).click()
    settle(pg, 1.5)
    # LINK and the demo's logged segment (DEMO-NEWSLETTER, made by the first start for the Results tab).
    expect(pg.get_by_text("2 segments · 20,002 contacts", exact=False)).to_be_visible()

    # 7. A broad pending Add on a fresh segment, typed in the text form: five-digit numbers on every card, and
    #    shot() fails if any card cuts one at 1440x900.
    create_segment(db, "BROAD", description="Every person")
    pg.goto(f"{base}/builder?segment=BROAD")
    expect(pg.get_by_role("heading", name="BROAD")).to_be_visible()
    settle(pg)
    pg.get_by_role("radio", name="Text form", exact=True).click()
    settle(pg)
    area = pg.locator('[data-testid="stTextArea"] textarea').first
    area.fill("type=person")
    area.press("Control+Enter")
    settle(pg, 2.5)
    no_exception(pg, "builder broad add")
    assert len(metric(pg, "After this step").replace(",", "")) >= 5
    shot(pg, "builder-broad-add")


BAD_CSV = (
    b"contact_no,type,name,country,email\n"
    b"NEW1,person,Ada Lovelace,GB,ada@example.com\n"
    b"NEW2,company,Analytical Engines,GB,\n"
    b"NEW3,alien,Zorg,XX,not-an-email\n"
)


def test_campaign_lifecycle_pages(page: Any, server: dict[str, Any]) -> None:
    """A manager's review in the real app: targets, composition, overlap, approve, log; and the audience pages."""
    from playwright.sync_api import expect

    from segcore._dynamic import create_dynamic, refresh_dynamic
    from segcore._engine import ActionRequest, apply_action
    from segcore._filter_text import parse_text
    from segcore._groups import create_group
    from segcore._lifecycle import create_campaign, get_logged, status_history, submit_segment

    pg, base, db = page, server["url"], server["db"]
    pg.goto(f"{base}/")
    expect(pg.get_by_role("heading", name="Segments", exact=True)).to_be_visible(timeout=120_000)
    settle(pg)
    create_campaign(db, "SPRING", description="Spring sale")
    for no, lines in (("SPRING-FR", ["country=FR"]), ("SPRING-FR-F", ["country=FR", "gender=female"]),
                      ("SPRING-NL", ["country=NL|BE"])):
        create_segment(db, no, description=f"Spring target {no}", campaign_no="SPRING")
        apply_action(db, no, ActionRequest("add", parse_text(lines)))
    submit_segment(db, "SPRING-FR", comment="ready for the spring mailing")
    create_dynamic(db, "BIG-SPENDERS", parse_text(["total_spent=>=1000"]), description="Spent 1,000 or more")
    refresh_dynamic(db, "BIG-SPENDERS")
    with db.read() as conn:
        from sqlalchemy import select

        from segcore._models import Contact

        known = list(conn.execute(select(Contact.email).where(Contact.email.is_not(None)).limit(40)).scalars())
    create_group(db, "Trade fair 2026", description="Visitors scanned at the booth",
                 emails=known + [f"visitor{i}@elsewhere.example" for i in range(12)])
    nav = pg.locator('[data-testid="stSidebarNav"]')
    # The manager says who she is once, in the sidebar; approvals and logs carry that name.
    who = pg.locator('[data-testid="stSidebar"]').get_by_role("textbox", name="Working as")
    who.fill("Max Manager")
    who.press("Enter")
    settle(pg)

    # Review: the submitted target is picked first, with its composition and drift.
    nav.get_by_text("Review", exact=True).click()
    expect(pg.get_by_role("heading", name="Review", exact=True)).to_be_visible()
    settle(pg, 3.0)
    no_exception(pg, "review")
    expect(pg.get_by_role("heading", name="SPRING-FR", exact=True)).to_be_visible()
    assert pg.locator('[data-testid="stPlotlyChart"]').count() >= 4
    shot(pg, "review")
    pg.get_by_role("button", name="Approve").click()
    settle(pg, 2.0)
    assert get_segment(db, "SPRING-FR").status == "approved"
    assert status_history(db, "SPRING-FR")[-1].user == "Max Manager"
    pg.get_by_role("button", name="Log segment…").click()
    settle(pg, 1.5)
    expect(pg.get_by_role("dialog")).to_contain_text("SPRING-FR")
    shot(pg, "review-log-dialog")
    pg.get_by_role("dialog").get_by_role("button", name="Log segment", exact=True).click()
    settle(pg, 2.5)
    rec = get_logged(db, "SPRING-FR")
    assert rec.contacted_count == get_segment(db, "SPRING-FR").size > 0 and rec.logged_by == "Max Manager"
    no_exception(pg, "review after log")
    expect(pg.get_by_text("Logged record")).to_be_visible()
    shot(pg, "review-logged")
    pg.get_by_role("tab", name="Overlap").click()
    settle(pg, 2.5)
    no_exception(pg, "overlap")
    assert pg.locator('[data-testid="stPlotlyChart"]').count() >= 1
    shot(pg, "review-overlap")

    # Results of the demo's logged campaign (the first start logs it with a holdout): treated against control, every
    # rate with its 95% interval, and the cumulative chart with its bands.
    choose(pg, "Campaign", "DEMO-SPRING · Spring newsletter (demo)")
    pg.get_by_role("tab", name="Results").click()
    settle(pg, 3.0)
    no_exception(pg, "results")
    main = pg.locator('[data-testid="stMain"]')
    expect(main.get_by_text(re.compile(r"^Treated: [\d,]+ of [\d,]+ responded, \d+\.\d% \[\d+\.\d%, \d+\.\d%\]"))
           ).to_be_visible()
    expect(main.get_by_text(re.compile(r"^Control: [\d,]+ of [\d,]+ responded, \d+\.\d% \[\d+\.\d%, \d+\.\d%\]"))
           ).to_be_visible()
    expect(main.get_by_text(re.compile(r"^Lift: [+−]\d+\.\d pts \[[+−]\d+\.\d, [+−]\d+\.\d\]"))).to_be_visible()
    assert main.locator('[data-testid="stPlotlyChart"]').count() == 1
    shot(pg, "review-results")

    # The Builder's Review & log tab of a logged segment.
    pg.goto(f"{base}/builder?segment=SPRING-FR")
    expect(pg.get_by_role("heading", name="SPRING-FR")).to_be_visible()
    settle(pg, 2.0)
    pg.get_by_role("tab", name="Review & log").click()
    settle(pg, 2.0)
    no_exception(pg, "builder review tab")
    expect(pg.get_by_text("Logged record")).to_be_visible()
    # Logged today: its result says "too early" in words, under the record.
    result = pg.locator('[data-testid="stMain"]').get_by_text("Result", exact=True)
    expect(pg.get_by_text(re.compile(r"Too early: the 30-day window starts on"))).to_be_visible()
    result.scroll_into_view_if_needed()
    shot(pg, "builder-review-log")
    # The demo's logged segment: its result on the record, each rate with its interval.
    pg.goto(f"{base}/builder?segment=DEMO-NEWSLETTER")
    expect(pg.get_by_role("heading", name="DEMO-NEWSLETTER")).to_be_visible()
    settle(pg, 2.0)
    pg.get_by_role("tab", name="Review & log").click()
    settle(pg, 2.0)
    no_exception(pg, "builder logged result")
    treated = pg.get_by_text(re.compile(r"^Treated: [\d,]+ of [\d,]+ responded, \d+\.\d% \[\d+\.\d%, \d+\.\d%\]"))
    expect(treated).to_be_visible()
    treated.scroll_into_view_if_needed()
    shot(pg, "builder-logged-result")

    # Before logging: the power hint right under the holdout share, following it.
    pg.goto(f"{base}/builder?segment=SPRING-NL")
    expect(pg.get_by_role("heading", name="SPRING-NL")).to_be_visible()
    settle(pg, 2.0)
    pg.get_by_role("tab", name="Review & log").click()
    settle(pg, 2.0)
    expect(pg.get_by_text(re.compile(r"No holdout: without a control group"))).to_be_visible()
    holdout = pg.get_by_role("spinbutton", name="Holdout %")
    holdout.fill("20")
    holdout.press("Enter")
    settle(pg, 2.0)
    hint = pg.get_by_text(re.compile(r"can detect a lift of \+\d+\.\d points"))
    expect(hint).to_be_visible()
    at_20 = hint.inner_text()
    holdout.fill("40")
    holdout.press("Enter")
    settle(pg, 2.0)
    expect(hint).not_to_have_text(at_20)
    no_exception(pg, "power hint")
    hint.scroll_into_view_if_needed()
    pg.mouse.wheel(0, 250)  # the holdout input above and the Log button below in view
    settle(pg, 0.5)
    shot(pg, "builder-log-hint")

    # Dynamic segments and known user groups.
    nav = pg.locator('[data-testid="stSidebarNav"]')
    nav.get_by_text("Dynamic segments", exact=True).click()
    expect(pg.get_by_role("heading", name="Dynamic segments", exact=True)).to_be_visible()
    settle(pg, 2.0)
    no_exception(pg, "dynamic")
    expect(pg.get_by_text("Contacts in segment")).to_be_visible()
    shot(pg, "dynamic")
    nav.get_by_text("Known user groups", exact=True).click()
    expect(pg.get_by_role("heading", name="Known user groups", exact=True)).to_be_visible()
    settle(pg, 2.0)
    no_exception(pg, "groups")
    assert metric(pg, "Matched") == "40" and metric(pg, "Unmatched") == "12"
    shot(pg, "groups")
    # The CSV is made when the button is clicked (a deferred download), with every address and its match.
    with pg.expect_download() as download:
        pg.get_by_role("button", name="Download CSV (52 addresses)").click()
    lines = Path(download.value.path()).read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "email,matched,contact_no,name" and len(lines) == 53

    # Data: the settings a manager may change, with the current values.
    nav.get_by_text("Data", exact=True).click()
    expect(pg.get_by_role("heading", name="Settings", exact=True)).to_be_visible()
    settle(pg, 1.5)
    no_exception(pg, "data")
    expect(pg.get_by_role("spinbutton", name="Minimum segment size")).to_have_value("50")
    pg.get_by_role("heading", name="Settings", exact=True).scroll_into_view_if_needed()
    shot(pg, "data-settings")

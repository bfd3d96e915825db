"""A French Excel export imported through the real app in headless Chromium, then segmented on its custom field.

The file is ';'-separated Windows-1252 with French headers, DD/MM/YYYY dates (some days over 12, so the order is
found out), decimal commas and a "Fidélité" column that becomes the custom field `fidelite`. The Builder's text form
then filters on that field. Screenshots of the mapping table and of the report go to artifacts/screenshots/.

Uses the server and browser of tests/test_browser.py (a fresh demo database per module); skipped on a machine
without Playwright or /usr/bin/chromium, failed under CI=true.
"""

from __future__ import annotations

from typing import Any

import pytest

import segcore
from tests import test_browser as tb

pytestmark = pytest.mark.browser

# The fixtures of tests/test_browser.py, one server and one browser for this module.
server = tb.server
page = tb.page

HEADER = "N° client;Civilité;Nom;Prénom;Adresse e-mail;Pays;Date de naissance;Montant total;Fidélité"
ROWS = [
    "FR1001;M.;Dupont;Jean;jean.dupont@example.fr;France;31/12/1980;1 234,50;GOLD",
    "FR1002;Mme;Martin;Élodie;elodie.martin@example.fr;Belgique;05/03/1975;89,90;SILVER",
    "FR1003;Mme;Lefèvre;Zoé;zoe.lefevre@example.fr;Suisse;13/07/1990;12,00;GOLD",
    "FR1004;M.;Girard;François;f.girard@example.fr;France;11/02/1968;2 500,00;BRONZE",
    "FR1005;Mme;Roux;Chloé;chloe.roux@example.fr;Allemagne;27/10/1985;310,00;GOLD",
    "FR1006;M.;Bonnet;Rémi;remi.bonnet@example.fr;France;02/06/1979;0,00;SILVER",
    "FR1007;Mme;Fontaine;Inès;ines.fontaine@example.fr;Espagne;19/09/1992;1 050,75;GOLD",
    "FR1008;M.;Chevalier;Loïc;pas-une-adresse;France;08/08/1971;45,00;SILVER",  # rejected: not an e-mail
    "FR1009;Mme;Robin;Maëlle;maelle.robin@example.fr;Italie;23/04/1988;780,00;BRONZE",
    "FR1010;M.;Garnier;Jérôme;jerome.garnier@example.fr;France;15/11/1966;3 999,99;GOLD",
]
FILE = ("\r\n".join([HEADER, *ROWS]) + "\r\n").encode("cp1252")
GOLD_ROWS = sum(r.endswith(";GOLD") for r in ROWS)


def main(pg: Any) -> Any:
    return pg.locator('[data-testid="stMain"]')


def test_french_file_import_then_filter_on_its_custom_field(page: Any, server: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    pg, base, db = page, server["url"], server["db"]
    pg.goto(f"{base}/data")
    expect(pg.get_by_role("heading", name="Data", exact=True)).to_be_visible(timeout=180_000)
    tb.settle(pg, 1.5)
    tb.no_exception(pg, "data")

    # 1. Upload: the file is read and mapped at once; nothing is written.
    pg.locator('input[type="file"]').first.set_input_files(
        files=[{"name": "export-clients.csv", "mimeType": "text/csv", "buffer": FILE}]
    )
    tb.settle(pg, 2.5)
    tb.no_exception(pg, "mapping")
    expect(main(pg).get_by_text("Read: CSV, ';' separated, Windows-1252", exact=False)).to_be_visible()
    expect(main(pg).get_by_text("How each column is imported", exact=False)).to_be_visible()
    # The table is drawn on a canvas; its accessible copy is in the page but not "visible".
    for cell in ("Date de naissance", "dates DD/MM/YYYY", "country names (fr) to ISO codes", "fidelite"):
        expect(main(pg).get_by_text(cell, exact=True).first).to_be_attached()
    assert not main(pg).get_by_text("Choose the date order", exact=False).count()
    main(pg).get_by_text("How each column is imported", exact=False).scroll_into_view_if_needed()
    pg.mouse.wheel(0, -120)
    tb.settle(pg, 0.8)
    tb.shot(pg, "import-mapping")

    main(pg).get_by_text("2 · Options", exact=True).evaluate("e => e.scrollIntoView({block: 'start'})")
    tb.settle(pg, 0.8)
    tb.shot(pg, "import-options-preview")

    # 2. Check: the validation report, the bad e-mail named with its line and the file's column.
    pg.get_by_role("button", name="Check the file").click()
    tb.settle(pg, 2.5)
    tb.no_exception(pg, "report")
    assert tb.metric(pg, "Rows read") == str(len(ROWS))
    assert tb.metric(pg, "Rejected") == "1"
    expect(pg.get_by_text("Rejected rows")).to_be_visible()
    expect(main(pg).get_by_text("Adresse e-mail", exact=True).first).to_be_attached()
    pg.get_by_text("Rejected rows").scroll_into_view_if_needed()
    pg.mouse.wheel(0, 250)
    tb.settle(pg, 0.8)
    tb.shot(pg, "import-report")

    # 3. Import the valid rows.
    pg.get_by_role("button", name="Go").click()
    tb.settle(pg, 3.0)
    tb.no_exception(pg, "import done")
    expect(pg.locator('[data-testid="stAlertContentSuccess"]').first).to_contain_text(f"{len(ROWS) - 1} inserted")
    expect(main(pg).get_by_text("(1 problem)", exact=False)).to_be_visible()  # each error once, as in the check
    assert [f.name for f in segcore.list_custom_fields(db)] == ["fidelite"]
    custom = pg.get_by_role("heading", name="Custom fields", exact=True)
    custom.scroll_into_view_if_needed()
    pg.get_by_role("tab", name="Delete").click()
    tb.settle(pg)
    expect(main(pg).get_by_text(f"Delete fidelite and its {len(ROWS) - 1} values", exact=False)).to_be_visible()
    custom.evaluate("e => e.scrollIntoView({block: 'start'})")
    tb.settle(pg, 0.5)
    tb.shot(pg, "import-custom-fields")

    # 4. The Builder's text form filters on the new field: the preview counts the file's GOLD rows.
    pg.goto(f"{base}/builder?segment=LINK")
    expect(pg.get_by_role("heading", name="LINK")).to_be_visible()
    tb.settle(pg, 1.5)
    main(pg).get_by_text("Text form", exact=True).click()
    tb.settle(pg)
    box = main(pg).get_by_role("textbox", name="One condition a line, Business Central style")
    box.fill("fidelite=GOLD")
    box.press("Control+Enter")
    tb.settle(pg, 2.5)
    tb.no_exception(pg, "builder text form")
    assert tb.metric(pg, "After this step") == str(GOLD_ROWS)
    tb.shot(pg, "import-builder-custom-field")


AMBIGUOUS = (
    "N° client;Nom;Prénom;Date de naissance\r\n"
    "FR2001;Petit;Anne;03/04/1981\r\n"
    "FR2002;Blanc;Marc;05/06/1977\r\n"
).encode("cp1252")


def test_ambiguous_dates_are_asked_next_to_the_date_order(page: Any, server: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    pg, base = page, server["url"]
    pg.goto(f"{base}/data")
    expect(pg.get_by_role("heading", name="Data", exact=True)).to_be_visible(timeout=180_000)
    tb.settle(pg, 1.5)
    pg.locator('input[type="file"]').first.set_input_files(
        files=[{"name": "anniversaires.csv", "mimeType": "text/csv", "buffer": AMBIGUOUS}]
    )
    tb.settle(pg, 2.5)
    warning = main(pg).locator('[data-testid="stAlert"]').filter(has_text="Choose the date order")
    expect(warning).to_be_visible()
    expect(pg.get_by_role("button", name="Check the file")).to_be_disabled()
    # The warning sits in the Date order column, right under the control.
    control = main(pg).locator('[data-testid="stSelectbox"]').filter(has_text="Date order")
    box, under = control.bounding_box(), warning.bounding_box()
    assert box and under and abs(under["x"] - box["x"]) < 40 and 0 < under["y"] - box["y"] < 150
    pg.get_by_text("2 · Options", exact=True).scroll_into_view_if_needed()
    tb.settle(pg, 0.8)
    tb.shot(pg, "import-ambiguous-dates")
    tb.choose(pg, "Date order", "Day first (31/12/2024)")
    tb.settle(pg, 1.5)
    expect(warning).to_have_count(0)
    expect(pg.get_by_role("button", name="Check the file")).to_be_enabled()
    tb.no_exception(pg, "ambiguous dates")

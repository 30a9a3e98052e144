"""The playground and the dashboard in a real browser (Playwright + Debian's chromium,
no browser download): fire the restless back example, read the card and why it fired,
accept a suggestion and override another card, then find both counted on the dashboard.

Set RESTLESS_CDS_SCREENSHOTS=<folder> to save the pages' screenshots there (docs/).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds.settings import Settings
from tests.ui.support import CHROMIUM, CHROMIUM_FLAGS, chromium_missing, live_service

pytestmark = pytest.mark.skipif(chromium_missing() is not None, reason=str(chromium_missing()))


@pytest.fixture
def base_url(settings: Settings) -> Iterator[str]:
    with live_service(settings) as url:
        yield url


@pytest.fixture
def page(base_url: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1366, "height": 900}, base_url=base_url)
        try:
            yield context.new_page()
        finally:
            browser.close()


SCREENSHOTS = os.environ.get("RESTLESS_CDS_SCREENSHOTS")
"""Read at import: the suite's autouse fixture clears RESTLESS_CDS_* for each test."""


def _screenshot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / name), full_page=True)


def _fire_restless_back(page: Any) -> Any:
    page.goto("/playground")
    page.get_by_label("Bundled example").select_option("restless-back-amisulpride")
    page.get_by_role("button", name="Load", exact=True).click()
    page.get_by_role("button", name="Fire request").click()
    card = page.locator("article.card.warning")
    card.wait_for()
    return card


def test_restless_back_card_explained_accepted_and_counted(page: Any, base_url: str) -> None:
    card = _fire_restless_back(page)

    assert "Restless back on amisulpride" in card.locator("h3").inner_text()
    why = page.get_by_role("complementary", name=re.compile("Why this card"))
    assert "dose-review.draft-order" in why.inner_text()
    assert "dose-change.increase" in why.inner_text()  # the chain of rules, in order
    page.get_by_text("Explanation of the whole request").click()
    assert "first unmet condition" in page.locator("#explain-box").inner_text()
    _screenshot(page, "playground.png")

    card.get_by_role("button", name=re.compile("Keep the current dose")).click()
    status = card.get_by_role("status")
    status.filter(has_text="stored 1").wait_for()

    page.goto("/dashboard")
    row = page.locator("#table tbody tr", has_text="dose-review.draft-order")
    row.wait_for()
    cells = row.locator("td").all_inner_texts()
    assert cells[2:6] == ["1", "1", "0", "100%"]  # issued, accepted, overridden, acceptance
    _screenshot(page, "dashboard.png")


def test_an_override_links_to_the_stored_explanation(page: Any, base_url: str) -> None:
    card = _fire_restless_back(page)
    card.get_by_label("Override reason").select_option(index=0)
    card.get_by_role("button", name="Dismiss with reason").click()
    card.get_by_role("status").filter(has_text="stored 1").wait_for()

    page.goto("/dashboard")
    link = page.get_by_role("link", name="explanation (JSON)")
    link.wait_for()
    explanation = httpx.get(base_url + link.get_attribute("href"), timeout=10).json()

    assert explanation["rule"] == "dose-review.draft-order"
    bound = explanation["explanation"]["bound"]
    assert bound["order"]["ingredient"] == "amisulpride"
    assert bound["order"]["mg_per_day"] == 800.0
    text = str(explanation)
    assert "Itching" not in text  # the complaint's wording is record text: never kept
    assert "rbs-50m" not in text  # nor the patient id

"""One session in two real browser tabs, each served by another replica of one PostgreSQL library.

The tester's report: designs added in one tab were lost when the other tab saved. Here each tab
adds a seed; both must survive a reload, and a page link opened in a new tab keeps the session.
"""
from __future__ import annotations

import re

import pytest
from app_server import AppServer
from test_browser_e2e import CHROMIUM, CHROMIUM_FLAGS

pytestmark = pytest.mark.slow


def add_seed(page, seed: int) -> None:
    page.locator("input[aria-label='Seeds']").fill(str(seed))
    page.get_by_role("button", name="Generate").first.click()
    main = page.locator("[data-testid='stMain']").first
    from playwright.sync_api import expect

    expect(main.get_by_text(f"seed {seed} ·", exact=False)).to_be_visible()
    main.get_by_role("button", name="Add all to designs").click()


def test_two_tabs_on_two_replicas_keep_both_tabs_designs(postgres_url, tmp_path):
    assert CHROMIUM, "Chromium is not installed (apt-get install chromium)"
    from playwright.sync_api import expect, sync_playwright

    env = {"CLOTHINGGAN_LIBRARY_URL": postgres_url, "CLOTHINGGAN_CACHE": str(tmp_path / "cache"),
           "CLOTHINGGAN_DEVICE": "cpu", "CLOTHINGGAN_STARTER_SEEDS": "0-2"}
    servers = [AppServer(env, tmp_path / f"replica{i}.log") for i in range(2)]
    try:
        one, two = (s.wait_ready() for s in servers)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
            expect.set_options(timeout=60_000)  # the first render of each replica loads the model
            a = browser.new_page(viewport={"width": 1400, "height": 1000})
            a.goto(f"{one.url}/")
            count = a.locator("p", has_text="Your designs:").first
            expect(count).to_contain_text("3")
            token = re.search(r"[?&]s=([\w-]+)", a.url).group(1)
            b = browser.new_page(viewport={"width": 1400, "height": 1000})
            b.goto(f"{two.url}/?s={token}")
            expect(b.locator("p", has_text="Your designs:").first).to_contain_text("3")

            add_seed(a, 500)
            expect(count).to_contain_text("4")
            add_seed(b, 600)  # b's save lands after a's: it merges a's design in and says so
            expect(b.locator("p", has_text="Your designs:").first).to_contain_text("5")
            expect(b.get_by_text("open in another tab", exact=False)).to_be_visible()
            b.screenshot(path=str(tmp_path / "tab-b-merged.png"), full_page=True)

            a.reload()
            expect(count).to_contain_text("5")
            # "Open in new tab" on a page link: the link's address carries the session.
            href = a.get_by_role("link", name="Library").get_attribute("href")
            assert f"s={token}" in href
            c = browser.new_page(viewport={"width": 1400, "height": 1000})
            c.goto(f"{one.url}/{href.lstrip('/')}" if not href.startswith("http") else href)
            names = c.locator("[data-testid='stMain'] input[aria-label='Name']")
            expect(names).to_have_count(5)
            assert {"seed 500", "seed 600"} <= set(names.evaluate_all("els => els.map(e => e.value)"))
            browser.close()
    finally:
        for server in servers:
            server.stop()

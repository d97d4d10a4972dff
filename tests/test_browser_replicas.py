"""Two app replicas, one PostgreSQL library, two real browsers.

A team runs several ``streamlit run`` processes behind one address. A design saved in a browser on
one replica must show in the Team tab of a browser on the other, and survive restarting both.
"""
from __future__ import annotations

import pytest
from app_server import AppServer
from test_browser_e2e import CHROMIUM, CHROMIUM_FLAGS

pytestmark = pytest.mark.slow


def replicas(url: str, tmp_path, n: int = 2) -> list[AppServer]:
    """``n`` app processes started at the same moment against one library (a concurrent first start)."""
    env = {"CLOTHINGGAN_LIBRARY_URL": url, "CLOTHINGGAN_CACHE": str(tmp_path / "cache"), "CLOTHINGGAN_DEVICE": "cpu"}
    servers = [AppServer(env, tmp_path / f"replica{i}.log") for i in range(n)]
    return [s.wait_ready() for s in servers]


def open_team_tab(page, url: str):
    page.goto(f"{url}/library")
    page.get_by_role("tab", name="Team library").click()
    return page.locator("[data-testid='stMain']").first


def test_a_design_saved_on_one_replica_shows_on_the_other_and_survives_restarts(postgres_url, tmp_path):
    assert CHROMIUM, "Chromium is not installed (apt-get install chromium)"
    from playwright.sync_api import expect, sync_playwright

    a, b = replicas(postgres_url, tmp_path)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
            expect.set_options(timeout=60_000)  # the first render of each replica loads the model
            ana = browser.new_page(viewport={"width": 1400, "height": 1000})
            bo = browser.new_page(viewport={"width": 1400, "height": 1000})

            # Ana, on replica A, saves the third garment of the first page to the team library.
            ana.goto(f"{a.url}/?author=Ana")
            main = ana.locator("[data-testid='stMain']").first
            expect(main.locator("[data-testid='stImage'] img")).to_have_count(8)
            main.locator("[class*='st-key-team_']").nth(2).get_by_role("button").click()
            expect(main.get_by_text("to the team library", exact=False).first).to_be_visible()
            ana.screenshot(path=str(tmp_path / "replica-a-saved.png"), full_page=True)

            # Bo, on replica B, sees it in the Team tab, under Ana's name.
            team = open_team_tab(bo, b.url)
            expect(team.get_by_text("by Ana", exact=False)).to_have_count(1)
            expect(team.get_by_text("seed 2", exact=True)).to_be_visible()
            bo.screenshot(path=str(tmp_path / "replica-b-team.png"), full_page=True)
            browser.close()

        for server in (a, b):
            server.stop()
        a, b = replicas(postgres_url, tmp_path)

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
            for server in (a, b):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                team = open_team_tab(page, server.url)
                expect(team.get_by_text("by Ana", exact=False)).to_have_count(1)
                team.get_by_role("button", name="Load").click()
                expect(page.locator("p", has_text="Your designs:").first).to_contain_text("1")
            browser.close()
    finally:
        for server in (a, b):
            server.stop()

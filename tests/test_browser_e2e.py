"""End to end in a real headless Chromium: start the app, generate, add to designs, edit, save.

Drives Debian's Chromium through Playwright (no browser download). Screenshots of each step go to
``CLOTHINGGAN_E2E_SCREENSHOTS`` (default: the test's tmp folder) so a person can look at them.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from app_server import AppServer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"]

pytestmark = pytest.mark.slow


def name_a_direction(cache: Path) -> None:
    """Name one direction for the default model, as a user would on the PCA explorer."""
    import numpy as np

    import clothinggan as cg
    from clothinggan.directions import NamedDirection, save_user_direction

    old = os.environ.get("CLOTHINGGAN_CACHE")
    os.environ["CLOTHINGGAN_CACHE"] = str(cache)
    try:
        G = cg.load_generator("default", device="cpu")
        vector = np.random.RandomState(0).randn(G.w_dim).astype(np.float32)
        save_user_direction(G, NamedDirection("Browser test direction", vector / np.linalg.norm(vector), sigma=1.0))
    finally:
        if old is None:
            os.environ.pop("CLOTHINGGAN_CACHE")
        else:
            os.environ["CLOTHINGGAN_CACHE"] = old


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory):
    """The app on loopback, on the embedded default model, with a private cache and library."""
    cache = tmp_path_factory.mktemp("cache")
    name_a_direction(cache)
    server = AppServer({"CLOTHINGGAN_CACHE": str(cache), "CLOTHINGGAN_DEVICE": "cpu"}, cache / "server.log")
    try:
        yield server.wait_ready().url
    finally:
        server.stop()


@pytest.fixture()
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CLOTHINGGAN_E2E_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_generate_add_edit_save_in_a_real_browser(app_url: str, shots: Path) -> None:
    assert CHROMIUM, "Chromium is not installed (apt-get install chromium)"
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        expect.set_options(timeout=60_000)  # the first render loads the model
        page.goto(app_url)
        main = page.locator("section.main, [data-testid='stMain']").first

        # Generate: the default seeds 0-7 give eight garments.
        expect(page.get_by_role("heading", name="Generate")).to_be_visible()
        page.get_by_role("button", name="Generate").first.click()
        expect(main.get_by_role("button", name="Add", exact=True).first).to_be_visible()
        expect(main.locator("[data-testid='stImage'] img")).to_have_count(8)
        page.screenshot(path=str(shots / "e2e-1-generate.png"), full_page=True)

        # Add the first one to the designs.
        main.get_by_role("button", name="Add", exact=True).first.click()
        expect(main.get_by_role("button", name="Added", exact=True).first).to_be_visible()
        expect(page.locator("p", has_text="Your designs:").first).to_contain_text("1")
        page.screenshot(path=str(shots / "e2e-2-added.png"), full_page=True)

        # Attribute edit: move the first slider, save the result as a new design.
        page.get_by_role("link", name="Attribute edit").click()
        save = page.get_by_role("button", name="Save as new design")
        expect(save).to_be_visible()
        slider = main.get_by_role("slider").first
        slider.focus()
        for _ in range(10):
            page.keyboard.press("ArrowRight")
        expect(save).to_be_enabled()
        # Reset puts the slider back where the browser shows it, and a later move does not bring it back.
        main.get_by_role("button", name="Reset sliders").click()
        expect(save).to_be_disabled()
        expect(main.get_by_role("slider").first).to_have_value("0")
        main.get_by_role("slider").nth(1).focus()
        page.keyboard.press("ArrowRight")
        expect(save).to_be_enabled()
        expect(main.get_by_role("slider").first).to_have_value("0")
        expect(main.get_by_text("After:", exact=False)).not_to_contain_text(",")  # one edit, not two
        slider = main.get_by_role("slider").first
        slider.focus()
        for _ in range(10):
            page.keyboard.press("ArrowRight")
        page.screenshot(path=str(shots / "e2e-3-edit.png"), full_page=True)
        save.click()
        expect(page.locator("p", has_text="Your designs:").first).to_contain_text("2")
        page.screenshot(path=str(shots / "e2e-4-saved.png"), full_page=True)

        # Both designs are in the session's store, as the Library shows: the seed and its edit.
        page.get_by_role("link", name="Library").click()
        expect(main.get_by_text("edit of", exact=False).first).to_be_visible()
        assert main.locator("[data-testid='stImage'] img").count() >= 2
        page.screenshot(path=str(shots / "e2e-5-library.png"), full_page=True)

        # A reload (a new session on the same address) brings both designs back.
        assert "s=" in page.url
        page.reload()
        expect(page.locator("p", has_text="Your designs:").first).to_contain_text("2")
        expect(main.get_by_text("edit of", exact=False).first).to_be_visible()
        page.screenshot(path=str(shots / "e2e-6-reloaded.png"), full_page=True)
        browser.close()

"""Retake the README screenshots of the app through headless Chromium's DevTools protocol.

Usage: start the app (``CLOTHINGGAN_STARTER_SEEDS=0-5 streamlit run streamlit_app.py --server.port 8599``),
then ``python docs/screenshots/take_screenshots.py [--only NAME ...] [--out DIR]``. Chromium's plain ``--screenshot`` fires before
Streamlit's websocket has drawn anything, hence the protocol: navigate, wait, act, capture.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import websockets
from PIL import Image, ImageDraw

APP = "http://127.0.0.1:8599"
OUT = Path(__file__).resolve().parent
PORT = 9333
WAIT_S = 12
SCROLL = "document.querySelector('[data-testid=stMain]').scrollTo(0, {y})"


def click(text: str, selector: str = "button") -> str:
    return (f"(() => {{ const b = [...document.querySelectorAll('{selector}')].find(e => e.innerText.includes('{text}'));"
            f" if (!b) return 'missing'; b.click(); return 'ok'; }})()")


def sample_photo() -> Path:
    """A flat drawing of a dress on white, standing in for a product photo."""
    im = Image.new("RGB", (600, 800), "white")
    d = ImageDraw.Draw(im)
    d.polygon([(250, 80), (350, 80), (380, 200), (470, 720), (130, 720), (220, 200)], fill=(40, 70, 150))
    d.rectangle([200, 90, 400, 130], fill=(40, 70, 150))
    path = Path(tempfile.mkdtemp()) / "dress.jpg"
    im.save(path, quality=90)
    return path


SHOTS = [
    ("/", "generate", []),
    ("/style-mix", "style_mix", [3]),
    ("/style-mix", "style_mix_grid", [3, SCROLL.format(y=700), 2]),
    ("/style-mix", "style_mix_animate", [3, click("Animate: a walk", "summary"), 2, click("Make animation"), 10,
                                         SCROLL.format(y=560), 2]),
    ("/attribute-edit", "attribute_edit", []),
    ("/pca-explorer", "pca_explorer", []),
    ("/pca-explorer", "pca_explorer_strip", [SCROLL.format(y=620), 2]),
    ("/pca-explorer", "pca_explorer_map", [SCROLL.format(y=1250), 3, "CLICK_POINT", 8]),
    ("/upload", "upload", ["UPLOAD", 8, click("Find this garment"), 10]),
    ("/library", "library", []),
    ("/library?author=Ada", "library_team", [click("Team", "[role=tab]"), 3, click("Save all"), 6,
                                             click("Team", "[role=tab]"), 2]),
    ("/library?author=Ada", "library_team_pages", [click("Team", "[role=tab]"), 3, SCROLL.format(y=5000), 2]),
]


async def main(only: set[str], out: Path) -> None:
    photo = sample_photo()
    browser = subprocess.Popen(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tempfile.mkdtemp()}",
         "--window-size=1400,1000", f"--remote-debugging-port={PORT}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            try:
                targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{PORT}/json"))
                break
            except OSError:
                time.sleep(0.2)
        page = next(t for t in targets if t["type"] == "page")
        async with websockets.connect(page["webSocketDebuggerUrl"], max_size=100 * 2**20, ping_interval=None, max_queue=None) as ws:
            counter = 0

            async def call(method: str, **params):
                nonlocal counter
                counter += 1
                await ws.send(json.dumps({"id": counter, "method": method, "params": params}))
                while True:
                    msg = json.loads(await ws.recv())
                    if msg.get("id") == counter:
                        return msg.get("result", msg)

            await call("Page.enable")
            await call("Page.navigate", url=APP + "/")  # warm up: the first run loads the model
            await asyncio.sleep(WAIT_S)
            for path, name, actions in SHOTS:
                if only and name not in only:
                    continue
                await call("Page.navigate", url=APP + path)
                await asyncio.sleep(WAIT_S)
                for action in actions:
                    if isinstance(action, (int, float)):
                        await asyncio.sleep(action)
                    elif action == "CLICK_POINT":  # a real mouse click on a scatter point (plotly selection)
                        found = await call("Runtime.evaluate", expression=(
                            "(() => { const p = document.querySelectorAll('.scatterlayer .point');"
                            " const b = p[Math.floor(p.length / 3)].getBoundingClientRect();"
                            " return JSON.stringify([b.x + b.width / 2, b.y + b.height / 2]); })()"))
                        x, y = json.loads(found["result"]["value"])
                        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
                            await call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)
                    elif action == "UPLOAD":
                        doc = await call("DOM.getDocument", depth=-1, pierce=True)
                        node = await call("DOM.querySelector", nodeId=doc["root"]["nodeId"], selector="input[type=file]")
                        await call("DOM.setFileInputFiles", files=[str(photo)], nodeId=node["nodeId"])
                    else:
                        await call("Runtime.evaluate", expression=action)
                shot = await call("Page.captureScreenshot", format="png", fromSurface=True)
                image = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
                # A 256-colour palette keeps these flat UI pictures small enough for the repository.
                image.quantize(256, method=Image.Quantize.MEDIANCUT).save(
                    out / f"{name}.png", optimize=True)
                print("wrote", out / f"{name}.png", file=sys.stderr)
    finally:
        browser.terminate()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=[], help="take only these shots (names as in SHOTS)")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the pictures")
    args = parser.parse_args()
    asyncio.run(main(set(args.only), args.out))

"""Cold start: where the time goes from ``streamlit run`` to the first garment, before vs now.

Every measurement runs in a fresh process (nothing warm but the OS file cache), alternating
between two checkouts, so a ratio is fair on a busy machine:
  phases   the app's first run, step by step in one process: import torch, streamlit, the app's
           modules, load the embedded model, map and render the first page's 8 garments
  modules  the heavy libraries the app's first page has loaded beyond what ``import streamlit``
           loads itself (Streamlit imports plotly): should be none of scikit-learn, pandas, plotly,
           sqlalchemy
  apptest  ``AppTest.from_file("streamlit_app.py").run()``: the whole first script run, headless
  browser  ``streamlit run`` spawned → /_stcore/health answers → headless Chromium (Debian's,
           driven over the DevTools protocol) shows the first garment and all 8 of them
The "before" checkout is a git worktree of another commit (``--before``, default: the parent of
the first cold-start commit; pass ``--before ''`` to measure only this checkout).
``--timeline`` stamps the page's own events in every browser run (a script added to the page
before Streamlit's: the front end's last file, the session's WebSocket opening, the first image
element put in the page), so the overlap of server and browser work shows side by side.
``--floor`` adds the limit of this machine, measured the same way (browser only) on two tiny apps:
  floor: streamlit        a page with one image and nothing else (Streamlit and the browser alone)
  floor: + import torch   the same page after ``import torch``, started at server start as this app
                          does: the least any torch app served by Streamlit can take here
Run: ``python bench/bench_cold_start.py [--runs 3] [--before REV] [--no-browser] [--floor]``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HEAVY = ["sklearn", "pandas", "plotly", "sqlalchemy", "scipy", "matplotlib"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]

PHASES = r'''
import json, sys, time
t0 = time.perf_counter(); out = {}
def mark(name):
    global t0
    now = time.perf_counter(); out[name] = now - t0; t0 = now
import torch; mark("import torch")
import streamlit; mark("import streamlit")
by_streamlit = {m.split(".")[0] for m in sys.modules}
from clothinggan.ui import sidebar, state, widgets, resources; mark("import app modules")
import clothinggan as cg
G = cg.load_generator("default"); mark("load model")
from clothinggan.designs import designs_from_seeds
designs = designs_from_seeds(G, list(range(8)), 0.7); mark("map 8 seeds")
resources.render_designs(G, designs) if hasattr(resources, "render_designs") else None; mark("render 8 garments")
out["heavy modules loaded"] = sorted(({m.split(".")[0] for m in sys.modules} - by_streamlit) & set(HEAVY))
out["clothinggan from"] = cg.__file__
print("JSON" + json.dumps(out))
'''

APPTEST = r'''
import json, sys, time
t = time.perf_counter()
import streamlit
by_streamlit = {m.split(".")[0] for m in sys.modules}
from streamlit.testing.v1 import AppTest
at = AppTest.from_file("streamlit_app.py", default_timeout=120).run()
elapsed = time.perf_counter() - t
print("JSON" + json.dumps({"apptest first run": elapsed, "images": len(at.get("image")),
                           "exceptions": len(at.exception),
                           "heavy modules loaded": sorted(({m.split(".")[0] for m in sys.modules} - by_streamlit)
                                                          & set(HEAVY))}))
'''


# The floor apps: what Streamlit, the browser and ``import torch`` cost with no work of this app.
FLOOR_STREAMLIT = """import numpy as np
import streamlit as st
st.set_page_config(page_title="floor", layout="wide")
st.image(np.full((80, 60, 3), 200, np.uint8), width=240)
"""
FLOOR_TORCH = """import contextlib, threading
from pathlib import Path
import streamlit as st
if __name__ == "__main__":
    import numpy as np
    import torch  # noqa: F401 - waits for the import the server started
    st.set_page_config(page_title="floor", layout="wide")
    st.image(np.full((80, 60, 3), 200, np.uint8), width=240)
else:
    @contextlib.asynccontextmanager
    async def _lifespan(_app):
        threading.Thread(target=lambda: __import__("torch"), daemon=True).start()
        yield None
    app = st.App(Path(__file__).resolve(), lifespan=_lifespan)
"""


def floor_apps(root: Path) -> dict[str, Path]:
    """The two floor apps, each in its own folder under ``root``."""
    apps = {}
    for name, code in {"floor: streamlit": FLOOR_STREAMLIT, "floor: + import torch": FLOOR_TORCH}.items():
        folder = root / name.split()[-1]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "streamlit_app.py").write_text(code)
        apps[name] = folder
    return apps


def run_json(code: str, cwd: Path, env: dict[str, str]) -> dict:
    proc = subprocess.run([sys.executable, "-c", f"HEAVY = {HEAVY!r}\n" + code], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    for line in proc.stdout.splitlines():
        if line.startswith("JSON"):
            return json.loads(line[4:])
    raise RuntimeError(f"no result from {cwd}: {proc.stderr[-2000:]}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Chromium:
    """A headless Chromium with one tab, spoken to over the DevTools protocol (websockets' sync client)."""

    def __init__(self, page_script: str | None = None) -> None:
        from websockets.sync.client import connect

        self.profile = tempfile.mkdtemp(prefix="cg-chromium-")
        port = free_port()
        self.proc = subprocess.Popen([CHROMIUM, *CHROMIUM_FLAGS, f"--remote-debugging-port={port}",
                                      f"--user-data-dir={self.profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while True:
            try:
                tabs = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2).read())
                url = next(t["webSocketDebuggerUrl"] for t in tabs if t.get("type") == "page")
                break
            except (OSError, StopIteration, ValueError):
                if time.time() > deadline:
                    raise RuntimeError("Chromium did not start")
                time.sleep(0.2)
        self.ws = connect(url, max_size=None, open_timeout=30)
        self.next_id = 0
        if page_script:
            self.call("Page.enable")
            self.call("Page.addScriptToEvaluateOnNewDocument", source=page_script)

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == self.next_id:
                return msg.get("result", {})

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def close(self) -> None:
        self.ws.close()
        self.proc.terminate()
        self.proc.wait(timeout=20)
        shutil.rmtree(self.profile, ignore_errors=True)


# Stamps the page's events in window.__stamps (ms since navigation start); added with --timeline.
STAMPS = r"""
window.__stamps = {};
const stamp = (name) => { if (!(name in window.__stamps)) window.__stamps[name] = performance.now(); };
const PageSocket = window.WebSocket;
window.WebSocket = function (...args) {
  const ws = new PageSocket(...args);
  ws.addEventListener("open", () => stamp("session opened"));
  ws.addEventListener("message", () => stamp("first message"));
  return ws;
};
window.WebSocket.prototype = PageSocket.prototype;
Object.assign(window.WebSocket, PageSocket);
new MutationObserver(() => {
  if (document.querySelector("[data-testid='stMain'] [data-testid='stImage'] img")) stamp("image in page");
}).observe(document, {subtree: true, childList: true});
"""
FRONT_END_LOADED = ("Math.max(...performance.getEntriesByType('resource')"
                    ".filter(e => e.startTime < (window.__stamps['session opened'] || Infinity))"
                    ".map(e => e.responseEnd))")

BROWSER_EVENTS = ["server healthy", "front end loaded", "session opened", "first message", "image in page",
                  "first garment visible", "8 garments visible"]

COUNT_GARMENTS = ("Array.from(document.querySelectorAll(\"[data-testid='stMain'] [data-testid='stImage'] img\"))"
                  ".filter(i => i.complete && i.naturalWidth > 0).length")


def browser_run(browser: Chromium, cwd: Path, env: dict[str, str], garments: int = 8) -> dict:
    """Spawn ``streamlit run`` and time health, first garment and all ``garments`` in the tab."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    browser.call("Page.navigate", url="about:blank")
    t0 = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
                               "--server.port", str(port), "--server.address", "127.0.0.1",
                               "--browser.gatherUsageStats", "false"], cwd=cwd, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out: dict[str, float] = {}
    try:
        while time.perf_counter() - t0 < 120:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read().strip() == b"ok":
                    break
            except OSError:
                time.sleep(0.05)
        out["server healthy"] = time.perf_counter() - t0
        browser.call("Page.navigate", url=url)
        navigated = time.perf_counter() - t0
        while time.perf_counter() - t0 < 180:
            n = browser.evaluate(COUNT_GARMENTS) or 0
            if n >= 1 and "first garment visible" not in out:
                out["first garment visible"] = time.perf_counter() - t0
            if n >= garments:
                if garments > 1:
                    out[f"{garments} garments visible"] = time.perf_counter() - t0
                break
            time.sleep(0.05)
        stamps = browser.evaluate("window.__stamps && JSON.stringify(window.__stamps)")
        if stamps:  # --timeline: the page's own clock, from the navigation
            out["front end loaded"] = navigated + browser.evaluate(FRONT_END_LOADED) / 1000
            out.update({k: navigated + v / 1000 for k, v in json.loads(stamps).items()})
    finally:
        server.terminate()
        server.wait(timeout=20)
    return out


def worktree(rev: str) -> Path:
    """A git worktree of ``rev``, named by its commit: a name like ``HEAD`` would be reused later
    for whatever commit it pointed to when first made."""
    sha = subprocess.run(["git", "rev-parse", "--short=12", f"{rev}^{{commit}}"], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout.strip()
    path = Path(tempfile.gettempdir()) / f"clothinggan-bench-{sha}"
    if not path.is_dir():
        subprocess.run(["git", "worktree", "add", "--detach", str(path), sha], cwd=REPO, check=True,
                       capture_output=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--before", default="0fdd216^", help="git revision to compare with ('' for none)")
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in the measured processes")
    parser.add_argument("--floor", action="store_true", help="also time two tiny apps: this machine's limit")
    parser.add_argument("--timeline", action="store_true", help="stamp the page's own events in each browser run")
    args = parser.parse_args()
    sides = {"now": REPO}
    if args.before:
        sides = {"before": worktree(args.before), **sides}
    cache = Path(tempfile.mkdtemp(prefix="cg-cold-cache-"))
    floors = floor_apps(cache / "floor-apps") if args.floor and CHROMIUM and not args.no_browser else {}
    sides.update(floors)
    results: dict[str, dict[str, list]] = {side: {} for side in sides}
    browser = Chromium(STAMPS if args.timeline else None) if CHROMIUM and not args.no_browser else None
    try:
        for _ in range(args.runs):
            for side, cwd in sides.items():
                env = {**os.environ, "PYTHONPATH": str(cwd), "CLOTHINGGAN_CACHE": str(cache),
                       "CLOTHINGGAN_DEVICE": "cpu", "OMP_NUM_THREADS": str(args.threads),
                       "MKL_NUM_THREADS": str(args.threads), "OPENBLAS_NUM_THREADS": str(args.threads)}
                runs = [] if side in floors else [run_json(PHASES, cwd, env), run_json(APPTEST, cwd, env)]
                if browser is not None:
                    runs.append(browser_run(browser, cwd, env, garments=1 if side in floors else 8))
                for r in runs:
                    for key, value in r.items():
                        results[side].setdefault(key, []).append(value)
    finally:
        if browser is not None:
            browser.close()
        shutil.rmtree(cache, ignore_errors=True)
    print(f"cold start, {args.runs} fresh processes per figure (median), "
          f"{args.threads} torch/BLAS thread(s); sides: " + ", ".join(f"{s} = {p}" for s, p in sides.items()))
    keys = list(dict.fromkeys(k for side in results.values() for k in side))
    timed = [k for k in BROWSER_EVENTS if k in keys]  # in the order they happen
    keys = [k for k in keys if k not in BROWSER_EVENTS] + timed
    for key in keys:
        cells = []
        for side in sides:
            values = results[side].get(key, [])
            if values and isinstance(values[0], (int, float)):
                cells.append(f"{side} {statistics.median(values):6.2f}" + (" s" if "images" not in key else ""))
            elif values:
                cells.append(f"{side} {values[-1]}")
        if "before" in sides and all(isinstance(results[s].get(key, [None])[0], float) for s in ("before", "now")):
            b, n = (statistics.median(results[s][key]) for s in ("before", "now"))
            cells.append(f"now/before {n / b:5.2f}" if b else "")
        print(f"  {key:24s} " + "   ".join(cells))
    if floors:
        print("  single browser runs (s), in order: " + "; ".join(
            f"{side} " + " ".join(f"{v:.2f}" for v in results[side].get("first garment visible", []))
            for side in sides))


if __name__ == "__main__":
    main()

"""Many busy designers on one server: concurrent sessions generating, adding and editing.

One ``streamlit run`` on loopback (the embedded model, a private cache and library). Each session
loops for a bounded time and number of rounds: Generate four new seeds, Add one of them, open
Attribute edit, move a slider and Save as new design, back to Generate. Two ways to drive them:
- ``--client protocol`` (default): Streamlit's wire protocol from this process
  (``protocol_client.py``): the HTML and static files, the WebSocket reruns and the media files a
  browser asks for, without laying out the page, so the server has the cores to itself, as it does
  when the designers' browsers run on their own machines;
- ``--client browser``: one headless Chromium context per session (Debian's Chromium through
  Playwright), on the server's own cores.
Printed: click-to-result latency per action (p50/p95/max; the protocol client counts a click done
when the run has finished and its new images have arrived), errors and time-outs, the first page's
load time, the server's CPU-seconds per action, its share of the machine and its resident memory
before and after, the client's own CPU, and whether every session saw exactly its own designs.

Run: ``python bench/bench_sessions.py [--sessions 20] [--seconds 120] [--max-rounds 50]
[--client protocol|browser] [--threads N] [--json]``; ``tests/test_load_small.py`` runs small
versions of the same code.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from app_server import AppServer  # noqa: E402
from protocol_client import ProtocolSession  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"]
ACTIONS = ("first page", "generate", "add", "open edit", "save edit")
TIMEOUT_MS = 120_000
FIRST_PAGE_TIMEOUT_MS = 300_000  # twenty browsers loading the app's scripts at once share two cores


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {a: [] for a in ACTIONS})
    errors: list[str] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)
    isolation_failures: list[str] = field(default_factory=list)


def _proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _proc_rss_mb(pid: int) -> float:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


async def _timed(stats: Stats, action: str, step) -> None:
    start = time.perf_counter()
    await step()
    stats.latencies[action].append(time.perf_counter() - start)


async def _count_is(page, n: int) -> None:
    await page.locator("p", has_text="Your designs:").first.filter(has_text=f"Your designs: {n}").wait_for(
        timeout=TIMEOUT_MS)


async def one_session(browser, url: str, k: int, seconds: float, max_rounds: int, stats: Stats) -> None:
    """One designer: first page, then rounds of generate → add → edit → save for ``seconds``."""
    from playwright.async_api import expect

    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    main = page.locator("[data-testid='stMain']").first
    mine = 0
    rounds = 0
    try:
        async def first_page():
            await page.goto(url, wait_until="commit", timeout=FIRST_PAGE_TIMEOUT_MS)
            await main.locator("[data-testid='stImage'] img").nth(7).wait_for(timeout=FIRST_PAGE_TIMEOUT_MS)

        await _timed(stats, "first page", first_page)
        deadline = time.perf_counter() + seconds  # busy time starts once the designer sees the page
        while time.perf_counter() < deadline and rounds < max_rounds:
            seed = 1000 * (k + 1) + 4 * rounds

            async def generate():
                await page.locator(".st-key-seeds_text input").fill(f"{seed}-{seed + 3}")
                await page.get_by_role("button", name="Generate").first.click()
                await main.get_by_text(f"seed {seed} ·", exact=False).first.wait_for()

            async def add():
                await main.get_by_role("button", name="Add", exact=True).first.click()
                await _count_is(page, mine + 1)

            async def open_edit():
                await page.get_by_role("link", name="Attribute edit").click()
                await page.get_by_role("button", name="Save as new design").wait_for()

            async def save_edit():
                slider = main.get_by_role("slider").first
                await slider.focus()
                for _ in range(5):
                    await page.keyboard.press("ArrowRight")
                save = page.get_by_role("button", name="Save as new design")
                await expect(save).to_be_enabled(timeout=TIMEOUT_MS)
                await save.click()
                await _count_is(page, mine + 1)  # mine already counts the design added this round

            await _timed(stats, "generate", generate)
            await _timed(stats, "add", add)
            mine += 1
            await _timed(stats, "open edit", open_edit)
            await _timed(stats, "save edit", save_edit)
            mine += 1
            rounds += 1
            if await page.locator("[data-testid='stException'], [data-testid='stAlertContentError']").count():
                stats.errors.append(f"session {k}: an error box after round {rounds}")
            await page.get_by_role("link", name="Generate").click()
            await page.locator(".st-key-seeds_text input").wait_for()
        await _count_is(page, mine)  # exactly its own designs: none seen from another session
    except Exception as exc:  # noqa: BLE001 - a time-out or a broken page is a result, not a crash
        stats.errors.append(f"session {k} round {rounds}: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
        if mine and "Your designs" not in str(exc):
            try:
                await _count_is(page, mine)
            except Exception:  # noqa: BLE001
                stats.isolation_failures.append(f"session {k} does not show its {mine} designs")
    finally:
        stats.rounds.append(rounds)
        await context.close()


async def one_protocol_session(url: str, k: int, seconds: float, max_rounds: int, stats: Stats) -> None:
    """The same designer as ``one_session``, through Streamlit's wire protocol instead of a browser."""
    session = ProtocolSession(url, timeout=TIMEOUT_MS / 1000)
    mine = 0
    rounds = 0

    def designs_shown() -> int | None:
        for text in session.texts():
            match = re.search(r"Your designs:\*\* (\d+)", text)
            if match:
                return int(match.group(1))
        return None

    def expect(ok: bool, what: str) -> None:
        if not ok:
            raise AssertionError(what)

    async def timed(action: str, step) -> None:
        result = await step()
        stats.latencies[action].append(result.seconds)
        expect(not result.exceptions, f"{action}: {result.exceptions[:1]}")

    try:
        stats.latencies["first page"].append((await session.open()).seconds)
        expect(sum(e.kind == "imgs" for e in session.elements.values()) >= 8, "the first page shows no garments")
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline and rounds < max_rounds:
            seed = 1000 * (k + 1) + 4 * rounds
            session.set_text(session.widget("seeds_text"), f"{seed}-{seed + 3}")
            await timed("generate", lambda: session.click(session.widget("FormSubmitter:generate_form-Generate")))
            expect(any(t.startswith(f"seed {seed} ·") for t in session.texts()), f"seed {seed} is not shown")
            await timed("add", lambda: session.click(session.widgets("button", label="Add")[0]))
            mine += 1
            expect(designs_shown() == mine, f"shows {designs_shown()} designs, made {mine}")
            await timed("open edit", lambda: session.goto("Attribute edit"))
            slider = next(e for e in session.widgets("slider", key_prefix="edit_") if "-edit_range_" not in e.widget_id)
            await session.set_slider(slider, [slider.proto.default[0] + 5 * slider.proto.step])
            save = session.widgets("button", label="Save as new design")[0]
            expect(not save.proto.disabled, "Save stays disabled after a slider moved")
            await timed("save edit", lambda: session.click(save))
            mine += 1
            expect(designs_shown() == mine, f"shows {designs_shown()} designs, made {mine}")
            rounds += 1
            await session.goto("Generate")
    except Exception as exc:  # noqa: BLE001 - a time-out or a broken page is a result, not a crash
        stats.errors.append(f"session {k} round {rounds}: {type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}")
    finally:
        shown = designs_shown()
        if mine and shown is not None and shown != mine:
            stats.isolation_failures.append(f"session {k} shows {shown} designs, made {mine}")
        stats.rounds.append(rounds)
        await session.close()


async def load_test(url: str, sessions: int, seconds: float, max_rounds: int, stagger: float,
                    client: str = "protocol") -> Stats:
    """``sessions`` designers arriving ``stagger`` seconds apart, each through ``client``."""
    stats = Stats()

    async def everyone(one_designer) -> None:
        async def start(k: int):
            await asyncio.sleep(k * stagger)  # designers arrive over a few seconds, not in one instant
            await one_designer(k)

        await asyncio.gather(*(start(k) for k in range(sessions)))

    if client == "protocol":
        await everyone(lambda k: one_protocol_session(url, k, seconds, max_rounds, stats))
        return stats

    from playwright.async_api import async_playwright

    if not CHROMIUM:
        raise SystemExit("Chromium is not installed (apt-get install chromium)")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        await everyone(lambda k: one_session(browser, url, k, seconds, max_rounds, stats))
        await browser.close()
    return stats


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(sessions: int, seconds: float, max_rounds: int, threads: int | None = None, stagger: float = 0.5,
        checkout: Path | None = None, client: str = "protocol") -> dict:
    """Start a server, run the sessions, stop it; the summary as a dict."""
    with tempfile.TemporaryDirectory(prefix="clothinggan-load-") as tmp:
        env = {"CLOTHINGGAN_CACHE": str(Path(tmp) / "cache"), "CLOTHINGGAN_DEVICE": "cpu",
               "CLOTHINGGAN_LIBRARY_URL": f"sqlite:///{Path(tmp) / 'library.sqlite'}"}
        if threads:
            env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        server = AppServer(env, Path(tmp) / "server.log", cwd=checkout).wait_ready()
        try:
            pid = server.proc.pid
            cpu0, rss0, t0 = _proc_cpu_seconds(pid), _proc_rss_mb(pid), time.perf_counter()
            own0 = time.process_time()
            rss_trace, done = [], threading.Event()

            def sample_rss() -> None:  # every 10 s: does memory level off under a steady load?
                while not done.wait(10):
                    rss_trace.append(round(_proc_rss_mb(pid)))

            sampler = threading.Thread(target=sample_rss, daemon=True)
            sampler.start()
            try:
                stats = asyncio.run(load_test(server.url, sessions, seconds, max_rounds, stagger, client))
            finally:
                done.set()
            wall, own = time.perf_counter() - t0, time.process_time() - own0
            cpu1, rss1 = _proc_cpu_seconds(pid), _proc_rss_mb(pid)
            healthy = server.proc.poll() is None
        finally:
            server.stop()
    actions = sum(len(v) for v in stats.latencies.values())
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": f"{platform.processor() or platform.machine()}"
        f", {os.cpu_count()} cores", "sessions": sessions, "seconds": round(wall, 1),
        "actions": actions, "rounds_per_session": stats.rounds,
        "latency_s": {a: {"n": len(v), "p50": round(_percentile(v, 0.5), 2), "p95": round(_percentile(v, 0.95), 2),
                          "max": round(max(v), 2) if v else None} for a, v in stats.latencies.items()},
        "server_cpu_s_per_action": round((cpu1 - cpu0) / max(actions, 1), 3),
        "server_cpu_share": round((cpu1 - cpu0) / wall / (os.cpu_count() or 1), 3),
        "client": client, "client_cpu_s_per_action": round(own / max(actions, 1), 3) if client == "protocol" else None,
        "server_rss_mb": [round(rss0), round(rss1)], "server_rss_mb_every_10s": rss_trace,
        "server_alive": healthy,
        "errors": stats.errors, "isolation_failures": stats.isolation_failures,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=120,
                        help="how long each session keeps starting rounds once its first page is shown")
    parser.add_argument("--max-rounds", type=int, default=50, help="rounds per session at most")
    parser.add_argument("--threads", type=int, help="torch/BLAS threads of the server (default: its own choice)")
    parser.add_argument("--client", choices=("protocol", "browser"), default="protocol",
                        help="protocol: Streamlit's wire protocol from this process (the server's cost alone); "
                             "browser: one headless Chromium context per session (shares the cores)")
    parser.add_argument("--stagger", type=float, default=0.5, help="seconds between two sessions' arrivals")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    parser.add_argument("--checkout", type=Path, help="serve the app from this checkout (e.g. a git worktree of "
                                                      "an earlier commit, to compare); default: this one")
    args = parser.parse_args(argv)
    summary = run(args.sessions, args.seconds, args.max_rounds, args.threads, args.stagger, args.checkout, args.client)
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{summary['date']} · {summary['machine']} · {args.sessions} sessions ({args.client}), "
              f"{summary['seconds']} s, {summary['actions']} actions")
        print(f"{'action':12s} {'n':>5s} {'p50 s':>7s} {'p95 s':>7s} {'max s':>7s}")
        for action, row in summary["latency_s"].items():
            print(f"{action:12s} {row['n']:5d} {row['p50']:7.2f} {row['p95']:7.2f} {row['max'] or float('nan'):7.2f}")
        print(f"server: {summary['server_cpu_s_per_action']} CPU-s per action, {summary['server_cpu_share']:.0%} of the "
              f"machine, RSS {summary['server_rss_mb'][0]} → {summary['server_rss_mb'][1]} MB, "
              f"{'alive' if summary['server_alive'] else 'DEAD'}")
        print(f"server RSS every 10 s (MB): {summary['server_rss_mb_every_10s']}")
        if summary["client_cpu_s_per_action"] is not None:
            print(f"client: {summary['client_cpu_s_per_action']} CPU-s per action")
        print(f"errors: {len(summary['errors'])}, isolation failures: {len(summary['isolation_failures'])}")
        for line in summary["errors"] + summary["isolation_failures"]:
            print("  ", line)
    return 1 if summary["errors"] or summary["isolation_failures"] or not summary["server_alive"] else 0


if __name__ == "__main__":
    sys.exit(main())

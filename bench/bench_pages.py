"""Each page's first visit and rerun, after the first page, in fresh processes (AppTest), before vs now.

A designer's first click on a page pays for what that page imports and computes the first time;
a slider on it pays a rerun. Per page this prints the first visit, the median of five reruns and
the heavy libraries the visit imported. Each side runs in its own fresh process, alternating,
``--runs`` times (medians). "before" is a git worktree of ``--before`` (default: cd0d15d).
Run: ``python bench/bench_pages.py [--runs 3] [--before REV]``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from bench_cold_start import REPO, run_json, worktree

PAGES = ["app_pages/style_mix.py", "app_pages/attribute_edit.py", "app_pages/pca_explorer.py",
         "app_pages/invert.py", "app_pages/library.py"]

VISITS = r'''
import json, statistics, sys, time
from streamlit.testing.v1 import AppTest
at = AppTest.from_file("streamlit_app.py", default_timeout=120).run()
at.run()
out = {}
for page in PAGES:
    before = {m.split(".")[0] for m in sys.modules}
    t = time.perf_counter(); at.switch_page(page).run(); first = time.perf_counter() - t
    reruns = []
    for _ in range(5):
        t = time.perf_counter(); at.run(); reruns.append(time.perf_counter() - t)
    out[page] = {"first": first, "rerun": statistics.median(reruns), "exceptions": len(at.exception),
                 "imported": sorted(({m.split(".")[0] for m in sys.modules} - before) & set(HEAVY))}
print("JSON" + json.dumps(out))
'''


def visits(cwd: Path, cache: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(cwd), "CLOTHINGGAN_CACHE": str(cache), "CLOTHINGGAN_DEVICE": "cpu",
           "CLOTHINGGAN_LIBRARY_URL": f"sqlite:///{cache / 'library.sqlite'}"}
    return run_json(f"PAGES = {PAGES!r}\n" + VISITS, cwd, env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--before", default="cd0d15d", help="git revision to compare with ('' for none)")
    args = parser.parse_args()
    sides = {"now": REPO} if not args.before else {"before": worktree(args.before), "now": REPO}
    results: dict[str, list[dict]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory(prefix="cg-pages-") as tmp:
        for run in range(args.runs):
            for side, cwd in sides.items():
                cache = Path(tmp) / f"{side}-{run}"
                cache.mkdir()
                results[side].append(visits(cwd, cache))
    print(f"page visits after the first page, AppTest, {args.runs} fresh process(es) per side (medians)")
    for page in PAGES:
        cells = []
        for side in sides:
            runs = [r[page] for r in results[side]]
            first = statistics.median(r["first"] for r in runs)
            rerun = statistics.median(r["rerun"] for r in runs)
            errors = sum(r["exceptions"] for r in runs)
            cells.append(f"{side}: first {first:5.2f} s, rerun {rerun * 1000:6.1f} ms, imports {runs[-1]['imported']}"
                         + (f", {errors} exception(s)" if errors else ""))
        print(f"  {Path(page).stem:15s} " + "   ".join(cells))


if __name__ == "__main__":
    main()

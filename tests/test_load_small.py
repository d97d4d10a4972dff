"""Small load tests: three concurrent sessions on one server generate, add and edit.

The engine is ``bench/bench_sessions.py`` (its 20-session run lives there); timings are printed
there, never asserted here: this checks that busy sessions finish their rounds without errors,
each sees exactly its own designs, and the server stays up — once through real browsers and once
through the wire-protocol client the 20-session bench uses.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
BENCH = Path(__file__).resolve().parent.parent / "bench"


def bench_sessions():
    sys.path.insert(0, str(BENCH))
    try:
        import bench_sessions
    finally:
        sys.path.remove(str(BENCH))
    return bench_sessions


def check(summary: dict) -> None:
    assert summary["errors"] == [] and summary["isolation_failures"] == []
    assert summary["server_alive"]
    assert len(summary["rounds_per_session"]) == 3 and min(summary["rounds_per_session"]) >= 1
    for action in ("first page", "generate", "add", "open edit", "save edit"):
        assert summary["latency_s"][action]["n"] >= 3, (action, summary)


def test_three_busy_browser_sessions_stay_apart_and_error_free():
    bench = bench_sessions()
    if not bench.CHROMIUM:
        pytest.fail("Chromium is not installed (apt-get install chromium)")
    check(bench.run(sessions=3, seconds=20, max_rounds=2, threads=1, client="browser"))


def test_three_busy_protocol_sessions_stay_apart_and_error_free():
    summary = bench_sessions().run(sessions=3, seconds=20, max_rounds=3, threads=1, client="protocol")
    check(summary)
    assert summary["client_cpu_s_per_action"] < summary["server_cpu_s_per_action"]  # it measures the server

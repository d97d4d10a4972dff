"""A small load test: three concurrent browser sessions on one server generate, add and edit.

The engine is ``bench/bench_sessions.py`` (its 20-session run lives there); timings are printed
there, never asserted here: this checks that busy sessions finish their rounds without errors,
each sees exactly its own designs, and the server stays up.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_three_busy_sessions_stay_apart_and_error_free():
    sys.path.insert(0, str(BENCH))
    try:
        import bench_sessions
    finally:
        sys.path.remove(str(BENCH))
    if not bench_sessions.CHROMIUM:
        pytest.fail("Chromium is not installed (apt-get install chromium)")
    summary = bench_sessions.run(sessions=3, seconds=20, max_rounds=2, threads=1)
    assert summary["errors"] == [] and summary["isolation_failures"] == []
    assert summary["server_alive"]
    assert len(summary["rounds_per_session"]) == 3 and min(summary["rounds_per_session"]) >= 1
    for action in ("first page", "generate", "add", "open edit", "save edit"):
        assert summary["latency_s"][action]["n"] >= 3, (action, summary)

"""A seeded fuzz run over every loader and importer (issue 9): refused fast, typed, in bounded memory.

The engine is ``bench/fuzz_inputs.py`` (its longer run lives there); here a few hundred cases run in
a subprocess under a 3 GB address-space limit, so an unbounded allocation fails the run.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"
CASES = 320


def test_every_damaged_input_is_refused_fast_and_typed_in_bounded_memory():
    result = subprocess.run([sys.executable, str(BENCH / "fuzz_inputs.py"), "--cases", str(CASES), "--seed", "7",
                             "--max-seconds", "5", "--max-memory-gb", "3", "--json"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode in (0, 1), result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["failures"] == [], report["failures"]
    assert report["cases"] == CASES and report["slowest_s"] < 5
    seen = {k: report["refused"].get(k, 0) + report["loaded"].get(k, 0) for k in set(report["refused"]) | set(report["loaded"])}
    for target in ("safetensors", "rosinality", "store-npz", "store-json", "draft", "directions", "components", "photo"):
        assert seen.get(target, 0) >= 15 and report["refused"].get(target, 0) >= 10, (target, report)


def test_the_fuzzer_reports_untyped_errors_slow_cases_and_changed_stores(monkeypatch):
    monkeypatch.setenv("CLOTHINGGAN_CACHE", "unchanged")
    sys.path.insert(0, str(BENCH))
    try:
        import fuzz_inputs
    finally:
        sys.path.remove(str(BENCH))
    changed = []

    def bad_targets(work: Path):
        def untyped(path: Path):
            raise IndexError("boom")

        def slow(path: Path):
            import time

            time.sleep(0.05)

        def check():
            if changed:
                raise AssertionError("a refused import changed the store")

        return {"untyped": fuzz_inputs.Target(".bin", [b"abc"], untyped),
                "slow": fuzz_inputs.Target(".bin", [b"abc"], slow),
                "changes": fuzz_inputs.Target(".bin", [b"abc"], lambda p: changed.append(1), check)}

    monkeypatch.setattr(fuzz_inputs, "targets", bad_targets)
    report = fuzz_inputs.run(30, seed=1, max_seconds=0.01)
    errors = " ".join(f["error"] for f in report.failures)
    assert __import__("os").environ["CLOTHINGGAN_CACHE"] == "unchanged"  # the run's private cache is undone
    assert "IndexError: boom" in errors and "took" in errors and "changed the store" in errors

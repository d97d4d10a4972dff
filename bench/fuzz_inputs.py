"""Seeded fuzzing of every loader and importer: each damaged input is refused fast, typed, in bounded memory.

Valid inputs of each kind (a tiny generator as .safetensors and rosinality .pt, an NVlabs pickle,
design stores as npz and JSON, session drafts, direction and component files, photos) are damaged
by seeded mutations — bit flips, truncations, random splices, huge length fields, random bytes —
and fed to the public loader. Each case must end in under ``--max-seconds`` either loaded (some
damage leaves a valid file) or refused with a ``ClothingGANError``; any other exception, a slow
case, or a design store changed by a refused import is a failure. With ``--max-memory-gb`` the
whole run is under that address-space limit (RLIMIT_AS), so an unbounded allocation fails loudly.

Run: ``python bench/fuzz_inputs.py [--cases 2000] [--seed 0] [--max-memory-gb 3]``; the test suite
runs a few hundred cases of the same code (tests/test_fuzz.py).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import struct
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import clothinggan as cg  # noqa: E402
from clothinggan import components as comp  # noqa: E402
from clothinggan import drafts  # noqa: E402
from clothinggan.directions import NamedDirection, read_directions_file, write_directions_file  # noqa: E402
from clothinggan.errors import ClothingGANError  # noqa: E402
from clothinggan.formats.rosinality import write_rosinality  # noqa: E402
from clothinggan.framing import frame_upload  # noqa: E402
from clothinggan.designs import Design  # noqa: E402
from clothinggan.store import LatentStore
from clothinggan.testing import tiny_generator  # noqa: E402
from clothinggan.uploads import read_upload  # noqa: E402

NVLABS_FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "stylegan2" / "nvlabs-s16-sanitized.pkl"
# The NVlabs loader converts in a subprocess (a second or two each): fewer of its cases per run.
NVLABS_SHARE = 0.04


@dataclass
class Target:
    """One loader: its file suffix, valid inputs to damage, and how to load one (raises on refusal)."""

    suffix: str
    seeds: list[bytes]
    load: Callable[[Path], object]
    check_after: Callable[[], None] | None = None  # e.g. "the store is unchanged"


@dataclass
class Report:
    cases: int = 0
    loaded: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    failures: list[dict] = field(default_factory=list)
    slowest: tuple[float, str] = (0.0, "")


# -- mutations -------------------------------------------------------------------------------------
def _flip(rng: random.Random, data: bytearray) -> str:
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)
    return "bit flips"


def _truncate(rng: random.Random, data: bytearray) -> str:
    del data[rng.randrange(len(data)):]
    return "truncated"


def _splice(rng: random.Random, data: bytearray) -> str:
    i = rng.randrange(len(data))
    data[i:i + rng.randint(1, 64)] = rng.randbytes(rng.randint(0, 64))
    return "random splice"


def _huge_number(rng: random.Random, data: bytearray) -> str:
    """A length, count or size field made enormous: 8 bytes of 0xFF or a huge little-endian int."""
    i = rng.randrange(max(1, min(len(data), 256)))  # headers live near the start
    data[i:i + 8] = rng.choice([b"\xff" * 8, struct.pack("<Q", 2**62), struct.pack("<I", 2**31 - 1) * 2])
    return "huge field"


def _json_tamper(rng: random.Random, data: bytearray) -> str:
    """A number in JSON text replaced by something extreme (works on JSON headers and JSON files)."""
    text = data.decode("latin-1")
    digits = [i for i, ch in enumerate(text) if ch.isdigit()]
    if not digits:
        return _splice(rng, data)
    i = rng.choice(digits)
    j = i
    while j < len(text) and text[j].isdigit():
        j += 1
    data[:] = (text[:i] + rng.choice(["99999999999", "1e308", "-1", "0", "NaN", "[[[[[[[[", "65536"]) + text[j:]) \
        .encode("latin-1")
    return "JSON number"


def _garbage(rng: random.Random, data: bytearray) -> str:
    data[:] = rng.randbytes(rng.randint(0, 4096))
    return "random bytes"


MUTATIONS = [_flip, _truncate, _splice, _huge_number, _json_tamper, _garbage]


# -- valid inputs ----------------------------------------------------------------------------------
def _store(G: cg.Generator, n: int) -> LatentStore:
    rng = np.random.default_rng(n)
    return LatentStore(G.fingerprint, [Design(ws=rng.standard_normal((G.num_ws, G.w_dim)).astype(np.float32),
                                              model_id=G.fingerprint, name=f"design {i}") for i in range(n)])


def _photo(fmt: str, size: tuple[int, int], mode: str = "RGB") -> bytes:
    im = Image.new(mode, size, "white")
    im.paste(Image.new(mode, (size[0] // 2, size[1] // 2), "navy" if mode != "L" else 40), (size[0] // 4, size[1] // 4))
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


def targets(work: Path) -> dict[str, Target]:
    """Every loader with its valid inputs (made here, so the run needs no files but the NVlabs fixture)."""
    G = tiny_generator(0, name="fuzz")
    model = work / "model.safetensors"
    cg.save_generator(G, model)
    ros = write_rosinality(G.net.state_dict(), G.config, work / "model.pt")
    stored = _store(G, 3)
    into = _store(G, 2)
    before = [(d.id, d.name, d.ws.tobytes()) for d in into]

    def store_unchanged() -> None:
        if [(d.id, d.name, d.ws.tobytes()) for d in into] != before:
            raise AssertionError("a refused import changed the store")

    def import_store(path: Path) -> object:
        added = into.load_into(path.read_bytes())
        for d in added:  # a valid damaged file was merged: take it out again for the next case
            into.remove(d.id)
        return added

    dirs = work / "directions.json"
    write_directions_file(dirs, [NamedDirection("Sleeve", np.ones(G.w_dim, np.float32) / np.sqrt(G.w_dim), 0, 2)],
                          G.fingerprint, G.w_dim, G.num_ws)
    components = comp.save_components(comp.pca(np.random.default_rng(0).standard_normal((500, G.w_dim)), 8,
                                                G.fingerprint), work / "components.npz")
    found = {
        "safetensors": Target(".safetensors", [model.read_bytes()], lambda p: cg.load_generator(str(p), device="cpu")),
        "rosinality": Target(".pt", [Path(ros).read_bytes()], lambda p: cg.load_generator(str(p), device="cpu")),
        "store-npz": Target(".npz", [stored.to_npz_bytes()], import_store, store_unchanged),
        "store-json": Target(".json", [stored.to_json().encode()], import_store, store_unchanged),
        "draft": Target(".json", [drafts.encode_session({G.fingerprint: stored})],
                        lambda p: drafts.decode_session(p.read_bytes())),
        "directions": Target(".json", [dirs.read_bytes()],
                             lambda p: read_directions_file(p, G.fingerprint, G.w_dim, G.num_ws)),
        "components": Target(".npz", [Path(components).read_bytes()], lambda p: comp.load_components(p)),
        "photo": Target(".img", [_photo("JPEG", (60, 80)), _photo("PNG", (64, 64), "RGBA"), _photo("WEBP", (40, 90)),
                                 _photo("PNG", (30, 30), "L")],
                        lambda p: frame_upload(read_upload(p.read_bytes(), p.name), 64)),
    }
    if NVLABS_FIXTURE.is_file():
        found["nvlabs"] = Target(".pkl", [NVLABS_FIXTURE.read_bytes()], lambda p: cg.load_generator(str(p), device="cpu"))
    return found


# -- the run ---------------------------------------------------------------------------------------
def run(cases: int, seed: int, max_seconds: float, log: Callable[[str], None] = lambda s: None) -> Report:
    rng = random.Random(seed)
    report = Report()
    old_cache = os.environ.get("CLOTHINGGAN_CACHE")
    with tempfile.TemporaryDirectory(prefix="clothinggan-fuzz-") as tmp:
        work = Path(tmp)
        os.environ["CLOTHINGGAN_CACHE"] = str(work / "cache")  # converted pickles land here, not in yours
        try:
            _run_cases(rng, report, targets(work), work, cases, max_seconds, log)
        finally:
            if old_cache is None:
                os.environ.pop("CLOTHINGGAN_CACHE", None)
            else:
                os.environ["CLOTHINGGAN_CACHE"] = old_cache
    return report


def _run_cases(rng: random.Random, report: Report, all_targets: dict[str, Target], work: Path, cases: int,
               max_seconds: float, log: Callable[[str], None]) -> None:
    names = sorted(all_targets)
    weights = [NVLABS_SHARE * len(names) if n == "nvlabs" else 1.0 for n in names]
    for case in range(cases):
        name = rng.choices(names, weights)[0]
        target = all_targets[name]
        data = bytearray(rng.choice(target.seeds))
        how = rng.choice(MUTATIONS)(rng, data) if data else "empty"
        path = work / f"case{case}{target.suffix}"
        path.write_bytes(bytes(data))
        start = time.perf_counter()
        outcome = "loaded"
        try:
            target.load(path)
        except ClothingGANError:
            outcome = "refused"
        except Exception as exc:  # noqa: BLE001 - exactly what this run looks for
            outcome = "untyped"
            report.failures.append({"target": name, "mutation": how, "case": case,
                                    "error": f"{type(exc).__name__}: {str(exc)[:200]}"})
        seconds = time.perf_counter() - start
        if target.check_after is not None:
            try:
                target.check_after()
            except AssertionError as exc:
                report.failures.append({"target": name, "mutation": how, "case": case, "error": str(exc)})
        if seconds > max_seconds:
            report.failures.append({"target": name, "mutation": how, "case": case,
                                    "error": f"took {seconds:.1f} s (limit {max_seconds:g} s)"})
        if seconds > report.slowest[0]:
            report.slowest = (seconds, f"{name} / {how}")
        bucket = report.loaded if outcome == "loaded" else report.refused
        bucket[name] = bucket.get(name, 0) + 1
        report.cases += 1
        path.unlink(missing_ok=True)
        if case % 50 == 49:
            log(f"{case + 1}/{cases} cases, {len(report.failures)} failures")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=5.0, help="the longest one case may take")
    parser.add_argument("--max-memory-gb", type=float, default=None, help="address-space limit of the whole run")
    parser.add_argument("--json", action="store_true", help="print the report as JSON (for the test suite)")
    args = parser.parse_args(argv)
    if args.max_memory_gb:
        limit = int(args.max_memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    start = time.perf_counter()
    report = run(args.cases, args.seed, args.max_seconds, log=lambda s: print(s, file=sys.stderr, flush=True))
    elapsed = time.perf_counter() - start
    summary = {"cases": report.cases, "seconds": round(elapsed, 1), "loaded": report.loaded,
               "refused": report.refused, "slowest_s": round(report.slowest[0], 2), "slowest": report.slowest[1],
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
               "failures": report.failures}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{report.cases} cases in {elapsed:.1f} s; slowest {report.slowest[0]:.2f} s ({report.slowest[1]}); "
              f"peak RSS {summary['peak_rss_mb']} MB")
        for name in sorted(set(report.loaded) | set(report.refused)):
            print(f"  {name:12s} refused {report.refused.get(name, 0):5d}  loaded {report.loaded.get(name, 0):5d}")
        for failure in report.failures:
            print("FAIL", failure)
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())

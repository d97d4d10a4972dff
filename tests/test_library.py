"""Tests of the persistent design library: exact round trips, upserts, corrupt rows, concurrent writers.

Several app processes (and their threads) share one SQLite file in practice, so the concurrency test
runs two real processes and threads at once and then checks every row and the file's integrity.
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from clothinggan.errors import LatentFormatError
from clothinggan.latents import Design
from clothinggan.library import URL_ENV, DesignLibrary, default_url

REPO_ROOT = Path(__file__).resolve().parent.parent


def design(seed: int = 0, model_id: str = "m1", name: str = "Coat", **kw) -> Design:
    ws = np.random.default_rng(seed).standard_normal((6, 8)).astype(np.float32)
    return Design(ws=ws, model_id=model_id, name=name, **kw)


@pytest.fixture()
def library(tmp_path: Path):
    lib = DesignLibrary(f"sqlite:///{tmp_path / 'lib.sqlite'}")
    yield lib
    lib.close()


def raw(lib: DesignLibrary, sql: str, *params) -> list[tuple]:
    """Run SQL on the library file directly, the way a damaged or foreign writer would."""
    con = sqlite3.connect(lib.engine.url.database)
    try:
        rows = con.execute(sql, params).fetchall()
        con.commit()
        return rows
    finally:
        con.close()


def test_round_trip_is_exact(library):
    d = design(1, name="Robe ✂", provenance={"kind": "seed", "seed": 1, "psi": 0.7, "tags": ["a"]})
    d = Design(ws=d.ws * np.float32(-0.0) + d.ws, model_id=d.model_id, name=d.name, provenance=d.provenance)
    entry = library.save(d, author="ana")
    assert (entry.id, entry.name, entry.author, entry.shape) == (d.id, "Robe ✂", "ana", (6, 8))
    loaded = library.load(d.id)
    assert loaded == d and loaded.ws.tobytes() == d.ws.tobytes()
    assert d.id in library and "nope" not in library and len(library) == 1
    assert raw(library, "PRAGMA journal_mode")[0][0] == "wal"


def test_save_upserts_and_keeps_author(library):
    d = design(2)
    first = library.save(d, author="ana")
    second = library.save(d.with_name("Longer coat"))
    assert len(library) == 1
    [entry] = library.list()
    assert entry.name == "Longer coat" and entry.author == "ana"  # no author given: the old one stays
    assert entry.created == d.created and entry.updated >= first.updated
    assert second.updated == entry.updated
    library.save(d, author="ben")
    assert library.list()[0].author == "ben"


def test_list_filters_orders_and_is_light(library):
    a, b, c = design(1, name="a"), design(2, model_id="m2", name="b"), design(3, name="c")
    library.save_many([a, b])
    library.save(c)
    entries = library.list()
    assert [e.id for e in entries][0] == c.id and {e.id for e in entries} == {a.id, b.id, c.id}
    assert {e.id for e in library.list("m1")} == {a.id, c.id}
    assert library.list("unknown") == []
    assert not hasattr(entries[0], "ws")
    assert design(4, provenance={"kind": "seed", "seed": 4, "psi": 1.0}).describe() == "seed 4, truncation 1"


def test_rename_and_delete(library):
    d = design(5)
    library.save(d)
    library.rename(d.id, "  Parka ")
    assert library.load(d.id).name == "Parka"
    with pytest.raises(ValueError):
        library.rename(d.id, "")
    with pytest.raises(KeyError):
        library.rename("missing", "x")
    assert library.delete(d.id) is True
    assert library.delete(d.id) is False
    with pytest.raises(KeyError):
        library.load(d.id)


@pytest.mark.parametrize("sql, params, words", [
    ("UPDATE designs SET ws = substr(ws, 1, 10)", (), "bytes"),
    ("UPDATE designs SET ws = ?", (np.full(48, np.nan, np.float32).tobytes(),), "NaN"),
    ("UPDATE designs SET shape = 'six,8'", (), "shape"),
    ("UPDATE designs SET shape = '0,8'", (), "shape"),
    ("UPDATE designs SET provenance = '{oops'", (), "provenance"),
    ("UPDATE designs SET provenance = '[1]'", (), "provenance"),
])
def test_corrupt_rows_raise_latent_format_error(library, sql, params, words):
    d = design(6)
    library.save(d)
    raw(library, sql, *params)
    with pytest.raises(LatentFormatError, match=words):
        library.load(d.id)


def test_default_url_and_env(tmp_path, monkeypatch):
    monkeypatch.setenv("CLOTHINGGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(URL_ENV, raising=False)
    assert default_url() == f"sqlite:///{tmp_path / 'cache' / 'library.sqlite'}"
    monkeypatch.setenv(URL_ENV, f"sqlite:///{tmp_path / 'team.sqlite'}")
    with DesignLibrary() as lib:
        lib.save(design(7))
    assert (tmp_path / "team.sqlite").is_file() and not (tmp_path / "cache" / "library.sqlite").exists()


def test_in_memory_library_is_shared_between_threads():
    with DesignLibrary("sqlite://") as lib:
        threads = [threading.Thread(target=lib.save, args=(design(i, name=f"t{i}"),)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(lib) == 4


WRITER = textwrap.dedent("""
    import sys
    import types

    # Skip the package __init__ (it loads torch): the workers then start in a fraction of a second.
    package = types.ModuleType("clothinggan")
    package.__path__ = [sys.argv[4]]
    sys.modules["clothinggan"] = package

    import numpy as np
    from clothinggan.latents import Design
    from clothinggan.library import DesignLibrary

    url, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print("ready", flush=True)
    sys.stdin.readline()  # start together with the other writers
    lib = DesignLibrary(url)  # opening a new file concurrently is part of the test
    for i in range(n):
        ws = np.full((6, 8), i, np.float32)
        lib.save(Design(ws=ws, model_id="m1", name=f"{tag}-{i}", id=f"{tag}-{i}"), author=tag)
        lib.save(Design(ws=ws, model_id="m1", name=f"shared by {tag}", id="shared"), author=tag)
    lib.close()
    print("done", flush=True)
""")


def test_concurrent_processes_and_threads(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    n_proc, n_thread = 40, 20
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, url, tag, str(n_proc),
                               str(REPO_ROOT / "clothinggan")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for tag in ("p0", "p1")]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
        errors: list[BaseException] = []

        def write(tag: str) -> None:
            try:
                for i in range(n_thread):
                    ws = np.full((6, 8), -i, np.float32)
                    lib.save(Design(ws=ws, model_id="m1", name=f"{tag}-{i}", id=f"{tag}-{i}"))
                    if i % 5 == 0 and "shared" in lib:  # updates race with the processes' upserts
                        lib.rename("shared", f"renamed by {tag}")
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)

        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        lib = DesignLibrary(url)
        threads = [threading.Thread(target=write, args=(f"t{k}",)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0 and out.strip() == "done", err
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert not errors, errors
    expected = {f"p{k}-{i}" for k in range(2) for i in range(n_proc)}
    expected |= {f"t{k}-{i}" for k in range(4) for i in range(n_thread)} | {"shared"}
    entries = lib.list()
    assert len(entries) == len(expected) and {e.id for e in entries} == expected
    for e in entries:
        if e.id != "shared":
            value = int(e.id.split("-")[1]) * (1 if e.id.startswith("p") else -1)
            np.testing.assert_array_equal(lib.load(e.id).ws, np.full((6, 8), value, np.float32))
    assert lib.load("shared").name.startswith(("shared by", "renamed by"))
    lib.close()
    assert raw(lib, "PRAGMA integrity_check") == [("ok",)]

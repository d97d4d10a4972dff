"""Tests of the persistent design library, each against SQLite and a live PostgreSQL server.

Exact round trips, saving beside (never over) another author's design, search and paging, corrupt
rows skipped and reported, concurrent first starts and writers (real processes), lost connections.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from sqlalchemy import event, text
from conftest import run_in_threads

from clothinggan.errors import ClothingGANError, LatentFormatError
from clothinggan.designs import Design
from clothinggan.library import (POOL_SIZE, URL_ENV, DesignLibrary, LibraryUnavailableError, copy_id,
                                 default_url, normalise_url)

REPO_ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ["sqlite", "postgresql"]


def design(seed: int = 0, model_id: str = "m1", name: str = "Coat", **kw) -> Design:
    ws = np.random.default_rng(seed).standard_normal((6, 8)).astype(np.float32)
    return Design(ws=ws, model_id=model_id, name=name, **kw)


@pytest.fixture(params=BACKENDS)
def url(request, tmp_path: Path) -> str:
    """A fresh, empty library URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lib.sqlite'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture()
def library(url: str):
    lib = DesignLibrary(url)
    yield lib
    lib.close()


def raw(lib: DesignLibrary, sql: str, **params) -> list[tuple]:
    """Run SQL on the library's database directly, the way a damaged or foreign writer would."""
    with lib.engine.begin() as conn:
        result = conn.execute(text(sql), params)
        return [tuple(r) for r in result.all()] if result.returns_rows else []


def test_round_trip_is_exact(library):
    d = design(1, name="Robe ✂", provenance={"kind": "seed", "seed": 1, "psi": 0.7, "tags": ["a"]})
    d = Design(ws=d.ws * np.float32(-0.0) + d.ws, model_id=d.model_id, name=d.name, provenance=d.provenance)
    entry = library.save(d, author="ana")
    assert (entry.id, entry.name, entry.author, entry.shape, entry.copy_of) == (d.id, "Robe ✂", "ana", (6, 8), None)
    loaded = library.load(d.id)
    assert loaded == d and loaded.ws.tobytes() == d.ws.tobytes()
    assert d.id in library and "nope" not in library and len(library) == 1
    if library.engine.dialect.name == "sqlite":
        assert raw(library, "PRAGMA journal_mode")[0][0] == "wal"
    else:
        assert library.engine.dialect.driver == "psycopg"


def test_load_many_loads_a_page_in_one_go_and_isolates_corrupt_rows(library):
    designs = [design(40 + i, name=f"D{i}") for i in range(5)]
    library.save_many(designs, author="ana")
    raw(library, "UPDATE designs SET ws = substr(ws, 1, 10) WHERE id = :id", id=designs[2].id)
    found = library.load_many([d.id for d in designs] + ["absent", designs[0].id])
    assert set(found) == {d.id for d in designs}
    assert isinstance(found[designs[2].id], LatentFormatError)
    for d in designs[:2] + designs[3:]:
        assert found[d.id] == d and found[d.id].ws.tobytes() == d.ws.tobytes()
    assert library.load_many([]) == {}


def test_saving_updates_ones_own_design(library):
    d = design(2)
    first = library.save(d, author="ana")
    second = library.save(d.with_name("Longer coat"), author=" ana ")
    assert len(library) == 1 and second.id == d.id and second.copy_of is None
    [entry] = library.list()
    assert (entry.name, entry.author, entry.created) == ("Longer coat", "ana", d.created)
    assert entry.updated == second.updated >= first.updated
    anonymous = design(3)
    library.save(anonymous)
    library.save(anonymous.with_name("still anyone's"), author="")
    assert library.load(anonymous.id).name == "still anyone's" and len(library) == 2


def test_saving_never_replaces_another_authors_design(library):
    """Issue 9 #7: an imported file carrying ana's design id must not overwrite ana's design."""
    d = design(4, name="Ana's coat")
    library.save(d, author="ana")
    imported = Design(ws=-d.ws, model_id=d.model_id, name="Ben's edit", id=d.id)
    copy = library.save(imported, author="ben")
    assert copy.copy_of == d.id and copy.id == copy_id(d.id, "ben") != d.id and copy.author == "ben"
    kept = library.load(d.id)
    assert kept == d and [e.author for e in library.list() if e.id == d.id] == ["ana"]
    assert library.load(copy.id).name == "Ben's edit"
    np.testing.assert_array_equal(library.load(copy.id).ws, -d.ws)
    # Ben saving again updates his copy instead of piling up copies; an anonymous save is a copy too.
    again = library.save(imported.with_name("Ben's edit 2"), author="ben")
    assert again.id == copy.id and library.load(copy.id).name == "Ben's edit 2"
    anonymous = library.save(imported)
    assert anonymous.copy_of == d.id and anonymous.author is None
    # The same id for another model is never another model's design overwritten either.
    other_model = library.save(Design(ws=d.ws, model_id="m2", name="elsewhere", id=d.id), author="ana")
    assert other_model.copy_of == d.id and library.load(d.id).model_id == "m1"
    assert len(library) == 4 and library.load(d.id) == d


def test_save_many_reports_copies_per_design(library):
    mine, theirs = design(5, name="mine"), design(6, name="theirs")
    library.save(theirs, author="cleo")
    entries = library.save_many([mine, theirs.with_name("taken")], author="dan")
    assert [e.copy_of for e in entries] == [None, theirs.id]
    assert library.load(theirs.id).name == "theirs"


def test_list_filters_orders_and_is_light(library):
    a, b, c = design(1, name="a"), design(2, model_id="m2", name="b"), design(3, name="c")
    library.save_many([a, b])
    time.sleep(0.01)
    library.save(c)
    entries = library.list()
    assert [e.id for e in entries][0] == c.id and {e.id for e in entries} == {a.id, b.id, c.id}
    assert {e.id for e in library.list("m1")} == {a.id, c.id}
    assert library.list("unknown") == []
    assert not hasattr(entries[0], "ws")
    assert design(4, provenance={"kind": "seed", "seed": 4, "psi": 1.0}).describe() == "seed 4, truncation 1"


def test_search_pages_and_filters(library):
    designs = [design(i, model_id="m1" if i % 3 else "m2", name=f"{['Coat', 'Dress', 'Tee_%'][i % 3]} {i}")
               for i in range(60)]
    for k, author in enumerate(["ana", "ben", None]):
        library.save_many(designs[k * 20:(k + 1) * 20], author=author)
    first = library.search(model_id="m1", limit=10)
    assert (first.total, first.pages, len(first.entries), first.skipped) == (40, 4, 10, [])
    seen = [e.id for p in range(4) for e in library.search(model_id="m1", offset=10 * p, limit=10).entries]
    assert len(seen) == len(set(seen)) == 40 and all(library.load(i).model_id == "m1" for i in seen[:3])
    assert library.search(model_id="m1", offset=40, limit=10).entries == []
    dresses = library.search(text="  dRESS ", limit=None)
    assert dresses.total == 20 and all("Dress" in e.name for e in dresses.entries)
    # LIKE's wildcards are matched literally.
    assert library.search(text="_%", limit=None).total == 20
    assert library.search(text="%", limit=None).total == 20
    assert library.search(author="ben", limit=None).total == 20
    assert library.search(author="", limit=None).total == 20
    assert library.search(model_id="m2", text="tee", author="ana", limit=None).total == 0
    assert library.search(model_id="m1", text="tee", author="ana", limit=None).total == 6
    assert library.authors() == ["ana", "ben"] and library.authors("nothing") == []


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


def test_lone_surrogates_never_reach_the_database(library):
    """Issue 9 #3: a lone surrogate made "Save all" raise out of the page.

    A Design refuses one in its name; authors, new names and search text are cleaned instead.
    """
    with pytest.raises(LatentFormatError, match="surrogate"):
        design(9, name="bad \udc80 name")
    entry = library.save(design(9, name="fine"), author="e\ud800ve")
    assert library.list()[0].author == "e\ufffdve"
    library.rename(entry.id, "still \udfff bad")
    assert library.load(entry.id).name == "still \ufffd bad"
    assert library.search(text="\udfff", limit=None).total == 1


CORRUPTIONS = [
    ("UPDATE designs SET ws = substr(ws, 1, 10)", {}, "bytes"),
    ("UPDATE designs SET ws = :ws", {"ws": np.full(48, np.nan, np.float32).tobytes()}, "NaN"),
    ("UPDATE designs SET shape = 'six,8'", {}, "shape"),
    ("UPDATE designs SET shape = '0,8'", {}, "shape"),
    ("UPDATE designs SET provenance = '{oops'", {}, "provenance"),
    ("UPDATE designs SET provenance = '[1]'", {}, "provenance"),
    ("UPDATE designs SET provenance = :p", {"p": "[" * 100_000}, "provenance"),
]


@pytest.mark.parametrize("sql, params, words", CORRUPTIONS)
def test_corrupt_rows_raise_latent_format_error(library, sql, params, words):
    d = design(6)
    library.save(d)
    raw(library, sql, **params)
    with pytest.raises(LatentFormatError, match=words):
        library.load(d.id)


@pytest.mark.parametrize("sql, params, words", [c for c in CORRUPTIONS if c[2] != "NaN"])
def test_listing_skips_and_reports_corrupt_rows(library, sql, params, words):
    """Issue 9 #7: one corrupt row made list() raise, and the Team tab showed none of the designs."""
    good = [design(i, name=f"good {i}") for i in range(3)]
    bad = design(7, name="bad")
    library.save_many([*good, bad])
    raw(library, sql.replace("UPDATE designs SET", "UPDATE designs SET") + " WHERE id = :id", id=bad.id, **params)
    assert {e.id for e in library.list()} == {d.id for d in good}
    page = library.search(limit=10)
    assert page.total == 4 and len(page.entries) == 3
    [skipped] = page.skipped
    assert skipped.id == bad.id and words in skipped.reason and bad.id in skipped.reason


def test_sqlite_rows_of_the_wrong_type_are_skipped(tmp_path):
    """SQLite stores whatever a foreign writer puts in a column: a listing still reads the others."""
    with DesignLibrary(f"sqlite:///{tmp_path / 'lib.sqlite'}") as lib:
        good, bad = design(1), design(2)
        lib.save_many([good, bad])
        raw(lib, "UPDATE designs SET updated = 'yesterday', shape = 6.8 WHERE id = :id", id=bad.id)
        page = lib.search()
        assert [e.id for e in page.entries] == [good.id] and [s.id for s in page.skipped] == [bad.id]


def test_default_url_and_env(tmp_path, monkeypatch):
    monkeypatch.setenv("CLOTHINGGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(URL_ENV, raising=False)
    assert default_url() == f"sqlite:///{tmp_path / 'cache' / 'library.sqlite'}"
    monkeypatch.setenv(URL_ENV, f"sqlite:///{tmp_path / 'team.sqlite'}")
    with DesignLibrary() as lib:
        lib.save(design(7))
    assert (tmp_path / "team.sqlite").is_file() and not (tmp_path / "cache" / "library.sqlite").exists()


def test_postgres_urls_mean_psycopg_3():
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgres://u@h:5/db") == "postgresql+psycopg://u@h:5/db"
    assert normalise_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"


@pytest.mark.parametrize("bad", ["nosuchdb://x/y", "not a url at all"])
def test_unusable_urls_are_one_typed_error(bad):
    with pytest.raises(LibraryUnavailableError, match="cannot be used"):
        DesignLibrary(bad)


def test_unreachable_server_is_one_typed_error():
    port = __import__("pg_fixture").free_port()  # nothing listens there
    started = time.monotonic()
    with pytest.raises(LibraryUnavailableError, match=r"could not open .*try again") as info:
        DesignLibrary(f"postgresql://nobody@127.0.0.1:{port}/nothing")
    assert time.monotonic() - started < 15 and "\n" not in str(info.value)
    assert isinstance(info.value, ClothingGANError)


def test_in_memory_library_is_shared_between_threads():
    with DesignLibrary("sqlite://") as lib:
        threads = [threading.Thread(target=lib.save, args=(design(i, name=f"t{i}"),)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(lib) == 4


def test_pool_serves_streamlit_sized_thread_counts(library):
    """Every session's rerun runs in its own thread: many at once must neither fail nor queue out."""
    assert library.engine.pool.size() == POOL_SIZE

    def work(k: int) -> None:
        for i in range(5):
            library.save(design(100 * k + i, name=f"{k}-{i}"), author=f"u{k}")
            library.search(author=f"u{k}", limit=5)

    errors = run_in_threads(work, 24)
    assert not errors, errors
    assert len(library) == 120


def test_lost_connections_are_retried_and_a_down_server_is_one_sentence(postgres_server, postgres_url):
    lib = DesignLibrary(postgres_url)
    try:
        d = design(8)
        lib.save(d, author="ana")
        # The server drops every connection (restart, network blip): the next call reconnects.
        assert postgres_server.terminate_connections(postgres_url) >= 1
        assert lib.load(d.id) == d
        # Every pooled connection dropped (pool of several): each is replaced, nothing fails.
        threads = [threading.Thread(target=lib.list) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        postgres_server.terminate_connections(postgres_url)
        assert all([e.id for e in lib.list()] == [d.id] for _ in range(8))
        postgres_server.stop()
        try:
            for call in (lib.list, lambda: lib.save(design(9)), lambda: lib.load(d.id)):
                with pytest.raises(LibraryUnavailableError, match=r"could not .*127\.0\.0\.1.*try again") as info:
                    call()
                assert "\n" not in str(info.value) and "Traceback" not in str(info.value)
        finally:
            postgres_server.start()
        # Back up: the same library object works again, and the failed save can simply be repeated.
        lib.save(design(9), author="ana")
        assert len(lib) == 2
    finally:
        lib.close()


def test_retry_happens_once_then_gives_up(monkeypatch, tmp_path):
    from sqlalchemy.exc import OperationalError

    lib = DesignLibrary(f"sqlite:///{tmp_path / 'lib.sqlite'}")
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("SELECT", {}, Exception("server closed the connection unexpectedly"))
        return "ok"

    monkeypatch.setattr("clothinggan.library.RETRY_DELAY_S", 0.0)
    assert lib._run("list designs", flaky) == "ok" and len(calls) == 2

    def down():
        calls.append(1)
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    calls.clear()
    with pytest.raises(LibraryUnavailableError, match="connection refused"):
        lib._run("list designs", down)
    assert len(calls) == 2
    lib.close()


OPENER = textwrap.dedent("""
    import sys
    import types

    package = types.ModuleType("clothinggan")
    package.__path__ = [sys.argv[2]]
    sys.modules["clothinggan"] = package

    from clothinggan.library import DesignLibrary

    print("ready", flush=True)
    sys.stdin.readline()
    with DesignLibrary(sys.argv[1]) as lib:
        print("opened", len(lib), flush=True)
""")


def start_workers(script: str, args_per_worker: list[list[str]]) -> list[subprocess.Popen]:
    """Worker processes that import the library (not torch) and wait on stdin to start together."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", script, *args, str(REPO_ROOT / "clothinggan")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for args in args_per_worker]
    for p in procs:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
    return procs


def release(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.stdin.write("go\n")
    for p in procs:
        p.stdin.flush()


@contextmanager
def workers(script: str, args_per_worker: list[list[str]], expected: str) -> Iterator[list[subprocess.Popen]]:
    """Started workers; after the block each must have exited 0 printing ``expected`` (killed if not done)."""
    procs = start_workers(script, args_per_worker)
    try:
        yield procs
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0 and out.strip() == expected, err
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def test_concurrent_first_start_creates_the_schema_once(postgres_server):
    """Issue 11: two app processes starting on a fresh database died with UniqueViolation in pg_type."""
    for _ in range(3):  # the race is narrow: a few fresh databases make losing it likely without the lock
        url = postgres_server.new_database()
        with workers(OPENER, [[url] for _ in range(4)], "opened 0") as procs:
            release(procs)


WRITER = textwrap.dedent("""
    import sys
    import types

    # Skip the package __init__ (it loads torch): the workers then start in a fraction of a second.
    package = types.ModuleType("clothinggan")
    package.__path__ = [sys.argv[4]]
    sys.modules["clothinggan"] = package

    import numpy as np
    from clothinggan.designs import Design
    from clothinggan.library import DesignLibrary

    url, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print("ready", flush=True)
    sys.stdin.readline()  # start together with the other writers
    lib = DesignLibrary(url)  # opening a new library concurrently is part of the test
    for i in range(n):
        ws = np.full((6, 8), i, np.float32)
        lib.save(Design(ws=ws, model_id="m1", name=f"{tag}-{i}", id=f"{tag}-{i}"), author=tag)
        lib.save(Design(ws=ws, model_id="m1", name=f"shared by {tag}", id="shared"), author=tag)
    lib.close()
    print("done", flush=True)
""")


def test_concurrent_processes_and_threads(url):
    n_proc, n_thread = 40, 20
    errors: list[BaseException] = []
    with workers(WRITER, [[url, tag, str(n_proc)] for tag in ("p0", "p1")], "done") as procs:

        def write(tag: str) -> None:
            try:
                for i in range(n_thread):
                    ws = np.full((6, 8), -i, np.float32)
                    lib.save(Design(ws=ws, model_id="m1", name=f"{tag}-{i}", id=f"{tag}-{i}"))
                    if i % 5 == 0 and "shared" in lib:  # updates race with the processes' upserts
                        lib.rename("shared", f"renamed by {tag}")
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)

        release(procs)
        lib = DesignLibrary(url)
        threads = [threading.Thread(target=write, args=(f"t{k}",)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors
    # Whichever process saved "shared" first owns it; the other's saves went to its own copy.
    owner = lib.search(text="shared", limit=None)
    shared = {e.id: e.author for e in lib.list() if e.id == "shared"}
    [first] = shared.values()
    other = "p1" if first == "p0" else "p0"
    expected = {f"p{k}-{i}" for k in range(2) for i in range(n_proc)}
    expected |= {f"t{k}-{i}" for k in range(4) for i in range(n_thread)} | {"shared", copy_id("shared", other)}
    entries = lib.list()
    assert len(entries) == len(expected) and {e.id for e in entries} == expected, owner
    for e in entries:
        if e.id not in ("shared", copy_id("shared", other)):
            value = int(e.id.split("-")[1]) * (1 if e.id.startswith("p") else -1)
            np.testing.assert_array_equal(lib.load(e.id).ws, np.full((6, 8), value, np.float32))
    assert lib.load("shared").name.startswith((f"shared by {first}", "renamed by"))
    assert lib.load(copy_id("shared", other)).name.startswith((f"shared by {other}", "renamed by"))
    if lib.engine.dialect.name == "sqlite":
        assert raw(lib, "PRAGMA integrity_check") == [("ok",)]
    lib.close()


def test_a_few_hundred_designs_page_quickly(library):
    """Issue 9 #7: 300 designs made the Library page take 43 s per rerun; one page must be instant."""
    library.save_many([design(i, name=f"design {i}") for i in range(300)], author="ana")
    statements = []
    event.listen(library.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    page = library.search(model_id="m1", text="design", author="ana", offset=120, limit=24)
    loaded = library.load_many(e.id for e in page.entries)
    assert page.total == 300 and len(loaded) == 24
    # One page costs the same few queries whatever the library's size: rows, count, their designs.
    assert len(statements) <= 3, statements

"""One session open in several tabs (or on several replicas): no tab's designs are lost.

Each tab writes the session draft only over the revision it last read or wrote; when another tab
wrote in between, the three are merged (theirs added and deleted, this tab's own changes kept).
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Column, Double, LargeBinary, MetaData, String, Table, text
from conftest import run_in_threads
from test_app import APP, TIMEOUT, AppTest, generate, ok, store_of

from clothinggan import drafts
from clothinggan.designs import Design
from clothinggan.library import DesignLibrary, Draft
from clothinggan.store import LatentStore


def design(name: str, seed: int = 0, model_id: str = "m") -> Design:
    ws = np.random.default_rng(seed).standard_normal((4, 8)).astype(np.float32)
    return Design(ws=ws, model_id=model_id, name=name)


@pytest.fixture(params=["sqlite", "postgresql"])
def library(request, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'lib.sqlite'}" if request.param == "sqlite" \
        else request.getfixturevalue("postgres_url")
    lib = DesignLibrary(url)
    yield lib
    lib.close()


# -- the merge ----------------------------------------------------------------------------------------
def test_the_merge_keeps_both_sides_additions_and_deletions():
    a, b, c, d = (design(n, i) for i, n in enumerate("abcd"))
    base = [a, b, c]
    mine = [a, b, c, design("mine", 10)]         # I added one
    theirs = [b, c, d]                           # they deleted a and added d
    merged = drafts.merge_designs(base, mine, theirs)
    assert [x.name for x in merged] == ["b", "c", "d", "mine"]  # d after c, where they put it


def test_the_merge_keeps_renames_and_never_loses_an_edit_to_a_delete():
    a, b, c = design("a", 1), design("b", 2), design("c", 3)
    base = [a, b, c]
    mine = [a.with_name("a mine"), b, c.with_name("c mine")]
    theirs = [a.with_name("a theirs"), b.with_name("b theirs")]  # they deleted c, which I renamed
    merged = drafts.merge_designs(base, mine, theirs)
    assert [x.name for x in merged] == ["a mine", "b theirs", "c mine"]
    assert [x.id for x in merged] == [a.id, b.id, c.id]
    # The other way round: I deleted b, which they renamed.
    merged = drafts.merge_designs(base, [a, c], [a, b.with_name("b theirs"), c])
    assert [x.name for x in merged] == ["a", "b theirs", "c"]


def test_a_garment_both_tabs_added_is_kept_once():
    a = design("a", 1)
    mine_copy, their_copy = design("seed 7", 7), design("seed 7", 7)  # one seed generated in each tab
    assert mine_copy.id != their_copy.id
    merged = drafts.merge_designs([a], [a, mine_copy], [a, their_copy, design("b", 2)])
    assert [x.id for x in merged] == [a.id, merged[1].id, mine_copy.id] and merged[1].name == "b"


def test_the_merge_takes_their_order_when_mine_is_unmoved():
    a, b, c = design("a", 1), design("b", 2), design("c", 3)
    assert [x.name for x in drafts.merge_designs([a, b, c], [a, b.with_name("B"), c], [c, a, b])] == ["c", "a", "B"]
    assert [x.name for x in drafts.merge_designs([a, b, c], [c, b, a], [b, a, c])] == ["c", "b", "a"]


def test_merging_sessions_covers_every_model_and_keeps_names_unique():
    x1, y1 = design("seed 1", 1, "x"), design("y", 2, "y")
    base = {"x": (x1,)}
    mine = {"x": LatentStore("x", [x1, design("seed 2", 3, "x")])}
    theirs = {"x": LatentStore("x", [x1, design("seed 2", 4, "x")]), "y": LatentStore("y", [y1])}
    merged = drafts.merge_sessions(base, mine, theirs)
    assert list(merged) == ["x", "y"]
    # Two garments of one name: both kept, and the one this tab shows keeps its name.
    assert merged["x"].names() == ["seed 1", "seed 2 (2)", "seed 2"]
    assert merged["x"].get(mine["x"].ids()[1]).name == "seed 2"
    assert merged["y"].ids() == [y1.id]


# -- the library's compare-and-swap -------------------------------------------------------------------
def test_a_draft_is_written_only_over_the_revision_its_writer_saw(library):
    token = drafts.new_token()
    assert library.save_draft(token, b"a", None) == 1
    assert library.save_draft(token, b"b", None) is None  # another tab inserted first
    assert library.save_draft(token, b"b", 1) == 2
    assert library.save_draft(token, b"c", 1) is None     # a tab behind by one write
    kept = library.load_draft(token)
    assert (kept.data, kept.revision) == (b"b", 2)


def test_a_library_made_before_revisions_gets_them_and_keeps_its_drafts(library):
    old = Table("drafts", MetaData(), Column("token", String(64), primary_key=True),
                Column("data", LargeBinary, nullable=False), Column("updated", Double, nullable=False))
    token = drafts.new_token()
    with library.engine.begin() as conn:  # the drafts table as libraries made before revisions have it
        conn.execute(text("DROP TABLE drafts"))
        old.create(conn)
        conn.execute(old.insert().values(token=token, data=b"old", updated=time.time()))
    with DesignLibrary(library.url) as lib, DesignLibrary(library.url) as again:  # upgrading twice is harmless
        assert lib.load_draft(token) == Draft(b"old", 0)
        assert lib.save_draft(token, b"new", 0) == 1
        assert again.save_draft(token, b"lost", 0) is None
        assert again.load_draft(token) == Draft(b"new", 1)


def test_tabs_writing_at_once_lose_nothing(library):
    token = drafts.new_token()
    start = LatentStore("m", [design("first", 0)])
    revision = drafts.sync(library, token, {"m": start}, drafts.Synced()).synced
    ready = threading.Barrier(4)

    def tab(n: int) -> None:
        store = LatentStore("m", list(start))
        ready.wait()
        synced = revision
        for k in range(2):  # two writes each: 6 by the others, fewer than SYNC_ATTEMPTS
            store.add(design(f"tab {n} #{k}", 1000 + 100 * n + k))
            result = drafts.sync(library, token, {"m": store}, synced)
            synced = result.synced
            store = result.merged["m"] if result.merged else store

    errors = run_in_threads(tab, 4)
    assert not errors, errors
    kept = library.load_draft(token)
    assert kept.revision == 1 + 8
    assert sorted(drafts.decode_session(kept.data)["m"].names()) == \
        sorted(["first"] + [f"tab {n} #{k}" for n in range(4) for k in range(2)])


def test_a_sync_reports_what_another_tab_changed_and_replaces_a_damaged_draft(library):
    token = drafts.new_token()
    a, b = design("a", 1), design("b", 2)
    synced = drafts.sync(library, token, {"m": LatentStore("m", [a, b])}, drafts.Synced()).synced
    other = drafts.sync(library, token, {"m": LatentStore("m", [a, design("c", 3)])}, synced)  # deletes b
    assert other.merged is None and other.synced.revision == 2
    result = drafts.sync(library, token, {"m": LatentStore("m", [a.with_name("A"), b, design("d", 4)])}, synced)
    assert (result.added, result.removed, result.renamed) == (1, 1, 0)
    assert result.merged["m"].names() == ["A", "c", "d"] and result.synced.revision == 3
    library.save_draft(token, b"not a draft", 3)
    mine = {"m": LatentStore("m", [a])}
    assert drafts.sync(library, token, mine, result.synced).merged is None
    assert drafts.decode_session(library.load_draft(token).data)["m"].ids() == [a.id]


# -- the app ------------------------------------------------------------------------------------------


def tab(token: str) -> AppTest:
    """A browser tab on the session's address: a new Streamlit session with the same ``?s=``."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["s"] = token
    at.run()
    ok(at)
    return at


def add_seed(at: AppTest, seed: int) -> None:
    generate(at, str(seed))
    at.button(key="add_all").click().run()
    ok(at)


def names(at: AppTest) -> list[str]:
    return [d.name for d in store_of(at)]


def started_session() -> str:
    """A session that has kept three designs; returns its token."""
    first = AppTest.from_file(APP, default_timeout=TIMEOUT)
    first.run()
    generate(first, "0-2")
    first.button(key="add_all").click().run()
    ok(first)
    assert len(store_of(first)) == 3
    return first.session_state["session_token"]


def test_designs_added_in_two_tabs_are_both_kept(app_env):
    token = started_session()
    a, b = tab(token), tab(token)
    add_seed(a, 500)
    assert names(a) == ["seed 0", "seed 1", "seed 2", "seed 500"]
    add_seed(b, 600)  # b last read the draft before a's change: it merges a's design in
    assert names(b) == ["seed 0", "seed 1", "seed 2", "seed 500", "seed 600"]
    assert any("another tab" in i.value for i in b.info), [i.value for i in b.info]
    assert names(tab(token)) == ["seed 0", "seed 1", "seed 2", "seed 500", "seed 600"]  # the reload
    # a, behind b now, adds again: nothing of b's is lost either.
    add_seed(a, 700)
    assert set(names(tab(token))) == {"seed 0", "seed 1", "seed 2", "seed 500", "seed 600", "seed 700"}


def two_tabs_on_the_library() -> tuple[str, AppTest, AppTest, list[str]]:
    """A kept session open in two tabs, the first on Library: its token, the tabs and its design ids."""
    token = started_session()
    a, b = tab(token), tab(token)
    a.switch_page("app_pages/library.py").run()
    return token, a, b, store_of(a).ids()


def test_deletes_and_renames_in_one_tab_reach_the_other(app_env):
    token, a, b, ids = two_tabs_on_the_library()
    a.button(key=f"del_{ids[0]}").click().run()
    a.text_input(key=f"name_{ids[1]}").set_value("kept coat").run()
    ok(a)
    assert names(a) == ["kept coat", "seed 2"]
    add_seed(b, 600)  # b never touched seed 0 or seed 1: a's delete and rename win
    assert names(b) == ["kept coat", "seed 2", "seed 600"]
    assert names(tab(token)) == ["kept coat", "seed 2", "seed 600"]


def test_a_tab_keeps_its_own_rename_of_a_design_the_other_deleted(app_env):
    token, a, b, ids = two_tabs_on_the_library()
    a.button(key=f"del_{ids[2]}").click().run()
    ok(a)
    b.switch_page("app_pages/library.py").run()
    b.text_input(key=f"name_{ids[2]}").set_value("my favourite").run()
    ok(b)
    assert names(b) == ["seed 0", "seed 1", "my favourite"]  # b's own edit outlives a's delete
    assert names(tab(token)) == ["seed 0", "seed 1", "my favourite"]


def test_starter_designs_deleted_stay_deleted_after_a_reload(app_env, monkeypatch):
    monkeypatch.setenv("CLOTHINGGAN_STARTER_SEEDS", "0-5")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    ok(at)
    assert len(store_of(at)) == 6
    token = at.session_state["session_token"]
    at.switch_page("app_pages/library.py").run()
    for design_id in store_of(at).ids():
        at.button(key=f"del_{design_id}").click().run()
    ok(at)
    assert len(store_of(at)) == 0
    assert len(store_of(tab(token))) == 0  # an empty draft is a draft: no starter designs again
    # A new address still gets them.
    fresh = AppTest.from_file(APP, default_timeout=TIMEOUT)
    fresh.run()
    assert len(store_of(fresh)) == 6


def test_a_visit_that_makes_nothing_writes_no_draft(app_env):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    generate(at, "0-1")
    ok(at)
    with DesignLibrary(app_env) as lib:
        assert lib.load_draft(at.session_state["session_token"]) is None


def test_every_page_link_keeps_the_session_and_the_name(app_env):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["author"] = "Ada"
    at.run()
    ok(at)
    token = at.session_state["session_token"]
    links = at.sidebar.get("page_link")
    assert [link.proto.label for link in links] == ["Generate", "Style mix", "Attribute edit", "PCA explorer",
                                                    "Upload & edit", "Library"]
    # "Open in new tab" follows the link's address: with the token it finds this session's designs.
    assert {link.proto.query_string for link in links} == {f"s={token}&author=Ada"}

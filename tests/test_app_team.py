"""AppTest runs of the team library: per-design saving, the author's name, search, filters and paging."""
from __future__ import annotations

import numpy as np
from test_app import APP, TIMEOUT, AppTest, generate, ok, store_of

import clothinggan as cg
from clothinggan.designs import Design
from clothinggan.library import DesignLibrary




def start(page: str | None = None, author: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if author:
        at.query_params["author"] = author
    at.run()
    if page:
        at.switch_page(page).run()
    ok(at)
    return at


def saved_designs(tiny_model, n: int, authors=("ana", "bo", None)) -> list[Design]:
    G = cg.load_generator(str(tiny_model))
    rng = np.random.default_rng(0)
    return [Design(ws=rng.standard_normal((G.num_ws, G.w_dim)).astype(np.float32), model_id=G.fingerprint,
                   name=f"{'special ' if i % 10 == 0 else ''}coat {i}") for i in range(n)], authors


def load_buttons(at: AppTest) -> list[str]:
    return [b.key for b in at.button if b.key and b.key.startswith("lib_load_")]


def test_one_design_saved_from_generate_shows_in_the_team_tab_under_its_author(app_env):
    at = start()
    at.text_input(key="author").set_value("Ada").run()
    generate(at, "0-3")
    ok(at)
    design = at.session_state["generated"][1]
    at.button(key=f"team_{design.id}").click().run()
    ok(at)
    assert any("Saved" in s.value and "team library" in s.value for s in at.success)
    assert len(store_of(at)) == 0  # saving to the team does not also add it to the session
    with DesignLibrary(app_env) as lib:
        [entry] = lib.list()
    assert (entry.id, entry.author) == (design.id, "Ada")
    at.switch_page("app_pages/library.py").run()
    ok(at)
    assert load_buttons(at) == [f"lib_load_{design.id}"]
    assert any("by Ada" in c.value for c in at.caption)
    at.button(key=f"lib_load_{design.id}").click().run()
    ok(at)
    assert store_of(at).ids() == [design.id]


def test_the_authors_name_comes_back_from_the_page_address(app_env):
    at = start(author="Bea")
    assert at.session_state["author"] == "Bea"
    assert at.query_params["author"] == ["Bea"] or at.query_params["author"] == "Bea"


def test_team_tab_pages_searches_and_filters_by_author(app_env, tiny_model):
    designs, authors = saved_designs(tiny_model, 30)
    with DesignLibrary(app_env) as lib:
        for i, d in enumerate(designs):
            lib.save(d, author=authors[i % 3])
    at = start("app_pages/library.py")
    first_page = load_buttons(at)
    assert len(first_page) == 24 and len(at.image) >= 24
    at.button(key="lib_next").click().run()
    ok(at)
    second_page = load_buttons(at)
    assert len(second_page) == 6 and not set(first_page) & set(second_page)
    at.text_input(key="lib_q").set_value("SPECIAL").run()  # back to page 1, any case
    ok(at)
    assert sorted(load_buttons(at)) == sorted(f"lib_load_{d.id}" for d in designs[::10])
    at.text_input(key="lib_q").set_value("").run()
    at.selectbox(key="lib_author").set_value("bo").run()
    ok(at)
    assert sorted(load_buttons(at)) == sorted(f"lib_load_{d.id}" for d in designs[1::3])
    at.selectbox(key="lib_author").set_value("Anonymous").run()
    assert sorted(load_buttons(at)) == sorted(f"lib_load_{d.id}" for d in designs[2::3])


def test_only_a_designs_author_may_delete_it(app_env, tiny_model):
    designs, _ = saved_designs(tiny_model, 2)
    with DesignLibrary(app_env) as lib:
        lib.save(designs[0], author="ana")
        lib.save(designs[1], author="bo")
    at = start("app_pages/library.py", author="ana")
    assert at.button(key=f"lib_del_{designs[1].id}").disabled
    at.button(key=f"lib_del_{designs[0].id}").click().run()
    ok(at)
    with DesignLibrary(app_env) as lib:
        assert [e.id for e in lib.list()] == [designs[1].id]
    assert load_buttons(at) == [f"lib_load_{designs[1].id}"]


def test_a_library_that_is_down_is_one_message_and_the_session_keeps_its_designs(app_env, monkeypatch):
    at = start()
    generate(at, "0-1")
    design = at.session_state["generated"][0]
    at.button(key=f"add_{design.id}").click().run()
    monkeypatch.setenv("CLOTHINGGAN_LIBRARY_URL", "postgresql://nobody@127.0.0.1:9/none")
    at.button(key=f"team_{design.id}").click().run()
    assert not at.exception
    assert len(at.error) == 1 and "could not" in at.error[0].value
    assert store_of(at).ids() == [design.id]


def test_your_copy_of_a_teammates_design_shows_as_loaded_and_save_all_keeps_the_order(app_env, tiny_model):
    designs, _ = saved_designs(tiny_model, 5)
    with DesignLibrary(app_env) as lib:
        lib.save_many(designs, author="ana")
        # One "Save all": listed in the order given, not in the order of the random ids.
        assert [e.id for e in lib.search(author="ana", limit=None).entries] == [d.id for d in designs]
    at = start("app_pages/library.py", author="bo")
    at.button(key=f"lib_load_{designs[2].id}").click().run()
    at.button(key="lib_save_all").click().run()   # saved as bo's own copy, under an id of its own
    ok(at)
    with DesignLibrary(app_env) as lib:
        [copy] = lib.search(author="bo", limit=None).entries
    assert copy.id != designs[2].id
    assert at.button(key=f"lib_load_{copy.id}").disabled        # the same garment is in the session
    assert at.button(key=f"lib_load_{copy.id}").label == "Loaded"
    assert not at.button(key=f"lib_load_{designs[3].id}").disabled

"""Session drafts: a session's designs survive a reload, a restart and a lost connection (issue 9, item 8)."""
from __future__ import annotations

import numpy as np
import pytest
from test_app import APP, TIMEOUT, AppTest, generate, ok, store_of

from clothinggan import drafts
from clothinggan.errors import LatentFormatError
from clothinggan.designs import Design
from clothinggan.store import LatentStore
from clothinggan.library import DesignLibrary


def store(model_id: str, n: int, num_ws: int = 4) -> LatentStore:
    rng = np.random.default_rng(n)
    return LatentStore(model_id, [Design(ws=rng.standard_normal((num_ws, 8)).astype(np.float32), model_id=model_id,
                                         name=f"d{i}") for i in range(n)])


def test_a_draft_round_trips_every_store_exactly(tmp_path):
    stores = {"m1": store("m1", 3), "m2": store("m2", 2, num_ws=6), "m3": LatentStore("m3")}
    back = drafts.decode_session(drafts.encode_session(stores))
    assert set(back) == {"m1", "m2", "m3"}  # an empty store is kept: its model is not new to the session
    for model_id in back:
        assert list(back[model_id]) == list(stores[model_id])
    assert drafts.fingerprint(back) == drafts.fingerprint(stores)
    with DesignLibrary(f"sqlite:///{tmp_path / 'lib.sqlite'}") as lib:
        token = drafts.new_token()
        assert lib.load_draft(token) is None
        assert lib.save_draft(token, b"first", None) == 1
        assert lib.save_draft(token, drafts.encode_session(stores), 1) == 2
        kept = lib.load_draft(token)
        assert kept.revision == 2
        assert drafts.fingerprint(drafts.decode_session(kept.data)) == drafts.fingerprint(stores)
        assert len(lib) == 0  # drafts are not saved designs


@pytest.mark.parametrize("data", [b"", b"{", b"[]", b'{"format": "other", "stores": []}',
                                  b'{"format": "clothinggan-session", "stores": [1]}', b"[" * 100_000])
def test_a_damaged_draft_is_a_typed_error(data):
    with pytest.raises(LatentFormatError):
        drafts.decode_session(data)


def test_only_well_formed_tokens_are_looked_up():
    assert drafts.is_token(drafts.new_token()) and drafts.new_token() != drafts.new_token()
    for bad in (None, "", "short", "x" * 65, "../../etc/passwd", "a b c d e f g h i j", 42):
        assert not drafts.is_token(bad)




def test_a_reload_brings_the_sessions_designs_back(app_env):
    first = AppTest.from_file(APP, default_timeout=TIMEOUT)
    first.run()
    generate(first, "0-3")
    for d in first.session_state["generated"][:3]:
        first.button(key=f"add_{d.id}").click().run()
    ok(first)
    token = first.session_state["session_token"]
    assert drafts.is_token(token)
    kept = list(store_of(first))
    # A reload is a new session with the same address.
    second = AppTest.from_file(APP, default_timeout=TIMEOUT)
    second.query_params["s"] = token
    second.run()
    ok(second)
    assert list(store_of(second)) == kept
    assert any("Welcome back" in i.value for i in second.info)
    # A stranger's address (or none) starts empty, with a token of its own.
    third = AppTest.from_file(APP, default_timeout=TIMEOUT)
    third.query_params["s"] = drafts.new_token()
    third.run()
    ok(third)
    assert "stores" not in third.session_state or not any(len(s) for s in third.session_state["stores"].values())


def test_a_failed_backup_says_so_and_keeps_the_designs_in_the_tab(app_env, monkeypatch):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    generate(at, "0-1")
    monkeypatch.setenv("CLOTHINGGAN_LIBRARY_URL", "postgresql://nobody@127.0.0.1:9/none")
    d = at.session_state["generated"][0]
    at.button(key=f"add_{d.id}").click().run()
    assert not at.exception
    assert any("could not be backed up" in t.value for t in at.toast)
    assert store_of(at).ids() == [d.id]

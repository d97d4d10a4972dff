"""Server-start warm-up: streamlit run serves the app through st.App, whose lifespan fills the caches."""
from __future__ import annotations

import gc
import logging
from pathlib import Path

import pytest

from conftest import APP


def test_streamlit_run_finds_the_app_with_its_warm_up() -> None:
    from streamlit.web.server.app_discovery import discover_asgi_app

    found = discover_asgi_app(Path(APP))
    assert found.is_asgi_app and found.import_string.endswith(":app")


def test_warm_up_loads_the_default_model_and_renders_the_first_page(app_env, caplog, monkeypatch) -> None:
    from clothinggan.designs import designs_from_seeds
    from clothinggan.seeds import parse_seeds
    from clothinggan.ui import heap, load, resources, state, warmup, widgets

    runs_seen: list[int] = []
    render_designs = resources.render_designs

    def counting_render(G, designs):  # the warm-up counts as a run: a session beside it sees two
        runs_seen.append(load.active_runs())
        return render_designs(G, designs)

    monkeypatch.setattr(resources, "render_designs", counting_render)
    freezes: list[bool] = []
    monkeypatch.setattr(heap, "_enabled", False)  # restored after: this test process stays unfrozen
    monkeypatch.setattr(heap, "freeze_soon", lambda: freezes.append(True))
    resources.IMAGES.clear()
    resources.SHOWN.clear()
    warmup.warm()
    G = resources.load_model(resources.default_spec())  # the warm-up's own object: a cache hit
    first = designs_from_seeds(G, parse_seeds(state.FIRST_SEEDS), state.DEFAULT_PSI)
    keys = [resources.IMAGES.key(G.fingerprint, d.ws) for d in first]
    assert len(first) == 8 and all(resources.IMAGES.get(k) is not None for k in keys)
    assert gc.isenabled()  # paused for the imports only
    assert len(resources.SHOWN) == 8  # the JPEGs Generate sends, made already:
    for image in (resources.IMAGES.get(k) for k in keys):  # as Generate shows its cards: cache hits
        widgets.shown_url(image, widgets.CARD_PX, fill=True)
    assert len(resources.SHOWN) == 8
    assert runs_seen == [1] and load.active_runs() == 0
    assert heap._enabled and freezes == [True]  # a server freezes its long-lived objects once warm
    assert not [r for r in caplog.records if r.name.startswith("clothinggan") and r.levelno >= logging.WARNING]


def test_a_failing_warm_up_only_logs(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    from clothinggan.ui import heap, resources, warmup

    monkeypatch.setattr(heap, "_enabled", False)  # restored after the test
    monkeypatch.setattr(resources, "default_spec", lambda: "no-such-model-anywhere")
    with caplog.at_level(logging.WARNING):
        warmup.warm()
    assert "first session will" in caplog.text
    assert gc.isenabled()

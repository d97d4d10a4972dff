"""AppTest runs of the Style mix page: designs typed as seeds, and what they inherit from Generate."""
from __future__ import annotations

import numpy as np
from test_app import ok, store_of

import clothinggan as cg
from clothinggan.designs import Design
from clothinggan.mixing import mix_designs


def test_from_a_seed_uses_the_variety_last_used_on_generate(app, tiny_model) -> None:
    """Issue 10: Style mix read the Generate slider's state, which Streamlit drops off that page."""
    app.slider(key="psi").set_value(1.0)
    app.button(key="FormSubmitter:generate_form-Generate").click().run()
    app.switch_page("app_pages/style_mix.py").run()
    app.run()  # the rerun after the first one without Generate's widgets: their state is gone by now
    ok(app)
    app.button(key="mix_add").click().run()
    ok(app)
    [mixed] = list(store_of(app))
    G = cg.load_generator(str(tiny_model))

    def expected(psi: float) -> np.ndarray:
        a, b = (Design.from_seed(G, s, psi=psi, name=f"seed {s}") for s in (0, 1))
        return mix_designs(a, b, 0.0, 1.0).ws

    np.testing.assert_allclose(mixed.ws, expected(1.0), atol=1e-5)
    assert not np.allclose(mixed.ws, expected(0.7), atol=1e-3)
    # Back on Generate, the slider shows the variety in use, not its first default.
    app.switch_page("app_pages/generate.py").run()
    assert app.slider(key="psi").value == 1.0


def test_the_mixing_grid_mixes_by_the_rule_chosen_above(app, monkeypatch) -> None:
    """It used the default structure/style split whatever the sliders and the mixing rule said."""
    from clothinggan import mixing

    calls: list[np.ndarray] = []
    real = mixing.mixing_matrix_ws
    monkeypatch.setattr(mixing, "mixing_matrix_ws", lambda *a, **kw: calls.append(real(*a, **kw)) or calls[-1])
    app.text_input(key="seeds_text").set_value("0, 1")
    app.button(key="FormSubmitter:generate_form-Generate").click().run()
    app.button(key="add_all").click().run()
    app.switch_page("app_pages/style_mix.py").run()
    a, b = list(store_of(app))
    app.radio(key="mix_mode").set_value("Pick layers from B").run()
    app.multiselect(key="mix_layers").set_value([0]).run()
    ok(app)
    cell = calls[-1][0, 1]  # row a, column b: layer 0 from b, the rest from a
    np.testing.assert_array_equal(cell[0], b.ws[0])
    np.testing.assert_array_equal(cell[1:], a.ws[1:])
    assert any("layers 0 from its column" in c.value for c in app.caption)
    app.radio(key="mix_mode").set_value("Structure / style sliders").run()
    app.slider(key="mix_style").set_value(0.0).run()   # neither structure nor style from B
    np.testing.assert_array_equal(calls[-1][0, 1], a.ws)

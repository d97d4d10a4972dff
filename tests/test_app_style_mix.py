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

"""Server-start warm-up: import torch, load the default model and render the first page's garments
while the first browser is still loading the front end.

A plain ``streamlit run`` runs nothing of the app until a browser connects, so the first visitor
waits for ``import torch`` (about 1 s), the model load and the first render after the front end has
loaded. ``streamlit_app.py`` therefore also defines an ``st.App`` whose lifespan runs :func:`warm`
in a daemon thread: the waits overlap, and the first script run finds the modules imported, the
model in ``st.cache_resource`` and its garments in the image cache. The server never waits for it.
"""
from __future__ import annotations

import gc
import logging

_LOG = logging.getLogger(__name__)


def warm() -> None:
    """Import the app's heavy modules, load the default model and render Generate's first garments
    (and their JPEGs as the page shows them).

    Both land in the process-wide caches the sessions use (``st.cache_resource`` and the image
    cache). A failure is only logged: the first session does the work again and shows its own message.
    """
    quiet = logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "missing ScriptRunContext": true here, and expected
    collecting = gc.isenabled()
    # Importing torch makes ~250,000 long-lived objects, and the collector walks them again and
    # again while they arrive: about a tenth of the import. They are frozen out of its view after.
    gc.disable()
    try:
        from clothinggan.designs import designs_from_seeds
        from clothinggan.seeds import parse_seeds
        from clothinggan.ui import heap, load, resources, state, widgets

        heap.enable()  # a long-running server: keep its full collections cheap (see heap)

        # Counted as a run: while the first session's script runs beside it, its render takes one
        # thread (a two-thread render starved by the browser loading on the same cores took
        # 0.2-0.5 s instead of 0.02), and that session waits for this render instead of its own.
        with load.script_run():
            G = resources.load_model(resources.default_spec())
            seeds = parse_seeds(state.FIRST_SEEDS)
            first = resources.render_designs(G, designs_from_seeds(G, seeds, state.DEFAULT_PSI))
            for image in first:  # as Generate shows them: the first run only looks them up
                widgets.shown_url(image, widgets.CARD_PX, fill=True)
        heap.freeze_soon()  # torch and the model are long-lived: out of every later full collection
    except Exception:  # noqa: BLE001 - reported properly by the first session's own load
        _LOG.warning("warm-up did not load the default model; the first session will", exc_info=True)
    finally:
        if collecting:
            gc.enable()
        quiet.setLevel(level)

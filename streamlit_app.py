"""ClothingGAN: the Streamlit app's entry point — page navigation, the shared sidebar, the model banner.

Run with ``streamlit run streamlit_app.py``. Streamlit finds the ``st.App`` at the bottom and serves
this same file as the page script (each session runs it as ``__main__``, as AppTest does); the App's
lifespan warms the model up while the first browser loads (``clothinggan/ui/warmup.py``).
Every page is a thin file in ``app_pages/`` (not ``pages/``: that folder name switches Streamlit to
its older multipage mode, which fights ``st.navigation``).
"""
import contextlib
import threading
from pathlib import Path
from typing import Any, AsyncIterator

import streamlit as st


def main() -> None:
    """One script run: navigation, the shared sidebar, the chosen page, the session's backup."""
    from clothinggan.ui import heap, load

    with load.script_run():  # counted: renders take fewer threads while other sessions run
        run_page()
    heap.freeze_soon()  # after a page's first visit imported more: keeps the per-run full GC cheap


def run_page() -> None:
    from clothinggan.ui import sidebar, state, widgets

    st.set_page_config(page_title="ClothingGAN", page_icon=":material/checkroom:", layout="wide")

    pages = [
        st.Page("app_pages/generate.py", title="Generate", icon=":material/auto_awesome:", default=True),
        st.Page("app_pages/style_mix.py", url_path="style-mix", title="Style mix", icon=":material/join_inner:"),
        st.Page("app_pages/attribute_edit.py", url_path="attribute-edit", title="Attribute edit", icon=":material/tune:"),
        st.Page("app_pages/pca_explorer.py", url_path="pca-explorer", title="PCA explorer", icon=":material/scatter_plot:"),
        st.Page("app_pages/invert.py", url_path="upload", title="Upload & edit", icon=":material/upload:"),
        st.Page("app_pages/library.py", url_path="library", title="Library", icon=":material/collections:"),
    ]
    # Streamlit's own sidebar links carry no address parameters, so "Open in new tab" on one started
    # an empty session: the links are drawn here instead, each with the session's token (?s=).
    page = st.navigation(pages, position="hidden")
    nav_slot = st.sidebar.container()  # filled once the sidebar has the session's name

    with widgets.guard():
        state.restore_model()  # a reload stays on the model the session was using
        state.restore_session()  # a reload, a dropped connection or a restart finds this session's designs again
    G, summary_slot = sidebar.render()
    with nav_slot:
        for link in pages:
            st.page_link(link, query_params=state.link_params(), width="stretch")
        st.divider()  # as under Streamlit's own page list
    if G is not None and not G.trained:
        st.warning("This is an untrained placeholder model: images are noise. Load a trained model in the "
                   "sidebar (Change model) to design real garments.", icon=":material/warning:")
    flash_slot = st.container()  # filled after the page: its buttons' callbacks may leave a message
    with widgets.guard():
        page.run()
    with flash_slot:
        state.show_flash()
    if G is not None:
        with summary_slot, widgets.guard():
            sidebar.store_summary(G)
    with widgets.guard():
        state.backup_session()


if __name__ == "__main__":
    main()
else:  # imported by ``streamlit run`` to find the app it serves

    def _warm_up() -> None:
        from clothinggan.ui.warmup import warm  # here, not above: importing clothinggan imports torch

        warm()

    @contextlib.asynccontextmanager
    async def _lifespan(_app: Any) -> AsyncIterator[None]:
        """Start the warm-up and return at once: the server starts as fast as without it."""
        threading.Thread(target=_warm_up, name="clothinggan-warm-up", daemon=True).start()
        yield None

    app = st.App(Path(__file__).resolve(), lifespan=_lifespan)

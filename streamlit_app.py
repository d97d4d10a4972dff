"""ClothingGAN: the Streamlit app's entry point — page navigation, the shared sidebar, the model banner.

Run with ``streamlit run streamlit_app.py``. Every page is a thin file in ``pages/``.
"""
import streamlit as st

from clothinggan.ui import sidebar, state, widgets

st.set_page_config(page_title="ClothingGAN", page_icon=":material/checkroom:", layout="wide")

page = st.navigation([
    st.Page("pages/generate.py", title="Generate", icon=":material/auto_awesome:", default=True),
    st.Page("pages/style_mix.py", title="Style mix", icon=":material/join_inner:"),
    st.Page("pages/attribute_edit.py", title="Attribute edit", icon=":material/tune:"),
    st.Page("pages/pca_explorer.py", title="PCA explorer", icon=":material/scatter_plot:"),
    st.Page("pages/invert.py", title="Upload & edit", icon=":material/upload:"),
    st.Page("pages/library.py", title="Library", icon=":material/collections:"),
])

G = sidebar.render()
if G is not None and not G.trained:
    st.warning("This is an untrained placeholder model: images are noise. Load a trained model in the "
               "sidebar (Change model) to design real garments.", icon=":material/warning:")
state.show_flash()
with widgets.guard():
    page.run()

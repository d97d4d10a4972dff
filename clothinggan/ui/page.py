"""What every page starts with: the session's model, its store of designs, and the page's title."""
from __future__ import annotations

import streamlit as st

from clothinggan.generator import Generator
from clothinggan.store import LatentStore
from clothinggan.ui import sidebar, state


def header(title: str, caption: str | None = None) -> tuple[Generator, LatentStore]:
    """Draw the title (and a caption); return the session's model and its store of designs."""
    G = sidebar.current_model()
    store = state.current_store(G)
    st.title(title)
    if caption:
        st.caption(caption)
    return G, store

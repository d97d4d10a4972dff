"""Per-session state: the model in use and one design store per model, all in ``st.session_state``.

Keeping a store per model means switching models never mixes designs, and switching back finds
the earlier ones again.
"""
from __future__ import annotations

import streamlit as st

from clothinggan.latents import LatentStore, store_for
from clothinggan.ui.resources import default_spec

MODEL_KEY = "model_spec"
STORES_KEY = "stores"
MODEL_NAMES_KEY = "model_names"
FLASH_KEY = "flash"


def model_spec() -> str:
    """The spec ("default", a path, a zoo name) of the model this session uses."""
    if MODEL_KEY not in st.session_state:
        st.session_state[MODEL_KEY] = default_spec()
    return st.session_state[MODEL_KEY]


def set_model_spec(spec: str) -> None:
    st.session_state[MODEL_KEY] = spec


def stores() -> dict[str, LatentStore]:
    if STORES_KEY not in st.session_state:
        st.session_state[STORES_KEY] = {}
    return st.session_state[STORES_KEY]


def current_store(G) -> LatentStore:
    """The session's store of G's designs (created empty on first use)."""
    names = st.session_state.setdefault(MODEL_NAMES_KEY, {})
    names[G.fingerprint] = G.name
    return store_for(stores(), G.fingerprint)


def other_stores(G) -> list[tuple[str, int]]:
    """(model name, number of designs) of the non-empty stores of other models."""
    names = st.session_state.get(MODEL_NAMES_KEY, {})
    return [(names.get(mid, mid[:12]), len(s)) for mid, s in stores().items()
            if mid != G.fingerprint and len(s)]


def flash(message: str, kind: str = "success") -> None:
    """A message to show once on the next run (after a rerun that would otherwise swallow it)."""
    st.session_state[FLASH_KEY] = (kind, message)


def show_flash() -> None:
    item = st.session_state.pop(FLASH_KEY, None)
    if item:
        kind, message = item
        {"success": st.success, "info": st.info, "warning": st.warning, "error": st.error}.get(kind, st.info)(message)

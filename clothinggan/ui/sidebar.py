"""The sidebar of every page: the model in use, the model picker and a summary of the session's designs.

Switching models only takes effect once the new model has loaded; a refused file leaves the current
model in place and says why in one sentence.
"""
from __future__ import annotations

import streamlit as st

import clothinggan as cg
from clothinggan import paths, precision
from clothinggan.errors import ClothingGANError
from clothinggan.ui import resources, state, widgets

MODEL_UPLOAD_MB = 200
MODEL_TYPES = ["pt", "pkl", "safetensors"]


def current_model() -> cg.Generator:
    """The session's model (loaded once per process)."""
    return resources.load_model(state.model_spec())


def _switch(spec: str, shown: str | None = None) -> bool:
    """Load ``spec``; on success make it the session's model and rerun, else explain and keep the old
    one (returns False). ``shown`` names the file in messages instead of ``spec`` (an upload's name,
    not where the server keeps it)."""
    try:
        G = resources.load_model(spec)
    except ClothingGANError as exc:
        reason = widgets.one_sentence(exc).replace(spec, shown) if shown else widgets.one_sentence(exc)
        st.error(f"That model could not be loaded, so the current one stays. {reason}")
        return False
    except Exception as exc:  # noqa: BLE001 - a broken file must not take the app down
        widgets.log.exception("model load failed")
        st.error(f"That file could not be loaded as a model ({type(exc).__name__}), so the current one stays.")
        return False
    state.set_model_spec(spec)
    state.flash(f"Now using {G.name}.")
    st.rerun()


def _switch_to_path(text: str) -> None:
    """A hub address, or a server path inside the configured model folders (anything else is refused)."""
    if text.startswith("hf://"):
        _switch(text)
        return
    try:
        path = paths.checked_model_path(text)
    except ClothingGANError as exc:
        st.error(f"That model could not be loaded, so the current one stays. {widgets.one_sentence(exc)}")
        return
    _switch(str(path))


def model_summary(G: cg.Generator) -> None:
    kind = "trained" if G.trained else "untrained placeholder"
    st.markdown(f"**Model:** {G.name}")
    st.caption(f"{G.resolution}×{G.resolution} px · {G.num_ws} layers · {kind} · {G.device.type.upper()} "
               f"{precision.label(G.dtype)}")
    digest = resources.model_file_sha256(G)
    if digest:
        st.caption(f"sha256 `{digest[:16]}…`", help=f"The model file's sha256: {digest}. Two files with the same "
                                                     "hash are the same model.")


def model_picker(G: cg.Generator) -> None:
    with st.expander("Change model", icon=":material/swap_horiz:"):
        source = st.radio("Where is the model?", ["Built-in", "File path", "Upload", "Download"],
                          key="model_source", horizontal=True)
        if source == "Built-in":
            st.caption("The model that ships with the app; works offline.")
            if st.button("Use the built-in model", key="model_builtin",
                         disabled=state.model_spec() == resources.default_spec()):
                _switch(resources.default_spec())
        elif source == "File path":
            path = st.text_input("Checkpoint path on the server", key="model_path",
                                 placeholder="models/lookbook.pkl or hf://owner/repo/file.pkl",
                                 help="A .safetensors, rosinality .pt or NVlabs .pkl generator in the app's model "
                                      "folders, or a file on the Hugging Face Hub (hf://owner/repo[@revision]/file).")
            if st.button("Load", key="model_path_load", disabled=not path.strip()):
                _switch_to_path(path.strip())
        elif source == "Upload":
            up = st.file_uploader("Generator file", type=MODEL_TYPES, key="model_upload",
                                  max_upload_size=MODEL_UPLOAD_MB,
                                  help=f".safetensors, rosinality .pt or NVlabs .pkl, up to {MODEL_UPLOAD_MB} MB. "
                                       "Pickles are read safely: no code in them is run.")
            if up is not None and st.button("Load uploaded model", key="model_upload_load"):
                saved = resources.save_uploaded_model(up.getvalue(), up.name)
                if not _switch(str(saved), shown=up.name):
                    resources.forget_uploaded_model(saved)
        else:
            _zoo_picker()


def _zoo_picker() -> None:
    from clothinggan import zoo

    if not zoo.MODELS:
        st.caption("No downloadable models are listed in this version.")
        return
    name = st.selectbox("Known models", list(zoo.MODELS), key="zoo_name",
                        format_func=lambda k: getattr(zoo.MODELS[k], "title", k))
    info = zoo.MODELS[name]
    facts = (f"{getattr(info, 'resolution', '?')} px", getattr(info, "licence", ""), getattr(info, "description", ""))
    st.caption(" · ".join(str(x) for x in facts if x))
    st.caption("Downloaded once, checked against its checksum, then kept in the cache.")
    if st.button("Download and use", key="zoo_fetch"):
        bar = st.progress(0.0, text="Downloading…")

        def progress(done: int, total: int | None) -> None:
            if total:
                bar.progress(min(done / total, 1.0), text=f"Downloading… {done / 2**20:.0f} of {total / 2**20:.0f} MB")

        try:
            path = zoo.fetch(name, progress=progress)
        except ClothingGANError as exc:
            st.error(f"The download failed, so the current model stays. {widgets.one_sentence(exc)}")
            return
        except OSError as exc:
            st.error(f"The download failed ({exc.__class__.__name__}), so the current model stays.")
            return
        _switch(str(path))


def store_summary(G: cg.Generator) -> None:
    store = state.current_store(G)
    n = len(store)
    st.markdown(f"**Your designs:** {n}")
    if n:
        designs = list(store)[-8:]
        images = resources.render_designs(G, designs)
        cols = st.columns(4)
        for i, (d, im) in enumerate(zip(designs, images)):
            cols[i % 4].image(resources.shown_url(im, 56, exact=True), width=56, caption=None)
        if n > 8:
            st.caption(f"The last 8 of {n}; all of them are in Library.")
    else:
        st.caption("None yet: add some on Generate.")
    for name, count in state.other_stores(G):
        st.caption(f"{count} design{'s' if count != 1 else ''} belong to model {name}; "
                   "switch back to see them.")


def render():
    """Draw the model part of the sidebar; returns the session's model (None if it could not be loaded)
    and the sidebar slot where ``store_summary`` goes once the page has run (so it counts its changes)."""
    with st.sidebar:
        with widgets.guard():
            try:
                G = current_model()
            except ClothingGANError as exc:
                # The session's model went away (a deleted file, a changed cache): offer the way back.
                st.error(f"The model in use could not be loaded. {widgets.one_sentence(exc)}")
                if state.model_spec() != resources.default_spec():
                    st.button("Use the built-in model", key="model_recover", on_click=state.set_model_spec,
                              args=(resources.default_spec(),))
                return None, None
            model_summary(G)
            model_picker(G)
            state.restore_author()
            st.text_input("Your name", key=state.AUTHOR_KEY, max_chars=80, placeholder="Shown on what you save",
                          help="Shown next to the designs you save to the team library; remembered in this "
                               "browser tab and its address.")
            st.divider()
            return G, st.container()
    return None, None

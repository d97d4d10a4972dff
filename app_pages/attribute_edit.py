"""Attribute edit: move a design along named directions (the model's own and ones you named), live preview."""
from dataclasses import replace

import streamlit as st

from clothinggan.animation import interpolation_ws
from clothinggan.designs import MAX_NAME_CHARS, fit_name
from clothinggan.directions import delete_user_direction, edit_design, load_directions
from clothinggan.ui import animate, load, page, resources, widgets

PCA_PAGE = "app_pages/pca_explorer.py"


LAYERS_TOGGLE = "edit_show_layers"


RESETS = "edit_resets"  # how many times "Reset sliders" was pressed: part of every slider's key


def slider_key(design_id: str, name: str) -> str:
    return f"edit_{st.session_state.get(RESETS, 0)}_{design_id[:8]}_{name}"


def range_key(design_id: str, name: str) -> str:
    return f"edit_range_{st.session_state.get(RESETS, 0)}_{design_id[:8]}_{name}"


def kept_range_key(design_id: str, name: str) -> str:
    """Where a chosen layer range stays while the range sliders are hidden (widget state would not)."""
    return f"edit_kept_range_{design_id[:8]}_{name}"


def keep_range(design_id: str, name: str) -> None:
    st.session_state[kept_range_key(design_id, name)] = st.session_state[range_key(design_id, name)]


def reset(design_id: str, directions) -> None:
    """New keys for every slider, so each starts again from its default. Forgetting the old keys'
    state was not enough: the browser kept showing the old positions and sent them back with the
    next slider moved, so a reset edit returned."""
    for d in directions:
        for key in (slider_key(design_id, d.name), range_key(design_id, d.name), kept_range_key(design_id, d.name)):
            st.session_state.pop(key, None)
    st.session_state[RESETS] = st.session_state.get(RESETS, 0) + 1


@st.fragment
def editor(G, store, design, directions) -> None:
    """Sliders and preview: moving a slider reruns only this panel (counted as a run in progress)."""
    with load.script_run():
        editor_panel(G, store, design, directions)


def editor_panel(G, store, design, directions) -> None:
    """One strength slider per direction, then the before/after preview and saving.

    Each direction's layer range has its own slider, shown only behind the toggle: seventeen more
    sliders on every rerun would double the panel's length and its server time for a setting few
    people change.
    """
    left, right = st.columns([1, 1], gap="large")
    edits = []
    with left:
        show_layers = st.toggle("Choose the layers each slider moves", key=LAYERS_TOGGLE,
                                help="Low layers change the shape, high layers colours and details.")
        for d in directions:
            lo, hi = d.strength_range
            start, end = d.layers(G.num_ws)
            span = tuple(st.session_state.get(kept_range_key(design.id, d.name), (start, end - 1)))
            strength = st.slider(d.name, float(lo), float(hi), float(d.default_strength), 0.1 if d.unit == "sigma" else 0.5,
                                 key=slider_key(design.id, d.name),
                                 help=(d.description or d.name) + (" (in standard deviations)" if d.unit == "sigma" else "")
                                 + f". Moves layers {span[0]}–{span[1]}"
                                 + (" (from the model)." if d.source == "model" else " (named in the PCA explorer)."))
            if show_layers:
                span = st.slider(f"Layers “{d.name}” moves", 0, G.num_ws - 1, span, key=range_key(design.id, d.name),
                                 on_change=keep_range, args=(design.id, d.name))
            if d.source == "user":
                with st.popover(f"Delete “{d.name}”", type="tertiary", icon=":material/delete:"):
                    st.caption("Named directions are shared: everyone using this model on this server loses "
                               "this slider.")
                    if st.button("Delete it", key=f"deldir_{d.name}", type="primary"):
                        delete_user_direction(G, d.name)
                        st.rerun(scope="app")
            if span != (start, end - 1):
                d = replace(d, layer_start=span[0], layer_end=span[1] + 1)
            if strength != 0:
                edits.append((d, strength))
        st.button("Reset sliders", key="edit_reset", on_click=reset, args=(design.id, directions),
                  icon=":material/restart_alt:")
    with right:
        edited = edit_design(design, edits) if edits else design
        a, b = st.columns(2)
        widgets.show_image(resources.render(G, design.ws)[0], f"Before: {design.name}", widgets.CARD_PX, where=a,
                           fill=True)
        summary = ", ".join(f"{d.name} {s:+.1f}" for d, s in edits) or "no change yet"
        widgets.show_image(resources.render(G, edited.ws)[0], f"After: {summary}", widgets.CARD_PX, where=b,
                           fill=True)
        name = fit_name(st.text_input("Name of the new design", value="", key="edit_name", max_chars=MAX_NAME_CHARS,
                                      placeholder=f"{design.name} (edited)"))
        s1, s2 = st.columns([3, 2])
        if s1.button("Save as new design", key="edit_save", type="primary", disabled=not edits,
                     icon=":material/library_add:"):
            new = edit_design(design, edits, name=name or None)
            widgets.add_to_store(store, new)
            st.rerun(scope="app")
        if edits:
            widgets.save_to_team_button(edited.with_name(name) if name else edited,
                                        key="edit_team", where=s2, label="Save to team")
        with st.expander("Animate this edit", icon=":material/animation:"):
            if not edits:
                st.caption("Move a slider first: the animation walks from the design to the edit and back.")
            else:
                animate.animation_panel(G, "edit_anim", lambda n: interpolation_ws(design.ws, edited.ws, n,
                                                                                   there_and_back=True),
                                        f"{design.name} edit", f"{design.name} → {summary} → back")


with widgets.guard():
    G, store = page.header("Attribute edit")
    st.caption("Change one thing about a garment at a time: each slider moves it along a named direction.")
    if not len(store):
        widgets.empty_store()
    else:
        design = widgets.design_picker(store, "Design to edit", key="edit_design",
                                       index=len(store) - 1)
        directions = load_directions(G)
        if not directions:
            st.info("This model has no named directions yet. Open the PCA explorer, find a component that "
                    "changes something you care about, and give it a name: it appears here at once.",
                    icon=":material/info:")
            st.page_link(PCA_PAGE, label="Go to PCA explorer", icon=":material/scatter_plot:")
        else:
            mine = sum(d.source == "user" for d in directions)
            st.caption(f"{len(directions)} direction(s): {len(directions) - mine} from the model, {mine} named "
                       "in the PCA explorer (shared by everyone using this model here).")
            editor(G, store, design, directions)

"""PCA explorer: the main directions of variation of the model (GANSpace), and naming them for editing."""
import hashlib

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from clothinggan.animation import direction_walk_ws
from clothinggan.directions import (MAX_DIRECTION_NAME_CHARS, component_strip, direction_from_component, project,
                                    save_user_direction)
from clothinggan.designs import Design
from clothinggan.ui import animate, page, resources, widgets

MEAN = "__mean__"
PICKED_KEY = "pca_picked"  # index of the scatter point picked (tests set it directly)

with widgets.guard():
    G, store = page.header("PCA explorer")
    st.caption("Principal components are the directions in which this model's garments vary most. "
               "Explore them, and name the useful ones so they become sliders on Attribute edit.")

    comps = resources.available_components(G)
    if comps is None:
        st.info(f"This model has no components yet. Computing them samples {resources.pca_samples():,} "
                "garments once; the result is kept for next time.", icon=":material/info:")
        if st.button("Compute components", key="pca_compute", type="primary", icon=":material/calculate:"):
            bar = st.progress(0.0, text="Sampling garments…")
            resources.compute_components(G, progress=lambda f: bar.progress(min(float(f), 1.0),
                                                                             text=f"Sampling garments… {f:.0%}"))
            st.rerun()
        st.stop()

    n_show = min(20, comps.n_components)
    # Plain graph objects, not plotly.express: that would import pandas (0.5-0.8 s of this page's
    # first visit) and build a data frame on every rerun.
    fig = go.Figure(go.Bar(x=[f"PC {i}" for i in range(n_show)], y=100 * comps.var_ratio[:n_show],
                           marker_color="#B4465A"))
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=10, b=10), template="plotly_white",
                      xaxis_title="component", yaxis_title="explained variance (%)")
    st.plotly_chart(fig, key="pca_variance")

    st.subheader("Walk along one component")
    c1, c2, c3 = st.columns([2, 2, 3])
    i = c1.selectbox("Component", list(range(comps.n_components)), key="pca_component",
                     format_func=lambda j: f"PC {j} ({100 * comps.var_ratio[j]:.1f}% of variance)")
    base_options = [MEAN, *store.ids()]
    base_id = c2.selectbox("Applied to", base_options, key="pca_base",
                           format_func=lambda b: "The average garment" if b == MEAN else store.get(b).name)
    k_sigma = c3.slider("How far (± standard deviations)", 0.5, 5.0, 3.0, 0.5, key="pca_k")
    span = st.slider("Layers it moves", 0, G.num_ws - 1, (0, G.num_ws - 1), key="pca_layers",
                     help="Low layers change the shape, high layers colours and details.")
    base_ws = np.asarray(G.w_avg.cpu(), np.float32) if base_id == MEAN else store.get(base_id).ws
    steps = 7
    strip = component_strip(G, base_ws, comps, i, k_sigma=k_sigma, steps=steps,
                            layer_start=span[0], layer_end=span[1] + 1)
    images = resources.render(G, strip)
    labels = [f"{s:+.1f}σ" for s in np.linspace(-k_sigma, k_sigma, steps)]
    widgets.image_row(images, labels, cols=steps, px=150)
    with st.expander(f"Animate PC {i}: a walk to ±{k_sigma:g}σ and back", icon=":material/animation:"):
        walk_dir = direction_from_component(comps, i, f"PC {i}", span[0], span[1] + 1, unit="sigma")
        walk_base = np.broadcast_to(base_ws, (G.num_ws, G.w_dim))
        on = "the average garment" if base_id == MEAN else store.get(base_id).name
        animate.animation_panel(G, "pca_anim", lambda n: direction_walk_ws(walk_base, walk_dir, k_sigma, n), f"pc{i}",
                                f"PC {i} on {on}: 0 → +{k_sigma:g}σ → 0 → −{k_sigma:g}σ → 0")

    with st.form("name_component", border=True):
        st.markdown(f"**Name PC {i}** so it becomes a slider on Attribute edit (layers {span[0]}–{span[1]}).")
        n1, n2 = st.columns([3, 1], vertical_alignment="bottom")
        dir_name = n1.text_input("Name", key="pca_dir_name", placeholder="e.g. Sleeve length",
                                 max_chars=MAX_DIRECTION_NAME_CHARS)
        if n2.form_submit_button("Save direction", icon=":material/save:"):
            if not dir_name.strip():
                st.error("Give the direction a name first.")
            else:
                d = direction_from_component(comps, i, dir_name.strip(), span[0], span[1] + 1, source="user",
                                             description=f"PC {i}, named in the PCA explorer")
                try:
                    save_user_direction(G, d, overwrite=True)
                except ValueError as exc:  # e.g. the model already ships a direction of that name
                    st.error(widgets.one_sentence(exc))
                else:
                    st.success(f"Saved “{d.name}”: it is now a slider on Attribute edit.")

    st.subheader("Map of garments")
    st.caption(f"{resources.SCATTER_SAMPLES} random garments placed by two components. Click a point to see it.")
    s1, s2 = st.columns(2)
    cx = s1.selectbox("Horizontal axis", list(range(comps.n_components)), index=0, key="pca_x",
                      format_func=lambda j: f"PC {j}")
    cy = s2.selectbox("Vertical axis", list(range(comps.n_components)), index=min(1, comps.n_components - 1),
                      key="pca_y", format_func=lambda j: f"PC {j}")
    samples = resources.scatter_samples(G, G.fingerprint)
    coords = project(samples, comps, in_sigma=True)
    scatter = go.Figure(go.Scatter(x=coords[:, cx], y=coords[:, cy], mode="markers",
                                   marker=dict(size=8, color="#B4465A", opacity=0.7),
                                   customdata=np.arange(len(samples))[:, None],
                                   hovertemplate=f"Garment %{{customdata[0]}}<br>PC {cx}: %{{x:+.1f}}σ<br>"
                                                 f"PC {cy}: %{{y:+.1f}}σ<extra></extra>"))
    scatter.update_layout(height=420, margin=dict(l=10, r=10, t=10, b=10), template="plotly_white",
                          xaxis_title=f"PC {cx} (σ)", yaxis_title=f"PC {cy} (σ)")
    left, right = st.columns([3, 2], gap="large")
    with left:
        event = st.plotly_chart(scatter, key="pca_scatter", on_select="rerun", selection_mode="points")
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    if points:
        st.session_state[PICKED_KEY] = int(points[0].get("point_index", points[0].get("point_number", 0)))
    picked = st.session_state.get(PICKED_KEY)
    with right:
        if picked is None or not 0 <= int(picked) < len(samples):
            st.info("Click a point to see that garment.", icon=":material/touch_app:")
        else:
            picked = int(picked)
            design = Design(ws=np.repeat(samples[picked][None], G.num_ws, axis=0), model_id=G.fingerprint,
                            name=f"sample {picked}",
                            id=hashlib.sha256(f"{G.fingerprint}-{resources.SCATTER_SEED}-{picked}".encode()).hexdigest()[:32],
                            provenance={"kind": "pca sample", "sample_seed": resources.SCATTER_SEED, "index": picked})
            widgets.show_image(resources.render(G, design.ws)[0],
                               f"Garment {picked}: PC {cx} {coords[picked, cx]:+.1f}σ, PC {cy} {coords[picked, cy]:+.1f}σ",
                               widgets.LARGE_PX)
            in_store = design.id in store
            act = st.container(horizontal=True)  # buttons as wide as their labels, wrapping when narrow
            act.button("Added to designs" if in_store else "Add to designs", key="pca_add", type="primary",
                       icon=":material/library_add:", disabled=in_store,
                       on_click=widgets.add_to_store, args=(store, design))
            widgets.save_to_team_button(design, key="pca_team", where=act, label="Save to team library")

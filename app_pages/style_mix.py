"""Style mix: one garment's structure with another's style, an expert layer crossover, a mixing grid."""
import streamlit as st

from clothinggan import image_grid
from clothinggan.animation import interpolation_ws
from clothinggan.designs import Design
from clothinggan.images import upscale
from clothinggan.mixing import crossover, layer_groups, fine_layer_groups, mix, mix_designs, mixing_matrix_ws
from clothinggan.ui import animate, page, resources, widgets

with widgets.guard():
    G, store = page.header("Style mix")
    st.caption("Take the **structure** (silhouette, length, sleeves) of garment A and the **style** "
               "(colour, texture, print) of garment B — or anything in between.")
    groups = layer_groups(G.num_ws)

    col_a, col_b, col_r = st.columns(3, gap="large")
    with col_a:
        st.subheader("A")
        a = widgets.design_or_seed(G, store, "Garment A", key="mix_a", default_seed=0, index=0)
        widgets.show_image(resources.render(G, a.ws)[0], widgets.caption_of(a), widgets.CARD_PX)
    with col_b:
        st.subheader("B")
        b = widgets.design_or_seed(G, store, "Garment B", key="mix_b", default_seed=1, index=1)
        widgets.show_image(resources.render(G, b.ws)[0], widgets.caption_of(b), widgets.CARD_PX)

    with col_r:
        st.subheader("Result")
        structure = st.slider("Structure: A → B", 0.0, 1.0, 0.0, 0.05, key="mix_structure",
                              help="0 keeps A's silhouette, 1 takes B's.")
        style = st.slider("Style: A → B", 0.0, 1.0, 1.0, 0.05, key="mix_style",
                          help="0 keeps A's colours and textures, 1 takes B's.")
        with st.expander("Expert: layers", icon=":material/layers:"):
            st.caption(f"This model has {G.num_ws} layers of style (ws). Structure = ws "
                       f"{groups['structure'].start}–{groups['structure'].stop - 1}, style = ws "
                       f"{groups['style'].start}–{groups['style'].stop - 1}.")
            if G.num_ws >= 3:
                fine = fine_layer_groups(G.num_ws)
                st.caption("Finer bands: " + ", ".join(f"{n} ws {r.start}–{r.stop - 1}" for n, r in fine.items()))
            mode = st.radio("Mixing rule", ["Structure / style sliders", "Crossover at layer k", "Pick layers from B"],
                            key="mix_mode")
            k = layers_from_b = None
            if mode == "Crossover at layer k":
                k = st.slider("k: layers below k from A, the rest from B", 0, G.num_ws, groups["style"].start,
                              key="mix_k")
            elif mode == "Pick layers from B":
                layers_from_b = st.multiselect("Layers taken from B", list(range(G.num_ws)),
                                               default=list(groups["style"]), key="mix_layers")

        if k is not None:
            result = Design(ws=crossover(a.ws, b.ws, k), model_id=G.fingerprint,
                            provenance={"kind": "crossover", "a": a.id, "b": b.id, "a_name": a.name,
                                        "b_name": b.name, "k": k})
        elif layers_from_b is not None:
            result = Design(ws=mix(a.ws, b.ws, {"from B": 1.0}, {"from B": sorted(layers_from_b)}),
                            model_id=G.fingerprint,
                            provenance={"kind": "mix", "a": a.id, "b": b.id, "a_name": a.name, "b_name": b.name,
                                        "layers_from_b": sorted(layers_from_b)})
        else:
            result = mix_designs(a, b, structure, style)
        widgets.show_image(resources.render(G, result.ws)[0], result.describe(), widgets.CARD_PX)
        r1, r2, r3 = st.columns([3, 1, 1])
        r1.button("Add to designs", key="mix_add", type="primary", icon=":material/library_add:",
                  on_click=widgets.add_to_store, args=(store, result))
        widgets.download_png(resources.render(G, result.ws)[0], "mix", key="mix_dl", px=256, label="", where=r2)
        widgets.save_to_team_button(result, key="mix_team", where=r3)

    with st.expander("Animate: a walk from A to B and back", icon=":material/animation:"):
        animate.animation_panel(G, "mix_anim", lambda n: interpolation_ws(a.ws, b.ws, n, there_and_back=True),
                                f"{a.name} to {b.name}", f"{a.name} → {b.name} → back, through W+")

    st.divider()
    st.subheader("Mixing grid")
    # The grid mixes by the rule chosen above, each row in A's place and each column in B's.
    if k is not None:
        grid_rule, rule_text = {"k": k}, f"layers below {k} from its row, the rest from its column"
    elif layers_from_b is not None:
        grid_rule = {"weights": {"from B": 1.0}, "groups": {"from B": sorted(layers_from_b)}}
        rule_text = f"layers {', '.join(map(str, sorted(layers_from_b))) or 'none'} from its column, the rest from its row"
    else:
        grid_rule = {"weights": {"structure": structure, "style": style}}
        rule_text = (f"structure {structure:.0%} and style {style:.0%} of the way from its row to its column"
                     if (structure, style) != (0.0, 1.0) else "its row's structure and its column's style")
    st.caption(f"Each cell has {rule_text}, as the sliders and the mixing rule above say.")
    if len(store) < 2:
        widgets.empty_store("The mixing grid needs at least two of your designs.")
    else:
        ids = store.ids()
        name = lambda i: store.get(i).name  # noqa: E731
        g1, g2 = st.columns(2)
        rows = g1.multiselect("Rows (structure from)", ids, default=ids[:min(3, len(ids))], key="grid_rows",
                              format_func=name)
        cols = g2.multiselect("Columns (style from)", ids, default=ids[-min(3, len(ids)):], key="grid_cols_mix",
                              format_func=name)
        if rows and cols:
            r_designs = [store.get(i) for i in rows if i in store]
            c_designs = [store.get(i) for i in cols if i in store]
            grid_ws = mixing_matrix_ws(r_designs, c_designs, **grid_rule)
            cells = resources.render(G, grid_ws.reshape(-1, G.num_ws, G.w_dim))
            heads_r = resources.render_designs(G, r_designs)
            heads_c = resources.render_designs(G, c_designs)
            blank = cells[0].copy()
            blank.paste((255, 255, 255), (0, 0, blank.width, blank.height))
            tiles = [blank, *heads_c]
            for i, head in enumerate(heads_r):
                tiles += [head, *cells[i * len(c_designs):(i + 1) * len(c_designs)]]
            picture = image_grid([upscale(t, 128) for t in tiles], cols=len(c_designs) + 1, pad=8)
            st.image(picture, caption="Top row: style sources · left column: structure sources",
                     width=min(picture.width, 140 * (len(c_designs) + 1)))
            widgets.download_png(picture, "mixing_grid", key="grid_dl", label="Download grid")
        else:
            st.info("Pick at least one row and one column.")

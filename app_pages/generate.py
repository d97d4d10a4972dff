"""Generate: garments from seeds, a grid with captions, add to designs, download."""
import streamlit as st

from clothinggan import image_grid
from clothinggan.images import upscale
from clothinggan.errors import InvalidSeedError
from clothinggan.designs import designs_from_seeds
from clothinggan.seeds import parse_seeds, seeds_from_text
from clothinggan.ui import page, resources, state, widgets

MAX_GRID = 64

with widgets.guard():
    G, store = page.header("Generate")
    st.caption("Every number (a *seed*) is one garment. Type seeds, pick how varied they should be, "
               "and keep the ones you like.")

    with st.form("generate_form", border=True):
        c1, c2, c3 = st.columns([3, 3, 2])
        seeds_text = c1.text_input("Seeds", value=state.FIRST_SEEDS, key="seeds_text",
                                   help="One number (42), a list (1, 5, 9), a range (0-15), or “random”.")
        psi = c2.slider("Variety (truncation ψ)", 0.0, 1.2, state.last_psi(), 0.05, key="psi",
                        help="Low values give safe, average garments; high values give unusual ones.")
        count = c3.number_input("How many for “random”", 1, MAX_GRID, 8, key="random_count")
        cols = c3.slider("Images per row", 2, 8, 4, key="grid_cols")
        submitted = st.form_submit_button("Generate", type="primary", icon=":material/auto_awesome:")

    if state.GENERATED_KEY not in st.session_state and not submitted:
        # A first visit lands on garments, not on an empty page.
        st.session_state[state.GENERATED_KEY] = designs_from_seeds(G, parse_seeds(state.FIRST_SEEDS), state.DEFAULT_PSI)
    if submitted:
        state.remember_psi(psi)
        try:
            seeds = seeds_from_text(seeds_text, max_count=MAX_GRID, random_count=int(count))
        except InvalidSeedError as exc:
            st.session_state.pop(state.GENERATED_KEY, None)
            st.error(widgets.one_sentence(exc))
            st.stop()
        st.session_state[state.GENERATED_KEY] = designs_from_seeds(G, seeds, psi)

    designs = st.session_state.get(state.GENERATED_KEY)
    if designs and all(d.model_id == G.fingerprint for d in designs):
        pictures = resources.render_designs(G, designs)
        top = st.columns([2, 2, 5])
        held = store.same_code()  # a seed generated again is a new object of a garment already kept

        def add_all() -> None:
            kept = store.same_code()
            added = store.merge([d for d in designs if d.code_digest not in kept])
            state.flash(f"Added {len(added)} design(s) to your designs." if added
                        else "All of these are already in your designs.")

        top[0].button("Add all to designs", key="add_all", icon=":material/library_add:", type="primary",
                      on_click=add_all)
        grid_png = lambda: widgets.png_bytes(image_grid([upscale(p, 256) for p in pictures],  # noqa: E731
                                                        cols=int(cols)))  # made on click, not every rerun
        top[1].download_button("Download grid", grid_png, file_name="garments.png", mime="image/png",
                               key="dl_grid", icon=":material/download:")
        n_cols = int(cols)
        for start in range(0, len(designs), n_cols):
            row = st.columns(n_cols)
            for j, (d, pic) in enumerate(zip(designs[start:start + n_cols], pictures[start:start + n_cols])):
                with row[j]:
                    widgets.show_image(pic, f"seed {d.provenance['seed']} · ψ {d.provenance['psi']:g}", fill=True)
                    b1, b2, b3 = st.columns([2, 1, 1], gap="small")
                    in_store = d.id in store or d.code_digest in held
                    b1.button("Added" if in_store else "Add", key=f"add_{d.id}", disabled=in_store,
                              icon=":material/check:" if in_store else ":material/add:",
                              help="Add to your designs (rename it later in Library).",
                              on_click=widgets.add_to_store, args=(store, d))
                    widgets.download_png(pic, d.name, key=f"dl_{d.id}", label="", where=b2, px=256)
                    widgets.save_to_team_button(d, key=f"team_{d.id}", where=b3)
    else:
        st.info("Press **Generate** to see garments.", icon=":material/auto_awesome:")

"""Library: the session's designs (rename, reorder, delete, export/import) and the shared team library."""
import time

import streamlit as st

from clothinggan.errors import ClothingGANError
from clothinggan.latents import LatentStore
from clothinggan.ui import resources, sidebar, state, widgets

IMPORTED_KEY = "imported_files"
TEAM_LIST_MAX = 60  # each row loads and renders its design; a longer list belongs in a search


def rename(store, design_id: str, key: str) -> None:
    new = st.session_state.get(key, "").strip()
    if new and design_id in store and new != store.get(design_id).name:
        st.session_state[key] = store.rename(design_id, new).name  # may gain a " (2)" suffix
    elif design_id in store:
        st.session_state[key] = store.get(design_id).name  # an empty name is refused: show the old one


def move(store, design_id: str, index: int) -> None:
    if design_id in store:
        store.move(design_id, index)


def delete(store, design_id: str, key: str) -> None:
    if design_id in store:
        name = store.remove(design_id).name
        st.session_state.pop(key, None)
        state.flash(f"Deleted “{name}”.", "info")


with widgets.guard():
    G = sidebar.current_model()
    store = state.current_store(G)
    st.title("Library")
    mine, team = st.tabs(["My designs (this session)", "Team library (saved)"])

    with mine:
        if not len(store):
            widgets.empty_store("You have no designs in this session yet.")
        else:
            st.caption(f"{len(store)} design(s). Rename by editing the name; they are kept until you close the tab "
                       "— save them to the team library or export them to keep them.")
            ids = store.ids()
            images = resources.render_designs(G, [store.get(i) for i in ids])
            per_row = 4
            for start in range(0, len(ids), per_row):
                row = st.columns(per_row, gap="medium")
                for j, design_id in enumerate(ids[start:start + per_row]):
                    d = store.get(design_id)
                    pos = start + j
                    with row[j].container(border=True):
                        widgets.show_image(images[pos], d.describe(), widgets.THUMB_PX, fill=True)
                        key = f"name_{design_id}"
                        if key not in st.session_state:
                            st.session_state[key] = d.name
                        st.text_input("Name", key=key, on_change=rename, args=(store, design_id, key),
                                      label_visibility="collapsed")
                        b = st.columns(4)
                        b[0].button("", key=f"up_{design_id}", icon=":material/arrow_upward:", help="Move up",
                                    disabled=pos == 0, on_click=move, args=(store, design_id, pos - 1))
                        b[1].button("", key=f"down_{design_id}", icon=":material/arrow_downward:",
                                    help="Move down", disabled=pos == len(ids) - 1,
                                    on_click=move, args=(store, design_id, pos + 1))
                        widgets.download_png(images[pos], d.name, key=f"png_{design_id}", label="",
                                             where=b[2], px=256)
                        b[3].button("", key=f"del_{design_id}", icon=":material/delete:", help="Delete",
                                    on_click=delete, args=(store, design_id, key))

        st.divider()
        e1, e2 = st.columns(2, gap="large")
        with e1:
            st.markdown("**Export** your designs as a file you can import later or share.")
            st.download_button("Export designs (.npz)", store.to_npz_bytes() if len(store) else b"",
                               file_name="designs.npz", mime="application/octet-stream", key="export_npz",
                               disabled=not len(store), icon=":material/download:")
        with e2:
            up = st.file_uploader("Import designs (.npz)", type=["npz"], key="import_npz")
            done = st.session_state.setdefault(IMPORTED_KEY, set())
            if up is not None and up.file_id not in done:
                done.add(up.file_id)
                imported = LatentStore.from_npz_bytes(up.getvalue(), expected_model_id=G.fingerprint,
                                                      expected_shape=(G.num_ws, G.w_dim))
                added = store.merge(imported)
                state.flash(f"Imported {len(added)} design(s) from {up.name}.")
                st.rerun()

    with team:
        library = resources.design_library(resources.library_url())
        author = st.text_input("Your name", key="author", placeholder="Shown next to what you save")
        if st.button("Save all my designs to the team library", key="lib_save_all", type="primary",
                     disabled=not len(store), icon=":material/cloud_upload:"):
            library.save_many(list(store), author=author.strip() or None)
            st.success(f"Saved {len(store)} design(s) to the team library.")
        entries = library.list(G.fingerprint)
        if not entries:
            st.info("Nothing saved for this model yet.", icon=":material/inventory_2:")
        shown = entries[:TEAM_LIST_MAX]
        if len(entries) > len(shown):
            st.caption(f"The {len(shown)} most recently saved of {len(entries)}.")
        for entry in shown:
            c0, c1, c2, c3, c4 = st.columns([1, 4, 3, 2, 1], vertical_alignment="center")
            try:
                saved = library.load(entry.id)
            except ClothingGANError as exc:  # one damaged row must not hide the others
                saved = None
                c0.caption(widgets.one_sentence(exc))
            if saved is not None:
                widgets.show_image(resources.render(G, saved.ws)[0], None, 64, where=c0)
            c1.markdown(f"**{entry.name}**")
            c1.caption(entry.describe())
            c2.caption(f"by {entry.author or 'anonymous'} · "
                       f"{time.strftime('%d %b %Y %H:%M', time.localtime(entry.updated))}")
            loaded = entry.id in store
            if c3.button("Loaded" if loaded else "Load", key=f"lib_load_{entry.id}", disabled=loaded or saved is None,
                         icon=":material/download_done:" if loaded else ":material/add:"):
                widgets.add_to_store(store, saved)
                st.rerun()  # redraw the session tab above, which ran before this click was handled
            if c4.button("", key=f"lib_del_{entry.id}", icon=":material/delete:", help="Delete from the team library"):
                library.delete(entry.id)
                st.rerun()

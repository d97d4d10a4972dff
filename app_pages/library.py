"""Library: the session's designs (rename, reorder, delete, export/import) and the shared team library."""
import streamlit as st

from clothinggan.designs import MAX_NAME_CHARS
from clothinggan.errors import ClothingGANError
from clothinggan.store import LatentStore
from clothinggan.ui import page, resources, state, team, widgets

IMPORTED_KEY = "imported_files"


def rename(store, design_id: str, key: str) -> None:
    if design_id not in store:
        return
    old = store.get(design_id).name
    new = st.session_state.get(key, "").strip()
    st.session_state[key] = old  # an empty or refused name: show the old one again
    if new and new != old:
        try:
            st.session_state[key] = store.rename(design_id, new).name  # may gain a " (2)" suffix
        except ClothingGANError as exc:
            state.flash(widgets.one_sentence(exc), "error")


def move(store, design_id: str, index: int) -> None:
    if design_id in store:
        store.move(design_id, index)


def delete(store, design_id: str, key: str) -> None:
    if design_id in store:
        name = store.remove(design_id).name
        st.session_state.pop(key, None)
        state.flash(f"Deleted “{name}”.", "info")


with widgets.guard():
    G, store = page.header("Library")
    mine_tab, team_tab = st.tabs(["My designs (this session)", "Team library (saved)"])

    with mine_tab:
        if not len(store):
            widgets.empty_store("You have no designs in this session yet.")
        else:
            st.caption(f"{len(store)} design(s). Rename by editing the name. They come back when you reload this "
                       "page's address; save them to the team library or export them to share or keep them.")
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
                                      max_chars=MAX_NAME_CHARS, label_visibility="collapsed")
                        b = st.columns(5)
                        b[0].button("", key=f"up_{design_id}", icon=":material/arrow_upward:", help="Move up",
                                    disabled=pos == 0, on_click=move, args=(store, design_id, pos - 1))
                        b[1].button("", key=f"down_{design_id}", icon=":material/arrow_downward:",
                                    help="Move down", disabled=pos == len(ids) - 1,
                                    on_click=move, args=(store, design_id, pos + 1))
                        widgets.download_png(images[pos], d.name, key=f"png_{design_id}", label="",
                                             where=b[2], px=256)
                        widgets.save_to_team_button(d, key=f"team_{design_id}", where=b[3])
                        b[4].button("", key=f"del_{design_id}", icon=":material/delete:", help="Delete",
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
            refused = st.session_state.setdefault(IMPORTED_KEY, {})  # file id -> why it was refused, or None
            if up is not None and up.file_id not in refused:
                try:
                    imported = LatentStore.from_npz_bytes(up.getvalue(), expected_model_id=G.fingerprint,
                                                          expected_shape=(G.num_ws, G.w_dim))
                    added = store.merge(imported)
                except ClothingGANError as exc:  # said here, and the rest of the page still draws
                    refused[up.file_id] = widgets.one_sentence(exc)
                else:
                    refused[up.file_id] = None
                    state.flash(f"Imported {len(added)} design(s) from {up.name}.")
                    st.rerun()
            if up is not None and refused.get(up.file_id):
                st.error(refused[up.file_id])

    with team_tab:
        team.team_library(G, store)

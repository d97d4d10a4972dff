"""The Team library tab: search, filter and page through the shared design library; load and delete.

The listing fetches one page of rows without their ws, then that page's designs in one query and
their thumbnails in one batched render, so hundreds of saved designs page as fast as a dozen.
"""
from __future__ import annotations

import time

import streamlit as st

from clothinggan.errors import ClothingGANError
from clothinggan.designs import Design
from clothinggan.store import LatentStore
from clothinggan.library import DesignLibrary, LibraryEntry
from clothinggan.ui import resources, state, widgets

PAGE_SIZE = 24
PER_ROW = 4
PAGE_KEY = "lib_page"
FILTERS_KEY = "lib_filters"
EVERYONE, ANONYMOUS = "Everyone", "Anonymous"
THIS_MODEL, ALL_MODELS = "This model", "All models"


def _filters(library: DesignLibrary, G) -> tuple[str | None, str | None, str | None]:
    """The search box, author and model filters; going back to page 1 whenever they change."""
    c1, c2, c3 = st.columns([3, 2, 2], vertical_alignment="bottom")
    text = c1.text_input("Search names", key="lib_q", placeholder="e.g. coat", max_chars=100)
    scope = c3.segmented_control("Model", [THIS_MODEL, ALL_MODELS], key="lib_scope", default=THIS_MODEL,
                                 help="Designs belong to the model that made them; load them with that model.")
    model_id = None if scope == ALL_MODELS else G.fingerprint
    authors = [EVERYONE, ANONYMOUS, *library.authors(model_id)]
    who = c2.selectbox("Author", authors, key="lib_author")
    author = None if who in (EVERYONE, None) else "" if who == ANONYMOUS else who
    chosen = (text.strip() or None, author, model_id)
    if st.session_state.get(FILTERS_KEY) != chosen:
        st.session_state[FILTERS_KEY] = chosen
        st.session_state[PAGE_KEY] = 0
    return chosen


def _pager(total: int, pages: int) -> None:
    page = st.session_state.get(PAGE_KEY, 0)
    c1, c2, c3 = st.columns([1, 3, 1], vertical_alignment="center")
    c1.button("Previous", key="lib_prev", icon=":material/chevron_left:", disabled=page == 0,
              on_click=st.session_state.__setitem__, args=(PAGE_KEY, page - 1))
    first = page * PAGE_SIZE + 1
    c2.caption(f"Page {page + 1} of {pages} · designs {first}–{min(first + PAGE_SIZE - 1, total)} of {total}")
    c3.button("Next", key="lib_next", icon=":material/chevron_right:", disabled=page >= pages - 1,
              on_click=st.session_state.__setitem__, args=(PAGE_KEY, page + 1))


def _card(G, store: LatentStore, library: DesignLibrary, entry: LibraryEntry, saved: Design | Exception | None,
          picture, held: dict[bytes, str]) -> None:
    with st.container(border=True):
        if isinstance(saved, Exception):
            st.caption(widgets.one_sentence(saved))  # one damaged row must not hide the others
        elif picture is not None:
            widgets.show_image(picture, None, widgets.THUMB_PX, fill=True)
        else:
            names = st.session_state.get(state.MODEL_NAMES_KEY, {})
            st.caption(f"Made with model {names.get(entry.model_id, entry.model_id[:12])}: switch to it "
                       "in the sidebar to see and load this design.")
        st.markdown(f"**{entry.name}**")
        st.caption(f"{entry.describe()}  \nby {entry.author or 'anonymous'} · "
                   f"{time.strftime('%d %b %Y %H:%M', time.localtime(entry.updated))}")
        b1, b2 = st.columns([3, 1])
        # By id, or by code: your own copy of a teammate's design has an id of its own.
        loaded = entry.id in store or (isinstance(saved, Design) and saved.code_digest in held)
        usable = isinstance(saved, Design) and picture is not None
        b1.button("Loaded" if loaded else "Load", key=f"lib_load_{entry.id}", disabled=loaded or not usable,
                  icon=":material/download_done:" if loaded else ":material/add:",
                  help="Add to your designs in this session", on_click=widgets.add_to_store, args=(store, saved))
        mine = entry.author is None or entry.author == state.author()
        b2.button("", key=f"lib_del_{entry.id}", icon=":material/delete:", disabled=not mine,
                  help="Delete from the team library" if mine else "Only its author can delete it",
                  on_click=_delete, args=(library, entry))


def _delete(library: DesignLibrary, entry: LibraryEntry) -> None:
    try:
        gone = library.delete(entry.id)
    except ClothingGANError as exc:
        state.flash(widgets.one_sentence(exc), "error")
        return
    state.flash(f"Deleted “{entry.name}” from the team library." if gone else
                f"“{entry.name}” was already gone (deleted by someone else).", "info")


def team_library(G, store: LatentStore) -> None:
    """The whole tab: save everything, filters, one page of cards, the pager."""
    library = resources.design_library(resources.library_url())
    who = state.author()
    st.caption(f"Saving as **{who or 'anonymous'}** (change “Your name” in the sidebar). Every design "
               "shown in the app also has its own save button.")
    if st.button("Save all my designs to the team library", key="lib_save_all", type="primary",
                 disabled=not len(store), icon=":material/cloud_upload:"):
        saved = library.save_many(list(store), author=who)
        copies = sum(e.copy_of is not None for e in saved)
        st.success(f"Saved {len(saved)} design(s) to the team library"
                   + (f" ({copies} as your own copies of teammates' designs)." if copies else "."))
    text, author, model_id = _filters(library, G)
    page_no = st.session_state.get(PAGE_KEY, 0)
    page = library.search(model_id=model_id, text=text, author=author, offset=page_no * PAGE_SIZE,
                          limit=PAGE_SIZE)
    if page_no and not page.entries and page.total:  # a page emptied by deletions: show the last one
        st.session_state[PAGE_KEY] = page.pages - 1
        st.rerun()
    if page.skipped:
        st.warning(f"{len(page.skipped)} saved design(s) on this page are damaged and were skipped.",
                   icon=":material/warning:")
    if not page.entries:
        st.info("No saved designs match." if text or author is not None else "Nothing saved for this model yet.",
                icon=":material/inventory_2:")
        return
    found = library.load_many(e.id for e in page.entries if e.model_id == G.fingerprint)
    renderable = [d for d in found.values() if isinstance(d, Design) and (d.num_ws, d.w_dim) == (G.num_ws, G.w_dim)]
    pictures = dict(zip((d.id for d in renderable), resources.render_designs(G, renderable)))
    held = store.same_code()
    for start in range(0, len(page.entries), PER_ROW):
        row = st.columns(PER_ROW, gap="medium")
        for column, entry in zip(row, page.entries[start:start + PER_ROW]):
            with column:
                _card(G, store, library, entry, found.get(entry.id), pictures.get(entry.id), held)
    if page.pages > 1:
        _pager(page.total, page.pages)

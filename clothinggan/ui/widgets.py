"""Widgets every page shares: the error guard, design picker, image grids with captions, downloads.

Pages stay thin: they lay out these widgets and call the library; nothing here knows about a page.
"""
from __future__ import annotations

import io
import logging
from contextlib import contextmanager
from typing import Iterator, Sequence

import streamlit as st
from PIL import Image

from clothinggan.errors import ClothingGANError
from clothinggan.designs import Design
from clothinggan.images import upscale
from clothinggan.paths import safe_stem
from clothinggan.store import LatentStore
from clothinggan.ui import resources
from clothinggan.ui.state import author, flash, last_psi

log = logging.getLogger("clothinggan.ui")

GENERATE_PAGE = "app_pages/generate.py"
THUMB_PX = 160   # on-screen size of a thumbnail
CARD_PX = 224    # on-screen size of a grid image
LARGE_PX = 320   # on-screen size of a preview


# -- errors ----------------------------------------------------------------------------------------
def one_sentence(exc: BaseException) -> str:
    """An error's message as one sentence that starts with a capital and ends with a full stop."""
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        text = str(exc.args[0])
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


@contextmanager
def guard() -> Iterator[None]:
    """Run a page body: a ClothingGANError shows one sentence, anything else a friendly error.

    Streamlit's own control flow (st.rerun, st.stop, page switches) derives from BaseException,
    so it passes through untouched.
    """
    try:
        yield
    except ClothingGANError as exc:
        st.error(one_sentence(exc))
    except Exception as exc:  # noqa: BLE001 - the last line of defence: never a raw traceback
        log.exception("unexpected error in a page")
        st.error("Something went wrong on our side. Try again, or reload the page; "
                 "your designs are kept for this session.")
        with st.expander("Details for developers"):
            st.exception(exc)


# -- images ----------------------------------------------------------------------------------------
def show_image(image: Image.Image, caption: str | None = None, px: int = CARD_PX, where=None,
               fill: bool = False) -> None:
    """An upscaled image, ``px`` wide on screen (or as wide as its column with ``fill``).

    The enlarged JPEG is made once per picture and size (``resources.shown_url``), not per rerun.
    """
    (where or st).image(shown_url(image, px, fill), caption=caption, width="stretch" if fill else px)


def shown_url(image: Image.Image, px: int = CARD_PX, fill: bool = False) -> str:
    """What :func:`show_image` sends for ``image`` (the server's warm-up makes the first page's ahead)."""
    return resources.shown_url(image, px, exact=not fill)


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def file_stem(name: str) -> str:
    """A safe file name stem from a design name."""
    return safe_stem(name, "design")


def download_png(image: Image.Image, name: str, key: str, label: str = "Download PNG", where=None,
                 px: int | None = None) -> None:
    """A download button for one image (upscaled to ``px`` when given, else at model resolution).

    The PNG is made only when the button is clicked: encoding every shown design on every rerun
    took most of a page's time (1 s of Generate's first run).
    """
    (where or st).download_button(label, lambda: png_bytes(upscale(image, px) if px else image),
                                  file_name=f"{file_stem(name)}.png",
                                  mime="image/png", key=key, icon=":material/download:", help="Download PNG")


def image_row(images: Sequence[Image.Image], captions: Sequence[str], cols: int, px: int = CARD_PX) -> list:
    """Images in rows of ``cols`` columns with captions; returns the column of each image."""
    placed = []
    for start in range(0, len(images), cols):
        columns = st.columns(cols)
        for j, (image, caption) in enumerate(zip(images[start:start + cols], captions[start:start + cols])):
            with columns[j]:
                show_image(image, caption, px, fill=True)
            placed.append(columns[j])
    return placed


def caption_of(design: Design) -> str:
    """The design's name and how it was made, without saying "seed 3 · seed 3, truncation 0.7"."""
    how = design.describe()
    return how if how.startswith(design.name) else f"{design.name} · {how}"


# -- designs ---------------------------------------------------------------------------------------
def empty_store(message: str = "You have no designs yet.") -> None:
    """The friendly empty state: what is missing and a way to get some designs."""
    st.info(f"{message} Generate a few garments first and add the ones you like to your designs.",
            icon=":material/checkroom:")
    st.page_link(GENERATE_PAGE, label="Go to Generate", icon=":material/auto_awesome:")


def design_picker(store: LatentStore, label: str, key: str, index: int = 0, help: str | None = None) -> Design:
    """A selectbox over the store's designs (the store must not be empty)."""
    ids = store.ids()
    index = min(max(index, 0), len(ids) - 1)
    chosen = st.selectbox(label, ids, index=index, key=key, help=help,
                          format_func=lambda i: store.get(i).name if i in store else "(removed)")
    return store.get(chosen if chosen in store else ids[0])


def design_or_seed(G, store: LatentStore, label: str, key: str, default_seed: int, index: int = 0) -> Design:
    """A design from the store, or one made from a typed seed (always available, even when empty)."""
    options = ["From my designs", "From a seed"] if len(store) else ["From a seed"]
    source = st.radio(f"{label} comes from", options, key=f"{key}_src", horizontal=True,
                      label_visibility="collapsed")
    if source == "From my designs":
        return design_picker(store, label, key=f"{key}_design", index=index)
    psi = last_psi()
    seed = st.number_input(f"{label}: seed", min_value=0, max_value=2**32 - 1, value=default_seed, step=1,
                           key=f"{key}_seed", help=f"Made with the variety last used on Generate (ψ {psi:g}).")
    return Design.from_seed(G, int(seed), psi=psi, name=f"seed {int(seed)}")


def add_to_store(store: LatentStore, design: Design) -> Design:
    """Add a design and say so (with its final, possibly de-duplicated, name).

    Pages use it as a button's ``on_click`` callback: callbacks run before the script, so the page
    and the sidebar already show the new design in the same run.
    """
    added = store.add(design)
    flash(f"Added “{added.name}” to your designs.")
    return added


def _save_to_team(design: Design) -> None:
    """Button callback: save one design under the session's name; a failure is a message, not a traceback."""
    try:
        entry = resources.design_library(resources.library_url()).save(design, author=author())
    except ClothingGANError as exc:
        flash(one_sentence(exc), "error")
        return
    beside = " as your own copy (a teammate saved the original)" if entry.copy_of else ""
    flash(f"Saved “{entry.name}” to the team library{beside}.")


def save_to_team_button(design: Design, key: str, where=None, label: str = "") -> None:
    """A "Save to team library" button for one design, wherever the design is shown."""
    (where or st).button(label, key=key, icon=":material/cloud_upload:", help="Save to the team library",
                         on_click=_save_to_team, args=(design,))

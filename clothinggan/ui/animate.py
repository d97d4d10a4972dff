"""The "Animate" panel pages share: a preview of a walk as a looping GIF, and GIF / MP4 downloads.

Rendering waits for the button (a 48-frame walk is a second or two of synthesis); the result is
kept per walk in the session, so slider reruns elsewhere on the page stay instant.
"""
from __future__ import annotations

import hashlib
from typing import Any, Callable

import numpy as np
import streamlit as st

from clothinggan import animation
from clothinggan.errors import ClothingGANError
from clothinggan.ui import widgets

RESULTS_KEY = "animations"  # walk digest → (gif bytes, mp4 bytes or an error sentence)
KEPT = 4  # animations kept per session (a few MB each)


def _digest(ws: np.ndarray, fps: float, size: int) -> str:
    return hashlib.sha256(np.ascontiguousarray(ws, np.float32).tobytes() + f"{fps}/{size}".encode()).hexdigest()[:24]


def _make(G: Any, ws: np.ndarray, fps: float, size: int) -> tuple[bytes, bytes | str]:
    bar = st.progress(0.0, text="Rendering the frames…")
    frames = animation.render_frames(G, ws, size, progress=lambda f: bar.progress(f, text="Rendering the frames…"))
    bar.progress(1.0, text="Encoding…")
    gif = animation.encode_gif(frames, fps)
    try:
        mp4: bytes | str = animation.encode_mp4(frames, fps)
    except ClothingGANError as exc:  # no ffmpeg here: the GIF still works
        mp4 = widgets.one_sentence(exc)
    bar.empty()
    return gif, mp4


def animation_panel(G: Any, key: str, walk: Callable[[int], np.ndarray], name: str, what: str) -> None:
    """Frames and speed controls, "Make animation", then the preview and both downloads.

    walk(frames) → (frames, num_ws, w_dim): the W+ codes of the loop; ``what`` says what it shows.
    """
    c1, c2 = st.columns(2)
    frames = c1.slider("Frames", 12, 120, animation.DEFAULT_FRAMES, 4, key=f"{key}_frames",
                       help="More frames make a smoother, longer loop.")
    fps = c2.slider("Speed (frames per second)", 4, 30, animation.DEFAULT_FPS, key=f"{key}_fps")
    st.caption(f"{what} — a {frames / fps:.1f}-second loop at {animation.DEFAULT_SIZE}×{animation.DEFAULT_SIZE} px.")
    ws = walk(frames)
    digest = _digest(ws, fps, animation.DEFAULT_SIZE)
    results: dict[str, tuple[bytes, bytes | str]] = st.session_state.setdefault(RESULTS_KEY, {})
    if st.button("Make animation", key=f"{key}_make", icon=":material/animation:", disabled=digest in results):
        results[digest] = _make(G, ws, fps, animation.DEFAULT_SIZE)
        while len(results) > KEPT:
            results.pop(next(iter(results)))
        st.rerun()  # redraw with the button off: this walk is made
    if digest not in results:
        st.caption("Press “Make animation” to see it and download it as a GIF or an MP4 video.")
        return
    gif, mp4 = results[digest]
    st.image(gif, caption="Preview (looping GIF)", width=animation.DEFAULT_SIZE)
    d1, d2, _ = st.columns([1, 1, 2])
    stem = widgets.file_stem(name)
    d1.download_button("GIF", gif, file_name=f"{stem}.gif", mime="image/gif", key=f"{key}_gif",
                       icon=":material/download:")
    if isinstance(mp4, bytes):
        d2.download_button("MP4 video", mp4, file_name=f"{stem}.mp4", mime="video/mp4", key=f"{key}_mp4",
                           icon=":material/movie:")
    else:
        d2.caption(mp4)

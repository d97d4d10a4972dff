"""The Upload & edit page's crop sliders: two range sliders whose handles never meet.

Handles on top of each other made an empty crop, which hid the page; pulling apart two handles drawn
as one was the only way back. So the handle that moves gives way at a minimum span instead.
"""
from __future__ import annotations

import streamlit as st

from clothinggan.framing import Crop

MIN_SPAN = 0.05  # of the width or height: a sliver thinner than this frames as a stripe of noise
STEP = 0.01

Range = tuple[float, float]


def keep_apart(new: Range, old: Range, min_span: float = MIN_SPAN) -> Range:
    """``new`` widened to at least ``min_span`` inside [0, 1]: the handle that moved (against ``old``) gives way."""
    lo, hi = sorted((float(new[0]), float(new[1])))
    if hi - lo >= min_span - 1e-9:
        return lo, hi
    if lo != float(old[0]):  # the low handle was dragged up onto the high one: it stops below it
        lo = hi - min_span
    else:
        hi = lo + min_span
    if lo < 0.0:
        lo, hi = 0.0, min_span
    if hi > 1.0:
        lo, hi = 1.0 - min_span, 1.0
    return round(lo, 6), round(hi, 6)


def crop_sliders() -> Crop | None:
    """Left/right and top/bottom sliders; the crop as fractions (left, top, right, bottom), None for all of it."""
    h = _range_slider("Keep from left to right", "crop_h")
    v = _range_slider("Keep from top to bottom", "crop_v")
    crop = (h[0], v[0], h[1], v[1])
    return None if crop == (0.0, 0.0, 1.0, 1.0) else crop


def _range_slider(label: str, key: str) -> Range:
    # The whole range starts in session state rather than as the slider's default: the callback sets
    # this key, and a widget with both a default and a state value makes Streamlit log a warning.
    st.session_state.setdefault(key, (0.0, 1.0))
    value = st.slider(label, 0.0, 1.0, step=STEP, key=key, on_change=_separate, args=(key,),
                      help=f"The two handles stay at least {MIN_SPAN:.0%} apart, so the crop is never empty.")
    kept = keep_apart(value, st.session_state.get(_last_key(key), value))
    st.session_state[_last_key(key)] = kept
    return kept


def _separate(key: str) -> None:
    """Slider callback: runs before the page is drawn again, so the handles are drawn apart."""
    st.session_state[key] = keep_apart(st.session_state[key], st.session_state.get(_last_key(key), (0.0, 1.0)))


def _last_key(key: str) -> str:
    return f"{key}_kept"  # the range last drawn: tells which handle a drag moved

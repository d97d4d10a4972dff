"""Upload & edit: find a photographed garment in the model (a fast guess, then optional refinement)."""
import time

import streamlit as st

from clothinggan.errors import ImageInputError
from clothinggan.invert import DEFAULT_REFINE_STEPS, invert
from clothinggan.uploads import MAX_UPLOAD_BYTES, frame_upload, read_upload
from clothinggan.ui import page, resources, widgets

RESULT_KEY = "invert_result"
REFINING_KEY = "invert_refining"  # True while a refinement runs; Stop's new run waits for its result
STOP_WAIT_S = 180

with widgets.guard():
    G, store = page.header("Upload & edit")
    st.caption("Upload a photo of a garment on a plain background. The model finds the closest garment it "
               "can draw, which you can then mix and edit like any other design.")
    up = st.file_uploader("Garment photo", type=["jpg", "jpeg", "png", "webp"], key="invert_upload",
                          max_upload_size=max(1, MAX_UPLOAD_BYTES // 2**20),
                          help=f"JPEG, PNG or WebP, up to {MAX_UPLOAD_BYTES // 2**20} MB.")
    if up is None:
        st.session_state.pop(RESULT_KEY, None)
        st.info("Upload a photo to start.", icon=":material/upload:")
        st.stop()
    try:
        photo = read_upload(up.getvalue(), up.name)
    except ImageInputError as exc:
        st.session_state.pop(RESULT_KEY, None)
        st.error(widgets.one_sentence(exc))
        st.stop()

    left, mid, right = st.columns([2, 2, 2], gap="large")
    with left:
        st.subheader("Framing")
        preview_slot = st.empty()  # the framed picture goes above the crop sliders that shape it
        h = st.slider("Keep from left to right", 0.0, 1.0, (0.0, 1.0), 0.01, key="crop_h")
        v = st.slider("Keep from top to bottom", 0.0, 1.0, (0.0, 1.0), 0.01, key="crop_v")
        crop = (h[0], v[0], h[1], v[1])
        crop = None if crop == (0.0, 0.0, 1.0, 1.0) else crop
        framed = frame_upload(photo, G.resolution, crop)
        widgets.show_image(framed, f"What the model sees ({G.resolution}×{G.resolution} px)", widgets.THUMB_PX,
                           where=preview_slot)
    with mid:
        st.subheader("Find it")
        if st.button("Find this garment in the model", key="invert_fast", type="primary",
                     icon=":material/search:", help="A fast guess (about a second)."):
            design = invert(G, photo, steps=0, crop=crop, filename=up.name)
            st.session_state[RESULT_KEY] = (up.file_id, design, "fast guess")
        # On a CPU each step is a forward and backward pass of the generator: start small there.
        default_steps = DEFAULT_REFINE_STEPS if G.device.type != "cpu" else min(DEFAULT_REFINE_STEPS, 50)
        steps = st.slider("Refinement steps", 10, 1000, default_steps, 10, key="invert_steps",
                          help="More steps fit the photo more closely but take longer; you can stop at any time "
                               "and keep the best result so far.")
        if st.button("Refine", key="invert_refine", icon=":material/auto_fix_high:"):
            st.button("Stop", key="invert_stop", icon=":material/stop:",
                      help="Stops refining and keeps the best result so far.")
            bar = st.progress(0.0, text="Refining…")
            preview = st.empty()
            interrupted: list[BaseException] = []

            def progress(step, total, previews=None):
                # A click on Stop asks Streamlit to rerun, which surfaces here as an exception:
                # stop the optimisation cleanly, keep its best result, then let the rerun happen.
                try:
                    bar.progress(min(step / max(total, 1), 1.0), text=f"Refining… step {step} of {total}")
                    if previews:
                        widgets.show_image(previews[-1], f"Step {step}", widgets.THUMB_PX, where=preview)
                except BaseException as exc:  # noqa: BLE001 - re-raised below, after saving the result
                    interrupted.append(exc)
                    return False
                return True

            st.session_state[REFINING_KEY] = True
            try:
                design = invert(G, photo, steps=int(steps), crop=crop, filename=up.name, progress=progress)
                label = f"refined, {design.provenance.get('steps', steps)} steps"
                st.session_state[RESULT_KEY] = (up.file_id, design, label + (" (stopped)" if interrupted else ""))
            finally:
                st.session_state[REFINING_KEY] = False
            if interrupted:
                raise interrupted[0]
            bar.empty()
            preview.empty()

    with right:
        st.subheader("Result")
        if st.session_state.get(REFINING_KEY):
            # Stop starts a new run while the old one finishes its current steps: wait for its best result.
            with st.spinner("Stopping after the current steps and keeping the best result so far…"):
                deadline = time.monotonic() + STOP_WAIT_S
                while st.session_state.get(REFINING_KEY) and time.monotonic() < deadline:
                    time.sleep(0.25)
        result = st.session_state.get(RESULT_KEY)
        if result is None or result[0] != up.file_id or result[1].model_id != G.fingerprint:
            st.info("Press “Find this garment in the model”.", icon=":material/search:")
        else:
            _, design, how = result
            pic = resources.render(G, design.ws)[0]
            a, b = st.columns(2)
            widgets.show_image(framed, "Your photo", widgets.THUMB_PX, where=a, fill=True)
            widgets.show_image(pic, f"The model's version ({how})", widgets.THUMB_PX, where=b, fill=True)
            in_store = design.id in store
            st.button("Added to designs" if in_store else "Add to designs", key="invert_add",
                      disabled=in_store, type="primary", icon=":material/library_add:",
                      on_click=widgets.add_to_store, args=(store, design))
            widgets.save_to_team_button(design, key="invert_team", label="Save to team library")

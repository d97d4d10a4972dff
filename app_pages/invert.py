"""Upload & edit: find a photographed garment in the model (a fast guess, then optional refinement)."""
import streamlit as st

from clothinggan.errors import ClothingGANError, ImageInputError
from clothinggan.invert import DEFAULT_REFINE_STEPS, invert
from clothinggan.uploads import MAX_UPLOAD_BYTES, frame_upload, read_upload
from clothinggan.ui import crop as crop_controls
from clothinggan.ui import page, refinement, resources, widgets

RESULT_KEY = "invert_result"

with widgets.guard():
    G, store = page.header("Upload & edit")
    st.caption("Upload a photo of a garment on a plain background. The model finds the closest garment it "
               "can draw, which you can then mix and edit like any other design.")
    up = st.file_uploader("Garment photo", type=["jpg", "jpeg", "png", "webp"], key="invert_upload",
                          max_upload_size=max(1, MAX_UPLOAD_BYTES // 2**20),
                          help=f"JPEG, PNG or WebP, up to {MAX_UPLOAD_BYTES // 2**20} MB.")
    if up is None:
        refinement.cancel()
        st.session_state.pop(RESULT_KEY, None)
        st.info("Upload a photo to start.", icon=":material/upload:")
        st.stop()
    try:
        photo = read_upload(up.getvalue(), up.name)
    except ImageInputError as exc:
        refinement.cancel()
        st.session_state.pop(RESULT_KEY, None)
        st.error(widgets.one_sentence(exc))
        st.stop()

    job = refinement.current()
    if job is not None and (job.file_id, job.model_id) != (up.file_id, G.fingerprint):
        refinement.cancel()  # refining a photo or a model that is no longer on screen
    finished = refinement.collect()
    if finished is not None and finished.design is not None:
        st.session_state[RESULT_KEY] = (finished.file_id, finished.design, finished.label)
    refining = refinement.running() is not None

    left, mid, right = st.columns([2, 2, 2], gap="large")
    with left:
        st.subheader("Framing")
        preview_slot = st.empty()  # the framed picture goes above the crop sliders that shape it
        crop = crop_controls.crop_sliders()
        framed = frame_upload(photo, G.resolution, crop)
        widgets.show_image(framed, f"What the model sees ({G.resolution}×{G.resolution} px)", widgets.THUMB_PX,
                           where=preview_slot)
    with mid:
        st.subheader("Find it")
        if st.button("Find this garment in the model", key="invert_fast", type="primary", disabled=refining,
                     icon=":material/search:", help="A fast guess (about a second)."):
            design = invert(G, photo, steps=0, crop=crop, filename=up.name)
            st.session_state[RESULT_KEY] = (up.file_id, design, "fast guess")
        # On a CPU each step is a forward and backward pass of the generator: start small there.
        default_steps = DEFAULT_REFINE_STEPS if G.device.type != "cpu" else min(DEFAULT_REFINE_STEPS, 50)
        steps = st.slider("Refinement steps", 10, 1000, default_steps, 10, key="invert_steps",
                          help="More steps fit the photo more closely but take longer; you can stop at any time "
                               "and keep the best result so far.")
        if st.button("Refine", key="invert_refine", icon=":material/auto_fix_high:", disabled=refining):
            refinement.start(G, photo, steps=int(steps), crop=crop, filename=up.name, file_id=up.file_id)
            st.rerun()  # draw the page again as it is while refining: Find and Refine disabled, Stop shown
        if refining:
            refinement.progress_panel()
        elif finished is not None and finished.error is not None:
            err = finished.error
            st.error(widgets.one_sentence(err) if isinstance(err, ClothingGANError)
                     else "Refinement failed on our side; the result before it is kept. Try again.")

    with right:
        st.subheader("Result")
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

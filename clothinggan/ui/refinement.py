"""Refinement on the Upload & edit page: a worker thread optimises, script runs only watch it.

A click on Stop starts a new script run at once (Streamlit's default ``runner.fastReruns``) and marks the
old run stopped: from then on its every ``st`` call and session-state read or write raises StopException,
so a refinement inside a script run could neither save its result nor say it had finished. Here the job,
its stop signal and its best result live in an object kept in ``st.session_state``; no run waits for it.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

import streamlit as st
from PIL import Image

from clothinggan.designs import Design
from clothinggan.errors import ClothingGANError
from clothinggan.framing import Crop
from clothinggan.invert import invert
from clothinggan.ui import widgets

log = logging.getLogger("clothinggan.ui")

JOB_KEY = "invert_job"
POLL_S = 0.5  # how often the progress panel looks at the job: Stop shows its result within a step and this


class Refinement:
    """One photo's refinement on a daemon thread. Its worker never calls Streamlit; any run may read it."""

    def __init__(self, G: Any, photo: Image.Image, *, steps: int, crop: Crop | None, filename: str,
                 file_id: str) -> None:
        self.file_id = file_id
        self.model_id: str = G.fingerprint
        self.total = int(steps)
        self.design: Design | None = None
        self.error: Exception | None = None
        self.collected = False  # the page has taken the result (set by a script run, read by the next)
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._lock = threading.Lock()
        self._step = 0
        self._preview: Image.Image | None = None
        self._thread = threading.Thread(target=self._run, args=(G, photo, crop, filename),
                                        name="clothinggan-refine", daemon=True)

    def start(self) -> Refinement:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the worker to end before its next step; it keeps the best latent so far."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set() and not self.done

    @property
    def done(self) -> bool:
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker has finished (for tests and scripts; the page never waits)."""
        return self._finished.wait(timeout)

    def progress(self) -> tuple[int, Image.Image | None]:
        """The last step reported and its picture."""
        with self._lock:
            return self._step, self._preview

    @property
    def label(self) -> str:
        """How the result came about, as the Result panel words it."""
        steps = int(self.design.provenance.get("steps", 0)) if self.design is not None else 0
        return f"refined, {steps} steps" + (" (stopped)" if steps < self.total else "")

    def _report(self, step: int, _total: int, previews: list[Image.Image]) -> None:
        with self._lock:
            self._step, self._preview = step, (previews[-1] if previews else self._preview)

    def _run(self, G: Any, photo: Image.Image, crop: Crop | None, filename: str) -> None:
        try:
            self.design = invert(G, photo, steps=self.total, crop=crop, filename=filename,
                                 progress=self._report, stop=self._stop.is_set)
        except Exception as exc:  # noqa: BLE001 - handed to the page, which shows one sentence
            if not isinstance(exc, ClothingGANError):  # ours are the user's to read, not a bug to log
                log.exception("refinement failed")
            self.error = exc
        finally:
            self._finished.set()


def start(G: Any, photo: Image.Image, *, steps: int, crop: Crop | None, filename: str, file_id: str) -> Refinement:
    """Start refining ``photo`` and remember the job in the session (a running one is stopped first)."""
    cancel()
    job = Refinement(G, photo, steps=steps, crop=crop, filename=filename, file_id=file_id)
    st.session_state[JOB_KEY] = job
    return job.start()


def current() -> Refinement | None:
    """This session's latest refinement, finished or not."""
    return st.session_state.get(JOB_KEY)


def running() -> Refinement | None:
    """The refinement whose result the page has not shown yet, if any."""
    job = current()
    return job if job is not None and not job.collected else None


def cancel() -> None:
    """Stop and forget this session's refinement (a new photo, or none, makes it pointless)."""
    job = st.session_state.pop(JOB_KEY, None)
    if job is not None:
        job.stop()


def collect() -> Refinement | None:
    """The finished refinement, once: the run that calls this shows its result."""
    job = running()
    if job is None or not job.done:
        return None
    job.collected = True
    return job


@st.fragment(run_every=POLL_S)
def progress_panel() -> None:
    """Progress, the latest picture and Stop while a refinement runs; a full rerun once it has finished."""
    job = running()
    if job is None:
        return
    if job.done:
        st.rerun()  # the page collects the result and is drawn again without this panel
    step, preview = job.progress()
    text = ("Stopping, keeping the best result so far…" if job.stopping
            else f"Refining… step {step} of {job.total}")
    st.progress(min(step / max(job.total, 1), 1.0), text=text)
    st.button("Stop", key="invert_stop", icon=":material/stop:", on_click=job.stop, disabled=job.stopping,
              help="Stops refining and keeps the best result so far.")
    if preview is not None:  # below Stop, which must not be pushed off the screen
        widgets.show_image(preview, f"Step {step}", widgets.THUMB_PX)

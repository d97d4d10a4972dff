"""The Upload & edit page under AppTest: refinement runs beside the page, Stop keeps its best result,
and the crop sliders cannot make an empty crop.

A refinement's worker is held at its first preview where a test must act while it runs, so no test
depends on how fast the tiny model refines.
"""
from __future__ import annotations

import io
import threading

import pytest
from PIL import Image

from clothinggan.invert import PREVIEW_EVERY
from clothinggan.ui import crop, refinement

st_testing = pytest.importorskip("streamlit.testing.v1")
AppTest = st_testing.AppTest

JOB_WAIT_S = 120  # a safety net against a hung worker, not a timing check


def ok(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def keys(at: AppTest) -> set[str]:
    return {b.key for b in at.button}


def upload(at: AppTest) -> AppTest:
    at.switch_page("app_pages/invert.py").run()
    buf = io.BytesIO()
    Image.new("RGB", (40, 60), (20, 30, 200)).save(buf, format="PNG")
    return at.file_uploader(key="invert_upload").set_value(("coat.png", buf.getvalue(), "image/png")).run()


def finish(at: AppTest) -> AppTest:
    """Wait for a refinement still running beside the page, then rerun (as the progress panel's poll does)."""
    if refinement.JOB_KEY in at.session_state and not at.session_state[refinement.JOB_KEY].collected:
        assert at.session_state[refinement.JOB_KEY].wait(JOB_WAIT_S)
        at.run()
    return at


class Hold:
    """Holds every refinement at its first preview: ``reached`` once one is there, ``release`` lets it go on."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()


@pytest.fixture()
def held(monkeypatch) -> Hold:
    hold = Hold()
    real = refinement.invert

    def held_invert(*args, progress, **kwargs):
        def report(step, total, previews):
            progress(step, total, previews)
            hold.reached.set()
            hold.release.wait(JOB_WAIT_S)
        return real(*args, progress=report, **kwargs)

    monkeypatch.setattr(refinement, "invert", held_invert)
    yield hold
    hold.release.set()  # never leave a worker waiting


def test_stop_ends_refinement_and_keeps_its_best_result(app: AppTest, held: Hold) -> None:
    at = upload(app)
    at.button(key="invert_fast").click().run()
    at.slider(key="invert_steps").set_value(1000)
    at.button(key="invert_refine").click().run()
    ok(at)
    # The run that started the refinement has ended while its worker runs: Stop is there to press.
    assert refinement.JOB_KEY in at.session_state and not at.session_state[refinement.JOB_KEY].done
    assert "invert_stop" in keys(at) and at.button(key="invert_refine").disabled

    assert held.reached.wait(JOB_WAIT_S)
    at.button(key="invert_stop").click().run()  # would never return if the page waited for the worker
    ok(at)
    assert any("Stopping" in p.text for p in at.progress)
    held.release.set()
    finish(at)
    ok(at)
    _, design, how = at.session_state["invert_result"]
    assert design.provenance["steps"] == PREVIEW_EVERY  # the steps done before Stop are kept
    assert how == f"refined, {PREVIEW_EVERY} steps (stopped)"
    assert any(how in c for c in captions(at))
    assert "invert_stop" not in keys(at)
    assert not at.button(key="invert_refine").disabled


def test_stop_is_gone_once_refinement_ends(app: AppTest) -> None:
    at = upload(app)
    at.slider(key="invert_steps").set_value(10)
    at.button(key="invert_refine").click().run()
    finish(at)
    ok(at)
    _, design, how = at.session_state["invert_result"]
    assert design.provenance["steps"] == 10 and how == "refined, 10 steps"
    assert "invert_stop" not in keys(at) and not at.progress


def test_a_new_photo_stops_the_refinement_of_the_old_one(app: AppTest, held: Hold) -> None:
    at = upload(app)
    at.slider(key="invert_steps").set_value(1000)
    at.button(key="invert_refine").click().run()
    job = at.session_state[refinement.JOB_KEY]
    assert held.reached.wait(JOB_WAIT_S)
    at.file_uploader(key="invert_upload").set_value(None).run()
    ok(at)
    held.release.set()
    assert job.wait(JOB_WAIT_S) and job.design.provenance["steps"] < 1000
    assert refinement.JOB_KEY not in at.session_state


def test_a_failed_refinement_says_so_and_keeps_the_earlier_result(app: AppTest, monkeypatch) -> None:
    from clothinggan.errors import ModelMismatchError

    def failing_invert(*args, **kwargs):
        raise ModelMismatchError("The encoder belongs to another model.")

    at = upload(app)
    at.button(key="invert_fast").click().run()
    monkeypatch.setattr(refinement, "invert", failing_invert)
    at.button(key="invert_refine").click().run()
    finish(at)
    assert not at.exception
    assert [e.value for e in at.error] == ["The encoder belongs to another model."]
    assert at.session_state["invert_result"][2] == "fast guess"
    assert "invert_stop" not in keys(at) and not at.button(key="invert_refine").disabled


def test_the_worker_needs_no_script_run(held: Hold) -> None:
    """Stop from another thread reaches a refinement started outside any Streamlit run, and its best is kept."""
    from clothinggan.testing import tiny_generator

    job = refinement.Refinement(tiny_generator(), Image.new("RGB", (40, 60), (20, 30, 200)), steps=1000, crop=None,
                                filename="coat.png", file_id="coat").start()
    assert held.reached.wait(JOB_WAIT_S) and not job.done
    job.stop()
    assert job.stopping
    held.release.set()
    assert job.wait(JOB_WAIT_S) and job.error is None
    assert job.design.provenance["steps"] == PREVIEW_EVERY and job.label.endswith("(stopped)")
    assert job.progress()[0] == PREVIEW_EVERY and job.progress()[1] is not None


@pytest.mark.parametrize(("before", "dragged", "after"), [
    ((0.0, 1.0), (1.0, 1.0), (0.95, 1.0)),   # the left handle dragged onto the right one at the edge
    ((0.0, 1.0), (0.0, 0.0), (0.0, 0.05)),   # the right handle dragged onto the left one at the edge
    ((0.3, 0.6), (0.3, 0.3), (0.3, 0.35)),   # the right handle gives way, the left one stays
    ((0.3, 0.6), (0.6, 0.6), (0.55, 0.6)),   # the left handle gives way, the right one stays
    ((0.3, 0.6), (0.3, 0.4), (0.3, 0.4)),    # far enough apart: untouched
])
def test_keep_apart(before, dragged, after) -> None:
    assert crop.keep_apart(dragged, before) == pytest.approx(after)


def test_crop_handles_cannot_meet_and_the_page_stays(app: AppTest) -> None:
    at = upload(app)
    at.button(key="invert_fast").click().run()
    at.slider(key="crop_h").set_value((1.0, 1.0)).run()
    ok(at)
    assert at.slider(key="crop_h").value == pytest.approx((1.0 - crop.MIN_SPAN, 1.0))
    assert {"invert_fast", "invert_refine", "invert_add"} <= keys(at)  # Find and Result are still there
    shown = captions(at)
    assert any("What the model sees" in c for c in shown) and any("fast guess" in c for c in shown)

    at.slider(key="crop_v").set_value((0.0, 0.0)).run()
    ok(at)
    assert at.slider(key="crop_v").value == pytest.approx((0.0, crop.MIN_SPAN))


def captions(at: AppTest) -> list[str]:
    return [c for im in at.image for c in im.captions]

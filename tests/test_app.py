"""AppTest runs of the Streamlit app on a tiny random 16-px model: the main flow and bad inputs.

The model comes from ``CLOTHINGGAN_DEFAULT_MODEL``; caches, directions and the design library go
to a temporary folder, so these tests never touch a user's files.
"""
from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from PIL import Image

import clothinggan as cg
from clothinggan.networks import GeneratorConfig, StyleGAN2

st_testing = pytest.importorskip("streamlit.testing.v1")
AppTest = st_testing.AppTest

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
TIMEOUT = 60


def store_of(at: AppTest):
    stores = at.session_state["stores"]
    assert len(stores) == 1
    return next(iter(stores.values()))


def ok(at: AppTest) -> None:
    """No exception, no error box on the page."""
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def generate(at: AppTest, seeds: str) -> AppTest:
    at.text_input(key="seeds_text").set_value(seeds)
    at.button(key="FormSubmitter:generate_form-Generate").click()
    return at.run()


def test_full_flow(app: AppTest) -> None:
    at = app
    # Generate: four images with captions, then add them all.
    generate(at, "0-3")
    ok(at)
    assert len(at.image) >= 4
    at.button(key="add_all").click().run()
    ok(at)
    store = store_of(at)
    assert [d.name for d in store] == ["seed 0", "seed 1", "seed 2", "seed 3"]
    assert any("Added 4" in s.value for s in at.success)

    # Style mix: A and B from the store; the result goes to the store with its provenance.
    at.switch_page("app_pages/style_mix.py").run()
    ok(at)
    assert len(at.image) >= 4  # A, B, result, mixing grid
    at.slider(key="mix_structure").set_value(0.0)
    at.slider(key="mix_style").set_value(1.0)
    at.button(key="mix_add").click().run()
    ok(at)
    mixed = list(store_of(at))[-1]
    assert len(store_of(at)) == 5 and mixed.provenance["kind"] == "mix"
    assert mixed.provenance["a_name"] == "seed 0" and mixed.provenance["b_name"] == "seed 1"

    # PCA explorer: compute components, walk one, name it, pick a scatter point and add it.
    at.switch_page("app_pages/pca_explorer.py").run()
    ok(at)
    at.button(key="pca_compute").click().run()
    ok(at)
    assert len(at.image) >= 7  # the component strip
    at.text_input(key="pca_dir_name").set_value("Sleeves")
    at.button(key="FormSubmitter:name_component-Save direction").click().run()
    ok(at)
    assert any("Sleeves" in s.value for s in at.success)
    at.session_state["pca_picked"] = 5  # AppTest cannot click plotly points; the page reads this key
    at.run()
    ok(at)
    at.button(key="pca_add").click().run()
    ok(at)
    assert list(store_of(at))[-1].provenance["kind"] == "pca sample"
    assert len(store_of(at)) == 6

    # Attribute edit: the new direction is a slider; an edit saved as a new design.
    at.switch_page("app_pages/attribute_edit.py").run()
    ok(at)
    design = at.selectbox(key="edit_design").value
    slider = [s for s in at.slider if s.label == "Sleeves"]
    assert slider, [s.label for s in at.slider]
    slider[0].set_value(2.0).run()
    ok(at)
    assert len(at.image) >= 2  # before and after
    at.text_input(key="edit_name").set_value("long sleeves")
    at.button(key="edit_save").click().run()
    ok(at)
    edited = list(store_of(at))[-1]
    assert edited.name == "long sleeves" and edited.provenance["kind"] == "edit"
    assert edited.provenance["source"] == design
    assert edited.provenance["edits"][0]["name"] == "Sleeves"

    # Library: rename, reorder, save to the team library, clear the session, load back.
    at.switch_page("app_pages/library.py").run()
    ok(at)
    assert len(at.image) >= 7
    first = store_of(at).ids()[0]
    at.text_input(key=f"name_{first}").set_value("my favourite").run()
    assert store_of(at).get(first).name == "my favourite"
    at.button(key=f"down_{first}").click().run()
    assert store_of(at).index(first) == 1
    at.text_input(key="author").set_value("Ada")
    at.button(key="lib_save_all").click().run()
    ok(at)
    n = len(store_of(at))
    saved_ids = store_of(at).ids()
    store_of(at).clear()
    at.run()
    ok(at)
    for design_id in saved_ids[:2]:
        at.button(key=f"lib_load_{design_id}").click().run()
        ok(at)
    assert store_of(at).ids() == saved_ids[:2]
    assert n == 7


def test_a_seed_generated_again_shows_as_already_added(app: AppTest) -> None:
    generate(app, "0, 1")
    app.button(key="add_all").click().run()
    assert len(store_of(app)) == 2
    generate(app, "0-2")  # new objects for seeds 0 and 1: the same garments
    ok(app)
    cards = [b for b in app.button if b.key and b.key.startswith("add_") and b.key != "add_all"]
    assert [(b.label, b.disabled) for b in cards] == [("Added", True), ("Added", True), ("Add", False)]
    app.button(key="add_all").click().run()
    assert [d.name for d in store_of(app)] == ["seed 0", "seed 1", "seed 2"]  # no "seed 0 (2)"
    app.button(key="add_all").click().run()
    assert len(store_of(app)) == 3 and any("already" in s.value for s in [*app.success, *app.info])


def test_bad_seed_shows_one_error(app: AppTest) -> None:
    generate(app, "5-oops")
    assert not app.exception
    assert len(app.error) == 1 and "oops" in app.error[0].value
    assert not app.image
    generate(app, str(2**32))
    assert len(app.error) == 1 and "out of range" in app.error[0].value


def test_empty_store_shows_empty_state(app: AppTest) -> None:
    for page in ("app_pages/attribute_edit.py", "app_pages/library.py"):
        app.switch_page(page).run()
        ok(app)
        assert any("no designs" in i.value.lower() for i in app.info), page


def test_bad_upload_is_refused_and_store_untouched(app: AppTest) -> None:
    generate(app, "0")
    app.button(key="add_all").click().run()
    app.switch_page("app_pages/invert.py").run()
    ok(app)
    before = store_of(app).ids()
    app.file_uploader(key="invert_upload").set_value(("garment.png", b"this is not a picture", "image/png")).run()
    assert not app.exception
    assert len(app.error) == 1
    assert store_of(app).ids() == before


def test_upload_fast_guess_adds_to_store(app: AppTest) -> None:
    app.switch_page("app_pages/invert.py").run()
    buf = io.BytesIO()
    Image.new("RGB", (40, 60), (200, 30, 30)).save(buf, format="PNG")
    app.file_uploader(key="invert_upload").set_value(("dress.png", buf.getvalue(), "image/png")).run()
    ok(app)
    app.button(key="invert_fast").click().run()
    ok(app)
    app.button(key="invert_add").click().run()
    ok(app)
    assert [d.provenance["kind"] for d in store_of(app)] == ["inverted"]


def test_refused_model_keeps_current(app: AppTest, tmp_path) -> None:
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not a model")
    spec = app.session_state["model_spec"]
    app.radio(key="model_source").set_value("File path").run()
    app.text_input(key="model_path").set_value(str(bad)).run()
    app.button(key="model_path_load").click().run()
    assert not app.exception
    assert any("current one stays" in e.value for e in app.sidebar.error)
    assert app.session_state["model_spec"] == spec


def test_uploaded_models_go_by_their_names_and_refused_ones_are_not_kept(app: AppTest, tmp_path,
                                                                        tiny_model) -> None:
    spec = app.session_state["model_spec"]
    app.radio(key="model_source").set_value("Upload").run()
    app.file_uploader(key="model_upload").set_value(("random.pt", b"\x80\x02junk" * 100, "application/octet-stream"))
    app.run()
    app.button(key="model_upload_load").click().run()
    assert not app.exception and app.session_state["model_spec"] == spec
    [error] = [e.value for e in app.sidebar.error]
    assert "random.pt" in error and "uploaded_models" not in error, error
    uploads = tmp_path / "cache" / "uploaded_models"
    assert not [f for f in uploads.rglob("*") if f.is_file()]  # a refused upload is deleted

    app.file_uploader(key="model_upload").set_value(("lookbook v2.safetensors", tiny_model.read_bytes(),
                                                     "application/octet-stream"))
    app.run()
    app.button(key="model_upload_load").click().run()
    assert not app.exception
    assert [f.name for f in uploads.rglob("*") if f.is_file()] == ["lookbook_v2.safetensors"]
    assert any("lookbook_v2" in m.value for m in app.sidebar.markdown)

    # A reload (a new session on the same address) stays on the uploaded model, with its designs.
    generate(app, "3")
    app.button(key="add_all").click().run()
    spec = app.session_state["model_spec"]
    assert app.query_params["model"] == spec and app.query_params["s"]
    reloaded = AppTest.from_file(APP, default_timeout=TIMEOUT)
    reloaded.query_params.update({"s": app.query_params["s"], "model": spec})
    reloaded.run()
    ok(reloaded)
    assert reloaded.session_state["model_spec"] == spec
    assert any("lookbook_v2" in m.value for m in reloaded.sidebar.markdown)
    assert [d.name for d in store_of(reloaded)] == ["seed 3"]


def test_an_address_naming_a_model_outside_the_model_folders_is_refused(app_env) -> None:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["model"] = "/etc/passwd"
    at.run()
    assert not at.exception
    assert at.session_state["model_spec"] != "/etc/passwd"
    assert any("cannot be used here" in w.value for w in at.warning)
    assert "model" not in at.query_params


def test_switching_models_keeps_stores_apart(app: AppTest, tmp_path) -> None:
    generate(app, "0-1")
    app.button(key="add_all").click().run()
    torch.manual_seed(1)
    cfg = GeneratorConfig(resolution=16, z_dim=32, w_dim=32, mapping_layers=2, channels={4: 32, 8: 32, 16: 16})
    other = tmp_path / "other.safetensors"
    cg.save_generator(cg.Generator(StyleGAN2(cfg), name="other"), other)
    app.radio(key="model_source").set_value("File path").run()
    app.text_input(key="model_path").set_value(str(other)).run()
    app.button(key="model_path_load").click().run()
    assert not app.exception
    assert app.session_state["model_spec"] == str(other)
    app.run()
    assert any("2 designs belong to model" in c.value for c in app.sidebar.caption)
    stores = app.session_state["stores"]
    assert sorted(len(s) for s in stores.values()) == [0, 2]


@pytest.mark.parametrize("path", ["/proc/self/environ", "/etc/passwd", "{tmp}/../outside.safetensors"])
def test_file_path_loads_only_from_the_model_folders(app: AppTest, tmp_path, tiny_model, path) -> None:
    """Issue 9 #9: the path box read any server file; in a shared deployment that probes the server."""
    outside = tmp_path.parent / "outside.safetensors"
    outside.write_bytes(tiny_model.read_bytes())  # a real model, but not in the app's model folders
    spec = app.session_state["model_spec"]
    app.radio(key="model_source").set_value("File path").run()
    app.text_input(key="model_path").set_value(path.format(tmp=tmp_path)).run()
    app.button(key="model_path_load").click().run()
    assert not app.exception
    [error] = app.sidebar.error
    assert "model folders" in error.value or "not a model file" in error.value
    assert app.session_state["model_spec"] == spec


def test_a_file_that_is_not_a_model_is_named_as_typed(app: AppTest, tmp_path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    app.radio(key="model_source").set_value("File path").run()
    app.text_input(key="model_path").set_value(str(tmp_path / "pyproject.toml")).run()
    app.button(key="model_path_load").click().run()
    [error] = app.sidebar.error
    assert "“pyproject.toml” is not a model file" in error.value, error.value  # not "Pyproject.toml"


def test_sidebar_shows_the_model_files_sha256(app: AppTest, tiny_model) -> None:
    from clothinggan.paths import file_sha256

    digest = file_sha256(tiny_model)
    [caption] = [c for c in app.sidebar.caption if c.value.startswith("sha256")]
    assert digest[:16] in caption.value and digest in caption.help


def test_download_picker_lists_known_models(app: AppTest) -> None:
    app.radio(key="model_source").set_value("Download").run()
    assert not app.exception
    from clothinggan import zoo

    if zoo.MODELS:
        assert app.selectbox(key="zoo_name").options


def test_import_npz_round_trip_and_wrong_model(app: AppTest, tmp_path) -> None:
    from clothinggan.designs import Design
    from clothinggan.store import LatentStore
    import numpy as np

    generate(app, "0-2")
    app.button(key="add_all").click().run()
    exported = store_of(app).to_npz_bytes()
    store_of(app).clear()
    app.switch_page("app_pages/library.py").run()
    app.file_uploader(key="import_npz").set_value(("designs.npz", exported, "application/octet-stream")).run()
    ok(app)
    assert [d.name for d in store_of(app)] == ["seed 0", "seed 1", "seed 2"]

    foreign = LatentStore(model_id="another-model")
    foreign.add(Design(ws=np.zeros((6, 32), np.float32), model_id="another-model", name="x"))
    app.file_uploader(key="import_npz").set_value(("other.npz", foreign.to_npz_bytes(), "application/octet-stream")).run()
    assert not app.exception
    assert len(app.error) == 1 and "model" in app.error[0].value
    assert len(store_of(app)) == 3
    assert app.text_input(key="lib_q")  # the team library tab still draws beside the refusal
    app.run()
    assert len(app.error) == 1 and len(store_of(app)) == 3  # said while the file stays, imported once


def test_refine_with_progress(app: AppTest) -> None:
    app.switch_page("app_pages/invert.py").run()
    buf = io.BytesIO()
    Image.new("RGB", (40, 60), (20, 30, 200)).save(buf, format="PNG")
    app.file_uploader(key="invert_upload").set_value(("coat.png", buf.getvalue(), "image/png")).run()
    app.slider(key="invert_steps").set_value(10)
    app.button(key="invert_refine").click().run()
    ok(app)
    assert app.session_state["invert_job"].wait(TIMEOUT)  # it refines beside the page; then a rerun shows it
    app.run()
    ok(app)
    result = app.session_state["invert_result"]
    assert result[1].provenance["kind"] == "inverted" and result[1].provenance["steps"] == 10
    app.button(key="invert_add").click().run()
    assert len(store_of(app)) == 1


def test_vanished_model_offers_the_way_back(app: AppTest, tmp_path) -> None:
    gone = tmp_path / "gone.safetensors"
    app.session_state["model_spec"] = str(gone)
    app.run()
    assert not app.exception
    assert any("could not be loaded" in e.value for e in app.sidebar.error)
    app.button(key="model_recover").click().run()
    ok(app)
    assert app.session_state["model_spec"] != str(gone)
    assert len(app.image) >= 8


def edit_with_a_named_direction(app: AppTest, name: str) -> None:
    """One design in the store, a component named ``name`` in the PCA explorer, then Attribute edit."""
    generate(app, "0")
    app.button(key="add_all").click().run()
    app.switch_page("app_pages/pca_explorer.py").run()
    app.button(key="pca_compute").click().run()
    app.text_input(key="pca_dir_name").set_value(name)
    app.button(key="FormSubmitter:name_component-Save direction").click().run()
    app.switch_page("app_pages/attribute_edit.py").run()


def test_edit_reset_returns_sliders_to_default(app: AppTest) -> None:
    edit_with_a_named_direction(app, "Length")
    slider = next(s for s in app.slider if s.label == "Length")
    slider.set_value(1.5).run()
    assert next(s for s in app.slider if s.label == "Length").value == 1.5
    app.button(key="edit_reset").click().run()
    ok(app)
    assert not app.warning or all("placeholder" in w.value for w in app.warning)
    assert next(s for s in app.slider if s.label == "Length").value == 0.0


def test_reset_gives_the_sliders_new_identities(app: AppTest) -> None:
    """A browser keeps showing a slider's old position, and sends it back with the next slider moved,
    unless the reset slider is a new widget: it must come back under a new id, at its default."""
    edit_with_a_named_direction(app, "Length")
    before = next(s for s in app.slider if s.label == "Length")
    before.set_value(1.5).run()
    app.button(key="edit_reset").click().run()
    ok(app)
    after = next(s for s in app.slider if s.label == "Length")
    assert after.id != before.id and after.value == 0.0
    assert app.button(key="edit_save").disabled


def test_long_names_in_the_library_stay_valid_names(app: AppTest) -> None:
    """A 300-character rename, and the same long name given to a second design (whose " (2)"
    went past the limit): both crashed the page and blanked the sidebar's name."""
    generate(app, "0, 1")
    app.button(key="add_all").click().run()
    app.text_input(key="author").set_value("Ada")
    app.switch_page("app_pages/library.py").run()
    first, second = store_of(app).ids()
    app.text_input(key=f"name_{first}").set_value("x" * 300).run()   # the box holds 200, as a browser's does
    app.text_input(key=f"name_{second}").set_value("x" * 200).run()
    ok(app)
    names = [store_of(app).get(i).name for i in (first, second)]
    assert names[0] == "x" * 200 and names[1].endswith("… (2)") and len(names[1]) == 200
    assert app.text_input(key=f"name_{second}").value == names[1]
    assert app.text_input(key="author").value == "Ada"  # nothing else on the page is lost


def test_layer_ranges_show_on_request_and_stay_when_hidden(app: AppTest) -> None:
    edit_with_a_named_direction(app, "Hem")
    ok(app)
    assert not [s for s in app.slider if s.label.startswith("Layers")]  # one slider per direction until asked
    app.toggle(key="edit_show_layers").set_value(True).run()
    ranges = [s for s in app.slider if s.label == "Layers “Hem” moves"]
    assert len(ranges) == 1 and ranges[0].value == (0, 5)  # a named component moves every layer at first
    ranges[0].set_value((1, 2)).run()
    app.toggle(key="edit_show_layers").set_value(False).run()
    assert not [s for s in app.slider if s.label.startswith("Layers")]
    next(s for s in app.slider if s.label == "Hem").set_value(2.0).run()
    app.button(key="edit_save").click().run()
    ok(app)
    edit = list(store_of(app))[-1].provenance["edits"][0]
    assert edit["layers"] == [1, 3], edit  # the hidden range still applies
    app.toggle(key="edit_show_layers").set_value(True).run()
    assert next(s for s in app.slider if s.label == "Layers “Hem” moves").value == (1, 2)


def test_user_direction_can_be_deleted(app: AppTest) -> None:
    edit_with_a_named_direction(app, "Hem")
    assert any(s.label == "Hem" for s in app.slider)
    [ask] = [p for p in app.get("popover") if p.proto.popover.label == "Delete “Hem”"]  # one click only opens the question
    assert [b.key for b in ask.button] == ["deldir_Hem"] and "shared" in ask.caption[0].value
    app.button(key="deldir_Hem").click().run()
    app.run()
    ok(app)
    assert not any(s.label == "Hem" for s in app.slider)
    assert any("no named directions" in i.value for i in app.info)


def test_core_package_never_imports_streamlit() -> None:
    import subprocess
    import sys

    code = ("import sys, pkgutil, importlib, clothinggan\n"
            "for m in pkgutil.walk_packages(clothinggan.__path__, 'clothinggan.'):\n"
            "    if not m.name.startswith('clothinggan.ui'):\n"
            "        try: importlib.import_module(m.name)\n"
            "        except ImportError: pass\n"
            "print('streamlit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr[-2000:]

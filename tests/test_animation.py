"""Animations: walks in W+, GIF and MP4 encoding, the CLI command and the app's panels (issue 11)."""
from __future__ import annotations

import io
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from test_app import generate, ok, store_of

import clothinggan as cg
from clothinggan import animation
from clothinggan.cli import main as cli_main
from clothinggan.directions import NamedDirection, apply_edits
from clothinggan.errors import AnimationError, ClothingGANError


@pytest.fixture()
def ws_pair(tiny_generator):
    return tiny_generator.seeds_to_ws([3, 7], 0.7).numpy()


def mp4_frames(path) -> tuple[tuple[int, int], int]:
    """(width, height) and frame count of an MP4, decoded by imageio-ffmpeg's ffmpeg."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    return tuple(meta["size"]), sum(1 for _ in reader)


def test_a_walk_between_designs_starts_at_a_reaches_b_and_loops(ws_pair):
    a, b = ws_pair
    one_way = animation.interpolation_ws(a, b, 10)
    assert one_way.shape == (10, *a.shape) and one_way.dtype == np.float32
    np.testing.assert_allclose(one_way[0], a, atol=1e-6)
    np.testing.assert_allclose(one_way[-1], b, atol=1e-6)
    loop = animation.interpolation_ws(a, b, 12, there_and_back=True)
    np.testing.assert_allclose(loop[0], a, atol=1e-6)
    np.testing.assert_allclose(loop[6], b, atol=1e-6)  # B half-way, then back towards A
    np.testing.assert_allclose(loop[1], loop[11], atol=1e-6)
    steps = np.linalg.norm((loop[1:] - loop[:-1]).reshape(11, -1), axis=1)
    assert steps.max() < np.linalg.norm(b - a)  # no jump: each frame is a small step


def test_a_direction_walk_passes_through_the_design_and_both_extremes(ws_pair):
    base = ws_pair[0]
    vector = np.random.default_rng(0).standard_normal(base.shape[1]).astype(np.float32)
    d = NamedDirection("Sleeves", vector / np.linalg.norm(vector), 0, 3, unit="raw")
    walk = animation.direction_walk_ws(base, d, 2.0, 8)
    np.testing.assert_allclose(walk[0], base, atol=1e-6)
    np.testing.assert_allclose(walk[4], base, atol=1e-5)
    np.testing.assert_allclose(walk[2], apply_edits(base, [(d, 2.0)]), atol=1e-5)
    np.testing.assert_allclose(walk[6], apply_edits(base, [(d, -2.0)]), atol=1e-5)
    np.testing.assert_array_equal(walk[:, 3:], np.broadcast_to(base[3:], walk[:, 3:].shape))  # other layers still


def test_frames_render_like_the_generator_and_encode_as_gif_and_mp4(tiny_generator, ws_pair, tmp_path):
    G = tiny_generator
    ws = animation.interpolation_ws(*ws_pair, 6)
    frames = animation.render_frames(G, ws, size=64)
    assert len(frames) == 6 and frames[0].size == (64, 64)
    first = cg.to_pil(G.synthesis(torch.as_tensor(ws[:1])))[0].resize((64, 64), Image.LANCZOS)
    assert np.abs(np.asarray(first, np.int16) - np.asarray(frames[0], np.int16)).mean() < 1
    gif = Image.open(io.BytesIO(animation.encode_gif(frames, 12)))
    assert (gif.format, gif.n_frames, gif.size, gif.info.get("loop")) == ("GIF", 6, (64, 64), 0)
    assert abs(gif.info["duration"] - 1000 / 12) <= 10  # GIF stores hundredths of a second
    mp4 = animation.encode_mp4(frames, 12)
    assert mp4[4:8] == b"ftyp"
    path = tmp_path / "walk.mp4"
    path.write_bytes(mp4)
    assert mp4_frames(path) == ((64, 64), 6)


def test_the_first_and_last_frames_are_the_two_designs_renders(tiny_generator, ws_pair):
    G = tiny_generator
    frames = animation.render_frames(G, animation.interpolation_ws(*ws_pair, 5), size=G.resolution)
    ends = cg.to_pil(G.synthesis(torch.as_tensor(ws_pair)))
    assert [np.asarray(f).tolist() for f in (frames[0], frames[-1])] == [np.asarray(e).tolist() for e in ends]


def test_without_imageio_ffmpeg_mp4_says_what_to_install_and_gif_still_works(tiny_generator, ws_pair, monkeypatch):
    frames = animation.render_frames(tiny_generator, animation.interpolation_ws(*ws_pair, 3), size=32)
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import now raises ImportError
    with pytest.raises(AnimationError, match="pip install imageio-ffmpeg"):
        animation.encode_mp4(frames, 12)
    assert Image.open(io.BytesIO(animation.encode_gif(frames, 12))).n_frames == 3


@pytest.mark.parametrize("frames, fps, size", [(1, 24, 256), (241, 24, 256), (48, 0, 256), (48, 61, 256),
                                                (48, float("nan"), 256), (48, 24, 8), (48, 24, 4096), (2.5, 24, 256)])
def test_out_of_range_settings_are_one_typed_error(frames, fps, size):
    with pytest.raises(animation.AnimationError):
        animation.check_settings(frames, fps, size)


def test_unknown_formats_and_odd_mp4_sizes_are_refused(tiny_generator, ws_pair):
    frames = animation.render_frames(tiny_generator, animation.interpolation_ws(*ws_pair, 2), size=17)
    with pytest.raises(animation.AnimationError, match="even"):
        animation.encode_mp4(frames, 12)
    with pytest.raises(animation.AnimationError, match=".gif or .mp4"):
        animation.encode(frames, 12, ".avi")
    assert animation.AnimationError is AnimationError and issubclass(AnimationError, ClothingGANError)


def test_the_cli_writes_a_gif_and_an_mp4(tiny_model, tmp_path, capsys):
    gif, mp4 = tmp_path / "walk.gif", tmp_path / "pc.mp4"
    assert cli_main(["animate", "--model", str(tiny_model), "--from", "3", "--to", "7", "--frames", "8",
                     "--size", "32", "--out", str(gif)]) == 0
    assert Image.open(gif).n_frames == 8
    assert cli_main(["animate", "--model", str(tiny_model), "--from", "3", "--direction", "PC 0", "--samples", "2000",
                     "--frames", "6", "--size", "32", "--out", str(mp4)]) == 0
    assert mp4.read_bytes()[4:8] == b"ftyp"
    assert cli_main(["animate", "--model", str(tiny_model), "--from", "3", "--to", "7", "--out",
                     str(tmp_path / "walk.avi")]) == 2
    assert cli_main(["animate", "--model", str(tiny_model), "--from", "3", "--to", "7", "--frames", "1000",
                     "--out", str(gif)]) == 2
    assert "240 frames" in capsys.readouterr().err


def test_the_cli_walks_a_component_by_index_on_some_layers(tiny_model, tmp_path, capsys):
    out = tmp_path / "pc1.mp4"
    assert cli_main(["animate", "--model", str(tiny_model), "--seed", "3", "--component", "1", "--layers", "0:2",
                     "--samples", "2000", "--frames", "10", "--size", "32", "--out", str(out)]) == 0
    assert mp4_frames(out) == ((32, 32), 10)
    gif = tmp_path / "seeds.gif"
    assert cli_main(["animate", "--model", str(tiny_model), "--from-seed", "3", "--to-seed", "7", "--frames", "4",
                     "--size", "32", "--out", str(gif)]) == 0
    assert Image.open(gif).n_frames == 4
    capsys.readouterr()
    assert cli_main(["animate", "--model", str(tiny_model), "--seed", "3", "--component", "-1", "--out", str(gif)]) == 2
    assert "numbered from 0" in capsys.readouterr().err
    assert cli_main(["animate", "--model", str(tiny_model), "--seed", "3", "--to", "7", "--layers", "0:2",
                     "--out", str(gif)]) == 2
    assert "--layers" in capsys.readouterr().err


def test_style_mix_makes_a_walk_to_preview_and_download(app):
    app.switch_page("app_pages/style_mix.py").run()
    ok(app)
    app.button(key="mix_anim_make").click().run()
    ok(app)
    downloads = {b.proto.id: b for b in app.get("download_button")}
    assert any("mix_anim_gif" in k for k in downloads) and any("mix_anim_mp4" in k for k in downloads)
    assert app.button(key="mix_anim_make").disabled  # made: the same walk is not rendered twice


def test_attribute_edit_animates_the_current_edit(app, tiny_model):
    from clothinggan.directions import save_user_direction

    G = cg.load_generator(str(tiny_model))
    vector = np.random.default_rng(1).standard_normal(G.w_dim).astype(np.float32)
    save_user_direction(G, NamedDirection("Longer", vector / np.linalg.norm(vector), sigma=1.0))
    generate(app, "0-1")
    app.button(key=f"add_{app.session_state['generated'][0].id}").click().run()
    app.switch_page("app_pages/attribute_edit.py").run()
    ok(app)
    slider = next(s for s in app.slider if s.label == "Longer")
    slider.set_value(slider.max).run()
    app.button(key="edit_anim_make").click().run()
    ok(app)
    assert any("edit_anim_gif" in b.proto.id for b in app.get("download_button"))


def test_pca_explorer_animates_a_component(app):
    app.switch_page("app_pages/pca_explorer.py").run()
    if any(b.key == "pca_compute" for b in app.button):  # the tiny model ships no components
        app.button(key="pca_compute").click().run()
    ok(app)
    app.button(key="pca_anim_make").click().run()
    ok(app)
    assert any("pca_anim_mp4" in b.proto.id for b in app.get("download_button"))

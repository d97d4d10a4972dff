"""The ``clothinggan`` command run in-process on a tiny model: outputs, sizes, exit codes, one-line errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import clothinggan as cg
from clothinggan.cli import CommandError, _optional_module, main
from clothinggan.errors import InvalidSeedError
from clothinggan.networks import GeneratorConfig, StyleGAN2
from clothinggan.seeds import MAX_SEEDS, parse_seeds

RES, PAD = 16, 2  # tiny model resolution, image_grid's gap


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> str:
    torch.manual_seed(0)
    cfg = GeneratorConfig(resolution=RES, z_dim=32, w_dim=32, mapping_layers=2, channels={4: 32, 8: 32, 16: 16})
    G = cg.Generator(StyleGAN2(cfg), name="tiny", device="cpu")
    return str(cg.save_generator(G, tmp_path_factory.mktemp("model") / "tiny.safetensors"))


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CLOTHINGGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CLOTHINGGAN_DEVICE", "cpu")


def grid_size(n: int, cols: int) -> tuple[int, int]:
    rows = -(-n // cols)
    return cols * RES + (cols - 1) * PAD, rows * RES + (rows - 1) * PAD


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


# -- seeds -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, seeds", [("0-15", list(range(16))), ("1,5,9", [1, 5, 9]), ("3", [3]),
                                         ("0-3,10", [0, 1, 2, 3, 10]), (" 2 - 4 , 7 ", [2, 3, 4, 7]),
                                         ("5,1,5", [5, 1]), ("0..2", [0, 1, 2]), ("4294967295", [2**32 - 1])])
def test_parse_seeds(text: str, seeds: list[int]) -> None:
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text, words", [("", "no seeds"), ("a", "cannot read"), ("5-3", "backwards"),
                                         ("-1", "negative"), ("1,,2", "empty"), ("4294967296", "out of range"),
                                         ("0-4000000000", "too many"), ("0-1000,2000-2100", "too many"),
                                         ("1.5", "cannot read")])
def test_parse_seeds_refuses_with_a_sentence(text: str, words: str) -> None:
    with pytest.raises(InvalidSeedError, match=words):
        parse_seeds(text)
    assert len(parse_seeds(f"0-{MAX_SEEDS - 1}")) == MAX_SEEDS


# -- generate --------------------------------------------------------------------------------------
def test_generate_writes_a_grid(model_file, tmp_path, capsys) -> None:
    out = tmp_path / "sub" / "grid.png"
    assert main(["generate", "--model", model_file, "--seeds", "0-4", "--psi", "0.7", "--out", str(out),
                 "--cols", "3"]) == 0
    assert Image.open(out).size == grid_size(5, 3)
    assert "wrote" in capsys.readouterr().out


def test_generate_is_reproducible(model_file, tmp_path) -> None:
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    for out in (a, b):
        assert main(["generate", "--model", model_file, "--seeds", "7", "--out", str(out)]) == 0
    assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
    assert Image.open(a).size == (RES, RES)


def test_generate_in_bf16_draws_the_same_garments(model_file, tmp_path) -> None:
    a, b = tmp_path / "fp32.png", tmp_path / "bf16.png"
    for out, choice in ((a, "fp32"), (b, "bf16")):
        assert main(["generate", "--model", model_file, "--seeds", "0-3", "--precision", choice, "--out", str(out)]) == 0
    pa, pb = (np.asarray(Image.open(x), dtype=np.float64) for x in (a, b))
    assert pa.shape == pb.shape and not np.array_equal(pa, pb)  # bf16 ran…
    assert np.abs(pa - pb).mean() < 1.5  # …and stays within a grey level or so (uint8, rounding included)


@pytest.mark.parametrize("argv, words", [
    (["--seeds", "5-3"], "backwards"),
    (["--seeds", "0-2000"], "too many"),
    (["--seeds", "x"], "cannot read"),
    (["--model", "/nonexistent/model.safetensors"], "does not exist"),
    (["--out", "grid.gif"], ".png"),
])
def test_generate_user_errors_exit_2_with_one_line(model_file, tmp_path, capsys, argv, words) -> None:
    base = {"--model": model_file, "--seeds": "0-1", "--out": str(tmp_path / "g.png")}
    base.update(dict(zip(argv[::2], argv[1::2])))
    out_arg = base["--out"] if base["--out"].startswith("/") else str(tmp_path / base["--out"])
    code = main(["generate", "--model", base["--model"], "--seeds", base["--seeds"], "--out", out_arg])
    assert code == 2
    assert words in one_line_error(capsys)


def test_help_and_usage_errors_do_not_raise(capsys) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "generate" in text and "invert" in text
    assert main(["generate", "--help"]) == 0
    assert main([]) == 0
    assert main(["generate"]) == 2  # --out missing: argparse's usage line
    assert main(["frobnicate"]) == 2


# -- pca ---------------------------------------------------------------------------------------------
def test_pca_writes_components_and_a_strip(model_file, tmp_path, capsys) -> None:
    comps, strip = tmp_path / "comps.npz", tmp_path / "strip.png"
    assert main(["pca", "--model", model_file, "--samples", "3000", "--components", "8", "--out", str(comps),
                 "--strip", "1", "--out-strip", str(strip), "--steps", "5", "--layers", "0:4"]) == 0
    with np.load(comps, allow_pickle=False) as data:
        assert data["components"].shape == (8, 32) and data["stdev"].shape == (8,)
        assert int(data["n_samples"]) == 3000
    assert Image.open(strip).size == grid_size(5, 5)
    assert "PC 0" in capsys.readouterr().out


@pytest.mark.parametrize("argv, words", [(["--strip", "0"], "--out-strip"),
                                         (["--strip", "99", "--out-strip", "s.png"], "there are 8"),
                                         (["--components", "500"], "n_components"),
                                         (["--strip", "0", "--out-strip", "s.png", "--layers", "3:99"], "--layers")])
def test_pca_user_errors(model_file, tmp_path, capsys, argv, words) -> None:
    argv = [str(tmp_path / a) if a.endswith(".png") else a for a in argv]
    defaults = [] if "--components" in argv else ["--components", "8"]
    assert main(["pca", "--model", model_file, "--samples", "1000", *defaults, *argv]) == 2
    assert words in one_line_error(capsys)


# -- delegated commands ------------------------------------------------------------------------------
def test_missing_optional_modules_are_one_clear_line() -> None:
    with pytest.raises(CommandError, match="not available"):
        _optional_module("clothinggan.not_written_yet", "later")


def test_invert_and_train_are_routed(capsys) -> None:
    code = main(["invert", "--image", "/nonexistent/photo.jpg"])
    assert code in (1, 2)  # invert's own "cannot read" or ours "not available"
    assert "Traceback" not in capsys.readouterr().err
    assert main(["train", "--help"]) in (0, 2)


# -- mix and edit (need designs) -----------------------------------------------------------------------
@pytest.fixture()
def designs_file(model_file, tmp_path) -> Path:
    pytest.importorskip("clothinggan.latents")
    path = tmp_path / "designs.npz"
    assert main(["generate", "--model", model_file, "--seeds", "0-3", "--out", str(tmp_path / "g.png"),
                 "--designs", str(path)]) == 0
    return path


def test_generate_saves_designs(designs_file) -> None:
    from clothinggan.store import LatentStore

    designs = list(LatentStore.load(designs_file))
    assert len(designs) == 4 and designs[0].ws.shape == (6, 32)


def test_mix_from_seed_and_saved_design(model_file, designs_file, tmp_path) -> None:
    pytest.importorskip("clothinggan.mixing")
    from clothinggan.store import LatentStore

    name = list(LatentStore.load(designs_file))[2].name
    out, saved = tmp_path / "mix.png", tmp_path / "mix.npz"
    assert main(["mix", "--model", model_file, "--a", "5", "--b", f"{designs_file}:{name}", "--structure", "0.3",
                 "--style", "1", "--out", str(out), "--parents", "--designs", str(saved)]) == 0
    assert Image.open(out).size == grid_size(3, 3)
    assert len(list(LatentStore.load(saved))) == 1


def test_mix_errors(model_file, designs_file, tmp_path, capsys) -> None:
    pytest.importorskip("clothinggan.mixing")
    out = str(tmp_path / "m.png")
    assert main(["mix", "--model", model_file, "--a", "1", "--b", "2", "--style", "1.5", "--out", out]) == 2
    assert "between 0 and 1" in one_line_error(capsys)
    assert main(["mix", "--model", model_file, "--a", "1", "--b", f"{designs_file}:nobody", "--out", out]) == 2
    assert "no design named" in one_line_error(capsys)
    assert main(["mix", "--model", model_file, "--a", "1", "--b", str(tmp_path / "missing.npz:x"), "--out", out]) == 2
    assert "no such" in one_line_error(capsys)


def test_edit_along_a_component(model_file, tmp_path) -> None:
    pytest.importorskip("clothinggan.latents")
    out = tmp_path / "edit.png"
    assert main(["edit", "--model", model_file, "--seed", "3", "--direction", "PC 0=2", "--direction", "pc1=-1",
                 "--samples", "2000", "--out", str(out), "--compare"]) == 0
    pair = np.asarray(Image.open(out))
    assert pair.shape == (RES, 2 * RES + PAD, 3)
    assert not np.array_equal(pair[:, :RES], pair[:, RES + PAD:])  # the edit changed the picture


@pytest.mark.parametrize("argv, words", [(["--seed", "3", "--direction", "Nope=1"], "unknown direction"),
                                         (["--seed", "3", "--direction", "PC 0"], "NAME=STRENGTH"),
                                         (["--seed", "3"], "--direction"),
                                         (["--design", "/nonexistent/d.npz:x", "--direction", "PC 0=1"], "no such"),
                                         (["--seed", "3", "--direction", "PC 0=1", "--layers", "4:2"], "--layers")])
def test_edit_errors(model_file, tmp_path, capsys, argv, words) -> None:
    pytest.importorskip("clothinggan.latents")
    assert main(["edit", "--model", model_file, "--samples", "500", *argv, "--out", str(tmp_path / "e.png")]) == 2
    assert words in one_line_error(capsys)


def test_edit_lists_directions(model_file, capsys) -> None:
    assert main(["edit", "--model", model_file, "--list"]) == 0
    assert "PC <i>" in capsys.readouterr().out


def test_random_seeds_mean_the_same_in_the_app_and_the_cli(tmp_path) -> None:
    """Issue 10: the Generate page handled "random" itself, so the CLI could not."""
    import numpy as np

    from clothinggan.errors import InvalidSeedError
    from clothinggan.seeds import seeds_from_text

    a = seeds_from_text("random", random_count=5, rng=np.random.default_rng(1))
    assert a == seeds_from_text(" R ", random_count=5, rng=np.random.default_rng(1)) and len(set(a)) == 5
    assert all(0 <= s < 2**32 for s in a)
    assert seeds_from_text("0-2, 7") == [0, 1, 2, 7]
    for bad in (0, 5000):
        with pytest.raises(InvalidSeedError):
            seeds_from_text("random", random_count=bad)

"""Tests of style mixing: ClothingGAN's group layout, exact endpoints, crossover conventions, grids.

The crossover convention is checked against the reference images of the shared fixtures, so a
"k" here means what it means in NVlabs' and rosinality's code.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import clothinggan as cg
from clothinggan.errors import LatentFormatError, ModelMismatchError
from clothinggan.designs import Design
from clothinggan.mixing import (crossover, fine_layer_groups, layer_groups, mix, mix_designs, mixing_matrix,
                                mixing_matrix_ws)


def rand(seed: int, shape=(16, 8)) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# -- groups ---------------------------------------------------------------------------------------
def test_clothinggan_groups_for_16_ws():
    assert layer_groups(16) == {"structure": range(0, 5), "style": range(5, 16)}
    assert fine_layer_groups(16) == {"coarse": range(0, 3), "middle": range(3, 7), "fine": range(7, 16)}


def test_structure_is_up_to_16px_from_64px_up():
    for num_ws in (10, 12, 14, 18):  # 64, 128, 256, 1024 px
        assert layer_groups(num_ws)["structure"] == range(0, 5)


@pytest.mark.parametrize("num_ws", range(2, 21))
def test_groups_partition_every_model(num_ws):
    for groups in (layer_groups(num_ws), fine_layer_groups(num_ws) if num_ws >= 3 else None):
        if groups is None:
            continue
        covered = [i for r in groups.values() for i in r]
        assert covered == list(range(num_ws))  # in order, no gaps, no overlaps
        assert all(len(r) >= 1 for r in groups.values())


def test_groups_refuse_too_few_ws():
    with pytest.raises(ValueError):
        layer_groups(1)
    with pytest.raises(ValueError):
        fine_layer_groups(2)


# -- mix ------------------------------------------------------------------------------------------
def test_mix_endpoints_are_exact():
    a, b = rand(0), rand(1)
    np.testing.assert_array_equal(mix(a, b, {"structure": 0, "style": 0}), a)
    np.testing.assert_array_equal(mix(a, b, {"structure": 1, "style": 1}), b)
    np.testing.assert_array_equal(mix(a, b, {}), a)
    out = mix(a, b, {"structure": 0.0, "style": 1.0})
    np.testing.assert_array_equal(out[:5], a[:5])
    np.testing.assert_array_equal(out[5:], b[5:])
    out = mix(a, b, {"structure": 1.0})  # a group not named keeps A
    np.testing.assert_array_equal(out[:5], b[:5])
    np.testing.assert_array_equal(out[5:], a[5:])


def test_mix_interpolates_and_leaves_inputs_alone():
    a, b = rand(0), rand(1)
    a_before = a.copy()
    out = mix(a, b, {"structure": 0.25, "style": 0.5})
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    np.testing.assert_allclose(out[:5], 0.75 * a64[:5] + 0.25 * b64[:5], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(out[5:], 0.5 * (a64[5:] + b64[5:]), rtol=1e-6, atol=1e-7)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(a, a_before)


def test_mix_batches_and_custom_groups():
    a, b = rand(0, (3, 16, 8)), rand(1, (3, 16, 8))
    out = mix(a, b, {"fine": 1.0}, fine_layer_groups(16))
    np.testing.assert_array_equal(out[:, :7], a[:, :7])
    np.testing.assert_array_equal(out[:, 7:], b[:, 7:])


@pytest.mark.parametrize("weights", [{"style": 1.5}, {"style": -0.1}, {"structure": float("nan")}])
def test_mix_refuses_weights_outside_0_1(weights):
    with pytest.raises(ValueError, match="between 0"):
        mix(rand(0), rand(1), weights)


def test_mix_refuses_bad_groups_and_shapes():
    with pytest.raises(ValueError, match="unknown layer group"):
        mix(rand(0), rand(1), {"colour": 0.5})
    with pytest.raises(ValueError, match="overlaps"):
        mix(rand(0), rand(1), {"x": 1}, {"x": range(0, 5), "y": range(4, 16)})
    with pytest.raises(ValueError, match="outside"):
        mix(rand(0), rand(1), {"x": 1}, {"x": range(0, 17)})
    with pytest.raises(LatentFormatError, match="different shapes"):
        mix(rand(0), rand(1, (14, 8)), {"style": 1})
    with pytest.raises(LatentFormatError, match="different shapes"):
        crossover(rand(0), rand(1, (16, 4)), 3)


# -- crossover ------------------------------------------------------------------------------------
def test_crossover_conventions():
    a, b = rand(0), rand(1)
    np.testing.assert_array_equal(crossover(a, b, 0), b)
    np.testing.assert_array_equal(crossover(a, b, 16), a)
    out = crossover(a, b, 5)
    np.testing.assert_array_equal(out[:5], a[:5])
    np.testing.assert_array_equal(out[5:], b[5:])
    for k in (-1, 17, 2.5, True):
        with pytest.raises(ValueError):
            crossover(a, b, k)  # type: ignore[arg-type]


def test_crossover_matches_reference_images(fixtures_dir: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("CLOTHINGGAN_CACHE", str(tmp_path))
    G = cg.load_generator(fixtures_dir / "stylegan2" / "rosinality-s16-converted.pt", device="cpu")
    with np.load(fixtures_dir / "stylegan2" / "rosinality-s16-ref.npz", allow_pickle=False) as ref:
        w, ks, sweep = ref["w"], ref["mix_ks"], ref["img_mix_sweep"]
    a = np.repeat(w[0][None], G.num_ws, 0)  # z[0] is source A, z[1] source B (fixtures README)
    b = np.repeat(w[1][None], G.num_ws, 0)
    images = G.synthesis(np.stack([crossover(a, b, int(k)) for k in ks]))
    np.testing.assert_allclose(images.numpy(), sweep, atol=1e-4)


# -- designs and grids ----------------------------------------------------------------------------
def test_mix_designs_records_provenance():
    a = Design(ws=rand(0), model_id="m", name="Coat")
    b = Design(ws=rand(1), model_id="m", name="Dress")
    d = mix_designs(a, b, structure=0.0, style=1.0)
    np.testing.assert_array_equal(d.ws[:5], a.ws[:5])
    np.testing.assert_array_equal(d.ws[5:], b.ws[5:])
    assert d.model_id == "m" and d.id not in (a.id, b.id)
    assert d.provenance["kind"] == "mix" and (d.provenance["a"], d.provenance["b"]) == (a.id, b.id)
    assert d.provenance["groups"] == {"structure": [0, 5], "style": [5, 16]}
    assert d.describe() == "mix of Coat (structure) and Dress (style)"
    assert mix_designs(a, b, 0.5, 1.0, name="half").name == "half"
    with pytest.raises(ModelMismatchError):
        mix_designs(a, Design(ws=rand(1), model_id="other"), 0, 1)
    with pytest.raises(ValueError):
        mix_designs(a, b, 0, 2)


def test_mixing_matrix_ws_cells():
    rows = [Design(ws=rand(i), model_id="m") for i in range(3)]
    cols = [Design(ws=rand(10 + j), model_id="m") for j in range(2)]
    grid = mixing_matrix_ws(rows, cols)
    assert grid.shape == (3, 2, 16, 8)
    for i in range(3):
        for j in range(2):
            np.testing.assert_array_equal(grid[i, j, :5], rows[i].ws[:5])  # structure of the row
            np.testing.assert_array_equal(grid[i, j, 5:], cols[j].ws[5:])  # style of the column
    by_k = mixing_matrix_ws(rows, cols, k=3)
    np.testing.assert_array_equal(by_k[2, 1], crossover(rows[2].ws, cols[1].ws, 3))
    with pytest.raises(ModelMismatchError):
        mixing_matrix_ws(rows, [Design(ws=rand(5), model_id="other")])
    with pytest.raises(ValueError):
        mixing_matrix_ws(rows, cols, k=3, weights={"style": 1})


class FakeG:
    """Renders a 1×1 "image" per code (its ws mean per group) and records batch sizes."""

    fingerprint, num_ws, w_dim, resolution = "m", 16, 8, 1

    def __init__(self) -> None:
        self.batches: list[int] = []

    def synthesis(self, ws):
        ws = torch.as_tensor(ws)
        self.batches.append(ws.shape[0])
        return torch.stack([ws[:, :5].mean((1, 2)), ws[:, 5:].mean((1, 2)), ws.mean((1, 2))], 1)[..., None, None]


def test_mixing_matrix_renders_in_batches_row_major():
    rows = [Design(ws=rand(i), model_id="m") for i in range(3)]
    cols = [Design(ws=rand(10 + j), model_id="m") for j in range(3)]
    G = FakeG()
    images = mixing_matrix(G, rows, cols, batch_size=4)
    assert images.shape == (9, 3, 1, 1) and G.batches == [4, 4, 1]
    for i in range(3):
        for j in range(3):
            assert images[i * 3 + j, 0, 0, 0] == pytest.approx(float(rows[i].ws[:5].mean()), abs=1e-6)
            assert images[i * 3 + j, 1, 0, 0] == pytest.approx(float(cols[j].ws[5:].mean()), abs=1e-6)
    with pytest.raises(ModelMismatchError):
        mixing_matrix(G, [Design(ws=rand(0), model_id="x")], [Design(ws=rand(1), model_id="x")])


def test_mixing_matrix_with_real_generator(tiny_generator):
    rows = [Design.from_seed(tiny_generator, s, 0.7) for s in (1, 2)]
    cols = [Design.from_seed(tiny_generator, s, 0.7) for s in (3, 4, 5)]
    images = mixing_matrix(tiny_generator, rows, cols, k=2)
    expected = tiny_generator.synthesis(crossover(rows[1].ws, cols[2].ws, 2)[None])
    assert images.shape == (6, 3, 16, 16)
    torch.testing.assert_close(images[5:6], expected)

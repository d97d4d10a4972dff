"""The shared StyleGAN2 fixtures through the public API: every file and every reference array.

Each reference came from the original implementation's own code, so agreement within 1e-4 pins
the key mapping, per-layer w order, truncation centre and noise handling for both formats.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch

import clothinggan as cg
from clothinggan.checkpoints import read_checkpoint

ATOL = 1e-4
ROS_FILES = ["rosinality-s16-train.pt", "rosinality-s16-converted.pt"]
NV_FILES = ["nvlabs-s16-sanitized.pkl", "nvlabs-s16-G_ema-state_dict.pt"]


@pytest.fixture(autouse=True, scope="module")
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Converted pickles go to a temporary cache, not the user's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("CLOTHINGGAN_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


_generators: dict[Path, cg.Generator] = {}


def load(path: Path) -> cg.Generator:
    """Each file is loaded once per session; tests that change w_avg restore it."""
    if path not in _generators:
        _generators[path] = cg.load_generator(path, device="cpu")
    return _generators[path]


def refs(fixtures_dir: Path, name: str) -> dict[str, np.ndarray]:
    with np.load(fixtures_dir / "stylegan2" / name, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def close(actual: torch.Tensor, expected: np.ndarray) -> None:
    actual_np = actual.detach().cpu().numpy()
    assert actual_np.shape == expected.shape
    assert np.abs(actual_np - expected).max() <= ATOL


def broadcast(G: cg.Generator, w: torch.Tensor) -> torch.Tensor:
    return w.unsqueeze(1).repeat(1, G.num_ws, 1)


def mix(G: cg.Generator, w: torch.Tensor, k: int) -> torch.Tensor:
    """ws 0..k-1 from w[0], k.. from w[1], as both references define style mixing."""
    ws = broadcast(G, w[0:1]).clone()
    ws[:, k:] = w[1:2]
    return ws


# -- rosinality ---------------------------------------------------------------------------------
ROS_CHECKS = ["w", "img_psi1", "w_psi07", "img_psi07", "img_psi07_latent_avg", "img_mix", "img_mix_sweep",
              "img_wplus"]


def rosinality_output(G: cg.Generator, r: dict[str, np.ndarray], check: str) -> torch.Tensor:
    z = torch.from_numpy(r["z"])
    if check == "w":
        return G.mapping(z)
    if check == "img_psi1":
        return G.synthesis(broadcast(G, G.mapping(z)))
    if check in ("w_psi07", "img_psi07"):
        saved = G.w_avg.clone()
        G.w_avg = r["mean_latent"]  # the reference's truncation centre
        try:
            w = G.mapping(z, psi=float(r["truncation_psi"]))
            return w if check == "w_psi07" else G.synthesis(broadcast(G, w))
        finally:
            G.w_avg = saved
    if check == "img_psi07_latent_avg":
        return G.synthesis(broadcast(G, G.mapping(z, psi=float(r["truncation_psi"]))))
    if check == "img_mix":
        return G.synthesis(mix(G, G.mapping(z[:2]), int(r["mix_k"])))
    if check == "img_mix_sweep":
        w = G.mapping(z[:2])
        return torch.cat([G.synthesis(mix(G, w, int(k))) for k in r["mix_ks"]])
    if check == "img_wplus":
        return G.synthesis(torch.from_numpy(r["wplus"]))
    raise AssertionError(check)


# Only the converted file has a latent_avg, so only it has the latent_avg-centred reference.
ROS_CASES = [(name, check) for name in ROS_FILES for check in ROS_CHECKS
             if not (check == "img_psi07_latent_avg" and "train" in name)]


@pytest.mark.parametrize(("name", "check"), ROS_CASES)
def test_rosinality_reference(fixtures_dir: Path, name: str, check: str) -> None:
    r = refs(fixtures_dir, "rosinality-s16-ref.npz")
    G = load(fixtures_dir / "stylegan2" / name)
    close(rosinality_output(G, r, check), r[check])


def test_rosinality_w_avg_sources(fixtures_dir: Path) -> None:
    r = refs(fixtures_dir, "rosinality-s16-ref.npz")
    converted = load(fixtures_dir / "stylegan2" / "rosinality-s16-converted.pt")
    train = load(fixtures_dir / "stylegan2" / "rosinality-s16-train.pt")
    assert converted.meta["w_avg_source"] == "latent_avg"
    np.testing.assert_array_equal(converted.w_avg.numpy(), r["latent_avg"])
    # Without latent_avg the centre is mean_latent's formula on the same fixed z set.
    assert "RandomState(1013)" in train.meta["w_avg_source"]
    close(train.w_avg, r["mean_latent"][0])


def test_rosinality_layouts_hold_the_same_g_ema(fixtures_dir: Path) -> None:
    _, train, _ = read_checkpoint(fixtures_dir / "stylegan2" / "rosinality-s16-train.pt")
    _, converted, _ = read_checkpoint(fixtures_dir / "stylegan2" / "rosinality-s16-converted.pt")
    for key in train:
        if key != "mapping.w_avg":
            assert torch.equal(train[key], converted[key]), key


# -- NVlabs -------------------------------------------------------------------------------------
NV_CHECKS = ["w", "w_psi07", "img_psi1", "img_psi07", "img_mix", "img_mix_sweep", "img_wplus"]


def nvlabs_output(G: cg.Generator, r: dict[str, np.ndarray], check: str) -> torch.Tensor:
    psi = float(r["truncation_psi"])
    if check == "w":
        return G.seeds_to_ws(r["seeds"].tolist())
    if check == "w_psi07":
        return G.seeds_to_ws(r["seeds"].tolist(), psi=psi)
    if check == "img_psi1":
        return G.synthesis(G.seeds_to_ws(r["seeds"].tolist()))
    if check == "img_psi07":
        return G.synthesis(G.seeds_to_ws(r["seeds"].tolist(), psi=psi))
    w = G.mapping(torch.from_numpy(r["z"][:2]))
    if check == "img_mix":
        return G.synthesis(mix(G, w, int(r["mix_k"])))
    if check == "img_mix_sweep":
        return torch.cat([G.synthesis(mix(G, w, int(k))) for k in r["mix_ks"]])
    if check == "img_wplus":
        return G.synthesis(torch.from_numpy(r["wplus"]))
    raise AssertionError(check)


@pytest.mark.parametrize("check", NV_CHECKS)
@pytest.mark.parametrize("name", NV_FILES)
def test_nvlabs_reference(fixtures_dir: Path, name: str, check: str) -> None:
    r = refs(fixtures_dir, "nvlabs-s16-ref.npz")
    G = load(fixtures_dir / "stylegan2" / name)
    close(nvlabs_output(G, r, check), r[check])


def test_nvlabs_seeds_give_reference_z(fixtures_dir: Path) -> None:
    r = refs(fixtures_dir, "nvlabs-s16-ref.npz")
    G = load(fixtures_dir / "stylegan2" / NV_FILES[0])
    np.testing.assert_array_equal(G.seeds_to_z(r["seeds"].tolist()), r["z"])
    np.testing.assert_array_equal(G.w_avg.numpy(), r["w_avg"])


def test_pickle_tensors_bit_identical_to_state_dict(fixtures_dir: Path) -> None:
    raw = torch.load(fixtures_dir / "stylegan2" / "nvlabs-s16-G_ema-state_dict.pt", weights_only=True)
    _, state, meta = read_checkpoint(fixtures_dir / "stylegan2" / "nvlabs-s16-sanitized.pkl")
    expected = {k: v for k, v in raw.items() if not k.endswith("resample_filter")}
    assert set(state) == set(expected)
    for key, tensor in expected.items():
        assert torch.equal(state[key], tensor), key
    assert meta["init_kwargs"]["synthesis_kwargs"]["channel_base"] == 256


def test_fingerprints_equal_across_nvlabs_sources(fixtures_dir: Path, tmp_path: Path) -> None:
    from_pkl = load(fixtures_dir / "stylegan2" / NV_FILES[0])
    from_sd = load(fixtures_dir / "stylegan2" / NV_FILES[1])
    resaved = cg.load_generator(cg.save_generator(from_pkl, tmp_path / "nv.safetensors"), device="cpu")
    assert from_pkl.fingerprint == from_sd.fingerprint == resaved.fingerprint


@pytest.mark.parametrize("name", ROS_FILES + NV_FILES)
def test_safetensors_roundtrip_is_exact(fixtures_dir: Path, tmp_path: Path, name: str) -> None:
    G = load(fixtures_dir / "stylegan2" / name)
    again = cg.load_generator(cg.save_generator(G, tmp_path / "m.safetensors"), device="cpu")
    assert again.config == G.config
    original, loaded = G.net.state_dict(), again.net.state_dict()
    assert all(torch.equal(original[k], loaded[k]) for k in original)
    ws = G.seeds_to_ws([5, 6])
    assert torch.equal(G.synthesis(ws), again.synthesis(ws))


def test_pickle_conversion_is_cached(fixtures_dir: Path) -> None:
    from clothinggan.formats.nvlabs import converted_path

    path = fixtures_dir / "stylegan2" / NV_FILES[0]
    read_checkpoint(path)
    assert converted_path(path).is_file()

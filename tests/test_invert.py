"""Inversion and its encoder on a tiny random generator: fast, and exact about what must hold."""
from __future__ import annotations

import argparse
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from clothinggan.testing import tiny_generator
from clothinggan.encoder import (EncoderConfig, Encoder, find_encoder, load_encoder, new_encoder,
                                 read_encoder_fingerprint, save_encoder)
from clothinggan.errors import ModelMismatchError
from clothinggan.generator import Generator
from clothinggan.images import from_pil, to_pil
from clothinggan.invert import PREVIEW_EVERY, add_arguments, cli_main, invert


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread, and a busy shared CPU makes extra threads spin."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def G(one_thread) -> Generator:
    return tiny_generator()


@pytest.fixture(scope="module")
def target(G: Generator) -> Image.Image:
    """A picture the generator can make exactly, from a known w."""
    return to_pil(G.synthesis(G.seeds_to_ws([5], psi=1.0)))[0]


def psnr(G: Generator, design, image: Image.Image) -> float:
    recon = G.synthesis(torch.tensor(np.asarray(design.ws))[None]).clamp(-1, 1)
    mse = (recon - from_pil([image])).square().mean()
    return float(10 * torch.log10(4 / mse))


def test_refinement_beats_the_mean_start(G: Generator, target: Image.Image) -> None:
    start = invert(G, target, steps=0, encoder=None)
    refined = invert(G, target, steps=100, encoder=None)
    assert psnr(G, refined, target) > psnr(G, start, target) + 6.0


def test_pixel_only_fallback_also_refines(G: Generator, target: Image.Image) -> None:
    start = invert(G, target, steps=0, encoder=None)
    refined = invert(G, target, steps=60, encoder=None, classifier=None)
    assert psnr(G, refined, target) > psnr(G, start, target) + 6.0


def test_design_shape_model_and_provenance(G: Generator, target: Image.Image) -> None:
    design = invert(G, target, steps=3, encoder=None, filename="jacket.jpg")
    ws = np.asarray(design.ws)
    assert ws.shape == (G.num_ws, G.w_dim) and ws.dtype == np.float32 and np.isfinite(ws).all()
    assert design.model_id == G.fingerprint
    assert design.provenance["kind"] == "inverted" and design.provenance["filename"] == "jacket.jpg"
    assert design.provenance["steps"] == 3 and design.provenance["encoder"] is False
    assert "jacket" in design.name


def test_no_steps_without_encoder_is_w_avg(G: Generator, target: Image.Image) -> None:
    design = invert(G, target, encoder=None)
    assert np.allclose(design.ws, G.w_avg.numpy()[None].repeat(G.num_ws, 0))


def test_progress_can_stop_early(G: Generator, target: Image.Image) -> None:
    calls: list[tuple[int, int, list]] = []

    def stop(step: int, total: int, previews: list[Image.Image]) -> bool:
        calls.append((step, total, previews))
        return False

    design = invert(G, target, steps=100, encoder=None, progress=stop)
    assert len(calls) == 1 and calls[0][:2] == (PREVIEW_EVERY, 100)
    assert calls[0][2][0].size == (G.resolution, G.resolution)
    assert design.provenance["steps"] == PREVIEW_EVERY
    assert psnr(G, design, target) > psnr(G, invert(G, target, encoder=None), target)


def test_stop_is_asked_before_every_step_and_keeps_the_best(G: Generator, target: Image.Image) -> None:
    asked: list[int] = []

    def stop() -> bool:  # a Stop button pressed during the 11th step
        asked.append(len(asked))
        return len(asked) > 10

    design = invert(G, target, steps=100, encoder=None, stop=stop)
    assert len(asked) == 11 and design.provenance["steps"] == 10
    assert psnr(G, design, target) > psnr(G, invert(G, target, encoder=None), target)


def test_stop_before_the_first_step_keeps_the_start(G: Generator, target: Image.Image) -> None:
    design = invert(G, target, steps=100, encoder=None, stop=lambda: True)
    assert design.provenance["steps"] == 0
    assert np.allclose(design.ws, invert(G, target, encoder=None).ws, atol=1e-6)


def test_generator_is_never_modified(G: Generator, target: Image.Image) -> None:
    before = {k: v.clone() for k, v in G.net.state_dict().items()}
    invert(G, target, steps=5, encoder=None)
    after = G.net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(p.requires_grad for p in G.net.parameters())
    assert all(p.grad is None for p in G.net.parameters())


def test_same_seed_same_design(G: Generator, target: Image.Image) -> None:
    a = invert(G, target, steps=12, encoder=None, seed=3)
    b = invert(G, target, steps=12, encoder=None, seed=3)
    assert np.array_equal(a.ws, b.ws)


def test_concurrent_inversions_match_sequential(G: Generator, target: Image.Image) -> None:
    expected = invert(G, target, steps=10, encoder=None).ws
    results: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: results.append(invert(G, target, steps=10, encoder=None).ws))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and all(np.allclose(r, expected, atol=1e-5) for r in results)


def trained_head(encoder: Encoder) -> Encoder:
    """Give the zero-initialised head some weights, so a round trip has something to preserve."""
    torch.manual_seed(1)
    with torch.no_grad():
        encoder.head.weight.normal_(0, 0.01)
    return encoder.eval()


def test_encoder_round_trip(G: Generator, tmp_path: Path) -> None:
    enc = trained_head(new_encoder(G, n_samples=256))
    path = save_encoder(enc, tmp_path / "tiny.encoder.safetensors", G.fingerprint)
    loaded = load_encoder(path, G.fingerprint)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(enc(x), loaded(x))
    assert loaded(x).shape == (2, G.num_ws, G.w_dim)
    assert read_encoder_fingerprint(path) == G.fingerprint
    assert path.stat().st_size < 20 * 1024**2


def test_encoder_of_another_model_is_refused(G: Generator, target: Image.Image, tmp_path: Path) -> None:
    other = tiny_generator(seed=1)
    assert other.fingerprint != G.fingerprint
    path = save_encoder(new_encoder(other, n_samples=256), tmp_path / "other.encoder.safetensors", other.fingerprint)
    with pytest.raises(ModelMismatchError):
        load_encoder(path, G.fingerprint)
    with pytest.raises(ModelMismatchError):
        invert(G, target, encoder=path)


def test_auto_encoder_is_found_beside_the_model_only_when_it_matches(G: Generator, target: Image.Image,
                                                                     tmp_path: Path) -> None:
    model_file = tmp_path / "tiny.safetensors"
    G_file = Generator(G.net, name="tiny.safetensors", meta={"source": str(model_file)}, device="cpu")
    enc_path = tmp_path / "tiny.encoder.safetensors"
    other = tiny_generator(seed=1)
    save_encoder(new_encoder(other, n_samples=256), enc_path, other.fingerprint)
    assert find_encoder(G_file) is None
    assert invert(G_file, target).provenance["encoder"] is False
    save_encoder(trained_head(new_encoder(G, n_samples=256)), enc_path, G.fingerprint)
    assert isinstance(find_encoder(G_file), Encoder)
    assert invert(G_file, target).provenance["encoder"] is True


def test_encoder_config_is_checked() -> None:
    with pytest.raises(ValueError):
        EncoderConfig(num_ws=4, w_dim=8, input_size=20)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_encoder_training_learns_the_latent(G: Generator, dtype: torch.dtype) -> None:
    from clothinggan.train.encoder_training import EncoderTrainConfig, PairPool, latent_loss, train_encoder

    cfg = EncoderTrainConfig(batch=16, image_batch=4, image_every=4, pool_size=256, fresh=8, lr=2e-3)
    photos = (torch.rand(8, 3, 16, 16) * 255).to(torch.uint8)
    small = new_encoder(G, n_samples=256, input_size=16, channels=(16, 32), hidden=64)
    enc, summary = train_encoder(G, minutes=5.0, cfg=cfg, train_images=photos, init=small, max_steps=200,
                                 dtype=dtype, log=lambda s: None)
    assert summary["steps"] == 200 and summary["real_photos"] == 8
    assert summary["precision"] == ("bf16" if dtype == torch.bfloat16 else "fp32")
    assert all(p.dtype == torch.float32 for p in enc.parameters())  # autocast: the weights stay fp32
    pool = PairPool(G, cfg, seed=99)
    pool.add(64)
    ws, images = pool.batch(64)
    with torch.no_grad():
        untrained = latent_loss(enc, new_encoder(G, n_samples=256)(images), ws)
        trained = latent_loss(enc, enc(images), ws)
    assert trained < 0.8 * untrained


def test_cli_writes_reconstruction(G: Generator, target: Image.Image, tmp_path: Path) -> None:
    from clothinggan.loading import save_generator

    model = save_generator(G, tmp_path / "tiny.safetensors")
    photo = tmp_path / "photo.png"
    target.save(photo)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    out, design_out = tmp_path / "recon.png", tmp_path / "design.npz"
    args = parser.parse_args(["--model", str(model), "--image", str(photo), "--steps", "5", "--out", str(out),
                              "--design-out", str(design_out)])
    assert cli_main(args) == 0
    assert Image.open(out).size == (16, 16)
    from clothinggan.store import LatentStore

    store = LatentStore.load(design_out, expected_model_id=G.fingerprint)
    assert len(store) == 1
    bad = tmp_path / "notes.txt"
    bad.write_text("not a photo")
    assert cli_main(parser.parse_args(["--model", str(model), "--image", str(bad), "--steps", "0"])) == 2

"""The StyleGAN2 trainer on a tiny 16-px config: losses, EMA, augmentation, resume, export, CLI.

Everything runs on random or a dozen synthetic images in seconds on a 2-core CPU; the multi-GPU
path (torch.distributed with world size > 1) cannot be exercised here.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import clothinggan as cg
from clothinggan.train import augment as aug
from clothinggan.train.cli import main as train_main
from clothinggan.train.configs import CONFIGS, TrainConfig, get_config
from clothinggan.train.discriminator import Discriminator
from clothinggan.train.loop import Trainer, export_generator, read_checkpoint, train, trainer_from_checkpoint


def random_reals(n: int = 16, res: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, res, res), dtype=torch.uint8, generator=g)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Trainer, Path, dict[str, torch.Tensor]]:
    """10 steps of the tiny config, with the initial G_ema weights kept for comparison."""
    run = tmp_path_factory.mktemp("run")
    trainer = Trainer(get_config("tiny"), device="cpu", seed=1)
    initial = {k: v.clone() for k, v in trainer.G_ema.state_dict().items()}
    train(trainer, random_reals(), run, kimg=0.04, sample_every_kimg=0.02, progress=False)
    return trainer, run, initial


def test_training_steps_have_finite_losses(tiny_run) -> None:
    trainer, run, _ = tiny_run
    assert trainer.step == 10 and trainer.nimg == 40
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert len(records) == 2
    for r in records:
        assert all(np.isfinite(r[k]) for k in ("loss_G", "loss_D", "D_real", "D_fake"))
    assert "r1" in records[0]  # step 0 falls on the lazy R1 interval
    assert len(list((run / "samples").glob("*.png"))) == 3


def test_ema_weights_moved_and_w_avg_tracked(tiny_run) -> None:
    trainer, _, initial = tiny_run
    now = trainer.G_ema.state_dict()
    moved = [k for k in initial if initial[k].is_floating_point() and not torch.equal(initial[k], now[k])]
    assert any(k.startswith("synthesis.") for k in moved)
    assert any(k.startswith("mapping.fc") for k in moved)
    assert now["mapping.w_avg"].abs().sum() > 0  # tracked during training, copied into the EMA
    assert not torch.equal(trainer.G_ema.synthesis.b16.conv1.weight, trainer.G.synthesis.b16.conv1.weight)


def test_checkpoint_resumes_same_step_and_kimg(tiny_run) -> None:
    trainer, run, _ = tiny_run
    state = read_checkpoint(run / "checkpoint.pt")  # weights_only=True: plain tensors and numbers
    assert state["step"] == 10 and state["nimg"] == 40
    resumed = trainer_from_checkpoint(run / "checkpoint.pt")
    assert (resumed.step, resumed.kimg, resumed.ada.p) == (trainer.step, trainer.kimg, trainer.ada.p)
    for a, b in zip(resumed.G_ema.parameters(), trainer.G_ema.parameters()):
        assert torch.equal(a, b)
    assert resumed.opt_D.state_dict()["state"].keys() == trainer.opt_D.state_dict()["state"].keys()
    stats = resumed.train_step(random_reals())
    assert resumed.step == 11 and all(np.isfinite(v) for v in stats.values())


def test_export_loads_as_a_trained_generator(tiny_run, tmp_path: Path) -> None:
    _, run, _ = tiny_run
    path, meta = export_generator(run / "checkpoint.pt", tmp_path / "tiny.safetensors", data="random")
    G = cg.load_generator(path)
    assert G.trained and G.meta["kimg"] == 0.04 and G.meta["data"] == "random" and meta["trained"]
    assert G.resolution == 16
    img = G.generate([0, 1])
    assert img.shape == (2, 3, 16, 16) and torch.isfinite(img).all()


def test_augmentation_keeps_shapes_and_gradients() -> None:
    x = torch.rand(6, 3, 16, 16, requires_grad=True)
    g = torch.Generator().manual_seed(0)
    y = aug.augment(x * 2 - 1, p=1.0, generator=g)
    assert y.shape == x.shape
    y.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    z = torch.randn(4, 3, 16, 16)
    assert torch.equal(aug.augment(z, p=0.0), z)
    assert torch.equal(aug.translation(z, p=0.0), z) and torch.equal(aug.cutout(z, p=0.0), z)


def test_translation_is_an_integer_shift() -> None:
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    torch.manual_seed(3)
    y = aug.translation(x, p=1.0, ratio=0.25)
    assert set(y.flatten().tolist()) <= set(x.flatten().tolist())  # values moved, never blended


def test_adaptive_p_follows_overfitting() -> None:
    ada = aug.AdaptiveP(target=0.6, interval=1, speed_kimg=0.1)
    ada.accumulate(torch.ones(8))  # D is sure every real is real: too sure
    ada.update(step=1, batch=8)
    assert ada.p > 0
    p = ada.p
    ada.accumulate(-torch.ones(8))
    ada.update(step=2, batch=8)
    assert ada.p < p


def test_discriminator_shapes_and_ragged_minibatch() -> None:
    D = Discriminator(16, {4: 16, 8: 16, 16: 8})
    assert D(torch.randn(5, 3, 16, 16)).shape == (5, 1)  # 5 is not a multiple of the group size
    with pytest.raises(ValueError):
        D(torch.randn(2, 3, 32, 32))


def test_path_length_regularisation_runs() -> None:
    cfg = get_config("tiny")
    cfg.pl_weight, cfg.pl_interval = 2.0, 1
    trainer = Trainer(cfg)
    stats = trainer.train_step(random_reals())
    assert np.isfinite(stats["pl"]) and trainer.pl_mean > 0


def test_configs_round_trip_and_validate() -> None:
    for cfg in CONFIGS.values():
        assert TrainConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError):
        TrainConfig(generator=CONFIGS["tiny"].generator, d_channels={4: 8})


def write_fake_dataset(root: Path, n: int = 12) -> Path:
    """A dozen 12×16 'product photos' (a coloured block on white) with a styles.csv."""
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    with open(root / "styles.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "gender", "masterCategory", "subCategory", "articleType", "baseColour", "usage",
                    "productDisplayName"])
        for i in range(n):
            img = np.full((16, 12, 3), 255, np.uint8)
            img[3:13, 2:10] = rng.integers(0, 255, 3)
            Image.fromarray(img).save(root / "images" / f"{1000 + i}.jpg")
            w.writerow([1000 + i, "Men", "Apparel", "Topwear", "Tshirts", "Blue", "Casual", "tee"])
    return root


def test_cli_trains_resumes_and_exports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOTHINGGAN_CACHE", str(tmp_path / "cache"))
    data = write_fake_dataset(tmp_path / "data")
    run = tmp_path / "runs" / "tiny"
    args = ["--data", str(data), "--out", str(run), "--config", "tiny", "--kimg", "0.008", "--sample-every", "1"]
    assert train_main(args) == 0
    assert read_checkpoint(run / "checkpoint.pt")["nimg"] == 8
    assert train_main(args[:-4] + ["--kimg", "0.016", "--resume", "--sample-every", "1"]) == 0
    assert read_checkpoint(run / "checkpoint.pt")["nimg"] == 16
    out = tmp_path / "model.safetensors"
    assert train_main(["export", "--run", str(run), "--out", str(out)]) == 0
    G = cg.load_generator(out)
    assert G.trained and G.meta["kimg"] == 0.016 and "data" in G.meta and G.meta["data"]
    facts = json.loads(out.with_suffix(".json").read_text())
    assert facts["kimg"] == 0.016 and facts["cpu_ms_per_image"]["batch1"] > 0 and facts["last_log"]["step"] == 4


def test_stop_request_ends_with_a_final_record_and_checkpoint(tmp_path: Path) -> None:
    calls = {"n": 0}

    def stop() -> bool:  # what SIGTERM sets in the CLI: stop after the third step
        calls["n"] += 1
        return calls["n"] > 3

    trainer = train(Trainer(get_config("tiny")), random_reals(), tmp_path, kimg=10, progress=False,
                    should_stop=stop)
    assert trainer.step == 3
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 3 and read_checkpoint(tmp_path / "checkpoint.pt")["step"] == 3


@pytest.mark.parametrize("kind", ["conv", "down", "down-skip", "rgb"])
def test_discriminator_layer_folds_its_gains_exactly(kind: str) -> None:
    """The gains scale weights and bias instead of the activations: the same numbers as
    bias add, leaky ReLU, then ×√2·gain on the activations, for values and for gradients."""
    import math

    import torch.nn.functional as F

    from clothinggan.networks import LRELU_GAIN, blur_filter, filter2d
    from clothinggan.train.discriminator import Conv2dLayer

    torch.manual_seed(0)
    layer = {"conv": Conv2dLayer(8, 6, 3), "down": Conv2dLayer(8, 6, 3, down=True),
             "down-skip": Conv2dLayer(8, 6, 1, bias=False, lrelu=False, down=True),
             "rgb": Conv2dLayer(3, 8, 1)}[kind]
    if layer.bias is not None:
        with torch.no_grad():
            layer.bias.normal_()
    x = torch.randn(2, layer.weight.shape[1], 8, 8, requires_grad=True)
    gain = math.sqrt(0.5) if kind != "rgb" else 1.0

    def explicit(x: torch.Tensor) -> torch.Tensor:
        w = layer.weight * layer.weight_gain
        if kind == "down-skip":
            y = F.conv2d(filter2d(x, blur_filter(), pad=(1, 1))[:, :, ::2, ::2], w)
        elif kind == "down":
            y = F.conv2d(filter2d(x, blur_filter(), pad=(2, 2)), w, stride=2)
        else:
            y = F.conv2d(x, w, padding=layer.kernel_size // 2)
        if layer.bias is not None:
            y = y + layer.bias.reshape(1, -1, 1, 1)
        return F.leaky_relu(y, 0.2) * (LRELU_GAIN * gain) if layer.lrelu else y * gain

    ours, ref = layer(x, gain=gain), explicit(x)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    (g_ours,) = torch.autograd.grad(ours.square().sum(), x)
    (g_ref,) = torch.autograd.grad(ref.square().sum(), x)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-4, atol=1e-5)

"""The training state shipped beside a model: exact resume, shard limits, refusals, the CLI path."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from clothinggan.errors import CheckpointError
from clothinggan.train.configs import get_config
from clothinggan.train.loop import Trainer, export_generator, train
from clothinggan.train.resume import config_to_resume, start_from_model
from clothinggan.train.state_files import load_training_state, manifest_path, save_training_state


def reals(n: int = 16, res: int = 16) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, res, res), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))


def tiny_trainer(seed: int = 5) -> Trainer:
    cfg = get_config("tiny")
    cfg.augment, cfg.ada_kimg = True, 0.05  # p moves within a few steps, so it is part of what must resume
    return Trainer(cfg, device="cpu", seed=seed)


def steps(trainer: Trainer, n: int, data: torch.Tensor) -> None:
    for _ in range(n):
        trainer.train_step(data)


def assert_same_run(a: Trainer, b: Trainer) -> None:
    for name in ("G", "D", "G_ema"):
        sa, sb = getattr(a, name).state_dict(), getattr(b, name).state_dict()
        assert sa.keys() == sb.keys()
        for k in sa:
            assert torch.equal(sa[k], sb[k]), f"{name}.{k} differs"
    assert (a.step, a.nimg, a.ada.p) == (b.step, b.nimg, b.ada.p)


def test_state_resumes_bit_exactly(tmp_path: Path) -> None:
    data = reals()
    straight = tiny_trainer()
    steps(straight, 7, data)
    model = tmp_path / "m.safetensors"
    export_path = tmp_path / "ckpt.pt"
    straight.save_checkpoint(export_path)
    export_generator(export_path, model)
    manifest = save_training_state(straight, model)
    steps(straight, 9, data)  # the uninterrupted run goes on

    resumed = Trainer(config_to_resume(model, "tiny")[0], device="cpu", seed=99)  # another seed: all from the state
    assert start_from_model(resumed, model, manifest).startswith("exact")
    assert resumed.step == 7
    steps(resumed, 9, data)
    assert straight.ada.p > 0
    assert_same_run(straight, resumed)
    record = json.loads(manifest.read_text())
    assert record["g_ema"]["file"] == "m.safetensors"  # G_ema equal to the model: not stored twice
    assert not any(k.endswith("exp_avg") for k in _all_keys(model))  # beta1 = 0: first moments not needed


def _all_keys(model: Path) -> list[str]:
    from safetensors import safe_open

    keys = []
    for shard in sorted(model.parent.glob(model.stem + ".state-*.safetensors")):
        with safe_open(str(shard), framework="pt") as fh:
            keys += list(fh.keys())
    return keys


def test_shards_stay_under_the_limit_and_old_ones_go(tmp_path: Path) -> None:
    trainer = tiny_trainer()
    steps(trainer, 2, reals())
    model = tmp_path / "m.safetensors"
    save_training_state(trainer, model, shard_bytes=200_000)
    shards = sorted(tmp_path.glob("m.state-*.safetensors"))
    assert len(shards) > 2 and all(p.stat().st_size < 200_000 + 4096 for p in shards)
    assert json.loads(manifest_path(model).read_text())["g_ema"] == "shards"  # no model file beside it
    save_training_state(trainer, model)  # one big shard now: the small ones are removed
    assert sorted(p.name for p in tmp_path.glob("m.state-*.safetensors")) == ["m.state-0.safetensors"]
    fresh = tiny_trainer(seed=1)
    load_training_state(fresh, manifest_path(model))
    assert_same_run(trainer, fresh)


def test_a_changed_shard_or_model_is_refused(tmp_path: Path) -> None:
    trainer = tiny_trainer()
    steps(trainer, 1, reals())
    model = tmp_path / "m.safetensors"
    trainer.save_checkpoint(tmp_path / "c.pt")
    export_generator(tmp_path / "c.pt", model)
    manifest = save_training_state(trainer, model)
    steps(trainer, 1, reals())
    trainer.save_checkpoint(tmp_path / "c.pt")
    export_generator(tmp_path / "c.pt", model)  # the model moved on without its state
    with pytest.raises(CheckpointError, match="not the model this training state"):
        load_training_state(tiny_trainer(), manifest)
    save_training_state(trainer, model)
    shard = tmp_path / "m.state-0.safetensors"
    raw = bytearray(shard.read_bytes())
    raw[-1] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="sha256"):
        load_training_state(tiny_trainer(), manifest)
    manifest.write_text("[" * 100_000)
    with pytest.raises(CheckpointError, match="manifest"):
        load_training_state(tiny_trainer(), manifest)


def test_model_without_state_starts_g_and_ema_with_a_new_d(tmp_path: Path) -> None:
    trainer = tiny_trainer()
    steps(trainer, 3, reals())
    trainer.save_checkpoint(tmp_path / "c.pt")
    model, _ = export_generator(tmp_path / "c.pt", tmp_path / "m.safetensors")
    cfg, manifest = config_to_resume(model, "cpu64")
    assert manifest is None and cfg.name == "tiny"  # recipe from the model's meta, not the fallback
    fresh = Trainer(cfg, device="cpu", seed=8)
    assert "new D" in start_from_model(fresh, model)
    for a, b in zip(fresh.G_ema.state_dict().values(), trainer.G_ema.state_dict().values()):
        assert torch.equal(a, b)
    assert fresh.nimg == trainer.nimg
    steps(fresh, 1, reals())  # and it trains


def test_cli_resume_takes_a_new_batch_and_ema_for_the_next_stretch(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """``train --resume --batch 8 --ema-kimg …`` continues the run's own state with the new recipe."""
    from clothinggan.train.cli import main
    from test_training import write_fake_dataset

    monkeypatch.setenv("CLOTHINGGAN_CACHE", str(tmp_path / "cache"))
    data = write_fake_dataset(tmp_path / "data")
    run = tmp_path / "run"
    common = ["--data", str(data), "--out", str(run), "--config", "tiny", "--sample-every", "1"]
    assert main([*common, "--kimg", "0.008"]) == 0
    first = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()][-1]
    assert main([*common, "--resume", "--kimg", "0.024", "--batch", "8", "--ema-kimg", "0.03"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["batch"] == 8 and config["ema_kimg"] == 0.03
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert log[-1]["kimg"] == pytest.approx(0.024)
    assert log[-1]["step"] - first["step"] == 2  # 16 more images in batches of 8


def test_cli_export_state_then_resume_from_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``train export --state`` then ``train --resume-from FILE`` continues the same run."""
    from clothinggan.train.cli import main
    from test_training import write_fake_dataset

    monkeypatch.setenv("CLOTHINGGAN_CACHE", str(tmp_path / "cache"))
    data = write_fake_dataset(tmp_path / "data")
    run = tmp_path / "run"
    assert main(["--data", str(data), "--out", str(run), "--config", "tiny", "--kimg", "0.008",
                 "--sample-every", "1"]) == 0
    model = tmp_path / "assets" / "m.safetensors"
    assert main(["export", "--run", str(run), "--out", str(model), "--state", "--no-facts"]) == 0
    assert manifest_path(model).is_file()
    run2 = tmp_path / "run2"
    assert main(["--data", str(data), "--out", str(run2), "--resume-from", str(model), "--kimg", "0.016",
                 "--sample-every", "1", "--ema-kimg", "0.02"]) == 0
    log = [json.loads(line) for line in (run2 / "log.jsonl").read_text().splitlines()]
    assert log[-1]["kimg"] == pytest.approx(0.016) and log[-1]["step"] == 4
    assert json.loads((run2 / "config.json").read_text())["ema_kimg"] == 0.02  # a longer EMA for the new stretch
    assert json.loads((run / "config.json").read_text())["ema_kimg"] != 0.02

"""Quality metric: Fréchet distance and k-NN precision/recall against closed forms, evaluate_generator
end to end, and the shipped garment classifier (loads, feature shape, accuracy above chance).
"""
from __future__ import annotations

import csv
import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from clothinggan.train.classifier import (DEFAULT_PATH, ClassifierConfig, ClassifierFormatError, GarmentClassifier,
                                          encode_labels, load_classifier, read_metadata, save_classifier, top_classes)
from clothinggan.train.data import DEFAULT_EXCLUDED, frame_image, images_to_tensor, is_holdout
from clothinggan.train.metrics import evaluate_generator, frechet_distance, knn_radii, precision_recall

DATA = Path(os.environ.get("CLOTHINGGAN_DATA",
                           Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion-product-images-small"))


# -- Fréchet distance ----------------------------------------------------------------------------
def test_fd_of_identical_sets_is_zero() -> None:
    x = np.random.default_rng(0).normal(size=(500, 32))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(torch.as_tensor(x, dtype=torch.float32), x) == pytest.approx(0.0, abs=1e-4)


def test_fd_of_shifted_set_is_the_squared_mean_shift() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 16)) @ rng.normal(size=(16, 16))  # correlated, so covariances are not trivial
    delta = rng.normal(size=16)
    assert frechet_distance(x, x + delta) == pytest.approx(float(delta @ delta), rel=1e-8)


def test_fd_matches_the_closed_form_for_diagonal_gaussians() -> None:
    # For diagonal covariances FD = |Δμ|² + Σ (σ1 - σ2)²; population values, so a loose tolerance.
    rng = np.random.default_rng(2)
    s1, s2 = np.linspace(0.5, 2.0, 8), np.linspace(1.5, 0.5, 8)
    mu = np.full(8, 0.5)
    a = rng.normal(size=(200_000, 8)) * s1
    b = rng.normal(size=(200_000, 8)) * s2 + mu
    expected = float(mu @ mu + ((s1 - s2) ** 2).sum())
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.02)


def test_fd_survives_rank_deficient_covariances() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 128))  # N < D: singular covariance, a naive sqrtm goes complex
    fd = frechet_distance(x, x[::-1] + 1.0)
    assert np.isfinite(fd) and fd == pytest.approx(128.0, rel=1e-6)


def test_fd_rejects_mismatched_widths() -> None:
    with pytest.raises(ValueError, match="widths"):
        frechet_distance(np.zeros((4, 3)), np.zeros((4, 2)))


# -- precision / recall ----------------------------------------------------------------------------
def test_precision_and_recall_of_identical_sets_are_one() -> None:
    x = torch.randn(300, 8, generator=torch.Generator().manual_seed(0))
    assert precision_recall(x, x) == (1.0, 1.0)


def test_precision_and_recall_of_disjoint_clusters_are_zero() -> None:
    g = torch.Generator().manual_seed(1)
    real, fake = torch.randn(200, 8, generator=g), torch.randn(200, 8, generator=g) + 50.0
    assert precision_recall(real, fake) == (0.0, 0.0)


def test_mode_collapse_keeps_precision_but_loses_recall() -> None:
    g = torch.Generator().manual_seed(2)
    real = torch.randn(400, 4, generator=g)
    collapsed = real[real[:, 0] > 1.0][:100]  # the generator only makes one corner of the data
    precision, recall = precision_recall(real, collapsed)
    assert precision == 1.0 and recall < 0.5


def test_knn_radius_excludes_the_point_itself() -> None:
    pts = torch.tensor([[0.0], [1.0], [3.0], [6.0], [10.0]])
    torch.testing.assert_close(knn_radii(pts, k=1, chunk=2), torch.tensor([1.0, 1.0, 2.0, 3.0, 4.0]))
    torch.testing.assert_close(knn_radii(pts, k=3), torch.tensor([6.0, 5.0, 3.0, 5.0, 9.0]))


# -- evaluate_generator ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_classifier() -> GarmentClassifier:
    torch.manual_seed(0)
    config = ClassifierConfig(article_types=("a", "Other"), colours=("b", "Other"), channels=(8, 16), feature_dim=16)
    model = GarmentClassifier(config).eval().requires_grad_(False)
    model.metrics = {"holdout_accuracy_articleType": 0.5}
    return model


def fake_reals(n: int, seed: int = 0) -> np.ndarray:
    base = np.random.default_rng(0).integers(0, 256, size=(4, 3, 64, 64))  # a few "garments", plus noise
    rng = np.random.default_rng(seed)
    return np.clip(base[rng.integers(0, 4, n)] + rng.normal(0, 20, (n, 3, 64, 64)), 0, 255).astype(np.uint8)


def test_evaluate_with_a_sample_fn_of_reals_matches_the_baseline(tiny_classifier) -> None:
    reals = fake_reals(240)
    more = images_to_tensor(fake_reals(120, seed=1))
    out = evaluate_generator(lambda n: more[:n], reals, n=100, classifier=tiny_classifier)
    assert out["n"] == 100 and out["classifier_holdout_accuracy_articleType"] == 0.5
    assert out["fd"] < 2 * out["fd_baseline"] + 1e-3  # same distribution: at the real-vs-real floor
    assert out["precision"] > out["precision_baseline"] - 0.1 and out["recall"] > out["recall_baseline"] - 0.1


def test_evaluate_a_generator_object_at_another_resolution(tiny_classifier) -> None:
    class FlatGenerator:  # DESIGN.md's generator API: seeds → ws → images, 32 px
        resolution = 32

        def seeds_to_ws(self, seeds: list[int], psi: float = 1.0) -> torch.Tensor:
            return torch.tensor(seeds, dtype=torch.float32)[:, None, None].repeat(1, 2, 4) * psi

        def synthesis(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
            assert noise_mode == "const"
            return torch.full((len(ws), 3, 32, 32), 0.9)  # every sample the same near-white square

    out = evaluate_generator(FlatGenerator(), fake_reals(200), n=64, batch=10, classifier=tiny_classifier)
    assert set(out) >= {"fd", "precision", "recall", "fd_baseline", "precision_baseline", "recall_baseline"}
    assert out["fd"] > out["fd_baseline"] and out["recall"] < out["recall_baseline"]


def test_evaluate_needs_enough_reals(tiny_classifier) -> None:
    with pytest.raises(ValueError, match="real images"):
        evaluate_generator(lambda n: torch.zeros(n, 3, 64, 64), fake_reals(6), classifier=tiny_classifier)


# -- classifier files --------------------------------------------------------------------------------
def test_labels_outside_the_vocabulary_become_other() -> None:
    classes = top_classes(["a", "a", "b", "c", "c", "c"], 2)
    assert classes == ("c", "a", "Other")
    assert encode_labels(["a", "b", "c", "zz"], classes).tolist() == [1, 2, 0, 2]


def test_save_and_load_round_trip(tiny_classifier, tmp_path: Path) -> None:
    path = save_classifier(tiny_classifier, tmp_path / "clf.safetensors", {"holdout_accuracy_articleType": 0.5})
    loaded = load_classifier(path)
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    torch.testing.assert_close(loaded.features(x), tiny_classifier.features(x))
    assert loaded.config == tiny_classifier.config and not loaded.training
    assert (tmp_path / "clf.json").is_file()


def test_foreign_files_are_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"), metadata={"format": "something-else"})
    with pytest.raises(ClassifierFormatError, match="not a garment classifier"):
        load_classifier(tmp_path / "other.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(ValueError):  # ClassifierFormatError is a ValueError too, for optional callers
        load_classifier(tmp_path / "junk.safetensors")
    with pytest.raises(FileNotFoundError):
        load_classifier(tmp_path / "missing.safetensors")


# -- the shipped classifier ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shipped() -> GarmentClassifier:
    return load_classifier()


def test_shipped_classifier_loads_small_with_256_features(shipped) -> None:
    assert DEFAULT_PATH.stat().st_size < 5_000_000
    assert not shipped.training and not any(p.requires_grad for p in shipped.parameters())
    feats = shipped.features(torch.zeros(5, 3, 64, 64))
    assert feats.shape == (5, 256) and torch.isfinite(feats).all()
    assert shipped.features(torch.zeros(2, 3, 128, 128)).shape == (2, 256)  # other sizes are resized
    assert shipped.config.article_types[-1] == shipped.config.colours[-1] == "Other"


def test_shipped_accuracy_in_metadata_is_above_chance() -> None:
    metrics = read_metadata()["metrics"]
    for head in ("articleType", "baseColour"):
        assert metrics[f"holdout_accuracy_{head}"] > metrics[f"majority_baseline_{head}"] + 0.1


def holdout_sample(n: int) -> tuple[np.ndarray, dict[str, list[str]]]:
    """n framed holdout photos read straight from the zip (no full preparation: that takes seconds)."""
    with open(DATA / "styles.csv", newline="", encoding="utf-8") as fh:
        rows = {int(r["id"]): r for r in csv.DictReader(fh) if r["subCategory"] not in DEFAULT_EXCLUDED}
    ids = np.array(sorted(rows))
    held = ids[is_holdout(ids, 0.1)]
    chosen = np.random.default_rng(0).choice(held, size=min(n, len(held)), replace=False)
    images, labels = [], {"articleType": [], "baseColour": []}
    with zipfile.ZipFile(DATA / "images.zip") as zf:
        names = set(zf.namelist())
        for i in chosen:
            if f"images/{i}.jpg" not in names:
                continue
            from PIL import Image

            with Image.open(io.BytesIO(zf.read(f"images/{i}.jpg"))) as im:
                images.append(np.asarray(frame_image(im, 64)).transpose(2, 0, 1))
            for k in labels:
                labels[k].append(rows[int(i)][k])
    return np.stack(images), labels


def test_shipped_accuracy_holds_on_a_holdout_sample(shipped) -> None:
    if not (DATA / "images.zip").is_file():
        pytest.skip(f"needs the fashion-product-images-small data set, not part of the repository: none at {DATA} "
                    "(set CLOTHINGGAN_DATA)")
    images, labels = holdout_sample(300)
    with torch.no_grad():
        type_logits, colour_logits = shipped(images_to_tensor(images))
    recorded = read_metadata()["metrics"]
    for head, logits, classes in (("articleType", type_logits, shipped.config.article_types),
                                  ("baseColour", colour_logits, shipped.config.colours)):
        target = encode_labels(labels[head], classes)
        accuracy = float((logits.argmax(1) == target).float().mean())
        majority = float(torch.bincount(target).max()) / len(target)
        assert accuracy > majority + 0.05, head
        assert abs(accuracy - recorded[f"holdout_accuracy_{head}"]) < 0.12, head  # 300 samples: SE ≈ 0.03

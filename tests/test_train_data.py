"""Data pipeline: framing on white, the cached prepared data set, the id-hash split, tensors for training.

All on tiny synthetic images and a fake zip in tmp_path; the real data set is never needed here.
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
from PIL import Image

from clothinggan.train import data as data_mod
from clothinggan.train.data import (ImageDataset, frame_image, images_to_tensor, is_holdout, locate_source,
                                    prepare_dataset)

RED = (255, 0, 0)


def solid(size: tuple[int, int], colour=RED, mode: str = "RGB") -> Image.Image:
    return Image.new("RGB", size, colour).convert(mode)


# -- framing -----------------------------------------------------------------------------------
def test_tall_image_is_padded_left_and_right_with_white() -> None:
    out = np.asarray(frame_image(solid((60, 80)), 64))
    assert out.shape == (64, 64, 3)
    assert (out[:, :4] == 255).all() and (out[:, -4:] == 255).all()  # 10 px of 80 → 8 px of 64 each side
    assert tuple(out[32, 32]) == RED and tuple(out[0, 32]) == RED  # garment spans the full height


def test_wide_image_is_padded_top_and_bottom() -> None:
    out = np.asarray(frame_image(solid((80, 60)), 64))
    assert (out[:4] == 255).all() and (out[-4:] == 255).all()
    assert tuple(out[32, 0]) == RED


def test_padding_is_centred() -> None:
    out = np.asarray(frame_image(solid((20, 60)), 60))  # exact: no resize, 20 px pad each side
    red_cols = np.where((out[30] == RED).all(axis=1))[0]
    assert red_cols.min() == 20 and red_cols.max() == 39


@pytest.mark.parametrize("resolution", [1, 16, 64, 256])
def test_output_is_square_rgb_at_resolution(resolution: int) -> None:
    out = frame_image(solid((60, 77)), resolution)
    assert out.size == (resolution, resolution) and out.mode == "RGB"


def test_rgba_transparency_becomes_white() -> None:
    im = Image.new("RGBA", (10, 10), (0, 0, 255, 0))
    im.paste((0, 0, 255, 255), (3, 3, 7, 7))
    out = np.asarray(frame_image(im, 10))
    assert tuple(out[0, 0]) == (255, 255, 255) and tuple(out[5, 5]) == (0, 0, 255)


@pytest.mark.parametrize("mode", ["L", "CMYK", "P", "LA", "I;16"])
def test_other_modes_become_rgb(mode: str) -> None:
    if mode == "I;16":  # 16-bit grey at the same relative level
        im = Image.fromarray(np.full((40, 30), 128 * 257, dtype=np.uint16))
    else:
        im = solid((30, 40), (128, 128, 128), mode)
    out = frame_image(im, 16)
    assert out.mode == "RGB" and out.size == (16, 16)
    centre = np.asarray(out)[8, 8].astype(int)
    assert np.ptp(centre) <= 2 and 100 < centre[0] < 160  # mid-grey survives the conversion


def test_bad_resolution_is_refused() -> None:
    with pytest.raises(ValueError, match="resolution"):
        frame_image(solid((4, 4)), 0)


# -- fake data set -----------------------------------------------------------------------------
ROWS = [  # id, subCategory, articleType, baseColour; colour of the photo follows the id
    (101, "Topwear", "Tshirts", "Red"), (102, "Topwear", "Shirts", "Blue"), (103, "Bottomwear", "Jeans", "Blue"),
    (104, "Topwear", "Tshirts", "Black"), (105, "Innerwear", "Briefs", "White"), (106, "Dress", "Dresses", "Pink"),
    (107, "Topwear", "Tops", "Green"), (108, "Topwear", "Tshirts", "White"), (109, "Bottomwear", "Shorts", "Grey"),
]
CORRUPT_ID, UNLABELLED_ID = 110, 111


def colour_of(i: int) -> tuple[int, int, int]:
    return (i * 37 % 256, i * 91 % 256, i * 53 % 256)


def jpeg_bytes(i: int, size: tuple[int, int] = (60, 80)) -> bytes:
    buf = io.BytesIO()
    solid(size, colour_of(i)).save(buf, format="PNG")  # lossless, so colours can be checked exactly
    return buf.getvalue()


def write_styles(folder: Path) -> None:
    with open(folder / "styles.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "gender", "masterCategory", "subCategory", "articleType", "baseColour", "usage",
                    "productDisplayName"])
        for i, sub, art, col in ROWS + [(CORRUPT_ID, "Topwear", "Tops", "Red")]:
            w.writerow([i, "Women", "Apparel", sub, art, col, "Casual", f"product {i}"])


@pytest.fixture
def fake_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLOTHINGGAN_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "dataset"
    folder.mkdir()
    with zipfile.ZipFile(folder / "images.zip", "w") as zf:
        zf.writestr("images/", b"")
        for i, *_ in ROWS:
            zf.writestr(f"images/{i}.jpg", jpeg_bytes(i, (60, 77) if i == 102 else (60, 80)))
        zf.writestr(f"images/{CORRUPT_ID}.jpg", b"\xff\xd8 this is not a jpeg")
        zf.writestr(f"images/{UNLABELLED_ID}.jpg", jpeg_bytes(UNLABELLED_ID))
    write_styles(folder)
    return folder


def all_ids(prepared) -> list[int]:
    return sorted(prepared.train.ids.tolist() + prepared.holdout.ids.tolist())


def test_prepare_frames_labels_and_skips(fake_source: Path) -> None:
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        prepared = prepare_dataset(fake_source, resolution=16, holdout_fraction=0.3)
    kept = [i for i, sub, *_ in ROWS if sub != "Innerwear"]
    assert all_ids(prepared) == kept  # Innerwear excluded, corrupt and unlabelled skipped
    assert prepared.skipped == 1
    for split in (prepared.train, prepared.holdout):
        assert split.images.dtype == np.uint8 and split.images.shape[1:] == (3, 16, 16)
        for img, i, colour in zip(split.images, split.ids, split.labels["baseColour"]):
            assert tuple(img[:, 8, 8]) == colour_of(int(i))  # images stay aligned with their ids
            assert colour == next(r[3] for r in ROWS if r[0] == i)  # and with their labels
    assert prepared.vocab["articleType"][0] == "Tshirts"  # most frequent first
    assert "Innerwear" not in prepared.vocab["subCategory"]


def test_second_call_hits_the_cache(fake_source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.warns(UserWarning):
        first = prepare_dataset(fake_source / "images.zip", resolution=16)

    def no_rebuild(*args, **kwargs):
        raise AssertionError("cache was not used")

    monkeypatch.setattr(data_mod, "_build_arrays", no_rebuild)
    second = prepare_dataset(fake_source, resolution=16)
    assert second.cache_path == first.cache_path and second.cache_path.parent.parent == fake_source.parent / "cache"
    for a, b in ((first.train, second.train), (first.holdout, second.holdout)):
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.ids, b.ids)
        assert all((a.labels[f] == b.labels[f]).all() for f in a.labels)


def test_cache_key_follows_source_and_settings(fake_source: Path) -> None:
    with pytest.warns(UserWarning):
        base = prepare_dataset(fake_source, resolution=16).cache_path
        other_res = prepare_dataset(fake_source, resolution=8).cache_path
        no_exclusion = prepare_dataset(fake_source, resolution=16, exclude_subcategories=()).cache_path
    assert len({base, other_res, no_exclusion}) == 3
    zpath = fake_source / "images.zip"
    st = zpath.stat()
    os.utime(zpath, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the source changed: rebuild
    with pytest.warns(UserWarning):
        assert prepare_dataset(fake_source, resolution=16).cache_path != base


def test_holdout_fraction_does_not_need_a_rebuild(fake_source: Path) -> None:
    with pytest.warns(UserWarning):
        a = prepare_dataset(fake_source, resolution=16, holdout_fraction=0.0)
    b = prepare_dataset(fake_source, resolution=16, holdout_fraction=0.5)
    assert a.cache_path == b.cache_path and len(a.holdout) == 0 and all_ids(a) == all_ids(b)


def test_folder_of_images_works_like_the_zip(fake_source: Path, tmp_path: Path) -> None:
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(fake_source / "images.zip") as zf:
        zf.extractall(folder)
    write_styles(folder)
    with pytest.warns(UserWarning):
        from_zip = prepare_dataset(fake_source, resolution=16)
        from_folder = prepare_dataset(folder, resolution=16)
    assert locate_source(folder)[0] == folder / "images"
    np.testing.assert_array_equal(from_zip.train.images, from_folder.train.images)


def test_missing_source_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="images.zip"):
        prepare_dataset(tmp_path)


# -- split ---------------------------------------------------------------------------------------
def test_split_is_deterministic_disjoint_and_near_the_fraction() -> None:
    ids = np.arange(10_000, 30_000)
    mask = is_holdout(ids, 0.1)
    assert (mask == is_holdout(ids, 0.1)).all()
    assert abs(mask.mean() - 0.1) < 0.01
    assert (is_holdout(ids[::-1], 0.1) == mask[::-1]).all()  # depends on the id only, not its position
    assert not (is_holdout(ids, 0.05) & ~mask).any()  # a smaller holdout is a subset of a larger one


def test_split_is_pinned_across_machines() -> None:
    # blake2b of the decimal id: these values must never change, or models would train on holdout photos.
    assert np.flatnonzero(is_holdout(np.arange(10_000, 10_100), 0.1)).tolist() == PINNED_HOLDOUT


PINNED_HOLDOUT = [12, 18, 29, 52, 85, 88, 92, 99]  # offsets from 10_000, computed once


def test_prepared_split_is_disjoint(fake_source: Path) -> None:
    with pytest.warns(UserWarning):
        prepared = prepare_dataset(fake_source, resolution=8, holdout_fraction=0.5)
    assert not set(prepared.train.ids) & set(prepared.holdout.ids)
    assert (is_holdout(prepared.holdout.ids, 0.5)).all() and not is_holdout(prepared.train.ids, 0.5).any()


# -- tensors -------------------------------------------------------------------------------------
def test_images_to_tensor_maps_uint8_to_minus_one_one() -> None:
    x = images_to_tensor(np.array([0, 255, 128], dtype=np.uint8).reshape(1, 3, 1, 1))
    assert x.dtype == torch.float32
    torch.testing.assert_close(x.flatten(), torch.tensor([-1.0, 1.0, 128 / 127.5 - 1]))
    with pytest.raises(ValueError, match="uint8"):
        images_to_tensor(np.zeros((1, 3, 2, 2), dtype=np.float32))


def test_dataset_flips_only_when_asked() -> None:
    img = np.zeros((1, 3, 4, 4), dtype=np.uint8)
    img[..., 0] = 255  # left column white
    plain = ImageDataset(img)
    assert len(plain) == 1 and all(plain[0][:, :, 0].eq(1).all() for _ in range(5))
    flipped = ImageDataset(img, xflip=True, seed=1)
    seen = {bool(flipped[0][0, 0, -1] == 1) for _ in range(40)}
    assert seen == {True, False}

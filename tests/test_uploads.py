"""Uploads: every kind of file a user may drop in either becomes an RGB image or one clear error."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from clothinggan.errors import ImageInputError
from clothinggan.uploads import crop_box, read_upload


def encode(im: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def half_red(size: tuple[int, int] = (40, 20)) -> Image.Image:
    """Left half red, right half blue: orientation and colour are both easy to check."""
    arr = np.zeros((size[1], size[0], 3), np.uint8)
    arr[:, : size[0] // 2] = (255, 0, 0)
    arr[:, size[0] // 2:] = (0, 0, 255)
    return Image.fromarray(arr)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid-looking PNG header claiming a huge image, a few dozen bytes on disk."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_common_formats_decode_to_rgb(fmt: str) -> None:
    im = read_upload(encode(half_red(), fmt, quality=95) if fmt != "PNG" else encode(half_red(), fmt), "x")
    assert im.mode == "RGB" and im.size == (40, 20)
    r, g, b = np.asarray(im)[10, 5].astype(int)
    assert r > 200 and g < 60 and b < 60


def test_text_file_is_refused_with_one_sentence() -> None:
    with pytest.raises(ImageInputError, match="not an image we can read"):
        read_upload(b"just some notes about a jacket\n" * 10, "notes.txt")


def test_empty_file_is_refused() -> None:
    with pytest.raises(ImageInputError, match="empty"):
        read_upload(b"", "empty.png")


def test_truncated_jpeg_is_refused() -> None:
    data = encode(Image.fromarray(np.random.RandomState(0).randint(0, 255, (256, 256, 3), np.uint8)), "JPEG")
    with pytest.raises(ImageInputError, match="damaged or incomplete"):
        read_upload(data[: len(data) // 2], "cut.jpg")


def test_decompression_bomb_is_refused_before_decoding() -> None:
    data = bomb_png()
    assert len(data) < 200
    with pytest.raises(ImageInputError, match="100000×100000 pixels; the limit is 40 megapixels"):
        read_upload(data, "bomb.png")


def test_pixel_limit_is_local() -> None:
    with pytest.raises(ImageInputError, match="40×20 pixels"):
        read_upload(encode(half_red(), "PNG"), max_pixels=500)


def test_oversize_bytes_are_refused() -> None:
    with pytest.raises(ImageInputError, match="the limit is 20 MB"):
        read_upload(b"\x89PNG" + b"\x00" * (20 * 1024 * 1024), "big.png")


def test_transparent_pixels_become_white() -> None:
    arr = np.zeros((8, 8, 4), np.uint8)
    arr[:, :4] = (255, 0, 0, 255)  # opaque red left, fully transparent black right
    im = read_upload(encode(Image.fromarray(arr, "RGBA"), "PNG"))
    out = np.asarray(im)
    assert im.mode == "RGB"
    assert tuple(out[0, 0]) == (255, 0, 0) and tuple(out[0, 7]) == (255, 255, 255)


def test_palette_with_transparency_becomes_white() -> None:
    im = Image.new("P", (4, 4), 0)
    im.putpalette([0, 0, 0, 10, 200, 10] + [0] * 762)
    im.putpixel((0, 0), 1)
    out = np.asarray(read_upload(encode(im, "PNG", transparency=0)))
    assert tuple(out[0, 0]) == (10, 200, 10) and tuple(out[3, 3]) == (255, 255, 255)


def test_grayscale_becomes_rgb() -> None:
    im = read_upload(encode(Image.new("L", (5, 5), 77), "PNG"))
    assert im.mode == "RGB" and tuple(np.asarray(im)[2, 2]) == (77, 77, 77)


def test_cmyk_jpeg_becomes_rgb() -> None:
    im = read_upload(encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95))
    r, g, b = np.asarray(im)[8, 8].astype(int)
    assert im.mode == "RGB" and r > 200 and g < 60 and b < 60


def test_exif_orientation_6_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    im = read_upload(encode(half_red((40, 20)), "JPEG", quality=95, exif=exif.tobytes()))
    assert im.size == (20, 40)
    out = np.asarray(im).astype(int)
    assert out[5, 10, 0] > 200 and out[35, 10, 2] > 200  # the left (red) half is now on top


def test_16_bit_png_is_scaled_not_clipped() -> None:
    arr = np.full((4, 4), 65535, np.uint16)
    arr[0, 0] = 32768
    im = read_upload(encode(Image.fromarray(arr), "PNG"))
    out = np.asarray(im)
    assert im.mode == "RGB" and tuple(out[1, 1]) == (255, 255, 255) and out[0, 0, 0] == 128


def test_crop_fractions() -> None:
    assert crop_box((100, 50), (0.1, 0.2, 0.5, 1.0)) == (10, 10, 50, 50)
    with pytest.raises(ImageInputError, match="empty"):
        crop_box((100, 50), (0.5, 0.0, 0.5, 1.0))
    with pytest.raises(ImageInputError, match="fractions"):
        crop_box((100, 50), (0.0, 0.0, 1.5, 1.0))


def test_frame_upload_gives_square_model_input() -> None:
    pytest.importorskip("clothinggan.train.data")
    from clothinggan.uploads import frame_upload

    out = frame_upload(half_red((40, 20)), 16, crop=(0.0, 0.0, 0.5, 1.0))
    assert out.size == (16, 16) and out.mode == "RGB"


def test_a_panorama_is_shrunk_before_it_is_framed(monkeypatch) -> None:
    """Issue 9 #5: a 65,000×600 px JPEG passed the pixel limit, then was padded onto a 65,000² canvas (12.7 GB)."""
    from PIL import Image

    from clothinggan import framing

    buf = io.BytesIO()
    Image.new("RGB", (65_000, 600), (200, 30, 30)).save(buf, format="JPEG", quality=50)
    photo = read_upload(buf.getvalue(), "panorama.jpg")
    made = []
    real_new = Image.new
    monkeypatch.setattr(framing.Image, "new", lambda mode, size, *a, **k: made.append(size) or real_new(mode, size, *a, **k))
    out = framing.frame_upload(photo, 64)
    assert out.size == (64, 64) and out.mode == "RGB"
    assert made and max(max(size) for size in made) <= framing.MAX_SIDE_FACTOR * 64
    pixels = np.asarray(out)
    assert (pixels[32, :, 0] > 150).all() and (pixels[0, 32] > 240).all()  # a red band across white

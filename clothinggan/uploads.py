"""Turning an uploaded file into a clean RGB garment picture, or one clear sentence saying why not.

Uploads are untrusted bytes: size and pixel count are checked before anything is decoded.
"""
from __future__ import annotations

import io
import struct
from typing import Callable

import numpy as np
from PIL import Image, ImageFile, ImageOps

from clothinggan.errors import ImageInputError

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_UPLOAD_PIXELS = 40_000_000
# Phones save JPEGs with a second preview frame as MPO; PIL identifies them by the same magic bytes.
ALLOWED_FORMATS = ("JPEG", "MPO", "PNG", "WEBP")
NOT_AN_IMAGE = "This file is not an image we can read (JPEG, PNG or WebP)."
BACKGROUND = (255, 255, 255)  # transparent garment cut-outs sit on white, like the training photos

Crop = tuple[float, float, float, float]


def read_upload(data: bytes, filename: str = "", max_bytes: int = MAX_UPLOAD_BYTES,
                max_pixels: float = MAX_UPLOAD_PIXELS) -> Image.Image:
    """Decode an uploaded JPEG/PNG/WebP into an upright RGB image on white.

    Raises ImageInputError (one sentence, fit for the app) when the bytes are too many, not an
    image, claim too many pixels, are damaged, or cannot be converted to RGB.
    """
    _check_byte_size(data, max_bytes)
    im = _open_header(data, filename)
    _check_pixels(im.size, max_pixels)
    try:
        im.load()
    except (OSError, ValueError, SyntaxError, struct.error, EOFError, MemoryError) as exc:
        raise ImageInputError("This image file is damaged or incomplete and cannot be read.") from exc
    return to_rgb(_upright(im))


def frame_upload(image: Image.Image, resolution: int, crop: Crop | None = None) -> Image.Image:
    """Crop by fractions (left, top, right, bottom of the width/height), then frame like training data."""
    from clothinggan.train.data import frame_image  # one framing rule for training photos and uploads

    if crop is not None:
        image = image.crop(crop_box(image.size, crop))
    return frame_image(image, resolution)


def crop_box(size: tuple[int, int], crop: Crop) -> tuple[int, int, int, int]:
    """Fractions (left, top, right, bottom) → a pixel box of at least 1×1 inside the image."""
    if len(crop) != 4 or not all(np.isfinite(c) and 0.0 <= c <= 1.0 for c in crop):
        raise ImageInputError("The crop box must be four fractions between 0 and 1 (left, top, right, bottom).")
    left, top, right, bottom = crop
    if right <= left or bottom <= top:
        raise ImageInputError("The crop box is empty: its right edge must be right of its left edge, "
                              "and its bottom below its top.")
    w, h = size
    x0, y0 = min(int(round(left * w)), w - 1), min(int(round(top * h)), h - 1)
    return x0, y0, max(int(round(right * w)), x0 + 1), max(int(round(bottom * h)), y0 + 1)


def to_rgb(im: Image.Image) -> Image.Image:
    """Any decoded mode → RGB: alpha over white, 16-bit scaled (not clipped), CMYK/P/L converted."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        im = _high_depth_to_l(im)
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("LA", "La", "PA", "RGBa"):
        im = im.convert("RGBA")
    if im.mode == "RGBA":
        canvas = Image.new("RGB", im.size, BACKGROUND)
        canvas.paste(im, mask=im.getchannel("A"))
        return canvas
    try:
        return im.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ImageInputError(f"This image uses a colour mode ({im.mode}) we cannot convert to RGB.") from exc


def _check_byte_size(data: bytes, max_bytes: int) -> None:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageInputError(NOT_AN_IMAGE)
    if len(data) == 0:
        raise ImageInputError("The file is empty.")
    if len(data) > max_bytes:
        raise ImageInputError(f"The file is {_megabytes(len(data))}; the limit is {_megabytes(max_bytes)}.")


def _open_header(data: bytes, filename: str) -> ImageFile.ImageFile:
    """Identify the format and read only the header, bypassing PIL's process-wide bomb check.

    PIL's global check would raise before we know the size (and its threshold is global state that
    another thread may change), so we call the allowed plugins directly and apply our own limit.
    """
    Image.preinit()
    fp = io.BytesIO(bytes(data))
    prefix = fp.read(16)
    for fmt in ALLOWED_FORMATS:
        factory, accept = _plugin(fmt)
        accepted = True if accept is None else accept(prefix)
        if factory is None or isinstance(accepted, str) or not accepted:
            continue
        fp.seek(0)
        try:
            return factory(fp, filename)
        except (SyntaxError, IndexError, TypeError, ValueError, OSError, EOFError, struct.error):
            continue
    raise ImageInputError(NOT_AN_IMAGE)


def _plugin(fmt: str) -> tuple[Callable | None, Callable | None]:
    if fmt not in Image.OPEN:
        Image.init()
    return Image.OPEN.get(fmt, (None, None))


def _check_pixels(size: tuple[int, int], max_pixels: float) -> None:
    w, h = size
    if w < 1 or h < 1:
        raise ImageInputError(NOT_AN_IMAGE)
    if w * h > max_pixels:
        raise ImageInputError(f"The image is {w}×{h} pixels; the limit is {max_pixels / 1e6:g} megapixels.")


def _upright(im: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a malformed EXIF block must not cost the user their upload."""
    try:
        return ImageOps.exif_transpose(im) or im
    except (OSError, ValueError, SyntaxError, struct.error, KeyError, TypeError):
        return im


def _high_depth_to_l(im: Image.Image) -> Image.Image:
    """16-bit (or 32-bit int / float) grayscale → 8-bit L by scaling; PIL's convert would clip at 255."""
    arr = np.asarray(im, dtype=np.float64)
    top = 1.0 if im.mode == "F" and arr.max(initial=0) <= 1.0 else 65535.0
    if im.mode == "I" and arr.max(initial=0) <= 255:
        top = 255.0  # an 8-bit picture that merely arrived as 32-bit integers
    arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(arr, mode="L")


def _megabytes(n: int) -> str:
    return f"{n / 1024**2:.1f} MB" if n % 1024**2 else f"{n // 1024**2} MB"

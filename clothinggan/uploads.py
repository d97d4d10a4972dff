"""Turning an uploaded file into a clean RGB garment picture, or one clear sentence saying why not.

Uploads are untrusted bytes: size and pixel count are checked before anything is decoded.
"""
from __future__ import annotations

import io
import struct
from typing import Callable

from PIL import Image, ImageFile, ImageOps

from clothinggan.errors import ImageInputError
from clothinggan.framing import Crop, crop_box, frame_upload, to_rgb

__all__ = ["read_upload", "frame_upload", "crop_box", "to_rgb", "Crop", "MAX_UPLOAD_BYTES", "MAX_UPLOAD_PIXELS"]

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_UPLOAD_PIXELS = 40_000_000
# Phones save JPEGs with a second preview frame as MPO; PIL identifies them by the same magic bytes.
ALLOWED_FORMATS = ("JPEG", "MPO", "PNG", "WEBP")
NOT_AN_IMAGE = "This file is not an image we can read (JPEG, PNG or WebP)."


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


def _megabytes(n: int) -> str:
    return f"{n / 1024**2:.1f} MB" if n % 1024**2 else f"{n // 1024**2} MB"

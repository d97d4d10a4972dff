"""Framing a picture the way the generator sees garments: RGB, square, centred on white.

One rule for training photos and uploaded photos, so an inverted upload looks like what the GAN
saw. Every intermediate image is bounded by the output size, whatever the input's shape.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from clothinggan.errors import ImageInputError

BACKGROUND = (255, 255, 255)  # transparent cut-outs and padding sit on white, like the catalogue photos
# A picture is first shrunk to at most this many times the output side: padding a 65,000×600 px
# panorama to a square at full size would take 12.7 GB, shrunk first it takes a few kilobytes.
MAX_SIDE_FACTOR = 4

Crop = tuple[float, float, float, float]


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


def _high_depth_to_l(im: Image.Image) -> Image.Image:
    """16-bit (or 32-bit int / float) grayscale → 8-bit L by scaling; PIL's convert would clip at 255."""
    arr = np.asarray(im, dtype=np.float64)
    top = 1.0 if im.mode == "F" and arr.max(initial=0) <= 1.0 else 65535.0
    if im.mode == "I" and arr.max(initial=0) <= 255:
        top = 255.0  # an 8-bit picture that merely arrived as 32-bit integers
    arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(arr, mode="L")


def frame_image(img: Image.Image, resolution: int) -> Image.Image:
    """Any PIL image → RGB ``resolution``² square: padded (centred) on white, LANCZOS-resized.

    Transparent pixels are composited over white and L/P/CMYK/16-bit modes converted, so a user's
    cut-out PNG is framed exactly like a catalogue photo. A picture larger than
    ``MAX_SIDE_FACTOR × resolution`` is shrunk (keeping its aspect) before it is padded.
    """
    if resolution < 1:
        raise ValueError(f"resolution must be >= 1, got {resolution}")
    rgb = img if img.mode == "RGB" else to_rgb(img)
    w, h = rgb.size
    limit = MAX_SIDE_FACTOR * resolution
    if max(w, h) > limit:
        scale = limit / max(w, h)
        rgb = rgb.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)
        w, h = rgb.size
    side = max(w, h)
    if w != h:
        canvas = Image.new("RGB", (side, side), BACKGROUND)
        canvas.paste(rgb, ((side - w) // 2, (side - h) // 2))
        rgb = canvas
    if side != resolution:
        rgb = rgb.resize((resolution, resolution), Image.LANCZOS)
    return rgb


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


def frame_upload(image: Image.Image, resolution: int, crop: Crop | None = None) -> Image.Image:
    """Crop by fractions (left, top, right, bottom of the width/height), then frame like training data."""
    if crop is not None:
        image = image.crop(crop_box(image.size, crop))
    return frame_image(image, resolution)

"""Animations people can share: a walk between two designs, or along a direction, as a GIF or an MP4.

A walk is a sequence of W+ codes (so every frame is a real design of the model), rendered in
batches and encoded by well-kept libraries: Pillow writes the GIF, imageio-ffmpeg's bundled
ffmpeg the H.264 MP4. Every size is bounded before any work is done.
"""
from __future__ import annotations

import io
import math
import tempfile
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
from PIL import Image

from clothinggan.directions import NamedDirection, apply_edits
from clothinggan.errors import AnimationError
from clothinggan.images import to_pil
from clothinggan.designs import as_ws_array

MIN_FRAMES, MAX_FRAMES = 2, 240
MIN_FPS, MAX_FPS = 1, 60
MIN_SIZE, MAX_SIZE = 16, 1024
DEFAULT_FRAMES, DEFAULT_FPS, DEFAULT_SIZE = 48, 24, 256
RENDER_BATCH = 16
Ease = Literal["linear", "smooth"]
FORMATS = (".gif", ".mp4")


def check_settings(frames: int, fps: float, size: int) -> None:
    """Refuse what would be empty, unwatchable or too large to make, before rendering anything."""
    if not isinstance(frames, (int, np.integer)) or not MIN_FRAMES <= frames <= MAX_FRAMES:
        raise AnimationError(f"An animation has {MIN_FRAMES} to {MAX_FRAMES} frames, not {frames!r}.")
    if not isinstance(fps, (int, float, np.number)) or not math.isfinite(fps) or not MIN_FPS <= fps <= MAX_FPS:
        raise AnimationError(f"An animation plays at {MIN_FPS} to {MAX_FPS} frames a second, not {fps!r}.")
    if not isinstance(size, (int, np.integer)) or not MIN_SIZE <= size <= MAX_SIZE:
        raise AnimationError(f"An animation's frames are {MIN_SIZE} to {MAX_SIZE} px wide, not {size!r}.")


def _ease(t: np.ndarray, ease: Ease) -> np.ndarray:
    if ease == "smooth":
        return t * t * (3.0 - 2.0 * t)  # smoothstep: the walk slows into both designs
    if ease == "linear":
        return t
    raise AnimationError(f"Unknown easing {ease!r}: use 'linear' or 'smooth'.")


def interpolation_ws(a_ws: Any, b_ws: Any, frames: int = DEFAULT_FRAMES, ease: Ease = "smooth",
                     there_and_back: bool = False) -> np.ndarray:
    """(frames, num_ws, w_dim): a straight walk in W+ from design A (first frame) to B (last frame).

    With ``there_and_back`` the walk returns to A, so a looping GIF has no jump.
    """
    a, b = as_ws_array(a_ws), as_ws_array(b_ws)
    if a.shape != b.shape:
        raise AnimationError(f"The two designs have different shapes {a.shape} and {b.shape}: "
                             "they belong to different models.")
    check_settings(frames, MIN_FPS, MIN_SIZE)
    if there_and_back:
        t = 1.0 - np.abs(np.linspace(-1.0, 1.0, frames, endpoint=False))  # A … B … back towards A
    else:
        t = np.linspace(0.0, 1.0, frames)
    t = _ease(t, ease).astype(np.float32)[:, None, None]
    return (a[None] * (1.0 - t) + b[None] * t).astype(np.float32)


def walk_strengths(strength: float, frames: int) -> np.ndarray:
    """0 → +strength → 0 → −strength → back towards 0, one sine period: a seamless loop."""
    if not math.isfinite(float(strength)):
        raise AnimationError(f"The strength of a walk must be a number, not {strength!r}.")
    return float(strength) * np.sin(2.0 * np.pi * np.arange(frames) / frames)


def direction_walk_ws(ws: Any, direction: NamedDirection, strength: float = 3.0,
                      frames: int = DEFAULT_FRAMES) -> np.ndarray:
    """(frames, num_ws, w_dim): the design moved along ``direction`` and back (the edit sliders' rule)."""
    base = as_ws_array(ws)
    check_settings(frames, MIN_FPS, MIN_SIZE)
    return np.stack([apply_edits(base, [(direction, s)]) for s in walk_strengths(strength, frames)])


def render_frames(G: Any, ws: np.ndarray, size: int = DEFAULT_SIZE,
                  progress: Callable[[float], None] | None = None) -> list[Image.Image]:
    """Each W+ code rendered (in batches) and resized to ``size`` px square."""
    import torch

    check_settings(len(ws), MIN_FPS, size)
    frames: list[Image.Image] = []
    for start in range(0, len(ws), RENDER_BATCH):
        with torch.no_grad():
            batch = np.array(ws[start:start + RENDER_BATCH], dtype=np.float32)  # writable: torch warns otherwise
            images = G.synthesis(torch.as_tensor(batch, device=G.device))
        resample = Image.LANCZOS if size > G.resolution else Image.BILINEAR
        frames += [im.resize((size, size), resample) for im in to_pil(images)]
        if progress is not None:
            progress(len(frames) / len(ws))
    return frames


def encode_gif(frames: Sequence[Image.Image], fps: float = DEFAULT_FPS) -> bytes:
    """An endlessly looping GIF (Pillow; one palette per frame)."""
    check_settings(len(frames), fps, frames[0].width if frames else MIN_SIZE)
    buf = io.BytesIO()
    # Fast octree palettes without dithering: 40x quicker than Pillow's default per-frame quantizer
    # and no dither noise on the garments' flat white background.
    first, *rest = [f.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
                    for f in frames]
    first.save(buf, format="GIF", save_all=True, append_images=rest, loop=0,
               duration=max(20, round(1000 / fps)), optimize=False)
    return buf.getvalue()


def encode_mp4(frames: Sequence[Image.Image], fps: float = DEFAULT_FPS) -> bytes:
    """An H.264 MP4 (yuv420p, playable in browsers and phones) through imageio-ffmpeg's own ffmpeg."""
    check_settings(len(frames), fps, frames[0].width if frames else MIN_SIZE)
    try:
        import imageio_ffmpeg
    except ImportError:
        raise AnimationError("Writing MP4 needs the imageio-ffmpeg package (pip install imageio-ffmpeg); "
                             "GIF works without it.") from None
    width, height = frames[0].size
    if width % 2 or height % 2:
        raise AnimationError(f"An MP4's frames need an even size, not {width}×{height}.")
    with tempfile.TemporaryDirectory(prefix="clothinggan-mp4-") as tmp:
        path = Path(tmp) / "walk.mp4"
        writer = imageio_ffmpeg.write_frames(str(path), (width, height), fps=float(fps), codec="libx264",
                                             pix_fmt_out="yuv420p", quality=8, macro_block_size=2,
                                             ffmpeg_log_level="error")
        writer.send(None)  # start ffmpeg
        try:
            for frame in frames:
                writer.send(np.ascontiguousarray(np.asarray(frame.convert("RGB"))))
        finally:
            writer.close()
        return path.read_bytes()


def encode(frames: Sequence[Image.Image], fps: float, suffix: str) -> bytes:
    """GIF or MP4 bytes by file suffix (".gif" / ".mp4")."""
    suffix = suffix.lower()
    if suffix == ".gif":
        return encode_gif(frames, fps)
    if suffix == ".mp4":
        return encode_mp4(frames, fps)
    raise AnimationError(f"An animation is written as .gif or .mp4, not {suffix or 'a file without a suffix'}.")


__all__ = ["AnimationError", "check_settings", "interpolation_ws", "walk_strengths", "direction_walk_ws",
           "render_frames", "encode_gif", "encode_mp4", "encode", "FORMATS"]

"""Typed exceptions of clothinggan.

Every failure a user can cause (bad file, bad seed, wrong model) raises one of these, so the
app can show one clear sentence and the CLI one clear line, never a traceback.
"""
from __future__ import annotations


class ClothingGANError(Exception):
    """Base class of every error that clothinggan raises on purpose."""


class CheckpointError(ClothingGANError):
    """A model file could not be read: unknown format, corrupt, unsafe or not a generator."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class LatentFormatError(ClothingGANError):
    """A design or store file is malformed: wrong shape, NaN/inf, corrupt or unknown layout."""


class ModelMismatchError(ClothingGANError):
    """A design belongs to another model than the one it is used with."""


class InvalidSeedError(ClothingGANError, ValueError):
    """A seed specification could not be parsed or is out of range."""


class ImageInputError(ClothingGANError):
    """An uploaded image could not be used: not an image, corrupt, too large."""


class DownloadError(ClothingGANError):
    """A model download failed or its checksum did not match."""


class ModelPathError(ClothingGANError):
    """A model path typed into the app is outside its model folders, or is not a model file."""


class AnimationError(ClothingGANError):
    """An animation cannot be made as asked: frames, speed or size out of range, or no video encoder."""

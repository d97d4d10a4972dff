"""clothinggan: design garments with StyleGAN2 — generate, mix, edit along GANSpace directions, invert.

The public API is small: ``load_generator``, ``save_generator``, ``Generator``, ``to_pil``;
designs live in ``clothinggan.designs`` and ``clothinggan.store``, edits in ``clothinggan.directions``.
"""
from clothinggan.errors import (CheckpointError, ClothingGANError, ImageInputError, InvalidSeedError,
                                LatentFormatError, ModelMismatchError)
from clothinggan.generator import Generator
from clothinggan.images import image_grid, to_pil
from clothinggan.loading import load_generator, save_generator

__version__ = "0.1.0"
__all__ = ["Generator", "load_generator", "save_generator", "to_pil", "image_grid", "CheckpointError",
           "ClothingGANError", "ImageInputError", "InvalidSeedError", "LatentFormatError", "ModelMismatchError"]

"""Readers for other projects' checkpoint formats, mapped onto clothinggan.networks."""

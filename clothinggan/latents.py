"""Designs and their store, as one import for code written before they became two modules.

New code imports ``clothinggan.designs`` (Design, provenance) and ``clothinggan.store``
(LatentStore and its files).
"""
from __future__ import annotations

from clothinggan.designs import (MAX_NAME_CHARS, MAX_TEXT_CHARS, Design, as_ws_array,  # noqa: F401
                                 describe_provenance, designs_from_seeds, edit_provenance, normalise_provenance,
                                 stack_ws)
from clothinggan.store import (MAX_DESIGNS, MAX_STORE_BYTES, STORE_FORMAT, STORE_VERSION,  # noqa: F401
                               LatentStore, store_for)

__all__ = ["Design", "as_ws_array", "describe_provenance", "designs_from_seeds", "edit_provenance",
           "normalise_provenance", "stack_ws", "LatentStore", "store_for", "MAX_DESIGNS", "MAX_STORE_BYTES",
           "MAX_NAME_CHARS", "MAX_TEXT_CHARS", "STORE_FORMAT", "STORE_VERSION"]

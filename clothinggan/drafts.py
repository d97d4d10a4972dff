"""Session drafts: a browser session's designs kept server-side, so a reload or a restart loses nothing.

Each session gets a random token (kept in the page address); after every change its stores — one
per model — are written to the design library's ``drafts`` table under that token, and a new
session that arrives with the token gets them back. The token is the only key: whoever has the
address has the draft, as with any share-by-link document.
"""
from __future__ import annotations

import json
import re
import secrets
from typing import Any

from clothinggan.errors import LatentFormatError
from clothinggan.store import LatentStore

DRAFT_FORMAT = "clothinggan-session"
DRAFT_VERSION = 1
MAX_DRAFT_BYTES = 64 * 2**20  # far above 10,000 designs of a 512-px model; refuses runaway sessions
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


def new_token() -> str:
    """A fresh, unguessable session token (128 bits, URL-safe)."""
    return secrets.token_urlsafe(16)


def is_token(text: object) -> bool:
    """Whether ``text`` can be a token: anything else in the address is ignored, never looked up."""
    return isinstance(text, str) and _TOKEN.fullmatch(text) is not None


def encode_session(stores: dict[str, LatentStore]) -> bytes:
    """The non-empty stores as one JSON document (each store in its own lossless JSON format)."""
    payload = {"format": DRAFT_FORMAT, "version": DRAFT_VERSION,
               "stores": [store.to_json() for store in stores.values() if len(store)]}
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    if len(data) > MAX_DRAFT_BYTES:
        raise LatentFormatError(f"This session's designs take {len(data) / 2**20:.0f} MB, more than the "
                                f"{MAX_DRAFT_BYTES // 2**20} MB a session draft may hold; export some and delete them.")
    return data


def decode_session(data: bytes) -> dict[str, LatentStore]:
    """Stores by model id from ``encode_session`` bytes (LatentFormatError if they are not a draft)."""
    if len(data) > MAX_DRAFT_BYTES:
        raise LatentFormatError("This session draft is larger than a draft may be.")
    try:
        payload: Any = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise LatentFormatError("This session draft is not JSON.") from None
    if not isinstance(payload, dict) or payload.get("format") != DRAFT_FORMAT \
            or not isinstance(payload.get("stores"), list) or not all(isinstance(s, str) for s in payload["stores"]):
        raise LatentFormatError("This is not a clothinggan session draft.")
    stores: dict[str, LatentStore] = {}
    for text in payload["stores"]:
        store = LatentStore.from_json(text)
        if store.model_id is not None:
            stores[store.model_id] = store
    return stores


def fingerprint(stores: dict[str, LatentStore]) -> tuple:
    """What a draft must reflect (which designs, their order and names): cheap to compare every run."""
    return tuple((model_id, tuple((d.id, d.name) for d in store)) for model_id, store in stores.items() if len(store))

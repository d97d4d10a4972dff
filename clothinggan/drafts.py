"""Session drafts: a browser session's designs kept server-side, so a reload or a restart loses nothing.

Each session gets a random token (kept in the page address); after every change its stores — one
per model — are written to the design library's ``drafts`` table under that token, and a new
session that arrives with the token gets them back. The token is the only key: whoever has the
address has the draft, as with any share-by-link document.

Several tabs (sessions, replicas) may hold one token. A tab writes only over the revision it last
read or wrote; if another tab wrote in between, ``sync`` merges the three (``merge_sessions``)
and writes the result, so no tab's designs are lost.
"""
from __future__ import annotations

import json
import logging
import re
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from clothinggan.designs import Design
from clothinggan.errors import ClothingGANError, LatentFormatError
from clothinggan.store import LatentStore

if TYPE_CHECKING:
    from clothinggan.library import DesignLibrary

log = logging.getLogger(__name__)

DRAFT_FORMAT = "clothinggan-session"
DRAFT_VERSION = 1
MAX_DRAFT_BYTES = 64 * 2**20  # far above 10,000 designs of a 512-px model; refuses runaway sessions
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
# Each failed write means another tab's write landed: a handful of tries outlasts any real contention.
SYNC_ATTEMPTS = 8

Snapshot = Mapping[str, Sequence[Design]]  # model id -> designs in order: a store's state at one moment


def new_token() -> str:
    """A fresh, unguessable session token (128 bits, URL-safe)."""
    return secrets.token_urlsafe(16)


def is_token(text: object) -> bool:
    """Whether ``text`` can be a token: anything else in the address is ignored, never looked up."""
    return isinstance(text, str) and _TOKEN.fullmatch(text) is not None


def encode_session(stores: dict[str, LatentStore]) -> bytes:
    """Every store as one JSON document (each store in its own lossless JSON format).

    Empty stores are kept too: a model whose designs were all deleted must come back empty, not
    with the starter designs a model new to the session gets.
    """
    payload = {"format": DRAFT_FORMAT, "version": DRAFT_VERSION,
               "stores": [store.to_json() for store in stores.values() if store.model_id is not None]}
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
    """What a draft must reflect (which stores, their designs, order and names): cheap to compare every run."""
    return tuple((model_id, tuple((d.id, d.name) for d in store)) for model_id, store in stores.items())


def has_designs(stores: Mapping[str, Iterable[Design]]) -> bool:
    """Whether any store holds a design (a session with none has nothing a draft must keep)."""
    return any(True for designs in stores.values() for _ in designs)


def snapshot(stores: Mapping[str, Iterable[Design]]) -> dict[str, tuple[Design, ...]]:
    """The stores' designs as they are now (designs are values, so this copies references only)."""
    return {model_id: tuple(designs) for model_id, designs in stores.items()}


# -- several tabs of one session --------------------------------------------------------------------
def merge_designs(base: Sequence[Design], mine: Sequence[Design], theirs: Sequence[Design]) -> list[Design]:
    """One model's designs after a three-way merge: ``mine`` with the changes ``theirs`` made since ``base``.

    A design one side added is kept; one side deleted is removed unless the other side renamed it
    meanwhile (an edit is never lost to a delete); a name changed on one side only takes that
    change, on both sides mine; a garment both added is kept once, as mine. The order is mine,
    with each of their new designs after the one it follows in theirs; if mine has the same
    designs in the same order as the base, theirs (they may have moved some).
    """
    base_by = {d.id: d for d in base}
    mine_by = {d.id: d for d in mine}
    theirs_by = {d.id: d for d in theirs}

    def renamed(by: dict[str, Design], design_id: str) -> bool:
        return design_id in by and design_id in base_by and by[design_id].name != base_by[design_id].name

    def kept(design_id: str) -> Design | None:
        in_mine, in_theirs, in_base = design_id in mine_by, design_id in theirs_by, design_id in base_by
        if in_mine and in_theirs:
            return mine_by[design_id] if renamed(mine_by, design_id) or not in_base else \
                mine_by[design_id].with_name(theirs_by[design_id].name)
        if in_mine:  # they deleted it, or I added it
            return mine_by[design_id] if not in_base or renamed(mine_by, design_id) else None
        if in_theirs:  # I deleted it, or they added it
            return theirs_by[design_id] if not in_base or renamed(theirs_by, design_id) else None
        return None

    mine_ids, theirs_ids = [d.id for d in mine], [d.id for d in theirs]
    order = _interleave(theirs_ids, mine_ids) if mine_ids == [d.id for d in base] else _interleave(mine_ids, theirs_ids)
    merged = [d for d in map(kept, order) if d is not None]
    theirs_new = {d.id for d in merged if d.id not in mine_by}
    if not theirs_new:
        return merged
    # The same garment added in both tabs (a seed generated in each) is kept once, as this tab has it.
    held = {d.code_digest for d in merged if d.id not in theirs_new}
    return [d for d in merged if d.id not in theirs_new or d.code_digest not in held]


def _interleave(first: list[str], second: list[str]) -> list[str]:
    """``first``'s order, with each id only ``second`` has placed after the id it follows there."""
    order, held, after = list(first), set(first), None
    for design_id in second:
        if design_id not in held:
            order.insert(order.index(after) + 1 if after is not None else 0, design_id)
            held.add(design_id)
        after = design_id
    return order


def merge_sessions(base: Snapshot, mine: Mapping[str, LatentStore], theirs: Mapping[str, LatentStore],
                   ) -> dict[str, LatentStore]:
    """Every model's store after ``merge_designs`` (a model only one side has counts as empty on the other)."""
    merged: dict[str, LatentStore] = {}
    for model_id in [*mine, *(m for m in theirs if m not in mine)]:
        own = list(mine.get(model_id, ()))
        designs = merge_designs(base.get(model_id, ()), own, list(theirs.get(model_id, ())))
        # Names stay unique, and on a clash the design this tab shows keeps its name: theirs gets " (2)".
        own_ids = {d.id for d in own}
        named = LatentStore(model_id, [d for d in designs if d.id in own_ids])
        renamed = {d.id: d for d in named.merge([d for d in designs if d.id not in own_ids])}
        merged[model_id] = LatentStore(model_id, [renamed.get(d.id, d) for d in designs])
    return merged


@dataclass(frozen=True)
class Synced:
    """What a tab last read from or wrote to its draft: the base of the next merge.

    revision: the kept draft's revision then; None while the tab knows of no kept draft.
    """

    revision: int | None = None
    designs: dict[str, tuple[Design, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class SyncResult:
    """The outcome of ``sync``: what is kept now, and the stores the tab must show if others' changes came in."""

    synced: Synced
    merged: dict[str, LatentStore] | None = None  # None: the tab's stores were written as they are
    added: int = 0    # designs another tab made, now here
    removed: int = 0  # designs another tab deleted, now gone here
    renamed: int = 0


class DraftConflictError(ClothingGANError):
    """Other tabs kept writing the session's draft, so this tab's write never landed (its designs are unharmed)."""


def sync(library: DesignLibrary, token: str, stores: dict[str, LatentStore], synced: Synced) -> SyncResult:
    """Write the tab's stores as the session's draft, merging in whatever other tabs wrote since ``synced``.

    Each write lands only on the revision the tab last saw (``DesignLibrary.save_draft``); when
    another tab wrote first, its draft is read and merged (``merge_sessions``) and the merge is
    written on its revision, so concurrent tabs, threads and replicas never lose each other's work.
    """
    mine, base, merged = stores, synced, False
    for _ in range(SYNC_ATTEMPTS):
        revision = library.save_draft(token, encode_session(mine), base.revision)
        if revision is not None:
            written = Synced(revision, snapshot(mine))
            if not merged:
                return SyncResult(written)
            before = {d.id: d.name for s in stores.values() for d in s}
            after = {d.id: d.name for s in mine.values() for d in s}
            return SyncResult(written, mine, added=len(after.keys() - before.keys()),
                              removed=len(before.keys() - after.keys()),
                              renamed=sum(1 for i in after.keys() & before.keys() if after[i] != before[i]))
        kept = library.load_draft(token)
        if kept is None:  # removed meanwhile (as too old): nothing to merge, write ours afresh
            base = Synced(None, base.designs)
            continue
        try:
            theirs = decode_session(kept.data)
        except LatentFormatError as exc:  # nobody can restore a damaged draft: ours replaces it
            log.warning("replacing a damaged session draft: %s", exc)
            base = Synced(kept.revision, snapshot(mine))
            continue
        mine = merge_sessions(base.designs, mine, theirs)
        base, merged = Synced(kept.revision, snapshot(theirs)), True
    raise DraftConflictError(f"Other tabs of this session kept changing its designs, so this tab's changes were "
                             f"not backed up after {SYNC_ATTEMPTS} tries; they are safe in this tab.")

"""LatentStore: the ordered, session-wide collection of one model's designs, and its files (npz, JSON).

It refuses other models' designs, keeps names unique, and serialises losslessly with bounds
checked before anything is built (at most 10,000 designs and 256 MB per file).
"""
from __future__ import annotations

import base64
import io
import json
import threading
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from clothinggan.designs import MAX_NAME_CHARS, Design, fit_name, stack_ws
from clothinggan.errors import LatentFormatError, ModelMismatchError
from clothinggan.paths import write_atomic

STORE_FORMAT = "clothinggan.latentstore"
STORE_VERSION = 1
MAX_DESIGNS = 10_000               # per design file; a session's working set is tens, a lookbook hundreds
MAX_STORE_BYTES = 256 * 2**20      # declared contents of one design file (10,000 designs of 16×512 float32 is 330 MB)


# -- LatentStore ----------------------------------------------------------------------------------
def _suffixed(wanted: str, n: int) -> str:
    """"wanted (n)", the name cut short where the suffix would take it past the length limit."""
    suffix = f" ({n})"
    return fit_name(wanted, MAX_NAME_CHARS - len(suffix)) + suffix


def _unique_name(wanted: str, taken: set[str], hints: dict[str, int] | None = None) -> str:
    """``wanted``, or "wanted (2)", "wanted (3)", … whichever is free first.

    ``hints`` remembers the last suffix given per name, so n designs of one name cost O(n) in all;
    a freed "wanted (2)" is still found first.
    """
    if wanted not in taken:
        return wanted
    n = 2
    if hints is not None and _suffixed(wanted, 2) in taken:
        n = hints.get(wanted, 2)
    while _suffixed(wanted, n) in taken:
        n += 1
    if hints is not None:
        hints[wanted] = n
    return _suffixed(wanted, n)


class LatentStore:
    """An ordered collection of designs of ONE model: a session's working set, shared by every page.

    model_id: the model the store belongs to; None adopts the model of the first design added.

    Names are unique within a store (a clash gets a " (2)" suffix) and empty names become
    "Design N". Mutations take a lock, so a store shared between threads stays consistent.
    """

    def __init__(self, model_id: str | None = None, designs: Iterable[Design] = ()) -> None:
        self._model_id = model_id
        self._order: list[str] = []
        self._by_id: dict[str, Design] = {}
        self._names: set[str] = set()  # kept alongside _by_id so adding is O(1), not O(n)
        self._suffixes: dict[str, int] = {}
        self._lock = threading.RLock()
        for design in designs:
            self.add(design)

    # -- reading ----------------------------------------------------------------------------------
    @property
    def model_id(self) -> str | None:
        return self._model_id

    @property
    def shape(self) -> tuple[int, int] | None:
        """(num_ws, w_dim) of the designs held, None while empty."""
        with self._lock:
            return self._by_id[self._order[0]].ws.shape if self._order else None  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self) -> Iterator[Design]:
        with self._lock:
            snapshot = [self._by_id[i] for i in self._order]
        return iter(snapshot)

    def __contains__(self, item: object) -> bool:
        """True for a design id held here, or a Design whose id is held here."""
        key = item.id if isinstance(item, Design) else item
        return isinstance(key, str) and key in self._by_id

    def __repr__(self) -> str:
        return f"LatentStore(model_id={self._model_id!r}, {len(self)} designs)"

    def get(self, design_id: str) -> Design:
        """The design with this id (KeyError if the store has none)."""
        try:
            return self._by_id[design_id]
        except KeyError:
            raise KeyError(f"no design with id {design_id!r} in this store") from None

    def ids(self) -> list[str]:
        return list(self._order)

    def names(self) -> list[str]:
        with self._lock:
            return [self._by_id[i].name for i in self._order]

    def same_code(self) -> dict[bytes, str]:
        """``Design.code_digest`` → the id of the first held design with that code: tells whether a
        design made again (the same seed, a new object) is already here."""
        with self._lock:
            held: dict[bytes, str] = {}
            for design_id in self._order:
                held.setdefault(self._by_id[design_id].code_digest, design_id)
            return held

    def index(self, design_id: str) -> int:
        """Position of a design in the store's order."""
        self.get(design_id)
        return self._order.index(design_id)

    # -- changing ---------------------------------------------------------------------------------
    @staticmethod
    def _check_fits(design: Design, model_id: str | None, shape: tuple[int, ...] | None) -> None:
        if not isinstance(design, Design):
            raise TypeError(f"a LatentStore holds Design objects, got {type(design).__name__}")
        if model_id is not None and design.model_id != model_id:
            raise ModelMismatchError(f"Design {design.name or design.id[:8]!r} belongs to model "
                                     f"{design.model_id!r}, but this store holds designs of model "
                                     f"{model_id!r}.")
        if shape is not None and design.ws.shape != shape:
            raise LatentFormatError(f"Design {design.name or design.id[:8]!r} has shape {design.ws.shape}, "
                                    f"but this store holds designs of shape {shape}.")

    def _add_unlocked(self, design: Design) -> Design:
        if design.id in self._by_id:  # adding the same design twice is a no-op, not a duplicate
            return self._by_id[design.id]
        taken = self._names
        wanted = design.name.strip()
        if not wanted:
            n = len(self._order) + 1
            while f"Design {n}" in taken:
                n += 1
            wanted = f"Design {n}"
        name = _unique_name(wanted, taken, self._suffixes)
        if name != design.name:
            design = design.with_name(name)
        if self._model_id is None:
            self._model_id = design.model_id
        self._order.append(design.id)
        self._by_id[design.id] = design
        self._names.add(design.name)
        return design

    def add(self, design: Design) -> Design:
        """Append a design; returns it as stored (possibly renamed). Re-adding a held id is a no-op.

        Raises ModelMismatchError for another model's design, LatentFormatError for another shape.
        """
        with self._lock:
            self._check_fits(design, self._model_id, self.shape)
            return self._add_unlocked(design)

    def merge(self, other: Iterable[Design]) -> list[Design]:
        """Add every design of ``other`` (a store or any designs), all or nothing; returns those added.

        Everything is checked before anything is added, so a refused merge leaves this store as it was.
        Designs whose id is already held are skipped.
        """
        incoming = list(other)
        with self._lock:
            model_id = self._model_id
            if model_id is None and isinstance(other, LatentStore):
                model_id = other.model_id
            if model_id is None and incoming:
                model_id = incoming[0].model_id
            shape = self.shape or (incoming[0].ws.shape if incoming else None)
            for design in incoming:
                self._check_fits(design, model_id, shape)
            return [self._add_unlocked(d) for d in incoming if d.id not in self._by_id]

    def rename(self, design_id: str, name: str) -> Design:
        """Give a design a new name (made unique if taken); returns the renamed design."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError("a design's name cannot be empty")
        if len(name.strip()) > MAX_NAME_CHARS:  # refused before anything changes
            raise LatentFormatError(f"A design's name is limited to {MAX_NAME_CHARS} characters; "
                                    f"this one has {len(name.strip())}.")
        with self._lock:
            old = self.get(design_id)
            self._names.discard(old.name)
            new = old.with_name(_unique_name(name.strip(), self._names, self._suffixes))
            self._by_id[design_id] = new
            self._names.add(new.name)
            return new

    def remove(self, design_id: str) -> Design:
        """Take a design out of the store; returns it."""
        with self._lock:
            design = self.get(design_id)
            self._order.remove(design_id)
            del self._by_id[design_id]
            self._names.discard(design.name)
            return design

    def move(self, design_id: str, new_index: int) -> None:
        """Move a design to position ``new_index`` (0 ≤ new_index < len)."""
        with self._lock:
            self.get(design_id)
            if not 0 <= new_index < len(self._order):
                raise IndexError(f"position {new_index} is outside the store (0 to {len(self._order) - 1})")
            self._order.remove(design_id)
            self._order.insert(new_index, design_id)

    def clear(self) -> None:
        """Remove every design (the store stays bound to its model)."""
        with self._lock:
            self._order.clear()
            self._by_id.clear()
            self._names.clear()
            self._suffixes.clear()

    # -- serialisation ----------------------------------------------------------------------------
    def _snapshot(self) -> tuple[list[Design], tuple[int, int] | None]:
        with self._lock:
            return [self._by_id[i] for i in self._order], self.shape

    def _header(self, designs: list[Design], shape: tuple[int, int] | None) -> dict[str, Any]:
        return {"format": STORE_FORMAT, "version": STORE_VERSION, "model_id": self._model_id,
                "shape": list(shape) if shape else None,
                "designs": [{"id": d.id, "name": d.name, "provenance": d.provenance, "created": d.created}
                            for d in designs]}

    def to_npz_bytes(self) -> bytes:
        """The store as an npz archive: ``ws`` (N, num_ws, w_dim) float32 and ``meta`` (JSON string)."""
        designs, shape = self._snapshot()
        ws = stack_ws(designs) if designs else np.zeros((0, 0, 0), np.float32)
        meta = np.array([json.dumps(self._header(designs, shape), ensure_ascii=False)])
        buf = io.BytesIO()
        np.savez(buf, ws=ws.astype("<f4"), meta=meta)
        return buf.getvalue()

    def to_json(self) -> str:
        """The store as JSON text; each design's ws is base64 of little-endian float32 bytes."""
        designs, shape = self._snapshot()
        header = self._header(designs, shape)
        for entry, design in zip(header["designs"], designs):
            entry["ws"] = base64.b64encode(design.ws.astype("<f4").tobytes()).decode("ascii")
        return json.dumps(header, ensure_ascii=False)

    def save(self, path: str | Path) -> None:
        """Write the store to ``path``: JSON for a .json suffix, npz otherwise; atomic replace."""
        path = Path(path)
        data = self.to_json().encode("utf-8") if path.suffix.lower() == ".json" else self.to_npz_bytes()
        write_atomic(path, data)  # a crash mid-write never leaves a half-written store behind

    @classmethod
    def from_npz_bytes(cls, data: bytes, expected_model_id: str | None = None,
                       expected_shape: tuple[int, int] | None = None) -> LatentStore:
        """Read bytes written by ``to_npz_bytes`` (LatentFormatError/ModelMismatchError if unusable)."""
        from clothinggan.formats.archives import ArchiveError, check_zip

        try:
            check_zip(data, max_total=MAX_STORE_BYTES + 2 * MAX_STORE_BYTES, max_members=4)
        except ArchiveError as exc:
            raise LatentFormatError(f"This design store file is corrupt or refused: {exc}.") from None
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                if "meta" not in archive.files or "ws" not in archive.files:
                    raise LatentFormatError("This file is not a clothinggan design store (no 'meta'/'ws').")
                meta_arr = archive["meta"]
                ws = archive["ws"]
        except LatentFormatError:
            raise
        except (Exception, MemoryError) as exc:  # noqa: BLE001 - untrusted bytes: any failure means "corrupt"
            raise LatentFormatError(f"This design store file is corrupt or not an npz archive "
                                    f"({str(exc)[:200]}).") from None
        if meta_arr.dtype.kind != "U" or meta_arr.size != 1:
            raise LatentFormatError("This design store's metadata is not a single JSON string.")
        header = _parse_header(str(meta_arr.reshape(-1)[0]))
        _check_shape(header, expected_shape)
        if ws.dtype != np.dtype("<f4") and ws.dtype != np.dtype(">f4"):
            raise LatentFormatError(f"This design store's ws must be float32, found {ws.dtype}.")
        entries = header["designs"]
        expected = (len(entries), *header["shape"]) if header["shape"] else (0, 0, 0)
        if ws.shape != tuple(expected):
            raise LatentFormatError(f"This design store's ws has shape {ws.shape}, its metadata says {expected}.")
        return _build_store(header, [ws[i] for i in range(len(entries))], expected_model_id)

    @classmethod
    def from_json(cls, text: str | bytes, expected_model_id: str | None = None,
                  expected_shape: tuple[int, int] | None = None) -> LatentStore:
        """Read text written by ``to_json`` (LatentFormatError/ModelMismatchError if unusable)."""
        if isinstance(text, (bytes, bytearray)):
            try:
                text = bytes(text).decode("utf-8")
            except UnicodeDecodeError:
                raise LatentFormatError("This design store file is not UTF-8 JSON.") from None
        header = _parse_header(text)
        _check_shape(header, expected_shape)
        shape = tuple(header["shape"]) if header["shape"] else None
        arrays = []
        for i, entry in enumerate(header["designs"]):
            try:
                raw = base64.b64decode(entry["ws"], validate=True)
            except (KeyError, TypeError, ValueError):
                raise LatentFormatError(f"Design {i} of this store has no valid base64 'ws'.") from None
            if shape is None or len(raw) != 4 * shape[0] * shape[1]:
                raise LatentFormatError(f"Design {i} of this store has {len(raw)} bytes of ws, "
                                        f"which does not match shape {shape}.")
            arrays.append(np.frombuffer(raw, dtype="<f4").reshape(shape))
        return _build_store(header, arrays, expected_model_id)

    @classmethod
    def from_bytes(cls, data: bytes, expected_model_id: str | None = None,
                   expected_shape: tuple[int, int] | None = None) -> LatentStore:
        """Read either format (npz archives start with the zip magic "PK"), e.g. an uploaded file."""
        if bytes(data[:2]) == b"PK":
            return cls.from_npz_bytes(data, expected_model_id, expected_shape)
        return cls.from_json(data, expected_model_id, expected_shape)

    @classmethod
    def load(cls, path: str | Path, expected_model_id: str | None = None,
             expected_shape: tuple[int, int] | None = None) -> LatentStore:
        """Read a store file written by ``save`` (either format)."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise LatentFormatError(f"Could not read the design store {path}: {exc.strerror or exc}.") from None
        return cls.from_bytes(data, expected_model_id, expected_shape)

    def load_into(self, path_or_bytes: str | Path | bytes) -> list[Design]:
        """Merge a store file (path or raw bytes) into this store, all or nothing; returns those added.

        A file of another model, a malformed or corrupt file leaves this store exactly as it was.
        """
        shape = self.shape
        if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
            other = LatentStore.from_bytes(bytes(path_or_bytes), expected_model_id=self._model_id, expected_shape=shape)
        else:
            other = LatentStore.load(path_or_bytes, expected_model_id=self._model_id, expected_shape=shape)
        return self.merge(other)


def _parse_header(text: str) -> dict[str, Any]:
    """The store's JSON header, checked for format, version and field types."""
    if len(text) > 2 * MAX_STORE_BYTES:
        raise LatentFormatError(f"This design store is larger than {2 * MAX_STORE_BYTES // 2**20} MB.")
    try:
        header = json.loads(text)
    except RecursionError:
        raise LatentFormatError("This design store's metadata is nested too deeply to be a design store.") from None
    except ValueError:
        raise LatentFormatError("This design store's metadata is not valid JSON.") from None
    if not isinstance(header, dict) or header.get("format") != STORE_FORMAT:
        raise LatentFormatError("This file is not a clothinggan design store.")
    if header.get("version") != STORE_VERSION:
        raise LatentFormatError(f"This design store has format version {header.get('version')!r}; "
                                f"this clothinggan reads version {STORE_VERSION}.")
    designs, shape, model_id = header.get("designs"), header.get("shape"), header.get("model_id")
    if not isinstance(designs, list) or not all(isinstance(d, dict) for d in designs):
        raise LatentFormatError("This design store's design list is malformed.")
    if len(designs) > MAX_DESIGNS:
        raise LatentFormatError(f"This design store holds {len(designs)} designs; one file may hold at most "
                                f"{MAX_DESIGNS}.")
    if model_id is not None and not isinstance(model_id, str):
        raise LatentFormatError("This design store's model id is not a string.")
    if designs and not (isinstance(shape, list) and len(shape) == 2
                        and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)):
        raise LatentFormatError(f"This design store's shape {shape!r:.60} is not (num_ws, w_dim).")
    if designs and len(designs) * shape[0] * shape[1] * 4 > MAX_STORE_BYTES:
        raise LatentFormatError(f"This design store declares more than {MAX_STORE_BYTES // 2**20} MB of designs.")
    return header


def _check_shape(header: dict[str, Any], expected_shape: tuple[int, int] | None) -> None:
    """Designs of another shape than the current model's cannot be drawn: refuse them at import."""
    shape = header.get("shape")
    if expected_shape is not None and header["designs"] and tuple(shape) != tuple(expected_shape):
        raise LatentFormatError(f"These designs have shape {tuple(shape)}, but the loaded model's designs have "
                                f"shape {tuple(expected_shape)}: they belong to another model.")


def _build_store(header: dict[str, Any], arrays: list[np.ndarray], expected_model_id: str | None) -> LatentStore:
    """A new store from a parsed header and one ws array per design."""
    model_id = header.get("model_id")  # absent or null: designs of an unnamed model (an older or hand-made file)
    if expected_model_id is not None and model_id is not None and model_id != expected_model_id:
        raise ModelMismatchError(f"These designs belong to model {model_id!r}, not to the loaded model "
                                 f"{expected_model_id!r}.")
    store = LatentStore(model_id=model_id if model_id is not None else expected_model_id)
    seen: set[str] = set()
    for entry, ws in zip(header["designs"], arrays):
        try:
            design = Design(ws=ws, model_id=store.model_id or "", name=entry["name"],
                            provenance=entry.get("provenance", {}), id=entry["id"], created=entry["created"])
        except KeyError as exc:
            raise LatentFormatError(f"A design in this store has no {exc.args[0]!r} field.") from None
        if design.id in seen:
            raise LatentFormatError(f"This design store holds the id {design.id!r} twice.")
        seen.add(design.id)
        store.add(design)
    return store


def store_for(stores_by_model: dict[str, LatentStore], model_id: str) -> LatentStore:
    """The store of ``model_id`` in a per-model mapping (e.g. in session state), created when missing.

    The app keeps one store per model so switching models never mixes designs and switching back
    finds the earlier designs again.
    """
    store = stores_by_model.get(model_id)
    if store is None:
        store = stores_by_model[model_id] = LatentStore(model_id=model_id)
    return store

"""Hostile design files (issue 9, items 3 and 4): refused with a LatentFormatError in seconds, linear
in the number of designs, wrong shapes refused at import, and the store left as it was.
"""
from __future__ import annotations

import base64
import gc
import io
import json
import time
import zipfile

import numpy as np
import pytest

from clothinggan.errors import ClothingGANError, LatentFormatError
from clothinggan.designs import Design
from clothinggan.store import MAX_DESIGNS, STORE_FORMAT, LatentStore

MODEL = "m" * 16
SHAPE = (4, 8)


def store_json(n: int, shape=SHAPE, name=lambda i: f"d{i}", model_id=MODEL) -> str:
    raw = base64.b64encode(np.zeros(shape, "<f4").tobytes()).decode()
    designs = [{"id": f"{i:032x}", "name": name(i), "provenance": {}, "created": 0.0, "ws": raw} for i in range(n)]
    return json.dumps({"format": STORE_FORMAT, "version": 1, "model_id": model_id, "shape": list(shape),
                       "designs": designs})


def a_store() -> LatentStore:
    store = LatentStore(model_id=MODEL)
    store.add(Design(ws=np.ones(SHAPE, np.float32), model_id=MODEL, name="mine"))
    return store


def build_seconds(text: str, expected: int, repeats: int = 2) -> float:
    """Best wall time of ``LatentStore.from_json(text)``, with the cyclic GC paused while timing:
    in a long test session a full collection of everything earlier tests left alive can land in
    one run and swamp the cost being compared."""
    best = float("inf")
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            store = LatentStore.from_json(text)
            best = min(best, time.perf_counter() - start)
    finally:
        gc.enable()
    assert len(store) == expected
    return best


def test_building_a_store_is_linear() -> None:
    small, big = build_seconds(store_json(1000), 1000), build_seconds(store_json(8000), 8000)
    assert big < 2.0 and big < 20 * max(small, 0.01)  # 8× the designs, not 64× the time


def test_many_designs_of_one_name_stay_linear() -> None:
    """Building was O(n²) in designs of one name. Four times the designs must cost about four times
    the time, not sixteen (a ratio of two runs in this process, so a busy machine slows both)."""
    def seconds(n: int) -> float:
        text = store_json(n, name=lambda i: "same")
        assert len(set(LatentStore.from_json(text).names())) == n  # each got a name of its own
        return build_seconds(text, n)

    assert seconds(8000) / seconds(2000) < 9


def test_the_design_count_is_capped_with_a_clear_message() -> None:
    with pytest.raises(LatentFormatError, match=f"at most {MAX_DESIGNS}"):
        LatentStore.from_json(store_json(MAX_DESIGNS + 1, shape=(1, 1)))


def test_wrong_shape_designs_are_refused_at_import_into_an_empty_store() -> None:
    store = LatentStore(model_id=MODEL)
    data = store_json(3, shape=(10, 128), model_id=None).encode()
    with pytest.raises(LatentFormatError, match="another model"):
        LatentStore.from_bytes(data, expected_model_id=MODEL, expected_shape=SHAPE)
    assert len(store) == 0
    held = a_store()
    with pytest.raises(LatentFormatError):
        held.load_into(data)
    assert held.names() == ["mine"]


def test_deeply_nested_design_files_are_refused() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    store = a_store()
    for text in (deep, json.dumps({"format": STORE_FORMAT})[:-1] + ', "x": ' + deep + "}"):
        with pytest.raises(LatentFormatError):
            store.load_into(text.encode())
    assert store.names() == ["mine"]


def test_deep_provenance_is_refused() -> None:
    nested: dict = {}
    for _ in range(5000):
        nested = {"a": nested}
    with pytest.raises(LatentFormatError):
        Design(ws=np.zeros(SHAPE, np.float32), model_id=MODEL, provenance=nested)


def test_lone_surrogate_names_are_refused_at_import() -> None:
    store = a_store()
    with pytest.raises(LatentFormatError, match="Unicode"):
        store.load_into(store_json(1, name=lambda i: "bad \ud800").encode())
    with pytest.raises(LatentFormatError, match="Unicode"):
        Design(ws=np.zeros(SHAPE, np.float32), model_id=MODEL, provenance={"note": "\udfff"})
    assert store.names() == ["mine"]


def test_an_npz_bomb_is_refused_from_declared_sizes() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ws.npy", b"\0" * 400 * 2**20)
        archive.writestr("meta.npy", b"\0")
    start = time.perf_counter()
    store = a_store()
    with pytest.raises(LatentFormatError, match="zip bomb"):
        store.load_into(buf.getvalue())
    assert time.perf_counter() - start < 5.0  # refused from the declared sizes, not after inflating 400 MB
    assert store.names() == ["mine"]


def test_a_bit_flipped_npz_is_refused() -> None:
    data = bytearray(a_store().to_npz_bytes())
    data[len(data) // 3] ^= 0x01
    with pytest.raises(ClothingGANError):
        LatentStore.from_npz_bytes(bytes(data))


def test_a_good_store_still_round_trips() -> None:
    store = a_store()
    back = LatentStore.from_npz_bytes(store.to_npz_bytes(), expected_model_id=MODEL, expected_shape=SHAPE)
    assert list(back) == list(store)


def test_a_store_without_a_model_id_field_is_read_not_a_key_error():
    """Found by bench/fuzz_inputs.py: a bit flip in the "model_id" key made from_json raise KeyError."""
    import json as _json

    import numpy as _np

    from clothinggan.designs import Design as _Design
    from clothinggan.store import LatentStore as _Store

    store = _Store("m1", [_Design(ws=_np.zeros((2, 4), _np.float32), model_id="m1", name="a")])
    header = _json.loads(store.to_json())
    header["model_iD"] = header.pop("model_id")
    back = _Store.from_json(_json.dumps(header), expected_model_id="m1")
    assert back.model_id == "m1" and [d.name for d in back] == ["a"]

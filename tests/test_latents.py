"""Tests of Design and LatentStore: validation, naming, ordering, and lossless, all-or-nothing loading.

A design file that fails to load must leave the session's store untouched, so those paths are tested
one by one, and the round trip is property-tested on random stores.
"""
from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clothinggan.errors import LatentFormatError, ModelMismatchError
from clothinggan.designs import Design, describe_provenance, designs_from_seeds, stack_ws
from clothinggan.store import STORE_VERSION, LatentStore, store_for

NUM_WS, W_DIM = 6, 8


def ws(seed: int = 0, shape: tuple[int, int] = (NUM_WS, W_DIM)) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def design(seed: int = 0, model_id: str = "m1", name: str = "", **kw) -> Design:
    return Design(ws=ws(seed), model_id=model_id, name=name, **kw)


class FakeG:
    """The duck-typed generator surface latents.py needs, counting mapping calls."""

    fingerprint = "fake-model"
    num_ws, w_dim = NUM_WS, W_DIM

    def __init__(self) -> None:
        self.calls = 0

    def seeds_to_ws(self, seeds, psi=1.0):
        self.calls += 1
        w = np.stack([np.random.RandomState(s).randn(W_DIM) * psi for s in seeds]).astype(np.float32)
        return torch.from_numpy(w)[:, None].repeat(1, NUM_WS, 1)


# -- Design ---------------------------------------------------------------------------------------
def test_design_copies_input_and_is_read_only():
    arr = ws(1)
    d = Design(ws=arr, model_id="m1")
    arr[0, 0] = 123.0
    assert d.ws[0, 0] != 123.0
    assert d.ws.dtype == np.float32 and not d.ws.flags.writeable
    with pytest.raises(ValueError):
        d.ws[0, 0] = 1.0
    with pytest.raises(AttributeError):
        d.name = "other"  # type: ignore[misc]


def test_design_provenance_is_a_private_json_copy():
    prov = {"kind": "seed", "seed": np.int64(3), "psi": 0.7, "tags": ("a", "b")}
    d = design(provenance=prov)
    prov["seed"] = 99
    assert d.provenance == {"kind": "seed", "seed": 3, "psi": 0.7, "tags": ["a", "b"]}
    assert type(d.provenance["seed"]) is int


@pytest.mark.parametrize("bad, words", [
    (np.zeros((2, 3, 4), np.float32), "shape"),
    (np.zeros((5,), np.float32), "shape"),
    (np.zeros((0, 4), np.float32), "shape"),
    (np.array([[1.0, np.nan]], np.float32), "NaN"),
    (np.array([[1.0, np.inf]], np.float32), "NaN"),
    (np.array([[1e300]], np.float64), "too large"),
    (np.zeros((3, 4), np.int64), "floating"),
    (np.array([["a"]]), "floating"),
])
def test_design_rejects_malformed_ws(bad, words):
    with pytest.raises(LatentFormatError, match=words):
        Design(ws=bad, model_id="m1")


def test_design_rejects_bad_fields():
    with pytest.raises(LatentFormatError, match="JSON"):
        design(provenance={"x": object()})
    with pytest.raises(LatentFormatError, match="JSON"):
        design(provenance={"x": float("nan")})
    with pytest.raises(LatentFormatError, match="model_id"):
        Design(ws=ws(), model_id=3)  # type: ignore[arg-type]
    with pytest.raises(LatentFormatError, match="id"):
        design(id="")


def test_design_converts_float64_and_torch():
    d64 = Design(ws=ws(2).astype(np.float64), model_id="m1")
    dt = Design(ws=torch.from_numpy(ws(2)), model_id="m1")
    assert d64.ws.dtype == dt.ws.dtype == np.float32
    np.testing.assert_array_equal(d64.ws, ws(2))
    np.testing.assert_array_equal(dt.ws, ws(2))


def test_designs_are_values():
    d = design(3, name="a", provenance={"kind": "seed", "seed": 3})
    renamed = d.with_name("b")
    assert renamed.name == "b" and d.name == "a"
    assert renamed.id == d.id and renamed != d
    assert renamed.with_name("a") == d and hash(renamed) == hash(d)
    assert design(3) != design(3)  # two designs with equal codes are still two designs (ids differ)
    assert len({d, d.with_name("a")}) == 1


def test_from_seed_and_batched_seeds():
    G = FakeG()
    ds = designs_from_seeds(G, [0, 5, 7], psi=0.5)
    assert G.calls == 1  # one batched call, not one per seed
    assert [d.provenance for d in ds] == [{"kind": "seed", "seed": s, "psi": 0.5} for s in (0, 5, 7)]
    assert all(d.model_id == "fake-model" and d.ws.shape == (NUM_WS, W_DIM) for d in ds)
    one = Design.from_seed(G, 5, 0.5, name="five")
    assert one.name == "five"
    np.testing.assert_array_equal(one.ws, ds[1].ws)
    assert one.describe() == "seed 5, truncation 0.5"


def test_from_seed_with_real_tiny_generator(tiny_generator):
    d = Design.from_seed(tiny_generator, 42, 0.7)
    assert d.model_id == tiny_generator.fingerprint
    assert d.ws.shape == (tiny_generator.num_ws, tiny_generator.w_dim)
    np.testing.assert_array_equal(d.ws, tiny_generator.seeds_to_ws([42], 0.7)[0].numpy())
    img = tiny_generator.synthesis(stack_ws([d]))
    assert img.shape == (1, 3, tiny_generator.resolution, tiny_generator.resolution)


@pytest.mark.parametrize("prov, text", [
    ({"kind": "seed", "seed": 42, "psi": 0.7}, "seed 42, truncation 0.7"),
    ({"kind": "mix", "a_name": "Coat", "b_name": "Dress", "weights": {"structure": 0.0, "style": 1.0}},
     "mix of Coat (structure) and Dress (style)"),
    ({"kind": "mix", "weights": {"structure": 0.25, "style": 1.0}}, "mix of A and B (structure 25% B, style 100% B)"),
    ({"kind": "edit", "source": "x", "edits": [{"name": "sleeve", "strength": 2.0}]}, "edit of a design: sleeve +2"),
    ({"kind": "inverted", "filename": "shirt.png"}, "inverted from upload shirt.png"),
    ({"kind": "seed"}, "imported design"),
    ({}, "imported design"),
    ({"kind": "mix", "weights": "garbage"}, "imported design"),
])
def test_describe(prov, text):
    assert describe_provenance(prov) == text


# -- LatentStore ----------------------------------------------------------------------------------
def test_store_names_order_and_editing():
    store = LatentStore()
    a = store.add(design(0))
    b = store.add(design(1, name="Coat"))
    c = store.add(design(2, name="Coat"))
    d = store.add(design(3, name="  "))
    assert store.names() == ["Design 1", "Coat", "Coat (2)", "Design 4"]
    assert store.model_id == "m1" and len(store) == 4 and store.ids() == [a.id, b.id, c.id, d.id]
    assert a.id in store and b in store and "nope" not in store
    assert store.add(b) == b and len(store) == 4  # re-adding is a no-op

    assert store.rename(c.id, "Coat").name == "Coat (2)"
    assert store.rename(c.id, "Dress").name == "Dress"
    assert store.get(c.id).name == "Dress" and store.get(c.id).id == c.id
    with pytest.raises(ValueError):
        store.rename(c.id, " ")

    store.move(d.id, 0)
    assert store.ids() == [d.id, a.id, b.id, c.id]
    store.move(d.id, 3)
    assert store.ids() == [a.id, b.id, c.id, d.id]
    with pytest.raises(IndexError):
        store.move(d.id, 4)

    assert store.remove(b.id).id == b.id
    assert [x.id for x in store] == [a.id, c.id, d.id]
    with pytest.raises(KeyError):
        store.get(b.id)
    with pytest.raises(KeyError):
        store.remove(b.id)
    store.clear()
    assert len(store) == 0 and store.model_id == "m1"


def test_store_names_stay_within_the_limit():
    """A "(2)" after a name at the limit, and a rename past it: refused or cut, never a broken store."""
    from clothinggan.designs import MAX_NAME_CHARS

    store = LatentStore()
    long = "n" * MAX_NAME_CHARS
    first, second, third = (store.add(design(i, name=long)) for i in range(3))
    assert first.name == long
    assert second.name.endswith("… (2)") and third.name.endswith("… (3)")
    assert all(len(d.name) <= MAX_NAME_CHARS for d in store)
    assert store.rename(first.id, long).name == long  # its own name is free to take again
    with pytest.raises(LatentFormatError, match="limited to"):
        store.rename(first.id, "x" * (MAX_NAME_CHARS + 1))
    assert store.get(first.id).name == long and store.add(design(9, name=long)).name.endswith("… (4)")


def test_store_refuses_other_model_and_shape():
    store = LatentStore(model_id="m1")
    store.add(design(0))
    with pytest.raises(ModelMismatchError, match="belongs to model 'm2'"):
        store.add(design(1, model_id="m2"))
    with pytest.raises(LatentFormatError, match="shape"):
        store.add(Design(ws=ws(1, (NUM_WS + 1, W_DIM)), model_id="m1"))
    assert len(store) == 1


def test_merge_is_all_or_nothing():
    store = LatentStore(designs=[design(0), design(1)])
    before = list(store)
    with pytest.raises(ModelMismatchError):
        store.merge([design(2), design(3, model_id="m2")])
    assert list(store) == before
    added = store.merge([design(4, name="Design 1"), before[0]])
    assert [d.name for d in added] == ["Design 1 (2)"] and len(store) == 3


def test_store_for_keeps_one_store_per_model():
    stores: dict[str, LatentStore] = {}
    s1 = store_for(stores, "m1")
    s1.add(design(0))
    assert store_for(stores, "m2") is not s1 and store_for(stores, "m1") is s1 and len(s1) == 1
    assert store_for(stores, "m2").model_id == "m2"


# -- serialisation --------------------------------------------------------------------------------
def full_store() -> LatentStore:
    store = LatentStore(model_id="m1")
    store.add(design(0, name="Kleid ✂", provenance={"kind": "seed", "seed": 0, "psi": 0.7}))
    store.add(design(1, provenance={"kind": "mix", "a": "x", "b": "y", "weights": {"style": 0.5}}))
    store.add(design(2, name="Coat"))
    store.move(store.ids()[2], 0)
    return store


@pytest.mark.parametrize("fmt", ["npz", "json"])
def test_round_trip_exact(fmt, tmp_path):
    store = full_store()
    path = tmp_path / f"designs.{fmt}"
    store.save(path)
    again = LatentStore.load(path, expected_model_id="m1")
    assert list(again) == list(store) and again.model_id == "m1"
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    raw = path.read_bytes()
    assert raw[:2] == (b"PK" if fmt == "npz" else b'{"')
    if fmt == "npz":  # no pickles anywhere: numpy's safe loader reads every array
        with np.load(io.BytesIO(raw), allow_pickle=False) as archive:
            assert archive["ws"].dtype == np.float32 and archive["meta"].dtype.kind == "U"


def test_empty_store_round_trip():
    for store in (LatentStore(), LatentStore(model_id="m9")):
        for again in (LatentStore.from_npz_bytes(store.to_npz_bytes()), LatentStore.from_json(store.to_json())):
            assert len(again) == 0 and again.model_id == store.model_id


def rewrite_npz(data: bytes, *, ws=None, meta=None) -> bytes:
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        arrays = {"ws": archive["ws"], "meta": archive["meta"]}
    header = json.loads(str(arrays["meta"][0]))
    if meta is not None:
        meta(header)
        arrays["meta"] = np.array([json.dumps(header)])
    if ws is not None:
        arrays["ws"] = ws(arrays["ws"])
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def with_nan(a):
    a = a.copy()
    a[1, 2, 3] = np.nan
    return a


def bad_files() -> dict[str, tuple[bytes, type[Exception], str]]:
    good = full_store()
    other = LatentStore(model_id="m2", designs=[design(9, model_id="m2")])
    npz = good.to_npz_bytes()
    js = json.loads(good.to_json())
    js_nan = json.loads(good.to_json())
    nan_ws = ws(0)
    nan_ws[0, 0] = np.nan
    js_nan["designs"][1]["ws"] = base64.b64encode(nan_ws.tobytes()).decode()
    js_short = json.loads(good.to_json())
    js_short["designs"][0]["ws"] = js_short["designs"][0]["ws"][:-8]
    return {
        "other model npz": (other.to_npz_bytes(), ModelMismatchError, "m2"),
        "other model json": (other.to_json().encode(), ModelMismatchError, "m2"),
        "wrong shape": (rewrite_npz(npz, ws=lambda a: a[:, :-1]), LatentFormatError, "shape"),
        "float64 ws": (rewrite_npz(npz, ws=lambda a: a.astype(np.float64)), LatentFormatError, "float32"),
        "NaN npz": (rewrite_npz(npz, ws=with_nan), LatentFormatError, "NaN"),
        "NaN json": (json.dumps(js_nan).encode(), LatentFormatError, "NaN"),
        "short json ws": (json.dumps(js_short).encode(), LatentFormatError, "bytes"),
        "truncated npz": (npz[: len(npz) // 2], LatentFormatError, "corrupt"),
        "truncated json": (good.to_json().encode()[:50], LatentFormatError, "JSON"),
        "garbage": (b"PK\x03\x04 garbage", LatentFormatError, "corrupt"),
        "not utf8": (b"\xff\xfe\x00", LatentFormatError, "UTF-8"),
        "unknown version": (rewrite_npz(npz, meta=lambda h: h.update(version=STORE_VERSION + 1)),
                            LatentFormatError, "version"),
        "unknown version json": (json.dumps({**js, "version": 99}).encode(), LatentFormatError, "version"),
        "not a store": (json.dumps({"hello": 1}).encode(), LatentFormatError, "not a clothinggan"),
        "duplicate ids": (rewrite_npz(npz, meta=lambda h: h["designs"][1].update(id=h["designs"][0]["id"])),
                          LatentFormatError, "twice"),
        "missing name": (rewrite_npz(npz, meta=lambda h: h["designs"][0].pop("name")), LatentFormatError, "name"),
        "pickled ws": (_pickled_npz(npz), LatentFormatError, "corrupt"),
    }


def _pickled_npz(npz: bytes) -> bytes:
    with np.load(io.BytesIO(npz), allow_pickle=False) as archive:
        meta = archive["meta"]
    buf = io.BytesIO()
    np.savez(buf, ws=np.array([object()], dtype=object), meta=meta)
    return buf.getvalue()


@pytest.mark.parametrize("case", sorted(bad_files()))
def test_failed_load_leaves_store_unchanged(case, tmp_path):
    data, error, words = bad_files()[case]
    store = LatentStore(model_id="m1", designs=[design(20, name="keep me"), design(21)])
    before_json = store.to_json()
    before = list(store)
    with pytest.raises(error, match=words):
        store.load_into(data)
    path = tmp_path / "bad.npz"
    path.write_bytes(data)
    with pytest.raises(error):
        store.load_into(path)
    assert list(store) == before and store.to_json() == before_json


def test_load_into_merges_and_checks_model(tmp_path):
    store = LatentStore(designs=[design(30)])
    added = store.load_into(full_store().to_npz_bytes())
    assert len(added) == 3 and len(store) == 4
    assert store.load_into(full_store().to_json().encode()) != []  # new ids each time: all added
    with pytest.raises(LatentFormatError, match="Could not read"):
        store.load_into(tmp_path / "missing.npz")


# -- property: random stores round-trip exactly ---------------------------------------------------
finite_f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
json_leaf = st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.floats(allow_nan=False,
                                                                                allow_infinity=False) | st.text()
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)


@st.composite
def stores(draw) -> LatentStore:
    num_ws = draw(st.integers(1, 5))
    w_dim = draw(st.integers(1, 6))
    model_id = draw(st.text(min_size=1, max_size=12))
    store = LatentStore(model_id=model_id)
    for _ in range(draw(st.integers(0, 4))):
        values = draw(st.lists(finite_f32, min_size=num_ws * w_dim, max_size=num_ws * w_dim))
        store.add(Design(ws=np.array(values, np.float32).reshape(num_ws, w_dim), model_id=model_id,
                         name=draw(st.text(max_size=10)),
                         provenance=draw(st.dictionaries(st.text(max_size=6), json_value, max_size=3)),
                         created=draw(st.floats(0, 2e9))))
    if len(store) > 1:
        store.move(store.ids()[-1], draw(st.integers(0, len(store) - 1)))
    return store


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stores())
def test_random_stores_round_trip_exactly(store):
    for again in (LatentStore.from_npz_bytes(store.to_npz_bytes(), expected_model_id=store.model_id),
                  LatentStore.from_json(store.to_json(), expected_model_id=store.model_id),
                  LatentStore.from_bytes(store.to_json().encode())):
        assert again.model_id == store.model_id
        assert again.ids() == store.ids() and again.names() == store.names()
        for x, y in zip(again, store):
            assert x == y
            assert x.ws.tobytes() == y.ws.tobytes()  # bit-exact, including -0.0

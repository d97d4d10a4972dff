"""GANSpace components and named directions: PCA recovery, caching, files, edit arithmetic."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from clothinggan import testing
from clothinggan.components import (Components, compute_components, import_ganspace, load_components,
                                    save_components, shipped_components)
from clothinggan.directions import (NamedDirection, apply_edits, component_strip, delete_user_direction,
                                    direction_from_component, load_directions, project, read_directions_file,
                                    save_user_direction, user_directions_path, write_directions_file)
from clothinggan.errors import LatentFormatError, ModelMismatchError
from clothinggan.generator import Generator

GANSPACE_NAME = "ganspace/stylegan2-lookbook_style_ipca_c80_n300000_w.npz"
W_DIM, NUM_WS = 32, 6


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("CLOTHINGGAN_CACHE", str(cache))
    return cache


@pytest.fixture(scope="module")
def G() -> Generator:
    return testing.tiny_generator(0)


def dominant_direction() -> np.ndarray:
    u = np.random.RandomState(7).randn(W_DIM)
    return (u / np.linalg.norm(u)).astype(np.float32)


def anisotropic_sampler(calls: list[int]):
    """W = 3 + N(0, 1) everywhere, plus N(0, 5²) along one known direction."""
    u = dominant_direction()

    def sample_ws(n: int, seed: int = 0, psi: float = 1.0, rng: str = "randomstate") -> torch.Tensor:
        calls.append(n)
        rng = np.random.RandomState(seed)
        w = 3.0 + rng.randn(n, W_DIM) + 5.0 * rng.randn(n, 1) * u
        return torch.from_numpy(w.astype(np.float32))

    return sample_ws


def tiny_components(k: int = 4, model_id: str = "") -> Components:
    comps = np.linalg.qr(np.random.RandomState(1).randn(W_DIM, k))[0].T
    return Components(components=comps, mean=np.full(W_DIM, 0.5), stdev=np.array([4.0, 3.0, 2.0, 1.0][:k]),
                      var_ratio=np.array([0.4, 0.3, 0.2, 0.1][:k]), model_id=model_id)


# -- PCA -------------------------------------------------------------------------------------------
def test_pca_recovers_a_known_dominant_direction(G, monkeypatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(G, "sample_ws", anisotropic_sampler(calls))
    seen: list[float] = []
    c = compute_components(G, n_samples=30_000, n_components=8, seed=3, progress=seen.append)
    assert c.components.shape == (8, W_DIM) and c.components.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(c.components, axis=1), 1, atol=1e-5)
    assert abs(c.components[0] @ dominant_direction()) > 0.999
    assert c.stdev[0] == pytest.approx(np.sqrt(26), rel=0.03)      # 5² along u plus the isotropic 1
    assert c.var_ratio[0] == pytest.approx(26 / (25 + W_DIM), abs=0.02)
    assert np.all(np.diff(c.var_ratio) <= 0) and np.all(np.diff(c.stdev) <= 0)
    np.testing.assert_allclose(c.mean, 3.0, atol=0.1)
    # sign convention: each row's largest-magnitude entry is positive
    rows = np.arange(8)
    assert (c.components[rows, np.abs(c.components).argmax(axis=1)] > 0).all()
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) >= 3
    assert sum(calls) == 30_000 and (c.model_id, c.n_samples, c.seed, c.source) == (G.fingerprint, 30_000, 3, "pca")


def test_pca_is_deterministic_and_cached(G, monkeypatch, private_cache) -> None:
    calls: list[int] = []
    monkeypatch.setattr(G, "sample_ws", anisotropic_sampler(calls))
    first = compute_components(G, n_samples=4_000, n_components=5, seed=1)
    path = private_cache / "components" / f"{G.fingerprint}_n4000_s1_k5.npz"
    assert path.is_file()
    sampled = sum(calls)
    second = compute_components(G, n_samples=4_000, n_components=5, seed=1)
    assert sum(calls) == sampled  # a cache hit samples nothing
    np.testing.assert_array_equal(first.components, second.components)
    fresh = compute_components(G, n_samples=4_000, n_components=5, seed=1, use_cache=False)
    np.testing.assert_allclose(fresh.components, first.components, atol=1e-6)
    path.write_bytes(b"truncated")  # a broken cache file is recomputed, not an error
    assert compute_components(G, n_samples=4_000, n_components=5, seed=1).n_components == 5


def test_streamed_pca_equals_exact_pca_of_the_same_samples(G) -> None:
    """One streaming pass (float64 covariance + eigh) gives scikit-learn's exact PCA of all samples."""
    from clothinggan.components import pca, sample_w

    n, k = 20_005, 24
    seen: list[float] = []
    streamed = compute_components(G, n_samples=n, n_components=k, seed=5, use_cache=False, progress=seen.append)
    exact = pca(sample_w(G, n, seed=5).astype(np.float64), k, model_id=G.fingerprint, seed=5)
    cos = np.abs(np.sum(streamed.components[:20] * exact.components[:20], axis=1))
    assert cos.min() >= 0.9999, cos
    np.testing.assert_allclose(streamed.var_ratio, exact.var_ratio, atol=1e-6, rtol=0)
    np.testing.assert_allclose(streamed.stdev, exact.stdev, rtol=1e-5)
    np.testing.assert_allclose(streamed.mean, exact.mean, atol=1e-5)
    assert streamed.n_samples == n and seen == sorted(seen) and seen[-1] == 1.0 and len(seen) >= 3


def test_covariance_accumulator_matches_two_pass_covariance_far_from_the_origin() -> None:
    """Sums around a shift: a mean of 1e4 does not swamp a variance of 1e-2."""
    from clothinggan.components import CovarianceAccumulator

    rng = np.random.RandomState(0)
    x = 1e4 + 0.1 * rng.randn(5_003, 6) @ rng.randn(6, 6)
    acc = CovarianceAccumulator(6)
    for chunk in np.array_split(x, 7):
        acc.add(torch.from_numpy(chunk))
    acc.add(np.empty((0, 6)))
    np.testing.assert_allclose(acc.covariance(), np.cov(x, rowvar=False), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(acc.mean(), x.mean(axis=0), rtol=1e-12)
    with pytest.raises(ValueError):
        acc.add(np.zeros((3, 5)))


def test_pca_samples_come_in_fixed_batches(G, monkeypatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(G, "sample_ws", anisotropic_sampler(calls))
    compute_components(G, n_samples=20_005, n_components=8, use_cache=False)
    assert calls == [10_000, 10_005]  # the 5-sample tail joins the last batch


def test_sample_ws_rngs_are_reproducible_and_distinct(G) -> None:
    legacy = G.sample_ws(50, seed=4)
    fast = G.sample_ws(50, seed=4, rng="pcg64")
    torch.testing.assert_close(G.sample_ws(50, seed=4, rng="pcg64"), fast, rtol=0, atol=0)
    z = np.random.RandomState(4).randn(50, G.z_dim).astype(np.float32)
    torch.testing.assert_close(legacy, G.mapping(z), rtol=0, atol=0)  # the legacy stream is unchanged
    assert not torch.equal(legacy, fast)
    with pytest.raises(ValueError):
        G.sample_ws(5, rng="mt19937")


def test_pca_on_the_real_tiny_generator_defaults_to_w_dim_components(G) -> None:
    c = compute_components(G, n_samples=2_000)
    assert c.components.shape == (W_DIM, W_DIM)  # min(64, w_dim)
    with pytest.raises(ValueError):
        compute_components(G, n_samples=2_000, n_components=W_DIM + 1)


def test_components_file_round_trip_and_refusals(tmp_path) -> None:
    c = tiny_components(model_id="abc")
    path = save_components(c, tmp_path / "c.npz")
    back = load_components(path)
    np.testing.assert_array_equal(back.components, c.components)
    assert (back.model_id, back.source, back.n_samples) == ("abc", "pca", 0)
    assert not back.components.flags.writeable
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    np.savez(tmp_path / "pickled.npz", components=np.array([{"x": 1}], dtype=object))
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    for name in ("junk.npz", "pickled.npz", "other.npz", "missing.npz"):
        with pytest.raises(LatentFormatError):
            load_components(tmp_path / name)


def test_shipped_components_match_by_fingerprint(G, tmp_path) -> None:
    save_components(tiny_components(model_id="someone-else"), tmp_path / "other.components.npz")
    assert shipped_components(G, models_dir=tmp_path) is None
    save_components(tiny_components(model_id=G.fingerprint), tmp_path / "fashion64.components.npz")
    assert shipped_components(G, models_dir=tmp_path).model_id == G.fingerprint


# -- GANSpace files ------------------------------------------------------------------------------
def test_import_ganspace_file_of_clothinggan(fixtures_dir: Path) -> None:
    path = fixtures_dir / GANSPACE_NAME
    c = import_ganspace(path)
    raw = np.load(path)
    assert c.components.shape == (80, 512) and c.mean.shape == (512,)
    np.testing.assert_allclose(np.linalg.norm(c.components, axis=1), 1, atol=1e-4)
    assert np.all(np.diff(c.var_ratio) <= 0)
    np.testing.assert_array_equal(c.stdev, raw["lat_stdev"])
    np.testing.assert_array_equal(c.components, raw["lat_comp"][:, 0])
    assert (c.source, c.n_samples) == ("ganspace-file", 300_000)
    d = direction_from_component(c, 0, "Sleeve & Size")
    assert (d.unit, d.strength_range, d.scale) == ("raw", (-20.0, 20.0), 1.0)
    assert load_components(path).n_components == 80  # recognised by its keys


def test_import_ganspace_refuses_malformed_files(tmp_path) -> None:
    comp = np.linalg.qr(np.random.RandomState(0).randn(8, 3))[0].T[:, None, :].astype(np.float32)
    good = dict(lat_comp=comp, lat_mean=np.zeros((1, 8)), lat_stdev=np.ones(3), var_ratio=np.full(3, 0.1))
    bad = {"missing": {k: v for k, v in good.items() if k != "lat_comp"},
           "shape": {**good, "lat_comp": np.zeros((3, 2, 2, 8))},
           "norms": {**good, "lat_comp": comp * 2},
           "nan": {**good, "lat_stdev": np.array([1, np.nan, 1])},
           "mean": {**good, "lat_mean": np.zeros((1, 5))}}
    np.savez(tmp_path / "good.npz", **good)
    assert import_ganspace(tmp_path / "good.npz").components.shape == (3, 8)
    for name, arrays in bad.items():
        np.savez(tmp_path / f"{name}.npz", **arrays)
        with pytest.raises(LatentFormatError):
            import_ganspace(tmp_path / f"{name}.npz")


# -- applying edits ------------------------------------------------------------------------------
def test_apply_edits_respects_layers_sigma_and_adds_up() -> None:
    ws = np.random.RandomState(0).randn(NUM_WS, W_DIM).astype(np.float32)
    before = ws.copy()
    a = NamedDirection("a", np.eye(W_DIM)[0], layer_start=1, layer_end=3, unit="sigma", sigma=2.0)
    b = NamedDirection("b", np.eye(W_DIM)[1], unit="raw", sigma=7.0)  # all ws, sigma ignored
    out = apply_edits(ws, [(a, 1.5), (b, -4.0), (a, 0.5)])
    np.testing.assert_array_equal(ws, before)  # input untouched
    delta = out - ws
    np.testing.assert_allclose(delta[1:3, 0], 2.0 * 2.0)  # (1.5 + 0.5) * sigma 2
    np.testing.assert_allclose(delta[[0, 3, 4, 5], 0], 0)
    np.testing.assert_allclose(delta[:, 1], -4.0)
    np.testing.assert_allclose(delta[:, 2:], 0)
    assert out.dtype == np.float32 and apply_edits(ws, []) is not ws


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, NUM_WS - 1), st.integers(1, NUM_WS), st.floats(-20, 20),
                          st.sampled_from(["sigma", "raw"])), max_size=4))
def test_apply_edits_is_a_sum_of_independent_steps(specs) -> None:
    ws = np.random.RandomState(4).randn(NUM_WS, W_DIM).astype(np.float32)
    vec = np.random.RandomState(5).randn(W_DIM)
    edits = [(NamedDirection(f"d{i}", vec, s, max(s + 1, e), unit=u, sigma=1.5), v)
             for i, (s, e, v, u) in enumerate(specs)]
    together = apply_edits(ws, edits)
    one_by_one = ws
    for edit in reversed(edits):  # order does not matter
        one_by_one = apply_edits(one_by_one, [edit])
    np.testing.assert_allclose(together, one_by_one, atol=1e-4)


def test_apply_edits_on_batches_and_tensors() -> None:
    ws = torch.randn(3, NUM_WS, W_DIM)
    d = NamedDirection("d", np.ones(W_DIM), layer_start=4, unit="raw")
    out = apply_edits(ws, [(d, 1.0)])
    assert out.shape == (3, NUM_WS, W_DIM)
    np.testing.assert_allclose(out[:, 4:] - ws[:, 4:].numpy(), 1, atol=1e-6)
    np.testing.assert_array_equal(out[:, :4], ws[:, :4].numpy())


def test_apply_edits_refuses_directions_of_another_shape() -> None:
    ws = np.zeros((NUM_WS, W_DIM), np.float32)
    with pytest.raises(ValueError, match="values"):
        apply_edits(ws, [(NamedDirection("short", np.ones(5)), 1.0)])
    with pytest.raises(ValueError, match="outside"):
        apply_edits(ws, [(NamedDirection("deep", np.ones(W_DIM), 2, NUM_WS + 1), 1.0)])


@pytest.mark.parametrize("kwargs", [dict(name=""), dict(unit="pixels"), dict(sigma=0.0), dict(sigma=float("nan")),
                                    dict(layer_start=3, layer_end=3), dict(layer_start=-1), dict(source="web"),
                                    dict(vector=np.array([1.0, np.inf]))])
def test_named_direction_validates_its_fields(kwargs) -> None:
    fields = dict(name="x", vector=np.ones(W_DIM))
    fields.update(kwargs)
    with pytest.raises(ValueError):
        NamedDirection(**fields)


def test_component_strip_walks_minus_to_plus_k_sigma(G) -> None:
    comps = tiny_components(model_id=G.fingerprint)
    base = np.random.RandomState(2).randn(NUM_WS, W_DIM).astype(np.float32)
    strip = component_strip(G, base, comps, 1, k_sigma=3, steps=7, layer_start=2, layer_end=5)
    assert strip.shape == (7, NUM_WS, W_DIM)
    np.testing.assert_allclose(strip[3], base, atol=1e-6)
    np.testing.assert_allclose(strip[-1, 2:5] - base[2:5], np.broadcast_to(3 * 3.0 * comps.components[1], (3, W_DIM)),
                               atol=1e-5)
    np.testing.assert_allclose(strip[0, 2:5] - base[2:5], -(strip[-1, 2:5] - base[2:5]), atol=1e-5)
    np.testing.assert_array_equal(strip[:, [0, 1, 5]], np.broadcast_to(base[[0, 1, 5]], (7, 3, W_DIM)))
    with pytest.raises(ModelMismatchError):
        component_strip(G, base, tiny_components(model_id="other"), 1)


def test_project_gives_coordinates_on_components() -> None:
    comps = tiny_components()
    w = comps.mean + 2 * comps.stdev[0] * comps.components[0] - 1 * comps.stdev[2] * comps.components[2]
    np.testing.assert_allclose(project(w, comps, in_sigma=True)[0], [2, 0, -1, 0], atol=1e-5)
    wplus = np.broadcast_to(w, (2, NUM_WS, W_DIM))
    np.testing.assert_allclose(project(wplus, comps)[:, 0], 2 * 4.0, atol=1e-4)


def test_direction_from_component_defaults() -> None:
    d = direction_from_component(tiny_components(), 2, "Collar")
    assert (d.unit, d.sigma, d.component, d.layers(NUM_WS), d.source) == ("sigma", 2.0, 2, (0, NUM_WS), "model")
    with pytest.raises(ValueError):
        direction_from_component(tiny_components(), 9, "nope")


def test_edit_design_records_provenance(G) -> None:
    latents = pytest.importorskip("clothinggan.latents")
    design = latents.Design.from_seed(G, 3, 0.7)
    d = NamedDirection("Sleeve", np.ones(W_DIM), 0, 2, unit="raw")
    edited = __import__("clothinggan.directions", fromlist=["edit_design"]).edit_design(design, [(d, 2.0)])
    np.testing.assert_allclose(edited.ws[:2] - design.ws[:2], 2.0, atol=1e-6)
    assert edited.provenance == {"kind": "edit", "source": design.id, "source_name": design.name,
                                 "edits": [{"name": "Sleeve", "strength": 2.0, "layers": [0, 2]}]}
    # Issue 10: the source was written as "source" but read as "source_name": every edit said "a design".
    assert edited.describe() == f"edit of {design.name}: Sleeve +2"
    assert edited.model_id == design.model_id and edited.id != design.id


def test_an_edits_automatic_name_stays_a_valid_name(G) -> None:
    """Ten sliders on a long-named design used to make a name past the limit: a traceback in the app."""
    from clothinggan.designs import MAX_NAME_CHARS
    from clothinggan.directions import edit_design

    latents = pytest.importorskip("clothinggan.latents")
    design = latents.Design.from_seed(G, 3, 0.7).with_name("x" * MAX_NAME_CHARS)
    edits = [(NamedDirection(f"Direction number {i}", np.ones(W_DIM), unit="raw"), 0.3) for i in range(10)]
    edited = edit_design(design, edits)
    assert len(edited.name) == MAX_NAME_CHARS and edited.name.endswith("…")
    assert len(edited.provenance["edits"]) == 10  # the record keeps every edit
    assert edit_design(design, edits[:1], name="short").name == "short"


def test_user_direction_names_are_short_and_unique_regardless_of_case(G, tmp_path) -> None:
    from clothinggan.directions import MAX_DIRECTION_NAME_CHARS

    write_directions_file(tmp_path / "fashion64.directions.json", [NamedDirection("Darker", np.ones(W_DIM))],
                          G.fingerprint, W_DIM, NUM_WS)
    with pytest.raises(ValueError, match="ships a direction named 'Darker'"):
        save_user_direction(G, NamedDirection("darker", np.ones(W_DIM)), models_dir=tmp_path)
    save_user_direction(G, NamedDirection("Hem", np.ones(W_DIM)), models_dir=tmp_path)
    with pytest.raises(ValueError, match="'Hem' already exists"):
        save_user_direction(G, NamedDirection("HEM", np.ones(W_DIM)), models_dir=tmp_path)
    save_user_direction(G, NamedDirection("HEM", -np.ones(W_DIM)), overwrite=True, models_dir=tmp_path)
    assert [d.name for d in load_directions(G, models_dir=tmp_path)] == ["Darker", "HEM"]  # replaced, not added
    with pytest.raises(ValueError, match="limited to"):
        save_user_direction(G, NamedDirection("x" * (MAX_DIRECTION_NAME_CHARS + 1), np.ones(W_DIM)),
                            models_dir=tmp_path)
    assert len(load_directions(G, models_dir=tmp_path)) == 2


# -- JSON files ----------------------------------------------------------------------------------
def test_user_directions_round_trip_through_json(G) -> None:
    d1 = direction_from_component(tiny_components(), 0, "Sleeve length", 0, 4, default_strength=1.0, source="user")
    d2 = NamedDirection("Darker", np.random.RandomState(3).randn(W_DIM), unit="raw", description="less light")
    save_user_direction(G, d1)
    save_user_direction(G, d2)
    loaded = load_directions(G)
    assert [d.name for d in loaded] == ["Sleeve length", "Darker"]
    np.testing.assert_array_equal(loaded[1].vector, d2.vector)  # exact float32 round trip
    assert loaded == [d1, d2] and len({*loaded, d1}) == 2
    doc = json.loads(user_directions_path(G).read_text())  # plain JSON, no pickles
    assert doc["model_id"] == G.fingerprint and len(doc["directions"]) == 2
    with pytest.raises(ValueError, match="already exists"):
        save_user_direction(G, d2)
    save_user_direction(G, NamedDirection("Darker", np.ones(W_DIM)), overwrite=True)
    assert load_directions(G)[1].vector[0] == 1.0
    delete_user_direction(G, "Darker")
    assert [d.name for d in load_directions(G)] == ["Sleeve length"]
    with pytest.raises(ValueError):
        delete_user_direction(G, "Darker")
    with pytest.raises(ValueError):
        save_user_direction(G, NamedDirection("wrong size", np.ones(W_DIM + 1)))


def test_shipped_directions_come_first_and_names_stay_unique(G, tmp_path) -> None:
    shipped = [NamedDirection("Coat", np.ones(W_DIM), source="model")]
    write_directions_file(tmp_path / "fashion64.directions.json", shipped, G.fingerprint, W_DIM, NUM_WS)
    write_directions_file(tmp_path / "else.directions.json", [NamedDirection("X", np.ones(W_DIM))], "other", W_DIM,
                          NUM_WS)
    save_user_direction(G, NamedDirection("Mine", np.ones(W_DIM)), models_dir=tmp_path)
    loaded = load_directions(G, models_dir=tmp_path)
    assert [(d.name, d.source) for d in loaded] == [("Coat", "model"), ("Mine", "user")]
    with pytest.raises(ValueError, match="ships"):
        save_user_direction(G, NamedDirection("Coat", np.ones(W_DIM)), models_dir=tmp_path)
    with pytest.raises(ValueError, match="unique"):
        write_directions_file(tmp_path / "dup.json", shipped * 2, G.fingerprint, W_DIM, NUM_WS)


def test_malformed_direction_files_are_refused(tmp_path) -> None:
    good = {"format": "clothinggan-directions", "version": 1, "model_id": "m", "w_dim": 3, "num_ws": 2,
            "directions": [{"name": "a", "vector": [1, 0, 0]}]}
    cases = {"notjson": "{", "format": {**good, "format": "x"},
             "dup": {**good, "directions": good["directions"] * 2},
             "length": {**good, "directions": [{"name": "a", "vector": [1, 0]}]},
             "layers": {**good, "directions": [{"name": "a", "vector": [1, 0, 0], "layer_end": 3}]},
             "field": {**good, "directions": [{"name": "a", "vector": [1, 0, 0], "evil": 1}]},
             "incomplete": {**good, "directions": [{"name": "a"}]}}
    (tmp_path / "good.json").write_text(json.dumps(good))
    assert read_directions_file(tmp_path / "good.json")[0].name == "a"
    with pytest.raises(ModelMismatchError):
        read_directions_file(tmp_path / "good.json", model_id="other")
    for name, doc in cases.items():
        (tmp_path / f"{name}.json").write_text(doc if isinstance(doc, str) else json.dumps(doc))
        with pytest.raises(LatentFormatError):
            read_directions_file(tmp_path / f"{name}.json")

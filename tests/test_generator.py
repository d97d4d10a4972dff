"""The Generator facade: shapes, seeds, truncation, batching, save/load, threads, other configs."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import clothinggan as cg
from clothinggan.errors import InvalidSeedError
from clothinggan.generator import Generator, validate_seeds
from clothinggan.networks import GeneratorConfig, StyleGAN2


def make_generator(seed: int = 0, **overrides) -> Generator:
    torch.manual_seed(seed)
    kwargs = dict(resolution=16, z_dim=32, w_dim=32, mapping_layers=2, channels={4: 32, 8: 32, 16: 16})
    kwargs.update(overrides)
    net = StyleGAN2(GeneratorConfig(**kwargs))
    with torch.no_grad():  # random noise strengths, so noise modes differ
        for name, p in net.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.3)
    return Generator(net, name="tiny", device="cpu", max_batch=3)


@pytest.fixture(scope="module")
def G() -> Generator:
    return make_generator()


def test_shapes_and_public_attributes(G: Generator) -> None:
    assert (G.z_dim, G.w_dim, G.num_ws, G.resolution) == (32, 32, 6, 16)
    assert G.device == torch.device("cpu")
    ws = G.seeds_to_ws([0, 1, 2, 3, 4], psi=0.7)
    assert ws.shape == (5, 6, 32)
    img = G.synthesis(ws)
    assert img.shape == (5, 3, 16, 16) and img.dtype == torch.float32
    assert torch.isfinite(img).all()


def test_seed_z_matches_numpy_randomstate(G: Generator) -> None:
    z = G.seeds_to_z([7, 123456])
    np.testing.assert_array_equal(z[0], np.random.RandomState(7).randn(32).astype(np.float32))
    np.testing.assert_array_equal(z[1], np.random.RandomState(123456).randn(32).astype(np.float32))


def test_truncation_pulls_toward_w_avg(G: Generator) -> None:
    z = G.seeds_to_z([3])
    w1, w0, w07 = G.mapping(z, 1.0), G.mapping(z, 0.0), G.mapping(z, 0.7)
    torch.testing.assert_close(w0[0], G.w_avg, atol=1e-6, rtol=0)
    torch.testing.assert_close(w07, G.w_avg + 0.7 * (w1 - G.w_avg), atol=1e-5, rtol=0)


def test_w_avg_is_assignable_and_validated() -> None:
    G = make_generator(1)
    G.w_avg = np.ones(32, dtype=np.float32)
    assert torch.equal(G.w_avg, torch.ones(32))
    with pytest.raises(ValueError):
        G.w_avg = np.ones(5)


def test_batching_matches_single_calls(G: Generator) -> None:
    ws = G.seeds_to_ws(list(range(7)))  # max_batch 3 → chunks of 3, 3, 1
    batched = G.synthesis(ws)
    singles = torch.cat([G.synthesis(ws[i:i + 1]) for i in range(7)])
    assert torch.allclose(batched, singles, atol=1e-5)


def test_noise_modes(G: Generator) -> None:
    ws = G.seeds_to_ws([0])
    const_a, const_b = G.synthesis(ws, "const"), G.synthesis(ws, "const")
    assert torch.equal(const_a, const_b)
    assert not torch.allclose(G.synthesis(ws, "random"), const_a)
    assert not torch.allclose(G.synthesis(ws, "none"), const_a)
    with pytest.raises(ValueError):
        G.synthesis(ws, "loud")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [[-1], [2**32], [1.5], ["3"], [True]])
def test_invalid_seeds_raise_typed_error(bad: list) -> None:
    with pytest.raises(InvalidSeedError):
        validate_seeds(bad)


def test_wrong_shapes_raise_clear_errors(G: Generator) -> None:
    with pytest.raises(ValueError, match="ws must have shape"):
        G.synthesis(torch.zeros(1, 5, 32))
    with pytest.raises(ValueError, match="z must have shape"):
        G.mapping(torch.zeros(1, 7))


def test_inference_does_not_track_gradients_but_differentiable_mode_does(G: Generator) -> None:
    ws = G.seeds_to_ws([0]).requires_grad_(True)
    assert not G.synthesis(ws).requires_grad
    out = G.synthesis(ws, differentiable=True)
    out.mean().backward()
    assert ws.grad is not None and ws.grad.abs().sum() > 0
    assert all(p.grad is None for p in G.net.parameters())


def test_save_load_roundtrip_is_exact(tmp_path, G: Generator) -> None:
    path = cg.save_generator(G, tmp_path / "tiny.safetensors")
    G2 = cg.load_generator(path, device="cpu")
    assert G2.fingerprint == G.fingerprint
    ws = G.seeds_to_ws([0, 1])
    assert torch.equal(G.synthesis(ws), G2.synthesis(ws))


def test_threads_share_one_model_without_interference(G: Generator) -> None:
    seeds = list(range(8))
    expected = {s: G.generate([s], psi=0.7) for s in seeds}
    results: dict[int, torch.Tensor] = {}
    errors: list[BaseException] = []

    def work(s: int) -> None:
        try:
            for _ in range(3):
                results[s] = G.generate([s], psi=0.7)
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in seeds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for s in seeds:
        assert torch.allclose(results[s], expected[s], atol=1e-5)


@pytest.mark.parametrize("overrides", [
    dict(resolution=4, channels={4: 16}),
    dict(resolution=32, channels={4: 16, 8: 16, 16: 8, 32: 8}),
    dict(z_dim=24, w_dim=40),
    dict(mapping_layers=1),
    dict(conv_clamp=0.5),
    dict(mapping_features=48),
])
def test_other_configurations_run(overrides: dict) -> None:
    G = make_generator(**overrides)
    img = G.generate([0, 1], psi=0.5)
    assert img.shape == (2, 3, G.resolution, G.resolution)
    assert torch.isfinite(img).all()
    if overrides.get("conv_clamp"):
        assert img.abs().max() <= overrides["conv_clamp"] * 3 + 1e-6  # toRGB outputs are clamped per layer


def test_conditional_model_needs_and_uses_c() -> None:
    G = make_generator(c_dim=4)
    z = G.seeds_to_z([0, 0])
    c = np.eye(4, dtype=np.float32)[:2]
    w = G.mapping(z, c=c)
    assert w.shape == (2, 32) and not torch.allclose(w[0], w[1])
    with pytest.raises(ValueError, match="conditional"):
        G.mapping(z)


@pytest.mark.parametrize("bad", [dict(resolution=48), dict(resolution=2048), dict(channels={4: 8}), dict(z_dim=0)])
def test_invalid_configs_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        make_generator(**bad)


def test_to_pil_and_grid(G: Generator) -> None:
    pils = cg.to_pil(G.generate([0, 1, 2]))
    assert len(pils) == 3 and pils[0].mode == "RGB" and pils[0].size == (16, 16)
    grid = cg.image_grid(pils, cols=3, pad=2)
    assert grid.size == (16 * 3 + 4, 16)
    assert cg.to_pil(torch.full((1, 3, 2, 2), 5.0))[0].getpixel((0, 0)) == (255, 255, 255)
    assert cg.to_pil(torch.full((1, 3, 2, 2), -5.0))[0].getpixel((0, 0)) == (0, 0, 0)


def test_default_model_loads_offline_on_cpu() -> None:
    G = cg.load_generator("default", device="cpu")
    assert G.resolution == 64
    img = G.generate([0], psi=0.7)
    assert img.shape == (1, 3, 64, 64) and torch.isfinite(img).all()


def test_folded_upsampling_gives_the_same_images(G: Generator) -> None:
    from clothinggan.networks import set_fold_upsampling

    ws = G.seeds_to_ws([0, 1, 2])
    plain = G.synthesis(ws)
    try:
        set_fold_upsampling(G.net, True)
        folded = G.synthesis(ws)
    finally:
        set_fold_upsampling(G.net, G.device.type == "cuda")
    assert torch.allclose(plain, folded, atol=1e-4)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("noise_mode", ["const", "none"])
def test_inference_path_matches_the_autograd_path(G: Generator, channels_last: bool, noise_mode: str) -> None:
    """No-grad synthesis (batched styles, derived weights, in-place steps, optional NHWC) = the training-time maths."""
    from clothinggan.networks import set_channels_last

    ws = G.seeds_to_ws([0, 1, 2, 3], psi=0.8)
    try:
        set_channels_last(G.net, channels_last)
        with torch.no_grad():
            fast = G.net.synthesis(ws, noise_mode)
        reference = G.net.synthesis.reference(ws, noise_mode)
    finally:
        set_channels_last(G.net, G.device.type == "cpu")
    assert fast.is_contiguous() and not reference.requires_grad
    # Batched styles, the folded ReLU gain and (NHWC) oneDNN's summation order change float32
    # rounding only: 3e-5 of the [-1, 1] range is 0.004 of one 8-bit level.
    torch.testing.assert_close(fast, reference, rtol=0, atol=3e-5)


@pytest.mark.parametrize("noise_mode", ["const", "none"])
def test_single_image_inference_scales_weights_and_matches(noise_mode: str) -> None:
    """At batch 1 the high-resolution layers fold style, demodulation and bias into the weights
    (and conv_clamp is taken before the ReLU gain): the images still equal the autograd path's
    and the batched path's."""
    G = make_generator(seed=4, resolution=32, channels={4: 16, 8: 16, 16: 8, 32: 8}, conv_clamp=0.5)
    ws = G.seeds_to_ws([0, 1, 2], psi=0.9)
    with torch.no_grad():
        batched = G.net.synthesis(ws, noise_mode)
        single = torch.cat([G.net.synthesis(ws[i:i + 1], noise_mode) for i in range(3)])
    reference = G.net.synthesis.reference(ws, noise_mode)
    assert (reference.abs() > 0.4).any()  # the clamp bites somewhere
    torch.testing.assert_close(single, reference, rtol=0, atol=3e-5)
    torch.testing.assert_close(batched, reference, rtol=0, atol=3e-5)


def test_inference_cache_follows_parameter_changes() -> None:
    """Derived weights are keyed by parameter versions: an in-place update is seen at once."""
    G = make_generator(seed=3)
    ws = G.seeds_to_ws([5])
    before = G.synthesis(ws)
    layer = G.net.synthesis.b8.conv0
    with torch.no_grad():
        layer.weight.mul_(1.5).add_(0.1)
        layer.noise_strength.fill_(0.9)
    after = G.synthesis(ws)
    reference = G.net.synthesis.reference(ws)
    assert (after - before).abs().max() > 1e-3
    torch.testing.assert_close(after, reference, rtol=0, atol=1e-5)


def test_a_seed_maps_to_the_same_bits_in_any_batch(G: Generator) -> None:
    """Image caches key on ws bytes, so seed 5 must not change with the grid it is in."""
    big = G.seeds_to_ws(list(range(40)), psi=0.7)
    small = G.seeds_to_ws([5, 31], psi=0.7)
    assert torch.equal(big[5], small[0]) and torch.equal(big[31], small[1])
    torch.testing.assert_close(big[:, 0], G.mapping(G.seeds_to_z(list(range(40))), psi=0.7), rtol=1e-6, atol=1e-6)
    assert G.seeds_to_ws([]).shape == (0, G.num_ws, G.w_dim)


def test_loading_a_model_does_not_import_sympy(tmp_path) -> None:
    """Cold start: shape checks build the network on the meta device, where a random init or a
    division imports sympy and torch's reference ops (about 2.4 s before the first garment)."""
    import subprocess
    import sys

    from clothinggan import testing

    path = tmp_path / "tiny.safetensors"
    cg.save_generator(testing.tiny_generator(0), path)
    code = (f"import sys, clothinggan as cg; G = cg.load_generator({str(path)!r}); "
            "G.synthesis(G.seeds_to_ws([0])); print('sympy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"


def test_upsample_matrix_equals_the_fir_upsampling() -> None:
    """The inference path upsamples the RGB skip as U·img·Uᵀ; it must equal upfirdn2d's up=2."""
    from clothinggan.networks import blur_filter, upsample2d, upsample_matrix

    img = torch.randn(2, 3, 8, 16)
    fir = upsample2d(img, blur_filter())
    torch.testing.assert_close(upsample_matrix(8) @ img @ upsample_matrix(16).t(), fir, rtol=0, atol=1e-6)


def test_inference_cache_sees_a_reassigned_parameter() -> None:
    """The stacked styles are keyed on the parameter objects too: a new Parameter is used at once."""
    G = make_generator(seed=5)
    ws = G.seeds_to_ws([2])
    before = G.synthesis(ws)
    affine = G.net.synthesis.b16.conv1.affine
    affine.weight = torch.nn.Parameter(affine.weight.detach() * -2.0)
    after = G.synthesis(ws)
    reference = G.net.synthesis.reference(ws)
    assert (after - before).abs().max() > 1e-3
    torch.testing.assert_close(after, reference, rtol=0, atol=3e-5)


def test_frozen_generator_gives_the_autograd_paths_ws_gradients() -> None:
    """Inversion differentiates a frozen Generator through the fast path (detached derived
    weights, no in-place steps); images and d loss / d ws must equal the reference autograd path's."""
    G = make_generator(seed=6, resolution=32, channels={4: 16, 8: 16, 16: 8, 32: 8}, conv_clamp=0.5)
    ws0 = G.seeds_to_ws([1], psi=0.8)
    target = torch.rand(1, 3, 32, 32) * 2 - 1

    def image_and_gradient(synthesis) -> tuple[torch.Tensor, torch.Tensor]:
        ws = ws0.clone().requires_grad_(True)
        img = synthesis(ws)
        (img - target).square().mean().backward()
        return img.detach(), ws.grad

    fast_img, fast_grad = image_and_gradient(lambda ws: G.synthesis(ws, differentiable=True))
    ref_img, ref_grad = image_and_gradient(G.net.synthesis.reference)
    torch.testing.assert_close(fast_img, ref_img, rtol=0, atol=3e-5)
    torch.testing.assert_close(fast_grad, ref_grad, rtol=1e-4, atol=1e-7)


def test_a_trainable_synthesis_takes_the_reference_path() -> None:
    """Training needs gradients for every weight: a parameter that requires grad turns the fast
    path (detached derived weights) off."""
    G = make_generator(seed=7)
    ws = G.seeds_to_ws([0])
    bias = G.net.synthesis.b8.conv1.bias
    bias.requires_grad_(True)
    try:
        G.net.synthesis(ws).sum().backward()
    finally:
        bias.requires_grad_(False)
    assert bias.grad is not None and bias.grad.abs().sum() > 0

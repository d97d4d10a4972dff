"""The inference path's convolution forms (library calls, oneDNN on weights packed once, or the
matrix products of ``SynthesisLayer._up_matrix_conv``) all give the autograd path's images, at
every batch size."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import clothinggan as cg
from clothinggan import networks
from clothinggan import testing
from clothinggan.generator import Generator
from clothinggan.networks import (MATRIX_UP_SIDE, GeneratorConfig, StyleGAN2, blur_filter, filter2d,
                                  set_channels_last, set_matrix_up_side, up_blur_matrix)

# Every up-convolution, none, or the shipped rule's (the smallest) in matrix form.
FORMS = {"all": 1024, "none": 0, "shipped": MATRIX_UP_SIDE}


def clamped_generator() -> Generator:
    """32 px with conv_clamp small enough to bite and non-zero noise, so every step is exercised."""
    torch.manual_seed(4)
    net = StyleGAN2(GeneratorConfig(resolution=32, z_dim=32, w_dim=32, mapping_layers=2,
                                    channels={4: 16, 8: 16, 16: 8, 32: 8}, conv_clamp=0.5))
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.3)
    return Generator(net, name="clamped", device="cpu")


def render(G: Generator, ws: torch.Tensor, form: str, channels_last: bool, noise_mode: str = "const") -> torch.Tensor:
    try:
        set_matrix_up_side(G.net, FORMS[form])
        set_channels_last(G.net, channels_last)
        with torch.no_grad():
            return G.net.synthesis(ws, noise_mode)
    finally:
        set_matrix_up_side(G.net, MATRIX_UP_SIDE)
        set_channels_last(G.net, True)


def test_up_blur_matrix_is_the_transposed_convolution_and_blur() -> None:
    """One image's col2im + 4×4 blur as a matrix: the same as NVlabs' conv2d_resample(up=2)."""
    x, w = torch.randn(1, 5, 4, 4), torch.randn(5, 7, 3, 3)
    expected = filter2d(F.conv_transpose2d(x, w, stride=2), blur_filter(), pad=(1, 1), gain=4.0)
    taps = torch.einsum("cij,cokl->ijklo", x[0], w).reshape(-1, 7)   # rows (i, j, ky, kx)
    got = (up_blur_matrix(4) @ taps).reshape(8, 8, 7).permute(2, 0, 1)
    torch.testing.assert_close(got, expected[0], rtol=0, atol=1e-5)


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("batch", [1, 3])
def test_every_form_matches_the_autograd_path(form: str, channels_last: bool, batch: int) -> None:
    G = clamped_generator()
    ws = G.seeds_to_ws(list(range(batch)), psi=0.9)
    reference = G.net.synthesis.reference(ws)
    assert (reference.abs() > 0.4).any()  # the clamp bites somewhere
    torch.testing.assert_close(render(G, ws, form, channels_last), reference, rtol=0, atol=3e-5)


@pytest.mark.parametrize("noise_mode", ["none", "random"])
def test_matrix_form_keeps_the_noise_modes(noise_mode: str) -> None:
    G = testing.tiny_generator(2)
    ws = G.seeds_to_ws([0, 1])
    if noise_mode == "random":
        torch.manual_seed(0)
        matrix = render(G, ws, "all", True, noise_mode)
        torch.manual_seed(0)
        library = render(G, ws, "none", True, noise_mode)
    else:
        matrix, library = render(G, ws, "all", True, noise_mode), render(G, ws, "none", True, noise_mode)
    torch.testing.assert_close(matrix, library, rtol=0, atol=3e-5)


def test_matrix_form_passes_the_ws_gradients_of_inversion() -> None:
    """Inversion differentiates the fast path: d loss / d ws through the matrix products equals
    the reference path's."""
    G = clamped_generator()
    ws0 = G.seeds_to_ws([1], psi=0.8)
    target = torch.rand(1, 3, 32, 32) * 2 - 1

    def gradient(synthesis) -> torch.Tensor:
        ws = ws0.clone().requires_grad_(True)
        (synthesis(ws) - target).square().mean().backward()
        return ws.grad

    try:
        set_matrix_up_side(G.net, FORMS["all"])
        fast = gradient(lambda ws: G.synthesis(ws, differentiable=True))
    finally:
        set_matrix_up_side(G.net, MATRIX_UP_SIDE)
    torch.testing.assert_close(fast, gradient(G.net.synthesis.reference), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("batch", [1, 2])
def test_the_embedded_model_renders_the_same_in_every_form(batch: int) -> None:
    G = cg.load_generator("default", device="cpu")
    ws = G.seeds_to_ws(list(range(batch)), psi=0.7)
    reference = G.net.synthesis.reference(ws)
    for form in ("all", "none"):
        torch.testing.assert_close(render(G, ws, form, True), reference, rtol=0, atol=3e-5)
    with torch.no_grad():  # the shipped rule, as the app renders
        torch.testing.assert_close(G.net.synthesis(ws), reference, rtol=0, atol=3e-5)


def _raise(*_args: object) -> torch.Tensor:
    raise RuntimeError("no bf16 convolution on this CPU")


@pytest.mark.parametrize("ops", ["missing", "failing"])
@pytest.mark.parametrize("batch", [1, 3])
def test_without_the_packed_convolutions_the_library_path_gives_the_same_images(
        monkeypatch: pytest.MonkeyPatch, ops: str, batch: int) -> None:
    """A PyTorch without the private oneDNN ops, or a CPU whose oneDNN refuses the dtype, falls back
    to F.conv2d; the packed path (the default on CPUs) and the fallback both match the reference."""
    G = clamped_generator()
    ws = G.seeds_to_ws(list(range(batch)), psi=0.9)
    reference = G.net.synthesis.reference(ws)
    packed = render(G, ws, "shipped", True)
    assert any("packed" in (layer.__dict__.get("_derived.torch.float32") or ((), {}))[1]
               for layer in G.net.modules() if isinstance(layer, networks.SynthesisLayer))
    G = clamped_generator()   # fresh caches
    real = networks._onednn_ops()
    assert real is not None
    stub = None if ops == "missing" else networks._OneDNNOps(_raise, _raise, real.conv, real.conv_transposed)
    monkeypatch.setattr(networks, "_ONEDNN", [stub])
    torch.testing.assert_close(packed, reference, rtol=0, atol=3e-5)
    torch.testing.assert_close(render(G, ws, "shipped", True), reference, rtol=0, atol=3e-5)

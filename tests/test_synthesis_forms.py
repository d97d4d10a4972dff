"""The inference path's two CPU convolution forms (oneDNN on weights packed once, the default, and
``F.conv2d``, the fallback) both give the autograd path's images, at every batch size."""
from __future__ import annotations

from typing import Iterator

import pytest
import torch

import clothinggan as cg
from clothinggan import networks, packed_conv, testing
from clothinggan.generator import Generator
from clothinggan.networks import GeneratorConfig, StyleGAN2, set_channels_last


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


@pytest.fixture(params=["packed", "library"])
def form(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Each test runs once on the packed convolutions and once as if this PyTorch lacked them."""
    if request.param == "library":
        monkeypatch.setattr(packed_conv, "_ONEDNN", [None])
    else:
        assert packed_conv.onednn_ops() is not None, "this PyTorch has the packed oneDNN convolutions"
    yield request.param


def render(G: Generator, ws: torch.Tensor, channels_last: bool = True, noise_mode: str = "const") -> torch.Tensor:
    try:
        set_channels_last(G.net, channels_last)
        with torch.no_grad():
            return G.net.synthesis(ws, noise_mode)
    finally:
        set_channels_last(G.net, True)


def packed_layers(G: Generator) -> int:
    """How many layers hold packed weights for float32 (see SynthesisLayer._packed_weight)."""
    caches = [m.__dict__.get("_derived_torch_float32") for m in G.net.modules()
              if isinstance(m, networks.SynthesisLayer)]
    return sum(1 for c in caches if c is not None and c[1].get("packed") is not None)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("batch", [1, 3])
def test_each_form_matches_the_autograd_path(form: str, channels_last: bool, batch: int) -> None:
    G = clamped_generator()
    ws = G.seeds_to_ws(list(range(batch)), psi=0.9)
    reference = G.net.synthesis.reference(ws)
    assert (reference.abs() > 0.4).any()  # the clamp bites somewhere
    torch.testing.assert_close(render(G, ws, channels_last), reference, rtol=0, atol=3e-5)
    # Packing needs channels_last; at batch 1 the weight-scaled layers (32 px here) never pack.
    assert (packed_layers(G) > 0) == (form == "packed" and channels_last)


@pytest.mark.parametrize("noise_mode", ["none", "random"])
def test_each_form_keeps_the_noise_modes(form: str, noise_mode: str) -> None:
    G = testing.tiny_generator(2)
    ws = G.seeds_to_ws([0, 1])
    torch.manual_seed(0)
    fast = render(G, ws, noise_mode=noise_mode)
    torch.manual_seed(0)
    reference = G.net.synthesis.reference(ws, noise_mode)
    torch.testing.assert_close(fast, reference, rtol=0, atol=3e-5)


def _refuse(*_args: object) -> torch.Tensor:
    raise RuntimeError("no bf16 convolution on this CPU")


def test_a_cpu_that_refuses_to_pack_falls_back_to_the_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """oneDNN raises for a dtype the CPU cannot run (bf16 without AVX-512): F.conv2d takes over."""
    real = packed_conv.onednn_ops()
    assert real is not None
    monkeypatch.setattr(packed_conv, "_ONEDNN", [packed_conv.OneDNNOps(_refuse, _refuse, real.conv, real.conv_transposed)])
    G = clamped_generator()
    ws = G.seeds_to_ws([0, 1, 2], psi=0.9)
    torch.testing.assert_close(render(G, ws), G.net.synthesis.reference(ws), rtol=0, atol=3e-5)
    assert packed_layers(G) == 0


@pytest.mark.parametrize("batch", [1, 2])
def test_the_embedded_model_renders_the_same_in_each_form(form: str, batch: int) -> None:
    G = cg.load_generator("default", device="cpu")
    ws = G.seeds_to_ws(list(range(batch)), psi=0.7)
    torch.testing.assert_close(render(G, ws), G.net.synthesis.reference(ws), rtol=0, atol=3e-5)


def test_packed_weights_serve_every_batch_size() -> None:
    """Weights are packed for the first call's shape; later calls at other batch sizes reuse them."""
    G = clamped_generator()
    ws = G.seeds_to_ws(list(range(5)), psi=0.9)
    reference = G.net.synthesis.reference(ws)
    for n in (3, 5, 2):
        torch.testing.assert_close(render(G, ws[:n]), reference[:n], rtol=0, atol=3e-5)

"""Render precision: the choice, what it resolves to on this machine, and that bf16 looks like fp32."""
from __future__ import annotations

import pytest
import torch

from clothinggan import precision, settings, testing
from clothinggan.generator import Generator

from conftest import APP


def test_resolve_follows_the_choice_and_the_machine() -> None:
    cpu = torch.device("cpu")
    assert precision.resolve("fp32", cpu) is torch.float32
    assert precision.resolve("BF16", cpu) is torch.bfloat16
    native = precision.bf16_is_native(cpu)
    assert precision.resolve("auto", cpu) is (torch.bfloat16 if native else torch.float32)
    assert precision.resolve("", cpu) is precision.resolve("auto", cpu)
    with pytest.raises(ValueError, match="unknown precision"):
        precision.resolve("fp8", cpu)
    assert [precision.label(d) for d in (torch.float32, torch.bfloat16, torch.float16)] == ["fp32", "bf16", "fp16"]


def test_a_bad_setting_means_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.PRECISION, "quadruple")
    assert settings.precision() == "auto"
    monkeypatch.setenv(settings.PRECISION, " BF16 ")
    assert settings.precision() == "bf16"


def test_cpu_bf16_images_stay_within_one_grey_level_of_fp32() -> None:
    fp32 = testing.tiny_generator(0, device="cpu")
    bf16 = Generator(testing.tiny_net(0), device="cpu", dtype=torch.bfloat16)
    ws = fp32.seeds_to_ws(list(range(8)), psi=0.7)
    a, b = fp32.synthesis(ws), bf16.synthesis(ws)
    assert b.dtype == torch.float32 and not torch.equal(a, b)  # bf16 really ran, and hands back fp32
    assert ((a - b).abs().mean() / 2 * 255).item() < 1.0
    # Gradients (inversion) stay in fp32: the same as the fp32 model's, bit for bit.
    grads = []
    for G in (fp32, bf16):
        w = ws[:2].clone().requires_grad_(True)
        G.synthesis(w, differentiable=True).square().mean().backward()
        grads.append(w.grad)
    assert torch.equal(grads[0], grads[1])


def test_generator_keeps_a_cpu_bf16_choice_and_refuses_cpu_fp16() -> None:
    net = testing.tiny_net(0)
    assert Generator(net, device="cpu", dtype=torch.bfloat16).dtype is torch.bfloat16
    assert Generator(testing.tiny_net(0), device="cpu", dtype=torch.float16).dtype is torch.float32


@pytest.mark.parametrize("choice, shown", [("fp32", "fp32"), ("bf16", "bf16")])
def test_the_app_renders_in_the_chosen_precision_and_says_so(app_env, monkeypatch, choice, shown) -> None:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv(settings.PRECISION, choice)
    monkeypatch.setenv(settings.DEVICE, "cpu")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    assert any(c.value.endswith(f"CPU {shown}") for c in at.sidebar.caption)


def test_auto_checks_each_model_before_it_picks_bf16(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("CLOTHINGGAN_CACHE", str(tmp_path))
    monkeypatch.setattr(precision, "bf16_is_native", lambda device: True)
    G = testing.tiny_generator(0, device="cpu")
    assert precision.choose_for(G, "auto") is torch.bfloat16
    assert 0.0 < G.meta["bf16_error"] < precision.BF16_LIMIT and G.dtype is torch.float32  # measured, G untouched
    monkeypatch.setattr(precision, "BF16_LIMIT", 0.0)  # a model whose bf16 renders drift stays in fp32
    assert precision.choose_for(G, "auto") is torch.float32
    assert precision.choose_for(G, "bf16") is torch.bfloat16  # an explicit choice is obeyed unchecked
    monkeypatch.setattr(precision, "bf16_is_native", lambda device: False)
    fresh = testing.tiny_generator(1, device="cpu")
    assert precision.choose_for(fresh, "auto") is torch.float32 and "bf16_error" not in fresh.meta


def test_the_bf16_check_is_measured_once_per_model_and_kept(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("CLOTHINGGAN_CACHE", str(tmp_path))
    measured: list[float] = []
    real = precision.bf16_error

    def counting(G, *args, **kwargs):
        measured.append(real(G, *args, **kwargs))
        return measured[-1]

    monkeypatch.setattr(precision, "bf16_error", counting)
    G = testing.tiny_generator(0, device="cpu")
    first = precision.measured_bf16_error(G)
    again = precision.measured_bf16_error(testing.tiny_generator(0, device="cpu"))  # a restart: a new object
    assert first == again and len(measured) == 1
    assert len(measured) == 1 and precision.measured_bf16_error(testing.tiny_generator(1, device="cpu")) >= 0
    assert len(measured) == 2  # another model is measured on its own
    for f in (tmp_path / "precision").iterdir():
        f.write_text("{not json")
    assert precision.measured_bf16_error(G) == first and len(measured) == 3  # a damaged record: measured again

"""Checkpoint formats: refusals of unsafe or broken files, and round trips of other configurations.

Every refusal must be a CheckpointError naming the file, with no side effect; every format we can
write must read back to the same network (same tensors, same images).
"""
from __future__ import annotations

import collections
import json
import os
import pickle
import struct
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import clothinggan as cg
from clothinggan.checkpoints import read_checkpoint, save_safetensors
from clothinggan.errors import CheckpointError
from clothinggan.formats.rosinality import write_rosinality
from clothinggan.formats.safe_unpickle import UnsafePickleError, restricted_load
from clothinggan.networks import GeneratorConfig, StyleGAN2

PWNED = Path("/tmp/clothinggan-pwned")


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("CLOTHINGGAN_CACHE", str(cache))
    return cache


def random_net(cfg: GeneratorConfig, seed: int = 0) -> StyleGAN2:
    """Random weights where every tensor matters: non-zero noise strengths, biases and w_avg."""
    torch.manual_seed(seed)
    net = StyleGAN2(cfg).eval()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(("noise_strength", ".bias")):
                p.add_(torch.randn_like(p) * 0.3)
        net.mapping.w_avg.normal_()
    return net


TINY = dict(resolution=16, z_dim=32, w_dim=32, mapping_layers=2, channels={4: 32, 8: 32, 16: 16})


def expect_refusal(path: Path, *words: str) -> CheckpointError:
    """load_generator must raise CheckpointError naming the file (and ``words``), and leave no trace."""
    with pytest.raises(CheckpointError) as info:
        cg.load_generator(path, device="cpu")
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word in message
    assert not PWNED.exists()
    cache = Path(os.environ["CLOTHINGGAN_CACHE"])
    assert not list(cache.rglob("*.part"))  # no half-written conversion left behind
    return info.value


# -- NVlabs pickles written by hand ---------------------------------------------------------------
NVLABS_CLASS = {"StyleGAN2": "Generator"}  # our other module names are NVlabs' names already


def _global_function(module: str, name: str) -> Callable[..., Any]:
    def stand_in(*args: Any) -> Any:
        raise AssertionError("only written, never called")
    stand_in.__module__, stand_in.__qualname__, stand_in.__name__ = module, name, name
    return stand_in


def fake_nvlabs_modules(monkeypatch: pytest.MonkeyPatch, scalar_module: str) -> dict[str, Any]:
    """Importable stand-ins for NVlabs' globals, so pickle writes their names as NVlabs does.

    numpy 2 already pickles its scalars as ``numpy._core.multiarray.scalar``; only the numpy-1 name
    needs a stand-in (the real module is never replaced).
    """
    reconstruct = _global_function("torch_utils.persistence", "_reconstruct_persistent_obj")
    easydict = type("EasyDict", (dict,), {"__module__": "dnnlib.util"})
    fakes: dict[str, dict[str, Any]] = {
        "torch_utils": {}, "torch_utils.persistence": {"_reconstruct_persistent_obj": reconstruct},
        "dnnlib": {}, "dnnlib.util": {"EasyDict": easydict}}
    scalar = None
    if scalar_module != "numpy._core.multiarray":
        scalar = _global_function(scalar_module, "scalar")
        fakes[scalar_module] = {"scalar": scalar}
    for name, attrs in fakes.items():
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, module)
    return {"reconstruct": reconstruct, "scalar": scalar, "EasyDict": easydict}


def module_meta(module: nn.Module, module_src: str, init_kwargs: dict | None) -> dict[str, Any]:
    """The ``meta`` dict torch_utils.persistence pickles for one module (README's layout)."""
    persistent = {k: v for k, v in module._buffers.items() if k not in module._non_persistent_buffers_set}
    state: dict[str, Any] = {"training": False, "_parameters": collections.OrderedDict(module._parameters),
                             "_buffers": collections.OrderedDict(persistent),
                             "_non_persistent_buffers_set": set(), "_modules": collections.OrderedDict(module._modules),
                             "_forward_hooks": collections.OrderedDict(), "_forward_pre_hooks": collections.OrderedDict()}
    for attr in ("weight_gain", "bias_gain"):
        if hasattr(module, attr):
            state[attr] = np.float64(getattr(module, attr))
    if init_kwargs is not None:
        state["_init_args"], state["_init_kwargs"] = (), init_kwargs
    name = NVLABS_CLASS.get(type(module).__name__, type(module).__name__)
    return dict(type="class", version=6, module_src=module_src, class_name=name, state=state)


def nvlabs_init_kwargs(cfg: GeneratorConfig, easydict: type) -> dict[str, Any]:
    return {"z_dim": cfg.z_dim, "w_dim": cfg.w_dim, "c_dim": cfg.c_dim, "img_resolution": cfg.resolution,
            "img_channels": cfg.img_channels,
            "mapping_kwargs": easydict(num_layers=cfg.mapping_layers, layer_features=cfg.mapping_features,
                                       embed_features=cfg.embed_features),
            "synthesis_kwargs": easydict(channel_base=32768, channel_max=512, num_fp16_res=4,
                                         conv_clamp=cfg.conv_clamp)}


def write_nvlabs_pickle(net: StyleGAN2, path: Path, monkeypatch: pytest.MonkeyPatch, module_src: str,
                        scalar_module: str = "numpy._core.multiarray", other: StyleGAN2 | None = None) -> Path:
    """A network-snapshot pickle in NVlabs' layout (G, D, G_ema, …) built from our own modules."""
    with monkeypatch.context() as mp:
        fakes = fake_nvlabs_modules(mp, scalar_module)
        kwargs = nvlabs_init_kwargs(net.config, fakes["EasyDict"])

        class NVlabsPickler(pickle.Pickler):
            def reducer_override(self, obj: Any) -> Any:
                if isinstance(obj, nn.Module):
                    top = obj is net or obj is other
                    return fakes["reconstruct"], (module_meta(obj, module_src, kwargs if top else None),)
                if isinstance(obj, np.float64) and fakes["scalar"] is not None:
                    return fakes["scalar"], (np.dtype("f8"), obj.tobytes())
                return NotImplemented

        snapshot = {"training_set_kwargs": {"resolution": net.config.resolution}, "G": other or net,
                    "D": None, "G_ema": net, "augment_pipe": None}
        with open(path, "wb") as fh:
            NVlabsPickler(fh, protocol=4).dump(snapshot)
    return path


# -- refusals -----------------------------------------------------------------------------------
def test_malicious_fixture_is_refused_naming_the_global(fixtures_dir: Path) -> None:
    expect_refusal(fixtures_dir / "stylegan2" / "malicious.pkl", "os.system")


def test_malicious_fixture_is_refused_by_the_converter_process_too(fixtures_dir: Path, tmp_path: Path) -> None:
    from clothinggan.formats.nvlabs import run_converter

    out = tmp_path / "out.safetensors"
    with pytest.raises(CheckpointError, match="os.system"):
        run_converter(fixtures_dir / "stylegan2" / "malicious.pkl", out)
    assert not out.exists() and not PWNED.exists()


def test_restricted_unpickler_refuses_in_process(fixtures_dir: Path) -> None:
    with pytest.raises(UnsafePickleError, match="os.system"):
        restricted_load(fixtures_dir / "stylegan2" / "malicious.pkl")
    assert not PWNED.exists()


class Payload:
    def __init__(self, func: Callable[..., Any], *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple:
        return self.func, self.args


@pytest.mark.parametrize(("func", "protocol", "name"), [
    (eval, 4, "builtins.eval"),            # STACK_GLOBAL: caught by the converter process
    (subprocess.Popen, 2, "subprocess.Popen"),  # GLOBAL: caught by the in-process scan
    (os.system, 4, "system"),
])
def test_pickles_with_other_globals_are_refused(tmp_path: Path, func: Callable[..., Any], protocol: int,
                                                name: str) -> None:
    marker = tmp_path / "ran"
    arg = f"open({str(marker)!r}, 'w')" if func is eval else (["touch", str(marker)] if func is subprocess.Popen
                                                              else f"touch {marker}")
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": Payload(func, arg)}, protocol=protocol))
    expect_refusal(path, name)
    assert not marker.exists()


def test_tensorflow_pickles_get_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "tf.pkl"
    # GLOBAL 'dnnlib.tflib.network Network', EMPTY_TUPLE, REDUCE, STOP: never run, only named.
    path.write_bytes(b"\x80\x02cdnnlib.tflib.network\nNetwork\n)R.")
    expect_refusal(path, "dnnlib.tflib.network.Network", "legacy.py")


def test_module_src_is_never_executed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "executed"
    src = f"open({str(marker)!r}, 'w').close()\nraise RuntimeError('module_src must not run')\n"
    net = random_net(GeneratorConfig(**TINY))
    G = cg.load_generator(write_nvlabs_pickle(net, tmp_path / "snap.pkl", monkeypatch, src), device="cpu")
    assert not marker.exists()
    assert all(torch.equal(G.net.state_dict()[k], v) for k, v in net.state_dict().items())


def test_pickles_are_unpickled_only_in_the_converter_process(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import clothinggan.formats.safe_unpickle as safe_unpickle

    net = random_net(GeneratorConfig(**TINY))
    path = write_nvlabs_pickle(net, tmp_path / "snap.pkl", monkeypatch, "raise SystemExit")

    def forbidden(*args: object) -> None:
        raise AssertionError("a pickle was unpickled in the app process")

    monkeypatch.setattr(safe_unpickle.RestrictedUnpickler, "load", forbidden)
    G = cg.load_generator(path, device="cpu")
    assert G.meta["format"] == "nvlabs-pkl"


def tiny_file(fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One small valid file of the given format."""
    net = random_net(GeneratorConfig(**TINY))
    if fmt == "safetensors":
        return save_safetensors(net, tmp_path / "m.safetensors")
    if fmt == "rosinality":
        return write_rosinality(net.state_dict(), net.config, tmp_path / "ros.pt")
    if fmt == "nvlabs-state-dict":
        torch.save(net.state_dict(), tmp_path / "nv-state_dict.pt")
        return tmp_path / "nv-state_dict.pt"
    return write_nvlabs_pickle(net, tmp_path / "snap.pkl", monkeypatch, "raise SystemExit")


@pytest.mark.parametrize("fmt", ["safetensors", "rosinality", "nvlabs-state-dict", "nvlabs-pkl"])
def test_truncated_files_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, private_cache: Path,
                                     fmt: str) -> None:
    data = tiny_file(fmt, tmp_path, monkeypatch).read_bytes()
    for fraction in (0.0005, 0.3, 0.7, 0.9995):
        cut = tmp_path / f"cut-{fraction}.{fmt}"
        cut.write_bytes(data[: max(1, int(len(data) * fraction))])
        expect_refusal(cut)
    leftovers = [p for p in private_cache.rglob("*") if p.is_file()]
    assert leftovers == []  # no partial conversions left behind


def test_truncated_fixture_checkpoint_is_refused(fixtures_dir: Path, tmp_path: Path) -> None:
    data = (fixtures_dir / "stylegan2" / "rosinality-s16-train.pt").read_bytes()
    for cut_at in (100, len(data) // 2, len(data) - 22):
        path = tmp_path / f"train-{cut_at}.pt"
        path.write_bytes(data[:cut_at])
        expect_refusal(path)


@pytest.mark.parametrize(("name", "content"), [
    ("empty.pt", b""),
    ("random.pkl", np.random.RandomState(0).bytes(4096)),
    ("notes.safetensors", b"These are not the weights you are looking for.\n" * 20),
    ("fake-pickle.pkl", b"\x80\x04" + np.random.RandomState(1).bytes(500)),
    ("fake-zip.pt", b"PK\x03\x04" + np.random.RandomState(2).bytes(500)),
])
def test_junk_files_are_refused(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    expect_refusal(path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError):
        cg.load_generator(tmp_path / "nothing-here.safetensors")


def test_safetensors_without_config_is_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "plain.safetensors"
    save_file({"x": torch.zeros(3)}, str(path))
    expect_refusal(path, "config")


def test_safetensors_with_wrong_shapes_is_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    net = random_net(GeneratorConfig(**TINY))
    state = net.state_dict()
    state["synthesis.b8.conv1.weight"] = torch.zeros(32, 32, 5, 5)
    path = tmp_path / "shapes.safetensors"
    save_file(state, str(path), metadata={"config": net.config.to_json()})
    expect_refusal(path, "synthesis.b8.conv1.weight")


def test_state_dicts_that_form_no_generator_are_refused(tmp_path: Path) -> None:
    net = random_net(GeneratorConfig(**TINY))
    mapping_only = {k: v for k, v in net.state_dict().items() if k.startswith("mapping.")}
    torch.save(mapping_only, tmp_path / "mapping.pt")
    expect_refusal(tmp_path / "mapping.pt", "generator")
    ros = torch.load(write_rosinality(net.state_dict(), net.config, tmp_path / "r.pt"), weights_only=True)
    del ros["g_ema"]["convs.1.conv.weight"]
    torch.save(ros, tmp_path / "ros-missing.pt")
    expect_refusal(tmp_path / "ros-missing.pt")
    torch.save({"model": torch.zeros(3)}, tmp_path / "other.pt")
    expect_refusal(tmp_path / "other.pt")


@pytest.mark.parametrize("fmt", ["safetensors", "rosinality", "nvlabs-state-dict"])
def test_nan_weights_are_refused(tmp_path: Path, fmt: str) -> None:
    net = random_net(GeneratorConfig(**TINY))
    with torch.no_grad():
        net.synthesis.b8.conv0.weight[0, 0, 0, 0] = float("nan")
    path = {"safetensors": lambda: save_safetensors(net, tmp_path / "nan.safetensors"),
            "rosinality": lambda: write_rosinality(net.state_dict(), net.config, tmp_path / "nan.pt"),
            "nvlabs-state-dict": lambda: torch.save(net.state_dict(), tmp_path / "nan-sd.pt") or tmp_path / "nan-sd.pt",
            }[fmt]()
    expect_refusal(path, "NaN")


def test_huge_size_claims_are_refused(tmp_path: Path) -> None:
    header = json.dumps({"__metadata__": {"config": GeneratorConfig(**TINY).to_json()},
                         "mapping.w_avg": {"dtype": "F32", "shape": [2**40], "data_offsets": [0, 2**42]}}).encode()
    claim = tmp_path / "claim.safetensors"
    claim.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 64)
    expect_refusal(claim)
    header_len = tmp_path / "header.safetensors"
    header_len.write_bytes(struct.pack("<Q", 2**62) + b'{"a": 1}' + b"\0" * 64)
    expect_refusal(header_len)


def test_unsafe_torch_zip_is_refused_naming_the_global(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    torch.save({"g_ema": Payload(os.system, f"touch {marker}")}, path)
    expect_refusal(path, "disallowed global", "system")  # named posix.system, os.system's real home
    assert not marker.exists()


# -- other configurations, every writable format ---------------------------------------------------
CONFIGS = {
    "z16-w24-hidden20": GeneratorConfig(resolution=8, z_dim=16, w_dim=24, mapping_layers=3, mapping_features=20,
                                        channels={4: 16, 8: 8}),
    "res4": GeneratorConfig(resolution=4, z_dim=8, w_dim=8, mapping_layers=1, channels={4: 8}),
    "res32": GeneratorConfig(resolution=32, z_dim=16, w_dim=16, mapping_layers=2,
                             channels={4: 16, 8: 16, 16: 8, 32: 8}),
    "res64": GeneratorConfig(resolution=64, z_dim=16, w_dim=16, mapping_layers=2,
                             channels={4: 8, 8: 8, 16: 8, 32: 4, 64: 4}),
    "clamp": GeneratorConfig(resolution=8, z_dim=16, w_dim=16, mapping_layers=2, channels={4: 8, 8: 8},
                             conv_clamp=0.5),
    "conditional": GeneratorConfig(resolution=8, z_dim=16, w_dim=16, c_dim=5, embed_features=12, mapping_layers=2,
                                   channels={4: 8, 8: 8}),
}
NVLABS_ONLY = {"clamp", "conditional"}  # rosinality's layout has no clamp and no class embedding


def write_format(net: StyleGAN2, fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cfg = net.config
    if fmt == "safetensors":
        return save_safetensors(net, tmp_path / "m.safetensors")
    if fmt == "rosinality":
        return write_rosinality(net.state_dict(), cfg, tmp_path / "m.pt")
    if fmt == "nvlabs-state-dict":
        torch.save(net.state_dict(), tmp_path / "m-state_dict.pt")
        # conv_clamp is the one setting shapes cannot tell; it travels in the JSON beside.
        kwargs = {"z_dim": cfg.z_dim, "c_dim": cfg.c_dim, "synthesis_kwargs": {"conv_clamp": cfg.conv_clamp}}
        (tmp_path / "m-init_kwargs.json").write_text(json.dumps({"init_kwargs": kwargs}))
        return tmp_path / "m-state_dict.pt"
    return write_nvlabs_pickle(net, tmp_path / "m.pkl", monkeypatch, "raise SystemExit('never run me')",
                               other=random_net(cfg, seed=9))


CASES = [(name, fmt) for name in CONFIGS for fmt in ("safetensors", "rosinality", "nvlabs-state-dict", "nvlabs-pkl")
         if not (name in NVLABS_ONLY and fmt == "rosinality")]


@pytest.mark.parametrize(("name", "fmt"), CASES)
def test_other_configs_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, fmt: str) -> None:
    net = random_net(CONFIGS[name], seed=3)
    G = cg.load_generator(write_format(net, fmt, tmp_path, monkeypatch), device="cpu")
    assert G.config == net.config
    loaded = G.net.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in net.state_dict().items())
    c = torch.eye(5)[[0, 3]] if net.config.c_dim else None
    z = torch.from_numpy(G.seeds_to_z([1, 2]))
    expected = net(z, c, psi=0.7)
    got = G.synthesis(G.seeds_to_ws([1, 2], psi=0.7, c=c))
    assert torch.allclose(got, expected, atol=1e-5, rtol=0)


def test_legacy_torch_save_rosinality_checkpoint(tmp_path: Path) -> None:
    """Checkpoints saved by torch < 1.6 are not zip files; they load the same way."""
    net = random_net(GeneratorConfig(**TINY))
    ckpt = torch.load(write_rosinality(net.state_dict(), net.config, tmp_path / "r.pt"), weights_only=True)
    legacy = tmp_path / "legacy.pt"
    torch.save(ckpt, legacy, _use_new_zipfile_serialization=False)
    G = cg.load_generator(legacy, device="cpu")
    assert all(torch.equal(G.net.state_dict()[k], v) for k, v in net.state_dict().items())
    cut = tmp_path / "legacy-cut.pt"
    cut.write_bytes(legacy.read_bytes()[: legacy.stat().st_size // 2])
    expect_refusal(cut)


def test_conditional_models_depend_on_c(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    net = random_net(CONFIGS["conditional"])
    G = cg.load_generator(write_format(net, "nvlabs-state-dict", tmp_path, monkeypatch), device="cpu")
    a = G.seeds_to_ws([1], c=torch.eye(5)[[0]])
    b = G.seeds_to_ws([1], c=torch.eye(5)[[1]])
    assert not torch.allclose(a, b)


def test_non_skip_architectures_are_refused(tmp_path: Path) -> None:
    net = random_net(GeneratorConfig(**TINY))
    torch.save(net.state_dict(), tmp_path / "m-state_dict.pt")
    kwargs = {"synthesis_kwargs": {"architecture": "resnet"}}
    (tmp_path / "m-init_kwargs.json").write_text(json.dumps({"init_kwargs": kwargs}))
    expect_refusal(tmp_path / "m-state_dict.pt", "resnet")


def test_state_dict_without_json_infers_config_from_shapes(tmp_path: Path) -> None:
    net = random_net(CONFIGS["conditional"])
    torch.save(net.state_dict(), tmp_path / "bare.pt")
    config, _, _ = read_checkpoint(tmp_path / "bare.pt")
    assert config == net.config


def test_numpy1_scalar_name_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    net = random_net(GeneratorConfig(**TINY))
    path = write_nvlabs_pickle(net, tmp_path / "np1.pkl", monkeypatch, "raise SystemExit",
                               scalar_module="numpy.core.multiarray")
    assert b"numpy.core.multiarray" in path.read_bytes()
    loaded = restricted_load(path)
    assert loaded["G_ema"].class_name == "Generator"
    assert isinstance(loaded["G_ema"].state["_modules"]["mapping"].state["_modules"]["fc0"].state["weight_gain"],
                      np.floating)


def test_rosinality_without_latent_avg_computes_it(tmp_path: Path) -> None:
    net = random_net(GeneratorConfig(**TINY))
    ckpt = torch.load(write_rosinality(net.state_dict(), net.config, tmp_path / "r.pt"), weights_only=True)
    del ckpt["latent_avg"]
    torch.save(ckpt, tmp_path / "no-avg.pt")
    G = cg.load_generator(tmp_path / "no-avg.pt", device="cpu")
    assert "RandomState(1013)" in G.meta["w_avg_source"]
    z = np.random.RandomState(1013).randn(4096, 32).astype(np.float32)
    with torch.no_grad():
        expected = net.mapping(torch.from_numpy(z)).mean(0)
    assert torch.allclose(G.w_avg, expected, atol=1e-5)


# -- property: any small config survives the tensor-only formats --------------------------------------
@st.composite
def small_configs(draw: st.DrawFn) -> GeneratorConfig:
    resolution = draw(st.sampled_from([4, 8, 16]))
    w_dim = draw(st.integers(2, 12))
    layers = draw(st.integers(1, 3))
    res_list = [2**i for i in range(2, resolution.bit_length())]
    return GeneratorConfig(resolution=resolution, z_dim=draw(st.integers(1, 12)), w_dim=w_dim,
                           mapping_layers=layers,
                           mapping_features=draw(st.none() | st.integers(2, 12)) if layers > 1 else None,
                           channels={r: draw(st.integers(1, 6)) for r in res_list},
                           img_channels=draw(st.sampled_from([1, 3, 4])))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cfg=small_configs(), fmt=st.sampled_from(["rosinality", "nvlabs-state-dict"]))
def test_configs_are_inferred_from_shapes(tmp_path: Path, cfg: GeneratorConfig, fmt: str) -> None:
    if cfg.mapping_features == cfg.w_dim:
        cfg.mapping_features = None  # the same model; shapes cannot tell the two spellings apart
    net = random_net(cfg)
    path = tmp_path / f"{fmt}.pt"
    if fmt == "rosinality":
        write_rosinality(net.state_dict(), cfg, path)
    else:
        torch.save(net.state_dict(), path)
    config, state, _ = read_checkpoint(path)
    assert config == cfg
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())

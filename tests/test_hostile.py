"""Hostile model files (issue 9): each is refused in seconds with a CheckpointError, before any
large allocation. Every file is generated here at run time; none is committed.
"""
from __future__ import annotations

import io
import os
import json
import struct
import time
import zipfile
from pathlib import Path

import pytest
import torch

import clothinggan as cg
from clothinggan.checkpoints import read_checkpoint
from clothinggan.errors import CheckpointError
from clothinggan.formats.rosinality import write_rosinality
from clothinggan.formats.safe_unpickle import UnsafePickleError
from clothinggan.networks import GeneratorConfig, StyleGAN2

TINY = dict(resolution=16, z_dim=32, w_dim=32, mapping_layers=2, channels={4: 32, 8: 32, 16: 16})
SECONDS = 5.0


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("CLOTHINGGAN_CACHE", str(cache))
    return cache


def refused(path: Path, *words: str) -> str:
    """load_generator raises CheckpointError (nothing else) within SECONDS, naming ``words``."""
    start = time.perf_counter()
    with pytest.raises(CheckpointError) as info:
        cg.load_generator(path, device="cpu")
    assert time.perf_counter() - start < SECONDS
    message = str(info.value)
    for word in words:
        assert word in message, message
    return message


def safetensors_bytes(config: dict | str, tensors: dict | None = None, meta: str = "{}") -> bytes:
    """A hand-written safetensors file: metadata with ``config`` (any JSON), optional tiny tensors."""
    header: dict = {"__metadata__": {"config": config if isinstance(config, str) else json.dumps(config),
                                     "meta": meta}}
    data = b""
    for name, (shape, values) in (tensors or {}).items():
        raw = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def tiny_net() -> StyleGAN2:
    torch.manual_seed(0)
    return StyleGAN2(GeneratorConfig(**TINY)).eval()


# -- item 1: tiny files declaring huge networks ----------------------------------------------------
HUGE = {
    "4096 channels at 1024 px": dict(resolution=1024, channels={str(2**i): 4096 for i in range(2, 11)}),
    "32 mapping layers of 4096": dict(mapping_layers=32, mapping_features=4096),
    "w_dim 65536": dict(w_dim=65536),
    "200000 layers": dict(mapping_layers=200_000),
    "512 channels at 512 px": dict(resolution=512, channels={str(2**i): 512 for i in range(2, 10)}),
    "100k channel entries": dict(channels={str(i): 8 for i in range(100_000)}),
    "a string resolution": dict(resolution="64"),
    "a float w_dim": dict(w_dim=512.0),
    "nan clamp": dict(conv_clamp=float("nan")),
}


@pytest.mark.parametrize("name", list(HUGE))
def test_configs_beyond_a_stylegan2_are_refused_before_allocating(tmp_path: Path, name: str) -> None:
    path = tmp_path / "huge.safetensors"
    path.write_bytes(safetensors_bytes(HUGE[name], {"mapping.w_avg": ([1], [0.0])}))
    assert path.stat().st_size < 2_000_000
    message = refused(path, "invalid generator config")
    assert "Error)" not in message  # one sentence, not an exception class name


def test_the_bound_is_said_in_the_message(tmp_path: Path) -> None:
    path = tmp_path / "wide.safetensors"
    path.write_bytes(safetensors_bytes(dict(w_dim=65536)))
    assert "at most 1024" in refused(path)


def test_parameter_count_is_exact_and_bounded() -> None:
    for cfg in (GeneratorConfig(**TINY), GeneratorConfig(resolution=8, z_dim=16, w_dim=16, c_dim=5,
                                                          embed_features=12, mapping_layers=2,
                                                          channels={4: 8, 8: 8})):
        assert cfg.parameter_count() == sum(v.numel() for v in StyleGAN2(cfg).state_dict().values())
    assert GeneratorConfig(resolution=1024).parameter_count() < 40_000_000  # NVlabs-sized models load
    with pytest.raises(ValueError, match="parameters"):
        GeneratorConfig(resolution=1024, channels={2**i: 1024 for i in range(2, 11)})


def test_tensors_are_checked_against_the_config_before_reading_them(tmp_path: Path) -> None:
    path = tmp_path / "few.safetensors"
    path.write_bytes(safetensors_bytes(dict(TINY, resolution=1024, channels={}), {"mapping.w_avg": ([32], [0.0] * 32)}))
    refused(path, "missing")


# -- item 3: untyped errors ------------------------------------------------------------------------
def test_deeply_nested_safetensors_metadata_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep.safetensors"
    net = tiny_net()
    from clothinggan.checkpoints import save_safetensors

    save_safetensors(net, path)
    deep = "[" * 100_000 + "]" * 100_000
    from safetensors.torch import load_file, save_file

    metadata = {"format": "clothinggan-generator", "format_version": "1", "config": net.config.to_json(),
                "meta": deep}
    save_file(load_file(str(path)), str(path), metadata=metadata)
    refused(path)
    metadata["config"] = deep
    save_file(load_file(str(path)), str(path), metadata=metadata)
    refused(path)


def rosinality_dict(tmp_path: Path) -> dict:
    net = tiny_net()
    return torch.load(write_rosinality(net.state_dict(), net.config, tmp_path / "ros.pt"), weights_only=True)


@pytest.mark.parametrize("key, value", [
    ("noises.noise_0", torch.tensor(0.5)),          # a 0-d noise buffer
    ("conv1.noise.weight", torch.zeros(2)),         # a 2-element noise strength
    ("style.2.weight", torch.zeros(7, 5)),          # a wrong mapping-layer shape
])
def test_malformed_rosinality_tensors_are_refused(tmp_path: Path, key: str, value: torch.Tensor) -> None:
    ckpt = rosinality_dict(tmp_path)
    ckpt["g_ema"][key] = value
    ckpt.pop("latent_avg")  # the mapping would run on the bad tensors to compute w_avg
    torch.save(ckpt, tmp_path / "bad.pt")
    refused(tmp_path / "bad.pt")


def test_zero_dim_nvlabs_weight_is_refused(tmp_path: Path) -> None:
    state = tiny_net().state_dict()
    state["mapping.fc0.weight"] = torch.tensor(1.0)
    torch.save(state, tmp_path / "nv.pt")
    refused(tmp_path / "nv.pt", "does not hold a StyleGAN2 generator")


def test_stride_zero_views_are_refused_before_copying(tmp_path: Path) -> None:
    state = tiny_net().state_dict()
    state["synthesis.b16.conv1.noise_const"] = torch.zeros(1).expand(60_000, 60_000)  # 14 GB once copied
    torch.save(state, tmp_path / "view.pt")
    refused(tmp_path / "view.pt", "storage")


def test_init_kwargs_that_are_not_numbers_are_refused(tmp_path: Path) -> None:
    from clothinggan.formats.nvlabs import from_state_dict

    with pytest.raises(CheckpointError):
        from_state_dict(tmp_path / "x.pkl", tiny_net().state_dict(),
                        {"mapping_kwargs": {"lr_multiplier": [1]}}, "nvlabs-pkl")


# -- item 2: pickle walks are bounded ------------------------------------------------------------
def test_shared_subobjects_cannot_make_the_walk_exponential() -> None:
    from clothinggan.formats.nvlabs import _plain

    laugh: list = ["ha"]
    for _ in range(60):
        laugh = [laugh, laugh]  # 2^60 leaves, 60 objects
    start = time.perf_counter()
    with pytest.raises(UnsafePickleError):
        _plain({"a": laugh})
    # 2^60 leaves would take centuries to walk; the refusal comes at once (5 s: a busy CI machine).
    assert time.perf_counter() - start < 5


def test_the_converter_runs_under_limits() -> None:
    from clothinggan.formats import nvlabs

    assert nvlabs.CONVERT_TIMEOUT_S <= 60 and nvlabs.CONVERT_MEMORY_BYTES <= 8 * 2**30


def test_the_converter_limits_its_own_memory(tmp_path: Path) -> None:
    from clothinggan.formats import nvlabs

    # What the converter child does first: past its RLIMIT_AS an allocation fails with MemoryError.
    script = tmp_path / "hog.py"
    script.write_text("import sys\nfrom clothinggan.formats import nvlabs\nnvlabs.limit_resources()\n"
                      "x = bytearray(2 * 2**30)\n")
    import subprocess
    import sys
    import os

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]),
               **{nvlabs.MEMORY_ENV: str(200 * 2**20), nvlabs.SECONDS_ENV: "20"})
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode != 0 and "MemoryError" in proc.stderr


# -- items 6 and 10: zip bombs and bit flips in .pt files ---------------------------------------------
def deflated_copy(src: Path, dst: Path, extra: bytes = b"") -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info) + (extra if info.filename.endswith("data.pkl") else b""))


def test_a_deflated_pt_bomb_is_refused_from_declared_sizes(tmp_path: Path) -> None:
    torch.save({"g_ema": {"x": torch.zeros(1)}}, tmp_path / "small.pt")
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(tmp_path / "small.pt") as zin, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info))
        zout.writestr("small/data/1", b"\0" * 300 * 2**20)  # 300 MB in ~300 KB
    assert bomb.stat().st_size < 2 * 2**20
    refused(bomb, "zip bomb")


def test_a_bit_flipped_pt_is_refused(tmp_path: Path) -> None:
    path = write_rosinality(tiny_net().state_dict(), tiny_net().config, tmp_path / "ros.pt")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = max(archive.infolist(), key=lambda i: i.file_size)  # the biggest tensor's storage
    offset = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + info.file_size // 2
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))
    refused(path, "checksum")


def test_good_files_still_load(tmp_path: Path) -> None:
    net = tiny_net()
    path = write_rosinality(net.state_dict(), net.config, tmp_path / "ros.pt")
    config, _, _ = read_checkpoint(path)
    assert config == net.config


# -- item 9: the app's model path box ------------------------------------------------------------
def test_model_paths_resolve_inside_the_configured_folders_only(tmp_path, monkeypatch):
    from clothinggan.errors import ModelPathError
    from clothinggan.paths import MODEL_DIRS_ENV, checked_model_path, model_dirs

    a, b, elsewhere = (tmp_path / n for n in ("a", "b", "elsewhere"))
    for folder in (a, b, elsewhere):
        folder.mkdir()
    (a / "m.safetensors").write_bytes(b"x")
    (b / "n.pkl").write_bytes(b"x")
    (elsewhere / "secret.pt").write_bytes(b"x")
    (a / "link.pt").symlink_to(elsewhere / "secret.pt")  # a link out of a model folder is still outside
    monkeypatch.setenv(MODEL_DIRS_ENV, f"{a}{os.pathsep}{b}")
    assert model_dirs() == [a.resolve(), b.resolve()]
    assert checked_model_path(str(a / "m.safetensors")) == (a / "m.safetensors").resolve()
    assert checked_model_path(f"  {b}/../b/n.pkl ") == (b / "n.pkl").resolve()
    for bad, words in [(elsewhere / "secret.pt", "model folders"), (a / "link.pt", "model folders"),
                       (a / "../elsewhere/secret.pt", "model folders"), ("/proc/self/environ", "model folders"),
                       (a / "missing.pt", "no model file"), (a, "not a model file")]:
        with pytest.raises(ModelPathError, match=words):
            checked_model_path(str(bad))

"""A small CNN that guesses a photo's W+ code in one forward pass, the starting point of inversion.

It is tied to one generator: the file carries that generator's fingerprint and refuses any other.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from clothinggan.errors import CheckpointError, ModelMismatchError

ENCODER_FORMAT = "clothinggan-encoder"
ENCODER_SUFFIX = ".encoder.safetensors"


@dataclass
class EncoderConfig:
    """Shapes of an encoder; saved as JSON beside its weights.

    num_ws, w_dim: the W+ shape of the generator it serves.
    input_size:    images are resized to this square size first (64: cheap, and enough for a guess).
    channels:      feature maps after the stem and after each 2× downsampling stage.
    hidden:        width of the fully connected layer before the W+ head.
    """

    num_ws: int
    w_dim: int
    input_size: int = 64
    channels: tuple[int, ...] = field(default=(32, 64, 128, 256))
    hidden: int = 512

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        if self.num_ws < 1 or self.w_dim < 1:
            raise ValueError(f"num_ws and w_dim must be positive, got {self.num_ws}, {self.w_dim}")
        if self.input_size % 2 ** len(self.channels) or self.input_size < 2 ** len(self.channels):
            raise ValueError(f"input_size {self.input_size} must be divisible by 2**{len(self.channels)}")

    @property
    def final_size(self) -> int:
        return self.input_size // 2 ** len(self.channels)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "EncoderConfig":
        data = json.loads(text)
        data["channels"] = tuple(data.get("channels", ()))
        return cls(**data)


def conv_block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    # GroupNorm, not BatchNorm: batches are small in training and size 1 at inference.
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1),
                         nn.GroupNorm(min(8, c_out), c_out), nn.LeakyReLU(0.2))


class Encoder(nn.Module):
    """Image (N, 3, H, W) in [-1, 1] → W+ (N, num_ws, w_dim) = w_avg + w_std · delta.

    Predicting a delta in units of W's per-dimension spread keeps the regression well scaled, and
    the zero-initialised head makes an untrained encoder answer exactly w_avg.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        ch = config.channels
        # A strided stem: full-resolution convolutions cost the most and a guess needs them least.
        layers: list[nn.Module] = [conv_block(3, ch[0], 2)]
        for i, (c_in, c_out) in enumerate(zip((ch[0],) + ch[:-1], ch)):
            layers += [conv_block(c_in, c_out, 1 if i == 0 else 2), conv_block(c_out, c_out, 1)]
        self.features = nn.Sequential(*layers)
        self.squeeze = nn.Conv2d(ch[-1], ch[-1] // 2, 1)  # fewer head weights, spatial layout kept
        self.fc = nn.Linear(ch[-1] // 2 * config.final_size ** 2, config.hidden)
        self.head = nn.Linear(config.hidden, config.num_ws * config.w_dim)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.register_buffer("w_avg", torch.zeros(config.w_dim))
        self.register_buffer("w_std", torch.ones(config.w_dim))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (N, 3, H, W), got {tuple(images.shape)}")
        size = self.config.input_size
        if images.shape[-2:] != (size, size):
            images = F.interpolate(images, size=(size, size), mode="area" if images.shape[-1] > size else "bilinear",
                                   **({} if images.shape[-1] > size else {"align_corners": False}))
        x = F.leaky_relu(self.squeeze(self.features(images)), 0.2).flatten(1)
        delta = self.head(F.leaky_relu(self.fc(x), 0.2))
        delta = delta.view(-1, self.config.num_ws, self.config.w_dim)
        return self.w_avg + self.w_std * delta

    def set_w_statistics(self, w_avg: torch.Tensor, w_std: torch.Tensor) -> None:
        self.w_avg.copy_(w_avg.reshape(-1))
        self.w_std.copy_(w_std.reshape(-1).clamp_min(1e-4))


def new_encoder(G: Any, n_samples: int = 4096, seed: int = 0, **config: Any) -> Encoder:
    """An untrained encoder for G, with W statistics measured from G's mapping network."""
    enc = Encoder(EncoderConfig(num_ws=G.num_ws, w_dim=G.w_dim, **config))
    w = G.sample_ws(n_samples, seed=seed).float()
    enc.set_w_statistics(G.w_avg.detach().cpu().float(), w.std(dim=0))
    return enc


def save_encoder(encoder: Encoder, path: str | Path, fingerprint: str,
                 meta: dict[str, Any] | None = None) -> Path:
    """Write weights + config + the generator's fingerprint as one safetensors file."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    metadata = {"format": ENCODER_FORMAT, "config": encoder.config.to_json(),
                "generator_fingerprint": fingerprint, "meta": json.dumps(meta or {}, sort_keys=True)}
    save_file(state, str(path), metadata=metadata)
    return path


def read_encoder_fingerprint(path: str | Path) -> str:
    """The fingerprint of the generator an encoder file was trained for (reads only the header)."""
    return _read_metadata(Path(path))["generator_fingerprint"]


def load_encoder(path: str | Path, fingerprint: str | None = None) -> Encoder:
    """Load an encoder; with ``fingerprint``, refuse (ModelMismatchError) one trained for another model."""
    from safetensors.torch import load_file

    path = Path(path)
    metadata = _read_metadata(path)
    if fingerprint is not None and metadata["generator_fingerprint"] != fingerprint:
        raise ModelMismatchError(f"The encoder {path.name} was trained for model {metadata['generator_fingerprint']}, "
                                 f"not for this model ({fingerprint}).")
    try:
        config = EncoderConfig.from_json(metadata["config"])
        encoder = Encoder(config)
        encoder.load_state_dict(load_file(str(path)), strict=True)
    except (ValueError, TypeError, RuntimeError, KeyError) as exc:
        raise CheckpointError(path, f"is not a valid encoder ({exc})") from None
    return encoder.eval().requires_grad_(False)


def encoder_path_for(G: Any) -> Path | None:
    """Where a model's encoder is shipped: ``<model stem>.encoder.safetensors`` beside the model file."""
    source = G.meta.get("source")
    if not source and str(G.name).startswith("default"):
        from clothinggan.loading import DEFAULT_MODEL_FILE

        source = DEFAULT_MODEL_FILE
    if not source:
        return None
    source = Path(source)
    return source.with_name(source.name.split(".")[0] + ENCODER_SUFFIX)


def find_encoder(G: Any) -> Encoder | None:
    """The shipped encoder of G if there is one trained for exactly this model, else None."""
    path = encoder_path_for(G)
    if path is None or not path.is_file():
        return None
    try:
        if read_encoder_fingerprint(path) != G.fingerprint:
            return None  # e.g. the placeholder model next to the trained model's encoder
        return load_encoder(path, G.fingerprint).to(G.device)
    except (CheckpointError, ModelMismatchError):
        return None


def _read_metadata(path: Path) -> dict[str, str]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(path, f"cannot be read as safetensors ({exc})") from None
    if metadata.get("format") != ENCODER_FORMAT or "generator_fingerprint" not in metadata:
        raise CheckpointError(path, "is not a clothinggan encoder file")
    return metadata

"""StyleGAN2 generator (mapping + synthesis) in plain PyTorch ops.

Parameter names and numerics follow NVlabs stylegan2-ada-pytorch, so its state dicts load with no
renaming and rosinality's with a fixed key map; no custom CUDA kernels, so it runs on CPU, CUDA
and MPS. Equalised learning rate is kept (weights stored unscaled, gains applied in forward).
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Callable, Literal, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from clothinggan import packed_conv

NoiseMode = Literal["const", "random", "none"]
T = TypeVar("T")
LRELU_GAIN = math.sqrt(2.0)
BLUR_TAPS = (1.0, 3.0, 3.0, 1.0)


def default_channels(resolution: int, channel_base: int = 16384, channel_max: int = 512) -> dict[int, int]:
    """Channel count per resolution as NVlabs computes it: ``min(channel_base // res, channel_max)``."""
    return {2**i: min(channel_base // 2**i, channel_max) for i in range(2, int(math.log2(resolution)) + 1)}


# What a StyleGAN2 generator can be. NVlabs' largest (1024 px, config-f) has 512 channels, 8 mapping
# layers of 512, w_dim 512 and about 30M parameters; these bounds leave room for every published
# variant while refusing a tiny file that asks for gigabytes before anything is allocated.
MAX_RESOLUTION = 1024
MAX_CHANNELS = 1024
MAX_PARAMETERS = 120_000_000          # 480 MB of float32
MAX_ACTIVATION_BYTES = 256 * 2**20    # largest feature map of one image, float32
MAX_CONFIG_JSON_CHARS = 100_000
BOUNDS = {"z_dim": 1024, "w_dim": 1024, "mapping_features": 1024, "embed_features": 1024,
          "mapping_layers": 16, "c_dim": 10_000, "img_channels": 4}


def _check_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, got {value!r:.40}")


@dataclass
class GeneratorConfig:
    """Everything that fixes a generator's shapes; saved as JSON next to the weights.

    resolution:      output size in pixels, a power of two from 4 to 1024.
    z_dim:           input latent size (0 is not supported).
    w_dim:           intermediate latent (W) size.
    c_dim:           class-conditioning size; 0 for unconditional models.
    mapping_layers:  number of fully connected layers in the mapping network.
    mapping_features: width of the hidden mapping layers (defaults to w_dim).
    embed_features:  width of the class embedding (defaults to w_dim when c_dim > 0).
    channels:        feature maps per resolution, {4: 512, 8: 512, ...}.
    img_channels:    colour channels of the output.
    mapping_lr_multiplier: equalised-lr multiplier of the mapping layers (0.01 in StyleGAN2).
    conv_clamp:      clamp of every layer output (None: no clamp), as in NVlabs training configs.
    """

    resolution: int = 64
    z_dim: int = 512
    w_dim: int = 512
    c_dim: int = 0
    mapping_layers: int = 8
    mapping_features: int | None = None
    embed_features: int | None = None
    channels: dict[int, int] = field(default_factory=dict)
    img_channels: int = 3
    mapping_lr_multiplier: float = 0.01
    conv_clamp: float | None = None

    def __post_init__(self) -> None:
        _check_int("resolution", self.resolution)
        channels = self.channels or default_channels(min(max(self.resolution, 4), MAX_RESOLUTION))
        if not isinstance(channels, dict) or len(channels) > 9:
            raise ValueError("channels must map at most 9 resolutions (4 to 1024 px) to feature counts")
        try:
            self.channels = {int(k): int(v) for k, v in channels.items()}
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"channels must map resolutions to whole numbers, got {channels!r:.100}") from None
        self.validate()

    def validate(self) -> None:
        """Raise ValueError with a clear sentence when the numbers cannot form a generator, or form
        one larger than any StyleGAN2 (see ``BOUNDS``); checked before anything is allocated."""
        for name in ("resolution", "z_dim", "w_dim", "c_dim", "mapping_layers", "img_channels"):
            _check_int(name, getattr(self, name))
        for name in ("mapping_features", "embed_features"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name))
        log2 = math.log2(self.resolution) if self.resolution > 0 else -1
        if log2 != int(log2) or not 2 <= log2 <= 10:
            raise ValueError(f"resolution must be a power of two from 4 to 1024, got {self.resolution}")
        for name in ("z_dim", "w_dim", "mapping_layers", "img_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.c_dim < 0:
            raise ValueError(f"c_dim must be >= 0, got {self.c_dim}")
        for name in ("mapping_features", "embed_features"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1 (or null), got {getattr(self, name)}")
        for name, limit in BOUNDS.items():
            value = getattr(self, name, None)
            if isinstance(value, int) and value > limit:
                raise ValueError(f"{name} is {value}, more than a StyleGAN2 can have (at most {limit})")
        for name in ("mapping_lr_multiplier", "conv_clamp"):
            value = getattr(self, name)
            if value is None and name == "conv_clamp":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value <= 0:
                raise ValueError(f"{name} must be a finite positive number, got {value!r}")
        needed = [2**i for i in range(2, int(log2) + 1)]
        extra = sorted(set(self.channels) - set(needed))
        if extra:
            raise ValueError(f"channels names resolutions {extra[:4]} that a {self.resolution}-px generator "
                             "does not have")
        missing = [r for r in needed if self.channels.get(r, 0) < 1]
        if missing:
            raise ValueError(f"channels has no positive count for resolutions {missing}")
        too_wide = {r: c for r, c in self.channels.items() if c > MAX_CHANNELS}
        if too_wide:
            raise ValueError(f"channels {too_wide} exceed {MAX_CHANNELS}, the most a StyleGAN2 layer can have")
        params = self.parameter_count()
        if params > MAX_PARAMETERS:
            raise ValueError(f"it would have {params / 1e6:.0f}M parameters; a StyleGAN2 generator has at most "
                             f"{MAX_PARAMETERS // 10**6}M (4× NVlabs' 1024-px config-f)")
        activation = self.activation_bytes()
        if activation > MAX_ACTIVATION_BYTES:
            raise ValueError(f"one image would need {activation / 2**20:.0f} MiB for its largest layer; "
                             f"the limit is {MAX_ACTIVATION_BYTES // 2**20} MiB (2× NVlabs' 1024-px config-f)")

    def parameter_count(self) -> int:
        """Parameters and persistent buffers of the network this config builds, from arithmetic alone."""
        hidden = self.mapping_features or self.w_dim
        embed = (self.embed_features or self.w_dim) if self.c_dim > 0 else 0
        total = (self.c_dim * embed + embed) if self.c_dim > 0 else 0
        features = [self.z_dim + embed] + [hidden] * (self.mapping_layers - 1) + [self.w_dim]
        total += sum(features[i] * features[i + 1] + features[i + 1] for i in range(self.mapping_layers))
        total += self.w_dim  # w_avg
        prev = 0
        for res in self.block_resolutions:
            out = self.channels[res]
            layer = lambda cin, cout: self.w_dim * cin + cin + cout * cin * 9 + cout + 1 + res * res  # noqa: E731
            total += out * res * res if prev == 0 else layer(prev, out)
            total += layer(out, out)
            total += self.w_dim * out + out + self.img_channels * out + self.img_channels
            prev = out
        return total

    def activation_bytes(self) -> int:
        """float32 bytes of the largest feature map of one image (the up-convolution's output)."""
        return max(4 * self.channels[res] * (res + 1) ** 2 for res in self.block_resolutions)

    @property
    def num_ws(self) -> int:
        """Number of per-layer w vectors the synthesis network takes (2·log2(res) − 2)."""
        return 2 * int(math.log2(self.resolution)) - 2

    @property
    def block_resolutions(self) -> list[int]:
        return [2**i for i in range(2, int(math.log2(self.resolution)) + 1)]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "GeneratorConfig":
        if not isinstance(text, str) or len(text) > MAX_CONFIG_JSON_CHARS:
            raise ValueError("the config is not a JSON text of at most 100,000 characters")
        try:
            data = json.loads(text)
        except RecursionError:
            raise ValueError("the config JSON is nested too deeply") from None
        if not isinstance(data, dict):
            raise ValueError("the config JSON is not an object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown generator config fields: {sorted(unknown)}")
        return cls(**data)


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """PixelNorm of StyleGAN: scale each vector to unit root-mean-square."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def blur_filter(device: torch.device | None = None) -> torch.Tensor:
    """The 4×4 binomial FIR filter [1,3,3,1]ᵀ[1,3,3,1], normalised to sum 1.

    Built from Python numbers (each tap is an exact k/64), so no tensor arithmetic runs when a
    network is built on the meta device.
    """
    total = sum(BLUR_TAPS) ** 2
    return torch.tensor([[a * b / total for b in BLUR_TAPS] for a in BLUR_TAPS], device=device)


def _init_randn(*shape: int, scale: float = 1.0) -> torch.Tensor:
    """N(0, 1)·scale initial values; uninitialised under ``torch.device("meta")``.

    Checkpoint loading builds a network on the meta device to learn its tensor shapes; a random
    init or a division there would first import sympy and torch._refs (about 2 s of cold start).
    """
    if torch.empty(0).device.type == "meta":
        return torch.empty(*shape)
    x = torch.randn(*shape)
    return x / scale if scale != 1.0 else x


def filter2d(x: torch.Tensor, f: torch.Tensor, pad: tuple[int, int], gain: float = 1.0) -> torch.Tensor:
    """Depthwise FIR filter with explicit (before, after) padding on both axes (upfirdn2d, up=down=1)."""
    c = x.shape[1]
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    # The filter is symmetric, so correlation (conv2d) equals convolution.
    weight = (f * gain).to(x.dtype)[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(x, weight, groups=c)


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """2× upsampling by zero insertion followed by the FIR filter (NVlabs upsample2d, gain 4)."""
    n, c, h, w = x.shape
    x = x.reshape(n, c, h, 1, w, 1)
    x = F.pad(x, [0, 1, 0, 0, 0, 1]).reshape(n, c, h * 2, w * 2)
    return filter2d(x, f, pad=(2, 1), gain=4.0)


def upsample_matrix(n: int) -> torch.Tensor:
    """(2n, n) matrix of one axis of ``upsample2d``: zero insertion, then the 1-D taps with gain 2.

    ``out[i] = Σ_j taps[i + 1 − 2j]·x[j]``; applied on both axes it equals ``upsample2d``.
    """
    taps = torch.tensor(BLUR_TAPS) * (2.0 / sum(BLUR_TAPS))
    k = torch.arange(2 * n)[:, None] + 1 - 2 * torch.arange(n)[None, :]
    inside = (k >= 0) & (k < len(BLUR_TAPS))
    return torch.where(inside, taps[k.clamp(0, len(BLUR_TAPS) - 1)], torch.zeros(()))


def bias_act(x: torch.Tensor, bias: torch.Tensor, lrelu: bool, clamp: float | None) -> torch.Tensor:
    """Add bias, apply leaky ReLU with gain √2 (or nothing), then clamp like NVlabs' bias_act."""
    x = x + bias.to(x.dtype).reshape(1, -1, 1, 1)
    if lrelu:
        x = F.leaky_relu(x, 0.2) * LRELU_GAIN
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def _mul(x: torch.Tensor, y: torch.Tensor, inplace: bool) -> torch.Tensor:
    return x.mul_(y) if inplace else x * y


def _add(x: torch.Tensor, y: torch.Tensor, inplace: bool) -> torch.Tensor:
    return x.add_(y) if inplace else x + y


def version_key(tensors: "list[torch.Tensor] | tuple[torch.Tensor, ...]") -> tuple:
    """Identity and in-place version of each tensor: a cache keyed on it is invalidated by an
    optimiser step or ``load_state_dict`` (both in place) as soon as they happen."""
    return tuple((id(t), t._version) for t in tensors)


def memo(module: nn.Module, slot: str, key: tuple, build: "Callable[[], T]") -> "T":
    """``build()``, kept on ``module`` under ``slot`` until ``key`` changes.

    Inference reuses tensors that depend on parameters only (gained, transposed, stacked
    weights); the key holds the dtype, device and ``version_key`` of those parameters. Callers
    name the dtype in ``slot`` too, so bf16 (autocast) and fp32 renders in one process do not
    evict each other. A plain attribute, not a buffer: it never reaches a state dict. Racing
    threads at worst build twice.
    """
    slot = slot.replace(".", "_")  # "_plan.torch.float32" is no attribute name torch.compile can trace
    cached = module.__dict__.get(slot)
    if cached is None or cached[0] != key:
        cached = (key, build())
        module.__dict__[slot] = cached
    return cached[1]


def fold_blur(weight: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Convolve each 3×3 kernel with the 4×4 blur (gain 4) into one 6×6 kernel."""
    o, i, kh, kw = weight.shape
    k = F.pad(weight.reshape(o * i, 1, kh, kw), [3, 3, 3, 3])
    return F.conv2d(k, (f * 4).to(weight.dtype)[None, None]).reshape(o, i, kh + 3, kw + 3)


class FullyConnectedLayer(nn.Module):
    """Linear layer with equalised learning rate (weights stored as N(0,1)/lr_multiplier)."""

    def __init__(self, in_features: int, out_features: int, lrelu: bool = False,
                 lr_multiplier: float = 1.0, bias_init: float = 0.0) -> None:
        super().__init__()
        self.lrelu = lrelu
        self.weight = nn.Parameter(_init_randn(out_features, in_features, scale=lr_multiplier))
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():  # the ReLU's gain scales weights and bias, not the outputs
            out_gain = LRELU_GAIN if self.lrelu else 1.0
            w = self.weight.to(x.dtype) * (self.weight_gain * out_gain)
            b = self.bias.to(x.dtype) * (self.bias_gain * out_gain)
            x = torch.addmm(b.unsqueeze(0), x, w.t())
            return F.leaky_relu(x, 0.2) if self.lrelu else x
        w, b = self.gained(x.dtype)
        x = torch.addmm(b, x, w.t())
        # In place when nothing records a graph: the same numbers, two fewer passes over memory
        # (a quarter of the mapping's time at PCA batch sizes).
        return F.leaky_relu(x, 0.2, inplace=True).mul_(LRELU_GAIN) if self.lrelu else x

    def gained(self, dtype: torch.dtype, keep: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight·gain, bias·gain as a row), the numbers ``forward`` multiplies by, made once per
        parameter version (``keep``): at batch 1 these two multiplies were a third of a layer's
        time. ``keep=False`` computes them without keeping a copy (the synthesis stacks its own)."""
        def build() -> tuple[torch.Tensor, torch.Tensor]:
            return (self.weight.detach().to(dtype) * self.weight_gain,
                    (self.bias.detach().to(dtype) * self.bias_gain).unsqueeze(0))
        if not keep:
            return build()
        return memo(self, f"_gained.{dtype}", (dtype, self.weight.device, *version_key((self.weight, self.bias))),
                    build)


class MappingNetwork(nn.Module):
    """z (and optional class c) → w, with the running average w_avg used for truncation."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = cfg.z_dim, cfg.c_dim, cfg.w_dim
        hidden = cfg.mapping_features or cfg.w_dim
        embed = (cfg.embed_features or cfg.w_dim) if cfg.c_dim > 0 else 0
        if cfg.c_dim > 0:
            self.embed = FullyConnectedLayer(cfg.c_dim, embed)
        features = [cfg.z_dim + embed] + [hidden] * (cfg.mapping_layers - 1) + [cfg.w_dim]
        self.num_layers = cfg.mapping_layers
        for i in range(cfg.mapping_layers):
            layer = FullyConnectedLayer(features[i], features[i + 1], lrelu=True,
                                        lr_multiplier=cfg.mapping_lr_multiplier)
            setattr(self, f"fc{i}", layer)
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """Map (N, z_dim) latents to (N, w_dim); no truncation here (see ``truncate``)."""
        x = normalize_2nd_moment(z)
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"this model is conditional: pass c of shape (N, {self.c_dim})")
            x = torch.cat([x, normalize_2nd_moment(self.embed(c.to(x.dtype)))], dim=1)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        return x

    def truncate(self, w: torch.Tensor, psi: float) -> torch.Tensor:
        """Pull w toward w_avg: w_avg + psi·(w − w_avg). psi 1 changes nothing."""
        if psi == 1:
            return w
        return self.w_avg.to(w.dtype).lerp(w, psi)


class SynthesisLayer(nn.Module):
    """Modulated 3×3 convolution (optionally 2× up), noise, bias and leaky ReLU.

    Modulation is applied to the activations and demodulation as a per-sample output scale: the
    same maths as a per-sample weight, but one shared-weight convolution for the whole batch.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 up: bool, conv_clamp: float | None) -> None:
        super().__init__()
        self.up, self.resolution, self.conv_clamp = up, resolution, conv_clamp
        self.fold_up = False  # see set_fold_upsampling: faster on GPUs, slower on CPUs
        self.channels_last = False  # see set_channels_last: faster oneDNN convolutions on CPUs
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(_init_randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", _init_randn(resolution, resolution))
        self.register_buffer("resample_filter", blur_filter(), persistent=False)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: NoiseMode = "const") -> torch.Tensor:
        styles = self.affine(w)                                   # (N, in)
        weight = self.weight.to(x.dtype)
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # (N, out)
        x = x * styles[:, :, None, None]
        if self.up and self.fold_up:
            # One 6×6 stride-2 transposed conv = the 3×3 one followed by the blur (exact).
            x = F.conv_transpose2d(x, fold_blur(weight, self.resample_filter).transpose(0, 1).contiguous(), stride=2,
                                   padding=2)
        elif self.up:
            # Transposed stride-2 conv, then the blur: NVlabs' conv2d_resample(up=2) exactly.
            x = F.conv_transpose2d(x, weight.transpose(0, 1).contiguous(), stride=2)  # contiguous: 8× faster on CPU
            x = filter2d(x, self.resample_filter, pad=(1, 1), gain=4.0)
        else:
            x = F.conv2d(x, weight, padding=1)
        # The ReLU's gain √2 scales the demodulation, noise and bias (lrelu(c·z) = c·lrelu(z)),
        # not the activations: one pass over them fewer each way in training.
        x = x * (dcoefs * LRELU_GAIN)[:, :, None, None]
        strength = (self.noise_strength * LRELU_GAIN).to(x.dtype)
        if noise_mode == "const":
            x = x + self.noise_const.to(x.dtype) * strength
        elif noise_mode == "random":
            n = x.shape[0]
            noise = torch.randn(n, 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
            x = x + noise * strength
        elif noise_mode != "none":
            raise ValueError(f"noise_mode must be 'const', 'random' or 'none', got {noise_mode!r}")
        x = F.leaky_relu(x + (self.bias * LRELU_GAIN).to(x.dtype).reshape(1, -1, 1, 1), 0.2)
        return x if self.conv_clamp is None else x.clamp(-self.conv_clamp, self.conv_clamp)

    def derived(self, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        """Tensors that depend on the parameters only, made once and remade when a parameter changes.

        Parameter versions are in the key, so an optimiser step or ``load_state_dict`` (both
        in-place) invalidates the entry; a racing thread at worst builds the same tensors twice.
        """
        own, buffers = self._parameters, self._buffers  # dict reads: a quarter of attribute access's cost
        params = (own["weight"], own["bias"], own["noise_strength"], buffers["noise_const"])
        key = (dtype, params[0].device, self.up, self.fold_up, self.channels_last, *version_key(params))
        return memo(self, f"_derived.{dtype}", key, lambda: self._build_derived(dtype))

    def _build_derived(self, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        weight = self.weight.detach().to(dtype)
        out = {"noise": (self.noise_const.to(dtype) * self.noise_strength.detach().to(dtype)),
               "bias": self.bias.detach().to(dtype)}
        if self.up and self.fold_up:
            out["weight"] = fold_blur(weight, self.resample_filter).transpose(0, 1).contiguous(memory_format=fmt)
        elif self.up:
            out["weight"] = weight.transpose(0, 1).contiguous(memory_format=fmt)
            blur = (self.resample_filter * 4.0).to(dtype)[None, None].repeat(weight.shape[0], 1, 1, 1)
            out["blur"] = blur.contiguous(memory_format=fmt)
        else:
            out["weight"] = weight.contiguous(memory_format=fmt)
        return out

    def _noise_and_bias(self, d: dict[str, torch.Tensor]) -> torch.Tensor:
        """The constant noise plus the bias as one (1, C, H, W) tensor in the layer's layout: one
        pass over the activations instead of two. Made on first use only, since a batch-1 render
        (see ``_inference``) puts the bias into the convolution and never needs it."""
        if "noise_bias" not in d:
            fmt = torch.channels_last if self.channels_last else torch.contiguous_format
            both = d["noise"][None, None] + d["bias"].reshape(1, -1, 1, 1)
            d["noise_bias"] = both.contiguous(memory_format=fmt)
        return d["noise_bias"]

    def _packed_weight(self, x: torch.Tensor, d: dict[str, torch.Tensor]) -> "torch.Tensor | None":
        """The convolution's weights reordered once into oneDNN's blocked layout for ``_packed_conv``,
        or None where that path does not apply: off CPUs, outside channels_last, under autograd
        (the packed ops have no backward), or where this PyTorch or CPU lacks the ops (a bf16
        convolution without AVX-512 raises: remembered, and F.conv2d runs instead)."""
        ops = packed_conv.onednn_ops()
        if ops is None or not self.channels_last or self.fold_up or x.device.type != "cpu" or torch.is_grad_enabled():
            return None
        if "packed" not in d:   # packed for x's shape; oneDNN takes it at any batch size
            try:
                d["packed"] = (ops.pack_transposed if self.up else ops.pack)(d["weight"], list(x.shape))
            except RuntimeError:
                d["packed"] = None
        return d["packed"]

    def _packed_conv(self, x: torch.Tensor, packed: torch.Tensor, blur: torch.Tensor) -> torch.Tensor:
        """The convolution (the up-convolution's transposed part) on pre-packed weights.
        ``F.conv2d`` reorders the shared weights on every call, and at 4-8 px sends the convolution
        to an im2col path instead: at 8 px 256→256 the packed call takes 0.62× the time in fp32 and
        0.66× in bf16. The blur stays a depthwise ``F.conv2d``: packing it measured no faster."""
        ops = packed_conv.onednn_ops()
        assert ops is not None
        if not self.up:
            return ops.conv(x, packed)
        return F.conv2d(ops.conv_transposed(x, packed), blur, padding=1, groups=blur.shape[0])

    def _inference(self, x: torch.Tensor, styles: torch.Tensor, dcoefs: torch.Tensor,
                   noise_mode: NoiseMode) -> torch.Tensor:
        """``forward`` for frozen weights, given this layer's styles and demodulation (N, in), (N, out).

        ``SynthesisNetwork`` computes every layer's styles in one batched product and folds the
        previous layer's leaky-ReLU gain √2 into them, so this returns the activation *without* that
        gain (and clamps at conv_clamp/√2, the same bound). For a single image, when the weights
        are smaller than the activations (the high resolutions), the style and demodulation scale
        the weights instead of two passes over the activations, and the bias rides in the
        convolution. The same maths; sums run in another order, so images differ from the
        autograd path by float32 rounding (< 1e-5).
        """
        d = self.derived(x.dtype)
        weight = d["weight"]
        fold = x.shape[0] == 1 and weight.numel() <= x.numel()
        if fold:
            # The weights are (out, in, k, k), or (in, out, k, k) for the transposed convolution.
            scale = torch.outer(styles[0], dcoefs[0]) if self.up else torch.outer(dcoefs[0], styles[0])
            weight = weight * scale[:, :, None, None]
        else:  # in x's dtype: a float32 style would promote a bf16 x to float32 (twice the bytes)
            x = x * styles.to(x.dtype)[:, :, None, None]
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        bias = d["bias"] if fold else None
        packed = None if fold else self._packed_weight(x, d)
        if packed is not None:
            x = self._packed_conv(x, packed, d.get("blur"))
        elif self.up and self.fold_up:
            x = F.conv_transpose2d(x, weight, bias, stride=2, padding=2)
        elif self.up:
            x = F.conv_transpose2d(x, weight, stride=2)
            # The convolution's own zero padding: F.pad first cost a fill and a copy of x.
            x = F.conv2d(x, d["blur"], bias, padding=1, groups=x.shape[1])
        else:
            x = F.conv2d(x, weight, bias, padding=1)
        inplace = not torch.is_grad_enabled()  # with autograd (frozen weights, see forward): new tensors
        if not fold:  # in x's dtype: an in-place product with a float32 operand is not vectorised
            x = _mul(x, dcoefs.to(x.dtype)[:, :, None, None], inplace)
        if noise_mode == "const":
            x = _add(x, d["noise"] if fold else self._noise_and_bias(d), inplace)
        else:
            if noise_mode == "random":
                noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
                x = _add(x, noise * self.noise_strength.to(x.dtype), inplace)
            elif noise_mode != "none":
                raise ValueError(f"noise_mode must be 'const', 'random' or 'none', got {noise_mode!r}")
            if not fold:
                x = _add(x, d["bias"].reshape(1, -1, 1, 1), inplace)
        x = F.leaky_relu(x, 0.2, inplace=inplace)
        if self.conv_clamp is None:
            return x
        bound = self.conv_clamp / LRELU_GAIN
        return x.clamp_(-bound, bound) if inplace else x.clamp(-bound, bound)


class ToRGBLayer(nn.Module):
    """Modulated 1×1 convolution to RGB, without demodulation."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(_init_randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = F.conv2d(x * styles[:, :, None, None], self.weight.to(x.dtype))
        return bias_act(x, self.bias, lrelu=False, clamp=self.conv_clamp)

    def _inference(self, x: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
        """``forward`` for frozen weights, given the styles (weight gain included, see
        ``SynthesisNetwork``): one batched matrix product of the per-image (3, C) weights with the
        activations, read in their own layout. A 1×1 convolution on three outputs was 5-10× slower."""
        own = self._parameters
        key = (x.dtype, x.device, *version_key((own["weight"], own["bias"])))
        weight, bias = memo(self, f"_derived.{x.dtype}", key, lambda: (
            self.weight.detach().to(x.dtype).flatten(1), self.bias.detach().to(x.dtype)[None, :, None]))
        n, c, h, w = x.shape
        y = torch.baddbmm(bias, weight * styles.to(x.dtype)[:, None, :], _as_matrices(x)).view(n, -1, h, w)
        if self.conv_clamp is None:
            return y
        return y.clamp(-self.conv_clamp, self.conv_clamp) if torch.is_grad_enabled() else \
            y.clamp_(-self.conv_clamp, self.conv_clamp)


def _as_matrices(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) as (N, C, H·W) matrices without a copy, in either memory layout (channels_last
    gives transposed strides, which the matrix product reads as they are)."""
    n, c, h, w = x.shape
    if x.is_contiguous():
        return x.view(n, c, h * w)
    return x.permute(0, 2, 3, 1).reshape(n, h * w, c).transpose(1, 2)


class SynthesisBlock(nn.Module):
    """One resolution of the skip architecture: (up-conv,) conv, toRGB added to the upsampled image."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 img_channels: int, conv_clamp: float | None) -> None:
        super().__init__()
        self.resolution = resolution
        self.is_first = in_channels == 0
        if self.is_first:
            self.const = nn.Parameter(_init_randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=True, conv_clamp=conv_clamp)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, up=False, conv_clamp=conv_clamp)
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.register_buffer("resample_filter", blur_filter(), persistent=False)
        self.num_conv = 1 if self.is_first else 2

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor,
                noise_mode: NoiseMode) -> tuple[torch.Tensor, torch.Tensor]:
        """ws: (N, num_conv + 1, w_dim), the w of each conv and of the toRGB."""
        if self.is_first:
            x = self.const.to(ws.dtype).unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
            x = self.conv1(x, ws[:, 0], noise_mode)
        else:
            x = self.conv0(x, ws[:, 0], noise_mode)
            x = self.conv1(x, ws[:, 1], noise_mode)
        y = self.torgb(x, ws[:, self.num_conv])
        img = y if img is None else upsample2d(img, self.resample_filter) + y
        return x, img

    def layers(self) -> "list[SynthesisLayer]":
        """The block's modulated convolutions in order (one in the 4×4 block, else two)."""
        return [self.conv1] if self.is_first else [self.conv0, self.conv1]

    def add_upsampled(self, y: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        """``y + upsample2d(img)``, the upsampling as two small matrix products, U·img·Uᵀ (the
        filter is separable), the second one adding y: the same numbers to float rounding, 10×
        faster than a grouped convolution on three channels at inference."""
        n, c, h, w = img.shape
        u_h = memo(self, f"_upsample_h.{img.dtype}", (img.dtype, img.device, h),
                   lambda: upsample_matrix(h).to(img.device, img.dtype))
        u_wt = memo(self, f"_upsample_wt.{img.dtype}", (img.dtype, img.device, w),
                    lambda: upsample_matrix(w).t().contiguous().to(img.device, img.dtype))
        across = torch.mm(img.reshape(n * c * h, w), u_wt).view(n * c, h, 2 * w)
        out = torch.baddbmm(y.reshape(n * c, 2 * h, 2 * w), u_h.expand(n * c, -1, -1), across)
        return out.view(n, c, 2 * h, 2 * w)


class SynthesisNetwork(nn.Module):
    """W+ codes (N, num_ws, w_dim) → images (N, img_channels, res, res)."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.resolution, self.w_dim, self.num_ws = cfg.resolution, cfg.w_dim, cfg.num_ws
        self.block_resolutions = cfg.block_resolutions
        for res in self.block_resolutions:
            in_ch = 0 if res == 4 else cfg.channels[res // 2]
            block = SynthesisBlock(in_ch, cfg.channels[res], cfg.w_dim, res, cfg.img_channels, cfg.conv_clamp)
            setattr(self, f"b{res}", block)

    def forward(self, ws: torch.Tensor, noise_mode: NoiseMode = "const") -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape (N, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        if not torch.is_grad_enabled() or not any(p.requires_grad for p in self.parameters()):
            # Frozen weights (a loaded Generator; inversion asks only for d image / d ws): the fast
            # path, whose derived weights are detached, gives the same images and ws gradients.
            return self._inference(ws, noise_mode)
        return self.reference(ws, noise_mode)

    def reference(self, ws: torch.Tensor, noise_mode: NoiseMode = "const") -> torch.Tensor:
        """The plain layer-by-layer synthesis that training differentiates (gradients reach every
        weight); ``forward`` takes it whenever a parameter requires grad. Tests and benchmarks
        call it directly as the reference for the fast path."""
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block: SynthesisBlock = getattr(self, f"b{res}")
            # Each block's toRGB shares its w with the next block's first conv.
            x, img = block(x, img, ws[:, w_idx:w_idx + block.num_conv + 1], noise_mode)
            w_idx += block.num_conv
        assert img is not None
        return img.contiguous()

    def _style_plan(self, dtype: torch.dtype, device: torch.device) -> "_StylePlan":
        """Every affine layer stacked for one batched product, made once per parameter version."""
        blocks: list[SynthesisBlock] = [getattr(self, f"b{res}") for res in self.block_resolutions]
        # The parameter dicts, found once (the layers are fixed at construction); reading tensors
        # from them each call is 10× cheaper than attribute access and still sees a reassigned one.
        slots = memo(self, "_plan_slots", (), lambda: [
            (params, name) for b in blocks for m in (*b.layers(), b.torgb)
            for params, name in ((m.affine._parameters, "weight"), (m.affine._parameters, "bias"),
                                 (m._parameters, "weight"))])
        key = (dtype, device, *version_key([params[name] for params, name in slots]))
        return memo(self, f"_plan.{dtype}", key, lambda: _StylePlan.build(blocks, dtype))

    def _inference(self, ws: torch.Tensor, noise_mode: NoiseMode) -> torch.Tensor:
        """The synthesis for frozen weights: all styles and demodulations in two batched products,
        then the layers' ``_inference`` steps (derived weights; elementwise work in place unless
        autograd is on, when gradients flow to ``ws`` only)."""
        plan = self._style_plan(ws.dtype, ws.device)
        with torch.autocast(ws.device.type, enabled=False):  # styles stay float32 under bf16 autocast
            per_layer = ws.transpose(0, 1).index_select(0, plan.w_index)             # (A, N, w_dim)
            styles = torch.baddbmm(plan.bias, per_layer, plan.weight)                # (A, N, max_in)
            dcoefs = (torch.bmm(styles[:plan.num_convs].square(), plan.dsq) + 1e-8).rsqrt()  # (convs, N, max_out)
        x = img = None
        a = 0
        # The constant in the activations' dtype: in float32 under bf16 autocast, the first
        # convolution took float32 derived weights and autocast re-cast them (2.4 MB) every call.
        device = ws.device.type
        act_dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else ws.dtype
        for block, layers, rgb in plan.blocks:
            if block.is_first:
                x = block.const.to(act_dtype).unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
            for layer in layers:
                cin, cout = layer.weight.shape[1], layer.weight.shape[0]
                x = layer._inference(x, styles[a, :, :cin], dcoefs[a, :, :cout], noise_mode)
                a += 1
            # The RGB sum stays in the codes' dtype (float32) under autocast: rounding it to bf16
            # at every resolution was a third of bf16's error at 512 px.
            y = block.torgb._inference(x, styles[rgb, :, :block.torgb.weight.shape[1]]).to(ws.dtype)
            if img is not None:
                with torch.autocast(ws.device.type, enabled=False):
                    y = block.add_upsampled(y, img)
            img = y
        assert img is not None
        return img.contiguous()  # channels_last inside (see set_channels_last), the usual layout outside


@dataclass
class _StylePlan:
    """The affine layers of a synthesis network stacked, zero-padded to the widest, for ``bmm``.

    Row order: the convolutions in network order, then the toRGB layers. Every layer that reads a
    leaky-ReLU output has that ReLU's gain √2 folded into its style, and its squared weights
    divided by 2 so the demodulation stays the same.
    """

    w_index: torch.Tensor   # (A,) which of the ws each row reads
    weight: torch.Tensor    # (A, w_dim, max_in), gains included
    bias: torch.Tensor      # (A, 1, max_in)
    dsq: torch.Tensor       # (convs, max_in, max_out): squared conv weights summed over the kernel
    num_convs: int
    blocks: list            # (block, its conv layers, its toRGB row)

    @classmethod
    def build(cls, blocks: "list[SynthesisBlock]", dtype: torch.dtype) -> "_StylePlan":
        rows: list[tuple[FullyConnectedLayer, int, float]] = []   # (affine, w index, gain folded in)
        rgb_rows: list[tuple[FullyConnectedLayer, int, float]] = []
        w_idx = 0
        for block in blocks:
            for layer in block.layers():   # the first block's first conv reads the constant, not a ReLU
                rows.append((layer.affine, w_idx, 1.0 if block.is_first else LRELU_GAIN))
                w_idx += 1
            # The toRGB shares its w with the next block's first conv.
            rgb_rows.append((block.torgb.affine, w_idx, block.torgb.weight_gain * LRELU_GAIN))
        num_convs = len(rows)
        plan_blocks = [(b, b.layers(), num_convs + i) for i, b in enumerate(blocks)]
        rows += rgb_rows
        convs = [layer for b in blocks for layer in b.layers()]
        device = convs[0].weight.device
        w_dim = rows[0][0].weight.shape[1]
        max_in = max(r[0].weight.shape[0] for r in rows)
        max_out = max(c.weight.shape[0] for c in convs)
        weight = torch.zeros(len(rows), w_dim, max_in, dtype=dtype, device=device)
        bias = torch.zeros(len(rows), 1, max_in, dtype=dtype, device=device)
        dsq = torch.zeros(num_convs, max_in, max_out, dtype=dtype, device=device)
        for i, (affine, _, gain) in enumerate(rows):
            w, b = affine.gained(dtype, keep=False)
            weight[i, :, :w.shape[0]] = w.t() * gain
            bias[i, 0, :w.shape[0]] = b[0] * gain
        for i, layer in enumerate(convs):
            sq = layer.weight.detach().to(dtype).square().sum(dim=[2, 3]).t()   # (in, out)
            dsq[i, :sq.shape[0], :sq.shape[1]] = sq / rows[i][2] ** 2
        w_index = torch.tensor([r[1] for r in rows], device=device)
        return cls(w_index, weight, bias, dsq, num_convs, plan_blocks)


class StyleGAN2(nn.Module):
    """The whole generator: ``mapping`` and ``synthesis`` with NVlabs parameter names."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.config = cfg
        self.synthesis = SynthesisNetwork(cfg)
        self.mapping = MappingNetwork(cfg)

    @property
    def num_ws(self) -> int:
        return self.config.num_ws

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, psi: float = 1.0,
                noise_mode: NoiseMode = "const") -> torch.Tensor:
        w = self.mapping.truncate(self.mapping(z, c), psi)
        return self.synthesis(w.unsqueeze(1).repeat(1, self.num_ws, 1), noise_mode)


def set_fold_upsampling(net: nn.Module, enabled: bool) -> None:
    """Choose the up-convolution form: folded 6×6 (fewer kernel launches, wins on GPUs) or 3×3 +
    separate blur (4× fewer multiply-adds, wins on CPUs). Both give the same images."""
    for module in net.modules():
        if isinstance(module, SynthesisLayer):
            module.fold_up = enabled


def set_channels_last(net: nn.Module, enabled: bool) -> None:
    """Run inference convolutions in channels_last (NHWC): oneDNN's fast path on CPUs, 1.3-4x
    faster per convolution there (the transposed ones most). Training and inversion, which record
    a graph, keep the default layout."""
    for module in net.modules():
        if isinstance(module, SynthesisLayer):
            module.channels_last = enabled


def count_parameters(module: nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def seeds_to_z(seeds: list[int] | np.ndarray, z_dim: int) -> np.ndarray:
    """z of seed s is ``np.random.RandomState(s).randn(z_dim)``, as NVlabs' generate.py and GANSpace draw it."""
    return np.stack([np.random.RandomState(int(s)).randn(z_dim) for s in seeds]).astype(np.float32)

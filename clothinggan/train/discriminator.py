"""StyleGAN2 residual discriminator (NVlabs "resnet" architecture) in plain PyTorch ops.

Only training needs it, so it lives here and not in networks.py; it reuses the generator's blur
filter and equalised-learning-rate conventions so the two networks train at matching speeds.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from clothinggan.networks import LRELU_GAIN, FullyConnectedLayer, blur_filter, filter2d


class Conv2dLayer(nn.Module):
    """Equalised-lr convolution with optional 2× downsampling (blur, then stride-2 conv).

    in_channels / out_channels: feature maps in and out.
    kernel_size:  1 or 3.
    bias:         add a learned bias (the residual skip has none).
    lrelu:        leaky ReLU with gain √2 after the bias; otherwise linear.
    down:         halve the resolution; the blur before the strided conv is what keeps
                  StyleGAN2's discriminator free of aliasing (NVlabs conv2d_resample, down=2).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 lrelu: bool = True, down: bool = False) -> None:
        super().__init__()
        self.lrelu, self.down, self.kernel_size = lrelu, down, kernel_size
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.register_buffer("resample_filter", blur_filter(), persistent=False)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        """conv(x)·w_gain + bias, leaky ReLU, times √2 (if lrelu) and ``gain``.

        Both gains are positive, so they scale the weights and bias instead of the activations
        (lrelu(c·z) = c·lrelu(z)), and the bias rides in the convolution: two passes over the
        activations fewer each way, about a tenth of a training step.
        """
        out_gain = (LRELU_GAIN if self.lrelu else 1.0) * gain
        w = (self.weight * (self.weight_gain * out_gain)).to(x.dtype)
        b = None if self.bias is None else (self.bias * out_gain).to(x.dtype)
        if self.down and self.kernel_size == 1:
            # Blur with (1,1) padding keeps r−1 pixels; taking every other one gives r/2.
            x = filter2d(x, self.resample_filter, pad=(1, 1))[:, :, ::2, ::2]
            x = F.conv2d(x, w, b)
        elif self.down:
            # Blur with (2,2) padding gives r+1 pixels; a valid stride-2 3×3 conv gives r/2.
            x = filter2d(x, self.resample_filter, pad=(2, 2))
            x = F.conv2d(x, w, b, stride=2)
        else:
            x = F.conv2d(x, w, b, padding=self.kernel_size // 2)
        return F.leaky_relu(x, 0.2) if self.lrelu else x


class DiscriminatorBlock(nn.Module):
    """One resolution: (fromRGB,) conv, down-conv, plus a 1×1 down skip, each half scaled by √½."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, img_channels: int) -> None:
        super().__init__()
        self.is_first = in_channels == 0
        if self.is_first:
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, down=True)
        self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, lrelu=False, down=True)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor) -> torch.Tensor:
        if self.is_first:
            x = self.fromrgb(img)
        assert x is not None
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv1(self.conv0(x), gain=math.sqrt(0.5))
        return y + x


class MinibatchStdLayer(nn.Module):
    """Appends the std of features across a group of samples: lets D see a lack of variety."""

    def __init__(self, group_size: int = 4, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        if n % g != 0:  # a ragged last batch: fall back to one group of everything
            g = n
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()
        y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1)
        y = y.repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


class DiscriminatorEpilogue(nn.Module):
    """4×4 head: minibatch std, 3×3 conv, fully connected, one logit per image."""

    def __init__(self, in_channels: int, resolution: int = 4, mbstd_group_size: int = 4) -> None:
        super().__init__()
        self.mbstd = MinibatchStdLayer(mbstd_group_size, 1)
        self.conv = Conv2dLayer(in_channels + 1, in_channels, kernel_size=3)
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, lrelu=True)
        self.out = FullyConnectedLayer(in_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.mbstd(x))
        return self.out(self.fc(x.flatten(1)))


class Discriminator(nn.Module):
    """Images (N, C, res, res) in [-1, 1] → logits (N, 1); channels keyed by resolution like G's."""

    def __init__(self, resolution: int, channels: dict[int, int], img_channels: int = 3,
                 mbstd_group_size: int = 4) -> None:
        super().__init__()
        self.resolution = resolution
        self.block_resolutions = [2**i for i in range(int(math.log2(resolution)), 2, -1)]
        for res in self.block_resolutions:
            in_ch = 0 if res == resolution else channels[res]
            block = DiscriminatorBlock(in_ch, channels[res], channels[res // 2], img_channels)
            setattr(self, f"b{res}", block)
        self.b4 = DiscriminatorEpilogue(channels[4], mbstd_group_size=mbstd_group_size)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        if img.ndim != 4 or img.shape[-1] != self.resolution or img.shape[-2] != self.resolution:
            raise ValueError(f"D takes (N, C, {self.resolution}, {self.resolution}) images, got {tuple(img.shape)}")
        x = None
        for res in self.block_resolutions:
            x = getattr(self, f"b{res}")(x, img)
        assert x is not None
        return self.b4(x)

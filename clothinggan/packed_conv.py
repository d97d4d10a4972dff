"""oneDNN convolutions on weights packed once, for the CPU inference path of ``networks``.

``F.conv2d`` reorders shared weights into oneDNN's blocked layout on every call and sends 4-8 px
convolutions to ATen's im2col path; torch.compile's freezing pass avoids both with these private
ops, which this module binds once. A PyTorch build without them gets None and the callers fall
back to ``F.conv2d`` (the speed-up goes, the images stay the same).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


@dataclass(frozen=True)
class OneDNNOps:
    """oneDNN convolutions on pre-packed weights, as torch.compile's freezing pass uses them."""

    pack: Callable[[torch.Tensor, list[int]], torch.Tensor]
    pack_transposed: Callable[[torch.Tensor, list[int]], torch.Tensor]
    conv: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    conv_transposed: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _find_onednn_ops() -> "OneDNNOps | None":
    """Bind the packed-convolution ops once (see ``onednn_ops``), or None where any is missing."""
    ops = torch.ops.mkldnn
    names = ("_reorder_convolution_weight", "_reorder_convolution_transpose_weight", "_convolution_pointwise",
             "_convolution_transpose_pointwise")
    if not torch.backends.mkldnn.is_available() or not all(hasattr(ops, name) for name in names):
        return None
    return OneDNNOps(
        pack=lambda w, size: ops._reorder_convolution_weight(w, [1, 1], [1, 1], [1, 1], 1, size),
        pack_transposed=lambda w, size: ops._reorder_convolution_transpose_weight(
            w, [0, 0], [0, 0], [2, 2], [1, 1], 1, size),
        conv=lambda x, w: ops._convolution_pointwise(x, w, None, [1, 1], [1, 1], [1, 1], 1, "none", [], ""),
        conv_transposed=lambda x, w: ops._convolution_transpose_pointwise(
            x, w, None, [0, 0], [0, 0], [2, 2], [1, 1], 1, "none", [], ""))


_ONEDNN: list["OneDNNOps | None"] = []


def onednn_ops() -> "OneDNNOps | None":
    """The packed 3×3 (padding 1) and stride-2 transposed 3×3 convolutions, or None where this
    PyTorch build lacks oneDNN or these private (inductor-facing) ops: callers fall back to F.conv2d."""
    if not _ONEDNN:
        _ONEDNN.append(_find_onednn_ops())
    return _ONEDNN[0]

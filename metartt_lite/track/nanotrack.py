"""NanoTrack's tracking step in our own code, on :class:`~metartt_lite.model.nanotrack.NanoTrackNet`.

It follows OpenCV's ``cv2.TrackerNano`` (``modules/video/src/tracking/tracker_nano.cpp`` of OpenCV 5.1.0)
step for step, so the two give the same boxes (``tests/test_nanotrack.py``; on ``val`` the mean IoU between
them is reported in ``docs/results/nanotrack``). One frame:

1. **Search crop**: a square of side ``s_x = (255/127)·s_z`` around the previous centre, where
   ``s_z = sqrt((w + (w+h)/2)(h + (w+h)/2))`` is the template's context square; the part outside the frame is
   filled with the frame's mean colour; resized to 255×255.
2. **Response**: the network gives, at each of 16×16 points (stride 16, centred on the crop), a target
   probability ``p`` (softmax of 2 logits) and the distances to the box sides (l, t, r, b).
3. **Penalties**: ``penalty = exp(-k (r_c · s_c - 1))`` with ``r_c`` the change of aspect ratio and ``s_c`` the
   change of size (``max(r, 1/r)``), ``k = 0.055``; ``pscore = (1-λ)·penalty·p + λ·hann`` (cosine window,
   ``λ = 0.455``). (Older OpenCV sources measure the size change against ``sizeCal`` of the previous *centre*
   and truncate ``w + h`` and ``255/127`` to integers; OpenCV 5.1 does neither, and neither do we.)
4. **Box**: the best point's box; the centre jumps there, the size moves by ``lr = penalty·p·0.37`` towards the
   predicted size (box smoothing); centre clipped into the frame, size to [10, frame size].

:meth:`NanoTracker.step` exposes every map of a frame (probabilities, penalties, boxes, the classification
tower's features) so an online head (``metartt-nano``) can re-score NanoTrack's proposals.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from ..core.boxes import clip_boxes, validate_box
from ..core.utils import MetaRTTError
from ..model.nanotrack import (NanoTrackNet, load_nanotrack, ltrb_corners, nano_subwindow, point_grid,
                               subwindow_origin, to_blob)

__all__ = ["NanoConfig", "NanoStep", "NanoTracker"]


@dataclass(frozen=True)
class NanoConfig:
    """OpenCV's ``TrackerNano`` constants (``trackerConfig`` in tracker_nano.cpp)."""
    exemplar_size: int = 127
    instance_size: int = 255
    stride: int = 16
    context_amount: float = 0.5
    window_influence: float = 0.455
    penalty_k: float = 0.055
    lr: float = 0.37
    min_size: float = 10.0

    @property
    def score_size(self) -> int:
        return (self.instance_size - self.exemplar_size) // self.stride + 8


def _size(w, h):
    pad = (w + h) * 0.5
    return np.sqrt((w + pad) * (h + pad))


def _change(r):
    return np.maximum(r, 1.0 / r)


@dataclass
class NanoStep:
    """Everything one NanoTrack frame computed (maps are (16, 16), row-major like the response)."""
    prob: np.ndarray        # target probability p
    penalty: np.ndarray     # scale/ratio penalty
    pscore: np.ndarray      # (1-λ)·penalty·p + λ·window: what picks the box
    boxes: np.ndarray       # (256, 4) xywh in frame pixels, the full-size box each point proposes
    cwh: np.ndarray         # (4, 256) float32 centre x, y, width, height of the same boxes (OpenCV's arithmetic)
    best: int               # argmax of pscore (flat index)
    scale_z: float          # crop pixels per frame pixel
    crop_center: np.ndarray  # the centre the crop was cut around (frame pixels)
    origin: np.ndarray      # the crop's top-left corner in frame pixels (crop px = (frame px - origin)·crop_scale)
    crop_scale: float       # 255 / the crop's side in frame pixels
    xf: torch.Tensor        # (1, 48, 16, 16) backbone map of the search crop
    features: torch.Tensor | None = None  # (1, 96, 16, 16) classification-tower map (when asked for)


class NanoTracker:
    """NanoTrack v2 in PyTorch with OpenCV ``TrackerNano``'s tracking step (module docstring).

    ``init(frame, box)`` / ``update(frame) -> (box, score)``: RGB uint8 frames, float ``[x, y, w, h]`` boxes;
    ``score`` is the target probability at the chosen point (0–1). Deterministic: the harness runs it once."""

    deterministic = True
    success_threshold = 0.99  # target probability; measured as NANO_SUCCESS_THRESHOLD in peers.py (0.998+ present)

    def __init__(self, net: NanoTrackNet | None = None, cfg: NanoConfig = NanoConfig(), name: str = "nanotrack-torch",
                 weights: str | Path | None = None, frozen: bool = False):
        self.net = net if net is not None else load_nanotrack(weights)
        # frozen: TorchScript-frozen copies of the backbone and head (same weights, ~1e-5 different float
        # rounding, faster on the CPU); the eager modules stay the reference (nanotrack-torch, its oracle test)
        self._backbone, self._head = (_frozen(self.net, weights) if frozen else
                                      (self.net.backbone, self.net.ban_head.features))
        self.cfg = cfg
        self.name = name
        n = cfg.score_size
        self.window = cv2.createHanningWindow((n, n), cv2.CV_32F).astype(np.float32).reshape(-1)
        self.grid = point_grid(n, cfg.stride, cfg.instance_size)
        self.pos = np.zeros(2, np.float32)
        self.sz = np.zeros(2, np.float32)
        self.frame_size: tuple[int, int] | None = None
        self.zf: torch.Tensor | None = None
        self.last: NanoStep | None = None

    def __repr__(self) -> str:
        return f"NanoTracker({self.name!r})"

    @torch.no_grad()
    def init(self, frame: np.ndarray, box) -> None:
        f = _check_frame(frame)
        H, W = f.shape[:2]
        b = validate_box(box, (W, H), what="initial box")
        self.frame_size = (W, H)
        self.success: bool | None = None
        self.pos = np.array([b[0] + b[2] * 0.5, b[1] + b[3] * 0.5], np.float32)
        self.sz = np.array([b[2], b[3]], np.float32)
        s = float(self.sz.sum())
        sz = int(np.sqrt(np.float32((self.sz[0] + self.cfg.context_amount * s) * (self.sz[1] + self.cfg.context_amount * s))))
        crop = nano_subwindow(f, self.pos, max(sz, 1), self.cfg.exemplar_size)
        self.zf = self._backbone(to_blob(crop))

    @torch.no_grad()
    def step(self, frame: np.ndarray, features: bool = False) -> NanoStep:
        """Run the network on this frame's search crop and score every point; the state is not changed."""
        if self.zf is None or self.frame_size is None:
            raise MetaRTTError(f"{self.name}: update() called before init()")
        f = _check_frame(frame)
        if (f.shape[1], f.shape[0]) != self.frame_size:
            raise MetaRTTError(f"{self.name}: frame size changed from {self.frame_size} to {(f.shape[1], f.shape[0])}")
        cfg = self.cfg
        ssum = np.float32(self.sz[0] + self.sz[1])
        wc = np.float32(self.sz[0] + cfg.context_amount * ssum)
        hc = np.float32(self.sz[1] + cfg.context_amount * ssum)
        s_z = np.float32(np.sqrt(wc * hc))
        scale_z = np.float32(cfg.exemplar_size / s_z)
        s_x = s_z * np.float32(cfg.instance_size / cfg.exemplar_size)
        side = max(int(s_x), 1)
        crop = nano_subwindow(f, self.pos, side, cfg.instance_size)
        xf = self._backbone(to_blob(crop))
        origin = subwindow_origin(self.pos, side)
        logits, ltrb, feat = self._head(self.zf, xf)
        prob = torch.softmax(logits[0].reshape(2, -1), 0)[1].numpy()
        d = ltrb[0].reshape(4, -1).numpy()
        x1, y1, x2, y2 = ltrb_corners(d, self.grid)
        pw, ph = x2 - x1, y2 - y1
        tw, th = self.sz * scale_z
        sc = _change(_size(pw, ph) / _size(tw, th))
        rc = _change((tw / th) / (pw / ph))
        penalty = np.exp(-(rc * sc - 1) * cfg.penalty_k).astype(np.float32)
        pscore = (penalty * prob) * (1 - cfg.window_influence) + self.window * cfg.window_influence
        cx = self.pos[0] + ((x1 + x2) / 2 - cfg.instance_size // 2) / scale_z
        cy = self.pos[1] + ((y1 + y2) / 2 - cfg.instance_size // 2) / scale_z
        w, h = pw / scale_z, ph / scale_z
        boxes = np.stack([cx - w / 2, cy - h / 2, w, h], 1)
        step = NanoStep(prob, penalty, pscore, boxes, np.stack([cx, cy, w, h]), int(np.argmax(pscore)), float(scale_z), self.pos.copy(),
                        origin, cfg.instance_size / side, xf, feat if features else None)
        self.last = step
        return step

    def commit(self, step: NanoStep, idx: int | None = None) -> np.ndarray:
        """Move the state to point ``idx`` of ``step`` (default its best) with OpenCV's size smoothing and
        clipping; return the box (float xywh)."""
        i = step.best if idx is None else int(idx)
        W, H = self.frame_size
        cx, cy, bw, bh = step.cwh[:, i]
        lr = np.float32(step.penalty[i] * step.prob[i] * np.float32(self.cfg.lr))
        rw = bw * lr + (1 - lr) * self.sz[0]
        rh = bh * lr + (1 - lr) * self.sz[1]
        cx, cy = min(max(cx, 0.0), W), min(max(cy, 0.0), H)
        rw, rh = min(max(rw, self.cfg.min_size), W), min(max(rh, self.cfg.min_size), H)
        self.pos = np.array([cx, cy], np.float32)
        self.sz = np.array([rw, rh], np.float32)
        return np.array([cx - rw / 2, cy - rh / 2, rw, rh], np.float64)

    def update(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        step = self.step(frame)
        box = self.commit(step)
        score = float(step.prob[step.best])
        self.success = score > self.success_threshold
        return clip_boxes(box, self.frame_size), score


class _HeadFeatures(torch.nn.Module):
    def __init__(self, head: torch.nn.Module):
        super().__init__()
        self.head = head

    def forward(self, zf: torch.Tensor, xf: torch.Tensor):
        return self.head.features(zf, xf)


_FROZEN: dict = {}


def _frozen(net: NanoTrackNet, weights) -> tuple:
    """Per-process cache of the TorchScript-frozen backbone and head for the shipped (or given) weights."""
    key = str(weights)
    if key not in _FROZEN:
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # TorchScript's deprecation notices
                bb = torch.jit.freeze(torch.jit.script(net.backbone.eval()))
                hd = torch.jit.freeze(torch.jit.trace(_HeadFeatures(net.ban_head).eval(),
                                                      (torch.zeros(1, 48, 8, 8), torch.zeros(1, 48, 16, 16))))
            _FROZEN[key] = (bb, hd)
        except Exception:  # TorchScript missing or unable here: the eager modules are always correct
            _FROZEN[key] = (net.backbone, net.ban_head.features)
    return _FROZEN[key]


def _check_frame(frame: np.ndarray) -> np.ndarray:
    f = np.asarray(frame)
    if f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3:
        raise MetaRTTError(f"expected a uint8 RGB frame of shape (H, W, 3), got {f.dtype} {f.shape}")
    return f

"""Box maths and RT-MDNet candidate sampling.

Boxes are ``[x, y, w, h]`` with (x, y) the top-left corner in **0-based** pixel coordinates, so a box
covering the whole W×H frame is ``[0, 0, W, H]``. OTB files are 1-based (the top-left pixel is (1, 1));
the readers in ``data.py`` subtract 1 once and nothing else in the package knows about it.
Arrays of boxes have shape (N, 4); every function also accepts a single box of shape (4,).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .utils import MetaRTTError

MIN_SIZE = 2.0  # smallest side (px) a sampled or clipped box may have


def _as2d(boxes: np.ndarray | Sequence[float]) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64)
    return b[None] if b.ndim == 1 else b


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64)
    return np.concatenate([b[..., :2], b[..., :2] + b[..., 2:]], axis=-1)


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64)
    return np.concatenate([b[..., :2], b[..., 2:] - b[..., :2]], axis=-1)


def xywh_to_center(boxes: np.ndarray) -> np.ndarray:
    """[x, y, w, h] -> [cx, cy, w, h]."""
    b = np.asarray(boxes, dtype=np.float64)
    return np.concatenate([b[..., :2] + b[..., 2:] / 2, b[..., 2:]], axis=-1)


def center_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """[cx, cy, w, h] -> [x, y, w, h]."""
    b = np.asarray(boxes, dtype=np.float64)
    return np.concatenate([b[..., :2] - b[..., 2:] / 2, b[..., 2:]], axis=-1)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes ``a`` and ``b`` (xywh), broadcast over leading dimensions.

    Boxes of zero area give IoU 0 (never NaN).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    x1 = np.maximum(a[..., 0], b[..., 0])
    y1 = np.maximum(a[..., 1], b[..., 1])
    x2 = np.minimum(a[..., 0] + a[..., 2], b[..., 0] + b[..., 2])
    y2 = np.minimum(a[..., 1] + a[..., 3], b[..., 1] + b[..., 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = np.clip(a[..., 2], 0, None) * np.clip(a[..., 3], 0, None) \
        + np.clip(b[..., 2], 0, None) * np.clip(b[..., 3], 0, None) - inter
    # (x + w) - x may round past w, so identical boxes could give 1 + 1 ulp: clamp into [0, 1]
    return np.clip(np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0), 0.0, 1.0)


def center_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance (px) between box centres."""
    ca = xywh_to_center(a)[..., :2]
    cb = xywh_to_center(b)[..., :2]
    return np.sqrt(((ca - cb) ** 2).sum(-1))


def clip_boxes(boxes: np.ndarray, frame_size: tuple[int, int], min_size: float = MIN_SIZE) -> np.ndarray:
    """Clip xywh boxes into a frame of size ``(W, H)``; each side stays at least ``min_size`` px.

    A box bigger than the frame becomes the frame; a box outside is moved to the nearest border.
    """
    W, H = float(frame_size[0]), float(frame_size[1])
    b = _as2d(boxes).copy()
    size = np.array([W, H])
    ms = np.minimum(min_size, size)
    b[:, 2:] = np.clip(b[:, 2:], ms, size)
    b[:, :2] = np.clip(b[:, :2], 0.0, size - b[:, 2:])
    return b[0] if np.asarray(boxes).ndim == 1 else b


def validate_box(box: Sequence[float], frame_size: tuple[int, int] | None = None, what: str = "box") -> np.ndarray:
    """Check a user box and return it as float array; raise MetaRTTError naming the problem."""
    try:
        b = np.asarray(box, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise MetaRTTError(f"{what} {box!r} is not four numbers x,y,w,h") from None
    if b.shape != (4,):
        raise MetaRTTError(f"{what} {b.tolist()} must have four numbers x,y,w,h, got {b.size}")
    if not np.all(np.isfinite(b)):
        raise MetaRTTError(f"{what} {b.tolist()} contains NaN or infinity")
    if b[2] <= 0 or b[3] <= 0:
        raise MetaRTTError(f"{what} {b.tolist()} has zero or negative width/height")
    if frame_size is not None:
        W, H = frame_size
        if b[0] >= W or b[1] >= H or b[0] + b[2] <= 0 or b[1] + b[3] <= 0:
            raise MetaRTTError(f"{what} {b.tolist()} lies entirely outside the {W}x{H} frame")
    return b


def parse_box(text: str) -> np.ndarray:
    """Parse 'x,y,w,h' (commas, spaces or tabs) into a validated box."""
    parts = [p for p in text.replace(",", " ").replace("\t", " ").split() if p]
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        raise MetaRTTError(f"malformed box string {text!r}: expected four numbers 'x,y,w,h'") from None
    if len(vals) != 4:
        raise MetaRTTError(f"malformed box string {text!r}: expected four numbers 'x,y,w,h', got {len(vals)}")
    return validate_box(vals, what=f"box {text!r}")


# A box whose part outside the frame exceeds this share of its area "reaches far past the frame".
OUTSIDE_SHARE_LIMIT = 0.25


class BoxWarning(UserWarning):
    """A box that is valid but probably not what the user meant (normalized, corners, off the frame)."""


def _num(v: float) -> str:
    return f"{float(v):g}"


def box_problems(box: Sequence[float], frame_size: tuple[int, int]) -> list[str]:
    """Reasons why a valid 0-based ``[x, y, w, h]`` box on a ``(W, H)`` frame looks wrong, each a sentence
    (empty: nothing suspicious). Checks, in order: every number in [0, 1] (normalized coordinates),
    the box reaching past the frame while ``x1,y1,x2,y2`` corners would fit (corner format), and more than
    :data:`OUTSIDE_SHARE_LIMIT` of its area outside the frame."""
    b = np.asarray(box, dtype=np.float64).reshape(-1)
    W, H = frame_size
    x, y, w, h = (float(v) for v in b)
    shown = ",".join(_num(v) for v in b)
    if max(W, H) > 8 and np.all((b >= 0) & (b <= 1)):
        px = ",".join(_num(round(v)) for v in (x * W, y * H, w * W, h * H))
        return [f"box {shown} looks normalized (every number is between 0 and 1) but boxes are pixels: "
                f"a {_num(w)}x{_num(h)} px target; on this {W}x{H} frame the normalized box is {px}"]
    out = []
    ix = max(0.0, min(x + w, W) - max(x, 0.0))
    iy = max(0.0, min(y + h, H) - max(y, 0.0))
    outside = 1.0 - ix * iy / (w * h)
    past = x + w > W + 1 or y + h > H + 1
    if past and w > x and h > y and w <= W + 1 and h <= H + 1:
        out.append(f"box {shown} reaches x = {_num(x + w)}, y = {_num(y + h)} on a {W}x{H} frame: it looks like "
                   f"corners x1,y1,x2,y2; as x,y,w,h that is {_num(x)},{_num(y)},{_num(w - x)},{_num(h - y)}")
    elif outside > OUTSIDE_SHARE_LIMIT:
        out.append(f"box {shown} lies {100 * outside:.0f} % outside the {W}x{H} frame "
                   f"(it reaches x = {_num(x + w)}, y = {_num(y + h)})")
    return out


def check_box_sanity(box: Sequence[float], frame_size: tuple[int, int], strict: bool = False,
                     what: str = "first box") -> list[str]:
    """Warn (:class:`BoxWarning`) about each of :func:`box_problems`, or raise :class:`MetaRTTError` on the
    first one when ``strict``; returns the problems."""
    import warnings
    problems = box_problems(box, frame_size)
    for p in problems:
        if strict:
            raise MetaRTTError(f"{what}: {p} (--strict)")
        warnings.warn(f"{what}: {p} (--strict makes this an error)", BoxWarning, stacklevel=2)
    return problems


@dataclass
class SampleGenerator:
    """RT-MDNet's candidate generator (``modules/sample_generator.py``).

    ``kind``: 'gaussian' (r = clip(0.5·randn, ±1)), 'uniform' (r ~ U(−1, 1)) or 'whole' (a grid over the
    frame). The centre moves by ``trans · mean(w, h) · r`` and the size is multiplied by ``scale ** r``;
    ``aspect`` (optional) changes the aspect ratio by ``aspect ** ±r``. ``valid`` keeps boxes inside
    the frame.
    """
    kind: str
    frame_size: tuple[int, int]  # (W, H)
    trans: float = 1.0
    scale: float = 1.0
    aspect: float | None = None
    valid: bool = False

    def __call__(self, box: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        W, H = self.frame_size
        size = np.array([W, H], dtype=np.float64)
        bb = np.asarray(box, dtype=np.float64)
        bb = np.array([bb[0], bb[1], max(bb[2], MIN_SIZE), max(bb[3], MIN_SIZE)])
        s = np.tile(xywh_to_center(bb)[None], (n, 1))
        if self.aspect is not None:
            r = rng.random((n, 1)) * 2 - 1
            s[:, 2:] *= self.aspect ** np.concatenate([r, -r], axis=1)
        if self.kind == "gaussian":
            s[:, :2] += self.trans * bb[2:].mean() * np.clip(0.5 * rng.standard_normal((n, 2)), -1, 1)
            s[:, 2:] *= self.scale ** np.clip(0.5 * rng.standard_normal((n, 1)), -1, 1)
        elif self.kind == "uniform":
            s[:, :2] += self.trans * bb[2:].mean() * (rng.random((n, 2)) * 2 - 1)
            s[:, 2:] *= self.scale ** (rng.random((n, 1)) * 2 - 1)
        elif self.kind == "whole":
            m = int(2 * np.sqrt(n)) + 1
            xy = np.dstack(np.meshgrid(np.linspace(0, 1, m), np.linspace(0, 1, m))).reshape(-1, 2)
            xy = xy[rng.permutation(len(xy))[:n]]
            half = np.minimum(bb[2:] / 2, size / 2)
            s[:, :2] = half + xy * np.maximum(size - 2 * half, 0)
            s[:, 2:] *= self.scale ** (rng.random((n, 1)) * 2 - 1)
        else:
            raise MetaRTTError(f"unknown sample generator kind {self.kind!r}")
        ms = np.minimum(MIN_SIZE, size)
        s[:, 2:] = np.clip(s[:, 2:], ms, size)
        if self.valid:
            s[:, :2] = np.clip(s[:, :2], s[:, 2:] / 2, size - s[:, 2:] / 2)
        else:
            s[:, :2] = np.clip(s[:, :2], 0, size)
        return center_to_xywh(s)


def sample_by_iou(gen: SampleGenerator, box: np.ndarray, n: int, iou_range: tuple[float, float],
                  rng: np.random.Generator, max_rounds: int = 20) -> np.ndarray:
    """Draw up to ``n`` boxes from ``gen`` whose IoU with ``box`` lies in ``iou_range`` (inclusive).

    As RT-MDNet's ``gen_samples``: draw in rounds, keep those in range, subsample to ``n``. May return
    fewer than ``n`` (never more) when the range is hard to hit, e.g. for a box covering the frame.
    """
    lo, hi = iou_range
    kept: list[np.ndarray] = []
    count = 0
    for _ in range(max_rounds):
        cand = gen(box, max(2 * n, 16), rng)
        ov = iou(cand, np.asarray(box)[None])
        ok = cand[(ov >= lo) & (ov <= hi)]
        kept.append(ok)
        count += len(ok)
        if count >= n:
            break
    out = np.concatenate(kept, axis=0) if kept else np.zeros((0, 4))
    if len(out) > n:
        out = out[rng.choice(len(out), n, replace=False)]
    return out


def box_regression_targets(boxes: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """R-CNN regression targets (dx/w, dy/h, log dw, log dh) from ``boxes`` to ``gt`` (xywh)."""
    b = xywh_to_center(_as2d(boxes))
    g = xywh_to_center(np.asarray(gt, dtype=np.float64).reshape(-1, 4))
    return np.stack([(g[:, 0] - b[:, 0]) / b[:, 2], (g[:, 1] - b[:, 1]) / b[:, 3],
                     np.log(g[:, 2] / b[:, 2]), np.log(g[:, 3] / b[:, 3])], axis=1)


def apply_box_regression(boxes: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    """Inverse of :func:`box_regression_targets`."""
    b = xywh_to_center(_as2d(boxes))
    d = np.asarray(deltas, dtype=np.float64).reshape(-1, 4)
    c = np.stack([b[:, 0] + d[:, 0] * b[:, 2], b[:, 1] + d[:, 1] * b[:, 3],
                  b[:, 2] * np.exp(d[:, 2]), b[:, 3] * np.exp(d[:, 3])], axis=1)
    return center_to_xywh(c)


def sampler(spec, frame_size: tuple[int, int], valid: bool = False) -> SampleGenerator:
    """A :class:`SampleGenerator` from a :class:`~metartt_lite.core.config.SamplerSpec` (kind, trans, scale, aspect)."""
    return SampleGenerator(spec.kind, frame_size, spec.trans, spec.scale, spec.aspect, valid)

"""RoIAlign followed by a k×k max-pool, as one compiled CPU loop (numba): the tracker's per-frame RoI
features without autograd.

The same arithmetic, in the same order and in float32, as torchvision's CPU ``roi_align`` with
``aligned=True`` and adaptive sampling (``sampling_ratio=-1``), then the max over each k×k block of bins:
bit-identical outputs (``tests/test_roi_kernel.py`` checks ``torch.equal`` against torchvision). It differs
in layout only: it reads the feature map channels-last, so the innermost loop runs over contiguous
channels (SIMD) instead of torchvision's per-channel scalar loop, and it fuses the max-pool. 2–3× faster than
torchvision's kernel on 256 boxes (``benchmarks/roi_kernel.py``). Forward only: anything that needs a
gradient goes through torchvision (:meth:`TrackerNet.roi_features` picks).
"""
from __future__ import annotations

import math
import os

import numpy as np
import torch
from numba import njit

__all__ = ["roi_align_maxpool", "roi_kernel_applies", "warm_up"]


def _jit(fn):
    """Compiled once, cached on disk next to this file (or numba's user cache) so that later processes
    skip the ~1.5 s compile; where no cache location is writable, compiled once per process."""
    try:
        return njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return njit(nogil=True)(fn)


@_jit
def _roi_align_maxpool(feat, rois, scale, presample, k, out):  # pragma: no cover - compiled
    # feat (B, H, W, C) float32 channels-last; rois (N, 5) float32 (batch index, x1, y1, x2, y2) in input
    # px; out (N, C, P/k, P/k). Variable names follow torchvision's roi_align_kernel.cpp.
    B, H, W, C = feat.shape
    P = presample
    Q = P // k
    half = np.float32(0.5)
    acc = np.empty((P, P, C), dtype=np.float32)
    for n in range(rois.shape[0]):
        b = int(rois[n, 0])
        roi_start_w = rois[n, 1] * scale - half
        roi_start_h = rois[n, 2] * scale - half
        roi_end_w = rois[n, 3] * scale - half
        roi_end_h = rois[n, 4] * scale - half
        roi_width = roi_end_w - roi_start_w
        roi_height = roi_end_h - roi_start_h
        bin_size_h = roi_height / np.float32(P)
        bin_size_w = roi_width / np.float32(P)
        grid_h = int(math.ceil(roi_height / np.float32(P)))
        grid_w = int(math.ceil(roi_width / np.float32(P)))
        count = np.float32(max(grid_h * grid_w, 1))
        acc[:] = 0
        for ph in range(P):
            for pw in range(P):
                for iy in range(grid_h):
                    y = roi_start_h + np.float32(ph) * bin_size_h \
                        + (np.float32(iy) + half) * bin_size_h / np.float32(grid_h)
                    for ix in range(grid_w):
                        x = roi_start_w + np.float32(pw) * bin_size_w \
                            + (np.float32(ix) + half) * bin_size_w / np.float32(grid_w)
                        if y < -1.0 or y > H or x < -1.0 or x > W:  # outside the map: contributes 0
                            continue
                        yy = y if y > 0 else np.float32(0)
                        xx = x if x > 0 else np.float32(0)
                        y_low = int(yy)
                        x_low = int(xx)
                        if y_low >= H - 1:
                            y_high = y_low = H - 1
                            yy = np.float32(y_low)
                        else:
                            y_high = y_low + 1
                        if x_low >= W - 1:
                            x_high = x_low = W - 1
                            xx = np.float32(x_low)
                        else:
                            x_high = x_low + 1
                        ly = yy - np.float32(y_low)
                        lx = xx - np.float32(x_low)
                        hy = np.float32(1) - ly
                        hx = np.float32(1) - lx
                        w1 = hy * hx
                        w2 = hy * lx
                        w3 = ly * hx
                        w4 = ly * lx
                        row = acc[ph, pw]  # row views: the channel loop below vectorises cleanly
                        f1 = feat[b, y_low, x_low]
                        f2 = feat[b, y_low, x_high]
                        f3 = feat[b, y_high, x_low]
                        f4 = feat[b, y_high, x_high]
                        for c in range(C):
                            row[c] += w1 * f1[c] + w2 * f2[c] + w3 * f3[c] + w4 * f4[c]
        # max over each k×k block of bins; dividing the max by ``count`` equals the max of the divided
        # bins (division by a positive number is monotone, also after rounding)
        for qy in range(Q):
            for qx in range(Q):
                for c in range(C):
                    m = acc[qy * k, qx * k, c]
                    for dy in range(k):
                        for dx in range(k):
                            v = acc[qy * k + dy, qx * k + dx, c]
                            if v > m:
                                m = v
                    out[n, c, qy, qx] = m / count
    return out


def roi_kernel_applies(fmap: torch.Tensor) -> bool:
    """Whether :func:`roi_align_maxpool` serves ``fmap``: float32 on the CPU, no gradient wanted, and not
    switched off with ``METARTT_ROI_KERNEL=0`` (then torchvision's op runs: the same numbers, slower; for
    side-by-side timing, or a platform where numba misbehaves)."""
    return (fmap.device.type == "cpu" and fmap.dtype == torch.float32
            and not (torch.is_grad_enabled() and fmap.requires_grad)
            and os.environ.get("METARTT_ROI_KERNEL", "1") != "0")


def roi_align_maxpool(fmap: torch.Tensor, rois: torch.Tensor, presample: int, pool: int,
                      spatial_scale: float) -> torch.Tensor:
    """``max_pool(roi_align(fmap, rois, presample, spatial_scale, sampling_ratio=-1, aligned=True), pool)``
    for a CPU float32 ``fmap`` (B, C, H, W) and ``rois`` (N, 5) = (batch index, x1, y1, x2, y2).
    Returns (N, C, presample // pool, presample // pool); bit-identical to torchvision + max-pool."""
    if not roi_kernel_applies(fmap):
        raise ValueError("roi_align_maxpool: needs a CPU float32 feature map without autograd "
                         f"(got {fmap.device.type} {fmap.dtype}, requires_grad={fmap.requires_grad})")
    if presample % pool:
        raise ValueError(f"roi_align_maxpool: presample {presample} is not a multiple of pool {pool}")
    r = rois.detach().to(torch.float32).cpu().contiguous().numpy()
    if r.ndim != 2 or r.shape[1] != 5:
        raise ValueError(f"roi_align_maxpool: rois must be (N, 5), got {tuple(r.shape)}")
    if not np.isfinite(r).all():
        raise ValueError("roi_align_maxpool: a box has a non-finite coordinate")
    if len(r) and (r[:, 0].min() < 0 or r[:, 0].max() >= fmap.shape[0]):
        raise ValueError(f"roi_align_maxpool: batch index outside 0..{fmap.shape[0] - 1}")
    feat = fmap.detach().permute(0, 2, 3, 1).contiguous().numpy()
    q = presample // pool
    out = np.empty((len(r), fmap.shape[1], q, q), dtype=np.float32)
    _roi_align_maxpool(feat, r, np.float32(spatial_scale), presample, pool, out)
    return torch.from_numpy(out)


_WARM = False


def warm_up() -> None:
    """Compile (or load from the disk cache) the kernel now, on a 2×2 map: the first call costs ~1.4 s
    cold, ~0.3 s cached, which must not land inside a tracker's timed first frame. Trackers call it when
    they are built; later calls return at once."""
    global _WARM
    if _WARM or not roi_kernel_applies(torch.zeros(1)):
        return
    with torch.no_grad():
        roi_align_maxpool(torch.zeros(1, 1, 2, 2), torch.tensor([[0.0, 0.0, 0.0, 1.0, 1.0]]), 2, 1, 1.0)
    _WARM = True

"""Figures of notebook 01 (simulated episodes): image patches of the episode's data sets, the six frames
with ground-truth and estimated boxes, and the episode / seed widget.

Part of :mod:`metartt_lite.course.widgets`, which re-exports every public name (``widgets.X``).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import cv2
import numpy as np

from ..core.drawing import GT_COLOR
from .common import _hex, figure_widget

__all__ = ['crop_patch', 'crop_patches', 'episode_grid', 'episode_overview', 'episode_widget']


def crop_patch(frame: np.ndarray, box: Sequence[float], size: int = 48) -> np.ndarray:
    """The image inside ``box`` (xywh, 0-based, continuous coordinates) resampled to size×size
    (replicated border outside the frame)."""
    x, y, w, h = (float(v) for v in box)
    # warp at no less than the box's own resolution (sub-pixel exact, bilinear), then area-average down
    iw, ih = max(size, int(np.ceil(w - 1e-6))), max(size, int(np.ceil(h - 1e-6)))
    sx, sy = iw / max(w, 1e-6), ih / max(h, 1e-6)
    M = np.array([[sx, 0, -x * sx + 0.5 * (sx - 1)], [0, sy, -y * sy + 0.5 * (sy - 1)]])
    patch = cv2.warpAffine(frame, M, (iw, ih), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if (iw, ih) != (size, size):
        patch = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return patch


def crop_patches(frame: np.ndarray, boxes: np.ndarray, size: int = 48, max_n: int | None = None) -> list[np.ndarray]:
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if max_n is not None:
        b = b[:max_n]
    return [crop_patch(frame, bb, size) for bb in b]


def episode_grid(rows: Mapping[str, Sequence[np.ndarray]], n_cols: int = 8, title: str | None = None,
                 patch_inches: float = 0.75):
    """Matplotlib grid of image patches: one row per entry of ``rows`` (label → patches), at most
    ``n_cols`` per row, e.g. ``{"D_init +": ..., "D_init −": ..., "D_on + (estimated)": ...,
    "D_test^std +": ..., "D_test^hard (−)": ...}``."""
    import matplotlib.pyplot as plt
    labels = list(rows)
    n_rows = max(len(labels), 1)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(patch_inches * n_cols + 1.6, patch_inches * n_rows + 0.5),
                             squeeze=False)
    for r, lab in enumerate(labels):
        pats = list(rows[lab])[:n_cols]
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([]); ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(c < len(pats))
            if c < len(pats):
                ax.imshow(pats[c])
            if c == 0:
                ax.set_ylabel(lab, rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.17, right=0.99, top=0.92 if title else 0.98, bottom=0.02, wspace=0.05, hspace=0.08)
    return fig


def episode_overview(frames: Sequence[np.ndarray], gt_boxes: Sequence[np.ndarray],
                     est_boxes: Sequence[np.ndarray | None] | None = None, labels: Sequence[str] | None = None,
                     title: str | None = None):
    """A row of the episode's frames: ground truth in green, the *estimated* target (online frames) in
    red dashed, so one sees where D_on was sampled from compared with where the target really is."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    n = len(frames)
    fig, axes = plt.subplots(1, n, figsize=(2.3 * n, 2.3 * frames[0].shape[0] / frames[0].shape[1] + 0.6), squeeze=False)
    for i, ax in enumerate(axes[0]):
        ax.imshow(frames[i])
        ax.set_xticks([]); ax.set_yticks([])
        x, y, w, h = gt_boxes[i]
        ax.add_patch(Rectangle((x, y), w, h, fill=False, ec=_hex(GT_COLOR), lw=1.6))
        if est_boxes is not None and est_boxes[i] is not None:
            x, y, w, h = est_boxes[i]
            ax.add_patch(Rectangle((x, y), w, h, fill=False, ec="red", lw=1.6, ls="--"))
        if labels is not None:
            ax.set_title(labels[i], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def episode_widget(show: Callable[[int, int], Any], n_episodes: int = 20, max_seed: int = 9, episode: int = 0):
    """Sliders over the episode index (starting at ``episode``) and the seed → ``show(episode, seed)`` (a
    figure) in an Output."""
    import ipywidgets as W
    ep = W.IntSlider(value=episode, min=0, max=max(n_episodes - 1, 0), description="episode", continuous_update=False)
    seed = W.IntSlider(value=0, min=0, max=max_seed, description="seed", continuous_update=False)
    return figure_widget(lambda episode, seed: show(episode, seed), {"episode": ep, "seed": seed},
                         title="Simulated tracking episodes")


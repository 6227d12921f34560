"""Figures of notebook 01 (simulated episodes): image patches of the episode's data sets, the six frames
with ground-truth and estimated boxes, and the episode / seed widget.

Part of :mod:`metartt_lite.course.widgets`, which re-exports every public name (``widgets.X``).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import cv2
import numpy as np
import torch

from ..core.drawing import GT_COLOR
from ..core.boxes import iou
from ..model.surgery import LAYERS
from .common import _hex, figure_widget

__all__ = ['crop_patch', 'crop_patches', 'episode_grid', 'episode_overview', 'episode_widget', 'network_shapes',
           'architecture_figure', 'algorithm1_markdown', 'episode_figures']


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



def network_shapes(net, crop_size: int | None = None) -> list[dict[str, Any]]:
    """The tracker network stage by stage, measured by running ``net`` on one blank search crop (so the
    figure cannot drift from the code): per stage its name, what it is, its output shape, its trainable
    parameter count, and whether it is meta-learned / adapted online / pruned."""
    cfg = net.cfg
    S = crop_size or cfg.crop_size
    dev = next(net.parameters()).device
    with torch.no_grad():
        fmap_t = net.trunk(torch.zeros(1, 3, S, S, device=dev))
        fmap = net.shared_forward(fmap_t)
        roi = net.roi_features(fmap, np.array([[S / 4, S / 4, S / 2, S / 2]], dtype=np.float32))
    head = dict(net.head_params())
    n_trunk = sum(p.numel() for p in net.trunk.parameters())
    rows = [dict(name="search crop", what="RGB crop\naround the last box", shape=(3, S, S), params=0),
            dict(name="trunk", what=f"EfficientNet-Lite0,\nfirst {cfg.trunk_blocks} stages",
                 shape=tuple(fmap_t.shape[1:]), params=n_trunk, frozen=True),
            dict(name="shared", what=f"conv {net.shared.kernel_size[0]}×{net.shared.kernel_size[1]},\nonce per frame", shape=tuple(fmap.shape[1:]),
                 params=sum(p.numel() for p in net.shared.parameters()), meta=True, pruned="shared" in LAYERS),
            dict(name="RoIAlign", what=f"per candidate:\n{cfg.roi_presample}² → max-pool → {cfg.roi_size}²",
                 shape=(roi.shape[1],), params=0)]
    for l in ("fc4", "fc5", "fc6"):
        w = head[f"{l}.weight"]
        rows.append(dict(name=l, what="background /\ntarget logits" if l == "fc6" else "fully connected\n+ ReLU",
                         shape=(w.shape[0],), params=w.numel() + head[f"{l}.bias"].numel(), meta=True, online=True,
                         pruned=l in LAYERS))
    return rows


def architecture_figure(net, crop_size: int | None = None):
    """Matplotlib: trunk → shared conv → RoIAlign → fc4–fc6 as boxes, shapes and parameter counts from
    :func:`network_shapes`; colour and tags say what is frozen, meta-learned (θ⁰), adapted online
    (Eqs. 2–3, rates 𝒜) and pruned (Eqs. 9–12)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch
    rows = network_shapes(net, crop_size)
    fig, ax = plt.subplots(figsize=(2.05 * len(rows), 2.9))
    for i, r in enumerate(rows):
        col = "#dddddd" if r.get("frozen") or not r["params"] else "#ffd9a8" if r.get("online") else "#b9d7f0"
        ax.add_patch(FancyBboxPatch((i + 0.06, 0.12), 0.82, 0.74, boxstyle="round,pad=0.02", fc=col, ec="0.3"))
        shape = "×".join(str(int(s)) for s in r["shape"])
        tags = [t for t, k in (("frozen", "frozen"), ("θ⁰ meta-learned", "meta"), ("adapted online", "online"),
                               ("pruned by Ψ", "pruned")) if r.get(k)]
        ax.text(i + 0.47, 0.76, r["name"], ha="center", va="center", fontsize=12, weight="bold")
        ax.text(i + 0.47, 0.56, r["what"], ha="center", va="center", fontsize=9)
        ax.text(i + 0.47, 0.38, shape, ha="center", va="center", fontsize=10, family="monospace")
        ax.text(i + 0.47, 0.24, f"{r['params']:,} params" if r["params"] else "", ha="center", fontsize=9)
        ax.text(i + 0.47, 0.02, "\n".join(tags), ha="center", va="top", fontsize=8.5, color="0.25")
        if i:
            ax.annotate("", (i + 0.06, 0.5), (i - 0.12, 0.5), arrowprops=dict(arrowstyle="->", lw=1.5))
    ax.set(xlim=(0, len(rows)), ylim=(-0.32, 0.92))
    ax.axis("off")
    ax.set_title("The tracker network, measured from metartt_lite (grey: frozen or no weights, blue: meta-learned, "
                 "orange: meta-learned and adapted online)", fontsize=10)
    fig.tight_layout()
    return fig


def algorithm1_markdown(cfg) -> str:
    """Algorithm 1 of the paper (meta-training), with the sizes of a :class:`~metartt_lite.train.meta.MetaConfig`
    and the package function that runs each line, as Markdown."""
    e = cfg.episode
    k_i, k_o = (1, 0) if cfg.meta_tracker else (cfg.k_init, cfg.k_on)
    lines = [
        ("initialise 𝓜 = {θ⁰, 𝒜_init, 𝒜_on}: θ⁰ from pretraining, every α = "
         f"{cfg.init_rate:g}", "`meta.MetaLearner`"),
        (f"**repeat** over {cfg.episodes} episodes, {cfg.meta_batch} per meta-step "
         f"({-(-cfg.episodes // cfg.meta_batch)} meta-steps):", "`meta.meta_train`"),
        (f"  draw an episode: {e.n_frames} frames of one video (gaps ≤ {e.max_gap}); D_init = {e.n_pos}+ / {e.n_neg}− "
         f"on frame 1; D_test^std on the last frame; D_test^hard = {e.n_hard} targets of other videos",
         "`meta.make_episode`"),
        (f"  θ_init^K ← {k_i} steps of Eq. 2 on D_init with 𝒜_init", "`adaptation.adapt`"),
        (f"  estimate the target on frames 2–{e.n_frames - 1} with θ_init^K (best of {e.n_candidates} candidates); "
         f"D_on = {e.n_pos_on}+ / {e.n_neg_on}− per frame around the estimates"
         + ("" if e.estimated_target else " (ablation: around the ground truth)"), "`meta.episode_loss`"),
        (f"  θ_on^K ← {k_o} steps of Eq. 3 on D_on with 𝒜_on, from θ_init^K", "`adaptation.adapt`"),
        (f"  L_meta = L_test(θ_init^K) + L_test(θ_on^K), L_test = CE + {cfg.gamma:g}·triplet (margin {cfg.xi:g}), "
         "Eqs. 4–7", "`losses.meta_test_loss`"),
        (f"  𝓜 ← Adam step on ∇_𝓜 L_meta ({'first' if cfg.first_order else 'second'}-order, Eq. 8; lr θ⁰ {cfg.lr:g}, "
         f"lr ρ {cfg.lr_rates:g}, clip {cfg.grad_clip:g})", "`meta.meta_step`"),
    ]
    out = ["| line | Algorithm 1 (this configuration) | runs in |", "|---:|---|---|"]
    out += [f"| {i} | {text.replace('|', '/')} | {fn} |" for i, (text, fn) in enumerate(lines, start=1)]
    return "\n".join(out)


def episode_figures(videos: Sequence[Any], feats: Sequence[Any], ep: Any, stats: Mapping[str, Any],
                    on: Sequence[tuple[np.ndarray, np.ndarray]], title: str = ""):
    """(the six frames with ground truth and estimated targets, a grid of patches of every data set) for one
    episode ``ep`` of :func:`metartt_lite.train.meta.make_episode` and the ``stats`` of ``episode_loss``;
    ``on``: the D_on boxes per online frame (``stats['on_boxes']``)."""
    sf = feats[ep.seq]
    frame = lambda j, f: videos[j].frame(int(feats[j].frame_index[f]))
    frames = [frame(ep.seq, f) for f in ep.frames]
    targets = list(stats["targets"])
    labels = (["D_init (GT)"] + [f"D_on {i}: IoU(est, GT) {float(iou(t, sf.gt[f])):.2f}"
                                 for i, (t, f) in enumerate(zip(targets, ep.frames[1:-1]), start=1)]
              + ["D_test^std (GT)"])
    fig1 = episode_overview(frames, [sf.gt[f] for f in ep.frames], [None] + targets + [None], labels,
                            title=f"{title} {sf.name}: green = ground truth, red dashed = estimated target")
    per = lambda boxes_per_frame, n: [p for (fr, b) in boxes_per_frame for p in crop_patches(fr, b, max_n=n)]
    rows = {
        "D_init +": crop_patches(frames[0], ep.init.pos, max_n=8),
        "D_init −": crop_patches(frames[0], ep.init.neg, max_n=8),
        "D_on + (around est.)": per([(frames[i + 1], p) for i, (p, n) in enumerate(on)], 2),
        "D_on −": per([(frames[i + 1], n) for i, (p, n) in enumerate(on)], 2),
        "D_test^std +": crop_patches(frames[-1], ep.test.pos, max_n=8),
        "D_test^std −": crop_patches(frames[-1], ep.test.neg, max_n=8),
        "D_test^hard (−)": [p for j, f, b in ep.hard for p in crop_patches(frame(j, f), b, max_n=1)],
    }
    fig2 = episode_grid(rows, n_cols=8, title="patches of each data set (first 8 shown)")
    return fig1, fig2

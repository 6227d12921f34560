"""Figures of notebook 05 (one-shot channel pruning): the per-video masks β, and what hard masks at a
threshold τ do to the network's decisions (:func:`mask_threshold_effect`, a plain function the tests
call), with its τ widget.

Part of :mod:`metartt_lite.course.widgets`, which re-exports every public name (``widgets.X``).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..model.surgery import hard_keep, hard_masks, layer_widths, masked_scores, prune_rates
from ..core.boxes import iou
from .common import figure_widget, _np

__all__ = ['channel_mask_figure', 'mask_threshold_effect', 'plot_mask_threshold', 'mask_threshold_widget', 'decisions_at',
           'candidates_figure']


def channel_mask_figure(betas_per_video: Mapping[str, Mapping[str, Any]], tau: float = 0.5):
    """Plotly heatmaps, one per pruned layer (shared conv, fc4, fc5): rows are videos, columns channels,
    colour the soft mask β predicted from that video's first frame. The title of each panel gives the
    fraction of channels with β < τ per video (what a hard mask at ``tau`` removes, before the floor)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    videos = list(betas_per_video)
    layers = list(next(iter(betas_per_video.values())))
    titles = []
    for l in layers:
        rates = [float((_np(betas_per_video[v][l]) < tau).mean()) for v in videos]
        titles.append(f"{l}: β<τ={tau:g} for {np.mean(rates):.0%} of channels (per video {min(rates):.0%}–{max(rates):.0%})")
    fig = make_subplots(rows=len(layers), cols=1, subplot_titles=titles, vertical_spacing=0.12)
    for r, l in enumerate(layers, start=1):
        z = np.stack([_np(betas_per_video[v][l]) for v in videos])
        fig.add_trace(go.Heatmap(z=z, y=videos, x=np.arange(z.shape[1]), zmin=0, zmax=1, colorscale="Viridis",
                                 colorbar=dict(title="β", len=0.9) if r == 1 else None, showscale=r == 1,
                                 hovertemplate="video %{y}<br>channel %{x}<br>β=%{z:.3f}<extra>" + l + "</extra>"),
                      r, 1)
        fig.update_xaxes(title_text="channel", row=r, col=1)
    fig.update_layout(height=210 * len(layers) + 60, margin=dict(l=110, r=20, t=50, b=40),
                      title="Per-video channel masks β = Ψ(D_init; θ_init^K, φ)")
    return fig


def mask_threshold_effect(net, x: torch.Tensor, theta: Mapping[str, torch.Tensor] | None,
                          betas: Mapping[str, torch.Tensor], taus: Sequence[float] | None = None,
                          min_keep: int | None = None, boxes: np.ndarray | None = None,
                          gt: np.ndarray | None = None) -> dict[str, Any]:
    """What hard masks at each threshold τ do to a network: pruning rate and score change.

    For each τ: kept channels :func:`~metartt_lite.train.prune.hard_keep` (β ≥ τ, floor ``min_keep``), the
    0/1 masks, and the fc6 scores of the masked network (:func:`~metartt_lite.train.prune.masked_scores`,
    eval mode) on RoI features ``x`` with head parameters ``theta``, against the unmasked scores.
    Returns ``tau``, ``prune_rate`` (per layer), ``mean_prune_rate`` (mean over layers),
    ``score_change`` (mean |Δ target score|), ``relative_change`` (÷ the std of the unmasked target
    score), ``flip_rate`` (fraction of samples whose target/background decision flips), ``n_target_full``
    (samples the unmasked network scores as target), ``n_target`` (the masked network's count),
    ``flip_rate_pos`` (fraction of the unmasked network's targets no longer scored as target; NaN when it
    has none) and ``relative_change_pos`` (mean |Δ target score| over those targets ÷ the same std: the
    std over all samples is dominated by far background, whose scores barely move). With the samples'
    ``boxes`` and the ground truth ``gt``: ``best_iou_full`` and ``best_iou``, the IoU with ``gt`` of the
    top-scoring sample (the box a tracker would pick) without and with the masks."""
    taus = list(np.round(np.linspace(0, 1, 21), 4) if taus is None else taus)
    widths = layer_widths(net)
    with torch.no_grad():
        full = masked_scores(net, x, theta, None)
        s0 = full[:, 1]
        dec0 = full[:, 1] > full[:, 0]
        std = s0.std().clamp_min(1e-12)
        out: dict[str, Any] = {"tau": [float(t) for t in taus], "prune_rate": {l: [] for l in widths},
                               "mean_prune_rate": [], "score_change": [], "relative_change": [], "flip_rate": [],
                               "n_samples": len(x), "n_target_full": int(dec0.sum()), "n_target": [], "flip_rate_pos": [],
                               "relative_change_pos": []}
        best = (lambda sc: float(iou(np.asarray(boxes)[int(torch.argmax(sc))], np.asarray(gt)))) \
            if boxes is not None and gt is not None else None
        if best is not None:
            out["best_iou_full"], out["best_iou"] = best(s0), []
        for t in taus:
            keep = hard_keep(betas, float(t), min_keep)
            s = masked_scores(net, x, theta, hard_masks(keep, widths, x))
            pr = prune_rates(keep, widths)
            for l in widths:
                out["prune_rate"][l].append(pr[l])
            out["mean_prune_rate"].append(float(np.mean([pr[l] for l in widths])))
            d = (s[:, 1] - s0).abs()
            out["score_change"].append(float(d.mean()))
            out["relative_change"].append(float(d.mean() / std))
            dec = s[:, 1] > s[:, 0]
            out["flip_rate"].append(float((dec != dec0).float().mean()))
            out["n_target"].append(int(dec.sum()))
            out["flip_rate_pos"].append(float((~dec[dec0]).float().mean()) if dec0.any() else float("nan"))
            out["relative_change_pos"].append(float(d[dec0].mean() / std) if dec0.any() else float("nan"))
            if best is not None:
                out["best_iou"].append(best(s[:, 1]))
    return out


def plot_mask_threshold(effect: Mapping[str, Any], tau: float | None = None):
    """Plotly, two panels against τ, one unit each: top, *fractions* (channels removed per layer and on
    average, target/background decisions flipped over all samples and over the unmasked network's targets,
    and the top-scoring sample's IoU with the ground truth when known); bottom, the mean |Δ target score|
    over all samples and over the unmasked network's targets, in units of the unmasked score's std. The
    chosen ``tau`` is marked, and the title recomputes its numbers."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    t = effect["tau"]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1, row_heights=[0.6, 0.4])
    for l, v in effect["prune_rate"].items():
        fig.add_trace(go.Scatter(x=t, y=v, mode="lines", name=f"pruned: {l}", line=dict(dash="dot")), 1, 1)
    fig.add_trace(go.Scatter(x=t, y=effect["mean_prune_rate"], mode="lines+markers", name="pruned: mean",
                             line=dict(color="black", width=3)), 1, 1)
    fig.add_trace(go.Scatter(x=t, y=effect["flip_rate"], mode="lines+markers", name="decisions flipped (all)",
                             line=dict(color="#ff7f0e", dash="dash")), 1, 1)
    fig.add_trace(go.Scatter(x=t, y=effect["flip_rate_pos"], mode="lines+markers",
                             name=f"full net's {effect['n_target_full']} targets lost", line=dict(color="#9467bd")), 1, 1)
    if "best_iou" in effect:
        fig.add_trace(go.Scatter(x=t, y=effect["best_iou"], mode="lines+markers", name="best candidate's IoU with GT",
                                 line=dict(color="#2ca02c")), 1, 1)
    fig.add_trace(go.Scatter(x=t, y=effect["relative_change"], mode="lines+markers", name="|Δ score| / std (all)",
                             line=dict(color="#d62728")), 2, 1)
    fig.add_trace(go.Scatter(x=t, y=effect["relative_change_pos"], mode="lines+markers",
                             name="|Δ score| / std (full net's targets)", line=dict(color="#8c564b", dash="dash")), 2, 1)
    title = "Hard-mask threshold τ: pruning rate vs what the network decides"
    if tau is not None:
        i = int(np.argmin(np.abs(np.asarray(t) - tau)))
        for r in (1, 2):
            fig.add_vline(x=t[i], line=dict(color="gray", width=1), row=r, col=1)
        title += (f"<br><sub>τ={t[i]:.2f}: {effect['mean_prune_rate'][i]:.0%} of channels removed; "
                  f"{effect['n_target'][i]} of {effect['n_samples']} candidates scored as target "
                  f"(full net: {effect['n_target_full']}); {effect['flip_rate'][i]:.1%} of decisions flipped"
                  + (f"; best candidate IoU {effect['best_iou_full']:.2f} → {effect['best_iou'][i]:.2f}"
                     if "best_iou" in effect else "") + "</sub>")
    fig.update_xaxes(title_text="τ (keep channel iff β ≥ τ)", range=[min(t), max(t)], row=2, col=1)
    fig.update_yaxes(title_text="fraction", range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(title_text="|Δ score| / std", rangemode="tozero", row=2, col=1)
    fig.update_layout(title=title, height=560, margin=dict(l=60, r=20, t=90, b=40), legend=dict(font=dict(size=12)))
    return fig


def mask_threshold_widget(net, x: torch.Tensor, theta: Mapping[str, torch.Tensor] | None,
                          betas: Mapping[str, torch.Tensor], taus: Sequence[float] | None = None,
                          min_keep: int | None = None, tau: float = 0.5, boxes: np.ndarray | None = None,
                          gt: np.ndarray | None = None):
    """A τ slider → :func:`plot_mask_threshold` of :func:`mask_threshold_effect` (computed once)."""
    import ipywidgets as W
    effect = mask_threshold_effect(net, x, theta, betas, taus, min_keep, boxes=boxes, gt=gt)
    ts = effect["tau"]
    step = float(np.min(np.diff(ts))) if len(ts) > 1 else 0.05
    s = W.FloatSlider(value=tau, min=min(ts), max=max(ts), step=step, description="τ", continuous_update=False)
    box = figure_widget(lambda tau: plot_mask_threshold(effect, tau), {"tau": s}, title="Hard-mask threshold")
    box.effect = effect
    return box



def decisions_at(net, x: torch.Tensor, theta: Mapping[str, torch.Tensor] | None, betas: Mapping[str, torch.Tensor],
                 tau: float, min_keep: int | None = None) -> dict[str, Any]:
    """Recomputed at one threshold ``tau``: which samples the full and the hard-masked network score as target
    (``full_target``, ``masked_target``: bool arrays), the top-scoring sample of each (``best_full``,
    ``best_masked``) and the mean pruning rate over the layers."""
    widths = layer_widths(net)
    keep = hard_keep(betas, float(tau), min_keep)
    with torch.no_grad():
        full = masked_scores(net, x, theta, None)
        s = masked_scores(net, x, theta, hard_masks(keep, widths, x))
    pr = prune_rates(keep, widths)
    return {"tau": float(tau), "full_target": (full[:, 1] > full[:, 0]).cpu().numpy(),
            "masked_target": (s[:, 1] > s[:, 0]).cpu().numpy(), "best_full": int(torch.argmax(full[:, 1])),
            "best_masked": int(torch.argmax(s[:, 1])), "mean_prune_rate": float(np.mean([pr[l] for l in widths]))}


def candidates_figure(frame: np.ndarray, boxes: np.ndarray, gt: np.ndarray | None, dec: Mapping[str, Any]):
    """Matplotlib, two panels on the frame: the candidates the full network and the masked one (at
    ``dec['tau']``, from :func:`decisions_at`) score as target (orange), every other candidate faint, each
    network's top candidate thick (blue), the ground truth green."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, best, name in ((axes[0], "full_target", dec["best_full"], "full network"),
                                (axes[1], "masked_target", dec["best_masked"],
                                 f"masked at τ = {dec['tau']:.2f} ({dec['mean_prune_rate']:.0%} of channels removed)")):
        ax.imshow(frame)
        for b, t in zip(boxes, dec[key]):
            ax.add_patch(Rectangle(b[:2], b[2], b[3], fill=False, lw=1.2 if t else 0.4,
                                   ec="#ff7f0e" if t else (1, 1, 1, 0.25)))
        if gt is not None:
            ax.add_patch(Rectangle(gt[:2], gt[2], gt[3], fill=False, lw=2, ec="#00d000"))
        b = boxes[best]
        ax.add_patch(Rectangle(b[:2], b[2], b[3], fill=False, lw=2.5, ec="#1f77b4"))
        ax.set_title(f"{name}:\n{int(np.sum(dec[key]))} of {len(boxes)} candidates scored as target", fontsize=11)
        ax.axis("off")
    fig.text(0.5, 0.01, "orange: scored as target; blue: the top candidate; green: ground truth", ha="center", fontsize=11)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig

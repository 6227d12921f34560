"""Figures of notebook 03 (the triplet loss): normalised 2-D outputs on the unit circle, and the γ / ξ widget.

Part of :mod:`metartt_lite.course.widgets`, which re-exports every public name (``widgets.X``).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import torch

from .common import figure_widget

__all__ = ['unit_circle_figure', 'unit_circle_grid', 'triplet_widget']


def unit_circle_figure(groups: Mapping[str, Any], title: str = "", colors: Mapping[str, str] | None = None):
    """Plotly scatter of 2-D outputs after L2 normalisation (Eq. 6's f/‖f‖): every point lies on the unit
    circle, so only its *angle* matters for the triplet loss. The dashed diagonal is the decision line
    f₁ = f₀: points above it are scored as target. ``groups``: label → (N, 2) outputs."""
    import plotly.graph_objects as go
    t = np.linspace(0, 2 * np.pi, 200)
    fig = go.Figure(go.Scatter(x=np.cos(t), y=np.sin(t), mode="lines", line=dict(color="lightgray"),
                               hoverinfo="skip", showlegend=False))
    default = ["#2ca02c", "#7f7f7f", "#d62728", "#1f77b4", "#ff7f0e", "#9467bd"]
    for i, (lab, v) in enumerate(groups.items()):
        a = v.detach().float().cpu().numpy() if torch.is_tensor(v) else np.asarray(v, dtype=np.float64)
        a = a.reshape(-1, 2)
        a = a / np.clip(np.linalg.norm(a, axis=1, keepdims=True), 1e-12, None)
        r = 1.0 + 0.04 * (i + 1)  # groups on slightly different radii so overlapping points stay visible
        c = (colors or {}).get(lab, default[i % len(default)])
        fig.add_trace(go.Scatter(x=a[:, 0] * r, y=a[:, 1] * r, mode="markers", name=f"{lab} ({len(a)})",
                                 marker=dict(size=7, color=c, opacity=0.75)))
    # the decision line f₁ = f₀: above it the output is scored as target
    fig.add_shape(type="line", x0=-1.4, y0=-1.4, x1=1.4, y1=1.4, line=dict(color="black", dash="dash", width=1))
    fig.add_annotation(x=-0.95, y=-1.25, text="f₁ = f₀ (above: target)", showarrow=False, font=dict(size=10))
    fig.update_layout(title=title, width=520, height=480, xaxis=dict(range=[-1.4, 1.4], title="f₀/‖f‖ (negative class)"),
                      yaxis=dict(range=[-1.4, 1.4], scaleanchor="x", title="f₁/‖f‖ (target class)"),
                      margin=dict(l=50, r=10, t=50, b=40), legend=dict(x=0.0, y=-0.2, orientation="h"))
    return fig


def unit_circle_grid(panels: Mapping[str, Mapping[str, Any]], colors: Mapping[str, str] | None = None):
    """Static companion of :func:`triplet_widget` (matplotlib): one unit-circle panel per entry of
    ``panels`` (title → {label → (N, 2) outputs}), the outputs L2-normalised as in Eq. 6."""
    import matplotlib.pyplot as plt
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(3.3 * n, 3.6), squeeze=False)
    default = ["#2ca02c", "#7f7f7f", "#d62728", "#1f77b4", "#ff7f0e", "#9467bd"]
    t = np.linspace(0, 2 * np.pi, 200)
    for ax, (title, groups) in zip(axes[0], panels.items()):
        ax.plot(np.cos(t), np.sin(t), color="lightgray", lw=1)
        for i, (lab, v) in enumerate(groups.items()):
            a = v.detach().float().cpu().numpy() if torch.is_tensor(v) else np.asarray(v, dtype=np.float64)
            a = a.reshape(-1, 2) / np.clip(np.linalg.norm(a.reshape(-1, 2), axis=1, keepdims=True), 1e-12, None)
            r = 1.0 + 0.06 * (i + 1)
            ax.scatter(a[:, 0] * r, a[:, 1] * r, s=12, alpha=0.7, label=lab, color=(colors or {}).get(lab, default[i % len(default)]))
        ax.plot([-1.45, 1.45], [-1.45, 1.45], "k--", lw=0.8)      # decision line f₁ = f₀ (above: target)
        ax.text(-1.4, -1.1, "f₁ = f₀\n(above: target)", fontsize=7)
        ax.set_aspect("equal")
        ax.set_xlim(-1.45, 1.45); ax.set_ylim(-1.45, 1.45)
        ax.set_xticks([]); ax.set_yticks([])
        ax.set_title(title, fontsize=9)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def triplet_widget(show: Callable[[float, float], Any], gamma: float = 0.5, xi: float = 0.5):
    """Sliders for γ (weight of the triplet term, Eq. 4) and ξ (margin, Eq. 5) → ``show(gamma, xi)``."""
    import ipywidgets as W
    g = W.FloatSlider(value=gamma, min=0.0, max=2.0, step=0.25, description="γ", continuous_update=False)
    x = W.FloatSlider(value=xi, min=0.0, max=4.0, step=0.25, description="ξ", continuous_update=False)
    return figure_widget(lambda gamma, xi: show(gamma, xi), {"gamma": g, "xi": x}, title="CE + γ·triplet (Eqs. 4–6)")


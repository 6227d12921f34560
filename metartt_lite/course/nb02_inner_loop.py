"""Figures of notebook 02 (the inner loop): the learned per-parameter, per-step rates — table, plotly
widget figure and the matplotlib static companion.

Part of :mod:`metartt_lite.course.widgets`, which re-exports every public name (``widgets.X``).
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .common import figure_widget, _np

__all__ = ['lr_summary', 'plot_learning_rates', 'learning_rate_figure', 'learning_rate_widget', 'inner_loop_figure',
           'curve_differences_figure']


PhaseRates = Sequence[Mapping[str, torch.Tensor]]


def _phases(rates: Any) -> dict[str, list]:
    """Normalise rates to {'init': [...], 'on': [...]} (lists of {name: α} per step)."""
    if isinstance(rates, Mapping) and set(rates) <= {"init", "on"} and rates:
        return {k: list(v) for k, v in rates.items()}
    if isinstance(rates, tuple) and len(rates) == 2 and all(isinstance(r, (list, tuple)) for r in rates):
        return {"init": list(rates[0]), "on": list(rates[1])}
    if isinstance(rates, (list, tuple)):
        return {"init": list(rates)}
    raise TypeError("rates must be a list of {name: α} per step, a (A_init, A_on) pair or {'init': .., 'on': ..}")


def lr_summary(rates: Any) -> dict[str, list]:
    """Per phase, step k (1-based) and parameter: mean, min, max and median of α^k and its size.

    ``rates``: the lists ``load_meta`` returns (one phase, or a ``(A_init, A_on)`` pair, or a dict).
    Returns columns (a dict of equal-length lists; ``pandas.DataFrame(lr_summary(r))`` makes a table)."""
    cols: dict[str, list] = {c: [] for c in ("phase", "step", "param", "layer", "mean", "min", "max", "median", "numel")}
    for phase, steps in _phases(rates).items():
        for k, d in enumerate(steps, start=1):
            for name, a in d.items():
                v = _np(a)
                cols["phase"].append(phase)
                cols["step"].append(k)
                cols["param"].append(name)
                cols["layer"].append(name.split(".")[0])
                cols["mean"].append(float(v.mean()))
                cols["min"].append(float(v.min()))
                cols["max"].append(float(v.max()))
                cols["median"].append(float(np.median(v)))
                cols["numel"].append(int(v.size))
    return cols


def _log_hist(v: np.ndarray, edges: np.ndarray) -> np.ndarray:
    lv = np.log10(np.clip(v, 1e-12, None))
    h, _ = np.histogram(np.clip(lv, edges[0], edges[-1]), bins=edges)
    return h / max(len(lv), 1)


def plot_learning_rates(rates: Any, phase: str = "init", step: int = 1, bins: int = 40):
    """Plotly figure of the learned rates of one phase: left, the mean α of every parameter tensor over
    the steps k = 1..K (the chosen ``step`` marked); right, per-parameter histograms of log10 α^k at
    ``step`` (computed in numpy, so the figure stays small whatever the parameter count)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    ph = _phases(rates)
    if phase not in ph or not ph[phase]:
        raise ValueError(f"no rates for phase {phase!r} (have: {', '.join(k for k, v in ph.items() if v)})")
    steps = ph[phase]
    K = len(steps)
    if not 1 <= step <= K:
        raise ValueError(f"step {step} out of range 1..{K}")
    names = list(steps[0])
    allv = np.concatenate([_np(a) for d in steps for a in d.values()])
    lo = math.floor(np.log10(max(allv.min(), 1e-12)) * 4) / 4
    hi = math.ceil(np.log10(max(allv.max(), 1e-12)) * 4) / 4
    if hi - lo < 0.5:
        lo, hi = lo - 0.25, hi + 0.25
    edges = np.linspace(lo, hi, bins + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    sym = "α_init" if phase == "init" else "α_on"
    fig = make_subplots(rows=1, cols=2, column_widths=[0.45, 0.55],
                        subplot_titles=(f"mean {sym}^k per parameter tensor", f"histogram of log10 {sym}^{step}"))
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
    ks = list(range(1, K + 1))
    for i, n in enumerate(names):
        c = palette[i % len(palette)]
        means = [float(_np(d[n]).mean()) for d in steps]
        fig.add_trace(go.Scatter(x=ks, y=means, mode="lines+markers", name=n, legendgroup=n, line=dict(color=c)), 1, 1)
        fig.add_trace(go.Scatter(x=[step], y=[means[step - 1]], mode="markers", showlegend=False, legendgroup=n,
                                 marker=dict(size=13, color=c, line=dict(width=2, color="black"))), 1, 1)
        fig.add_trace(go.Scatter(x=centers, y=_log_hist(_np(steps[step - 1][n]), edges), mode="lines",
                                 line=dict(shape="hvh", color=c), name=n, legendgroup=n, showlegend=False), 1, 2)
    fig.update_yaxes(type="log", title_text="α", row=1, col=1)
    fig.update_xaxes(title_text="inner step k", dtick=1, row=1, col=1)
    fig.update_xaxes(title_text="log10 α", row=1, col=2)
    fig.update_yaxes(title_text="fraction of entries", row=1, col=2)
    fig.update_layout(height=380, margin=dict(l=50, r=20, t=50, b=40),
                      title=f"{'A_init' if phase == 'init' else 'A_on'}: step {step} of {K}")
    return fig


def learning_rate_figure(r_init: PhaseRates, r_on: PhaseRates | None = None, hist_step: int = 1, bins: int = 40):
    """Static companion (matplotlib): for A_init and A_on, the mean α^k of every parameter tensor over
    the steps with its min–max range shaded; last panel, per-parameter histograms of log10 α_init^k at
    ``hist_step``."""
    import matplotlib.pyplot as plt
    ph = _phases((list(r_init), list(r_on or [])))
    shown = [(p, s) for p, s in ph.items() if s]
    fig, axes = plt.subplots(1, len(shown) + 1, figsize=(4.6 * (len(shown) + 1), 3.4), squeeze=False)
    for ax in axes[0][1:len(shown)]:
        ax.sharey(axes[0][0])
    hist_ax = axes[0][-1]
    steps0 = ph["init"]
    k = min(max(hist_step, 1), len(steps0))
    vals = {n: _np(a) for n, a in steps0[k - 1].items()}
    allv = np.log10(np.clip(np.concatenate(list(vals.values())), 1e-12, None))
    edges = np.linspace(allv.min() - 0.05, allv.max() + 0.05, bins + 1)
    for n, v in vals.items():
        hist_ax.stairs(_log_hist(v, edges), edges, label=n)
    hist_ax.set_xlabel(f"log10 α_init^{k}")
    hist_ax.set_ylabel("fraction of entries")
    hist_ax.set_title(f"A_init, step {k}: spread within each tensor")
    for ax, (phase, steps) in zip(axes[0], shown):
        ks = np.arange(1, len(steps) + 1)
        for i, n in enumerate(steps[0]):
            v = [_np(d[n]) for d in steps]
            mean = np.array([x.mean() for x in v])
            line, = ax.plot(ks, mean, "o-", label=n)
            ax.fill_between(ks, [x.min() for x in v], [x.max() for x in v], color=line.get_color(), alpha=0.12)
        ax.set_yscale("log")
        ax.set_xticks(ks)
        ax.set_xlabel("inner step k")
        ax.set_title(f"A_{phase}: mean α (band: min–max)")
    axes[0][0].set_ylabel("learning rate α")
    axes[0][len(shown) - 1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def learning_rate_widget(r_init: PhaseRates, r_on: PhaseRates | None = None):
    """Dropdown (A_init / A_on) + step slider (k = 1..K) → :func:`plot_learning_rates` in an Output.
    Changing the phase adjusts the slider's range to that phase's K."""
    import ipywidgets as W
    rates = {"init": list(r_init), "on": list(r_on or [])}
    opts = [("A_init (first frame, Eq. 2)", "init")] + ([("A_on (online, Eq. 3)", "on")] if rates["on"] else [])
    phase = W.Dropdown(options=opts, value="init", description="phase")
    step = W.IntSlider(value=1, min=1, max=len(rates["init"]), description="step k", continuous_update=False)

    def render(phase: str, step: int):
        return plot_learning_rates(rates, phase, min(step, len(rates[phase])))

    def on_phase(change: Any) -> None:
        step.max = len(rates[change["new"]])

    phase.observe(on_phase, names="value")  # registered first: the slider range fits before redrawing
    return figure_widget(render, {"phase": phase, "step": step}, title="Meta-learned learning rates")



def inner_loop_figure(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], k_init: int, k_on: int, test_frame: int):
    """Matplotlib, two panels: per choice of rates, the loss on the adaptation data (D_init for steps
    0..K_init, then D_on) and on D_test after every inner step. ``curves``: {name: (train, test)}."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharex=True)
    for name, (train, test) in curves.items():
        axes[0].plot(train, "o-", label=name)
        axes[1].plot(test, "o-", label=name)
    for ax, t in zip(axes, ["loss on the adaptation data (D_init, then D_on)", f"loss on D_test (frame {test_frame})"]):
        ax.axvline(k_init, color="gray", lw=0.8)
        ax.set_xlabel(f"inner step (0..{k_init}: Eq. 2 on D_init; {k_init}..{k_init + k_on}: Eq. 3 on D_on)")
        ax.set_title(t, fontsize=10)
    axes[0].set_ylabel("cross-entropy (Eq. 1)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def curve_differences_figure(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], reference: str, k_init: int,
                             names: Sequence[str] | None = None):
    """Matplotlib: the D_test curves of ``names`` (default: all) minus the ``reference`` curve, step by step —
    curves that overlap in :func:`inner_loop_figure` become readable here."""
    import matplotlib.pyplot as plt
    ref = curves[reference][1]
    fig, ax = plt.subplots(figsize=(7, 3))
    for name in names or list(curves):
        ax.plot(curves[name][1] - ref, "o-", label=name)
    ax.axhline(0, color="gray", lw=0.8)
    ax.axvline(k_init, color="gray", lw=0.8)
    ax.set_xlabel("inner step")
    ax.set_ylabel(f"D_test loss − {reference.split(' (')[0]}")
    ax.legend(fontsize=8)
    ax.set_title("The overlapping curves, as differences", fontsize=10)
    fig.tight_layout()
    return fig

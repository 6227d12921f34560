"""Figures of notebook 07 (evaluation): one dot per seed on each video, the per-sequence differences with
their bootstrap CI, the CI width against the number of sequences and of seeds, and the bootstrap
histogram its widget redraws. The notebook computes every number (and asserts it against
:mod:`metartt_lite.evaluation.compare`); these functions only draw what they are given.

Part of :mod:`metartt_lite.course.widgets`, which re-exports every public name (``widgets.X``).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["seeds_per_video_figure", "per_sequence_figure", "bootstrap_figure", "ci_width_figure"]


def seeds_per_video_figure(results: Mapping[str, Any], trackers: Sequence[str], videos: Sequence[str]):
    """Matplotlib: per video, one dot per seed of every tracker (a diamond for a deterministic tracker's single
    run) and a bar at the mean over seeds, from ``evaluation.evaluate``'s ``results``."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 3.4))
    width = 0.8 / len(trackers)
    for j, name in enumerate(trackers):
        r = results["trackers"][name]
        for i, v in enumerate(videos):
            ys = [r["sequences"][v]["seeds"][str(s)]["auc"] for s in r["seeds"]]
            x = i + (j - (len(trackers) - 1) / 2) * width
            ax.plot([x] * len(ys), ys, "o" if len(ys) > 1 else "D", color=f"C{j}", alpha=0.8,
                    label=f"{name} ({len(ys)} run{'s' if len(ys) > 1 else ''} per video)" if i == 0 else None)
            ax.plot([x - width / 3, x + width / 3], [np.mean(ys)] * 2, color=f"C{j}", lw=2)
    ax.set_xticks(range(len(videos)), list(videos))
    ax.set(ylabel="AUC", title="one dot per seed, bar = mean over seeds", ylim=(0, 1))
    ax.legend(fontsize="small", loc="lower right")
    ax.grid(alpha=0.3, axis="y")
    return fig


def per_sequence_figure(comps: Sequence[Mapping[str, Any]]):
    """Matplotlib, one panel per comparison (``compare.compare``'s dicts): each sequence's ΔAUC (green A ahead,
    red B ahead) and, below them, the mean with its 95 % bootstrap CI; dashed: no difference."""
    import matplotlib.pyplot as plt
    n = max(len(c["auc"]["per_sequence"]) for c in comps)
    fig, axes = plt.subplots(1, len(comps), figsize=(5.2 * len(comps), 0.32 * n + 1.6), sharey=True, squeeze=False)
    for ax, c in zip(axes[0], comps):
        per = c["auc"]["per_sequence"]
        names = list(per)
        ys = np.arange(len(names))
        vals = 100 * np.array([per[s] for s in names])
        ax.scatter(vals, ys, color=["C2" if v > 0 else "C3" if v < 0 else "0.5" for v in vals], zorder=3)
        y_mean = len(names) + 0.3                          # the mean goes below the sequences
        lo, hi = 100 * np.array(c["auc"]["ci"])
        diff = 100 * c["auc"]["diff"]
        ax.errorbar([diff], [y_mean], xerr=[[diff - lo], [hi - diff]], fmt="s", color="k", capsize=5, lw=2, zorder=3)
        ax.axvline(0, color="0.4", ls="--", lw=1)
        ax.axhline(len(names) - 0.35, color="0.7", lw=0.8)
        ax.set_yticks(list(ys) + [y_mean], names + ["mean, 95% CI"])
        ax.set(xlabel=f"ΔAUC = {c['a']} − {c['b']} (points)", title=f"{c['a']} vs {c['b']}")
        ax.grid(alpha=0.3, axis="x")
    axes[0][0].invert_yaxis()
    fig.tight_layout()
    return fig


def _hist_pair(ax, small: Mapping[str, Any], full: Mapping[str, Any], bins: np.ndarray, n: int) -> None:
    ax.hist(100 * full["means"], bins, color="0.75", label=f"all {n} sequences: width {100 * full['width']:.1f}")
    ax.hist(100 * small["means"], bins, color="C0", alpha=0.55, label=f"k = {small['k']}: width {100 * small['width']:.1f}")
    ax.axvline(0, color="k", ls="--", lw=1)


def bootstrap_figure(small: Mapping[str, Any], full: Mapping[str, Any], bins: np.ndarray, a: str, b: str):
    """Matplotlib: the bootstrap means of ΔAUC on ``small`` (k sequences) over those on ``full`` (all n, grey),
    each with its 95 % CI shaded and its mean marked. ``small`` / ``full``: the notebook's ``bootstrap_at``."""
    import matplotlib.pyplot as plt
    n, k = full["k"], small["k"]
    fig, ax = plt.subplots(figsize=(8, 3.2))
    _hist_pair(ax, small, full, bins, n)
    for q, col in ((small, "C0"), (full, "0.3")):
        ax.axvspan(100 * q["ci"][0], 100 * q["ci"][1], color=col, alpha=0.08)
        ax.axvline(100 * q["mean"], color=col, lw=1.5)
    ax.set(xlabel=f"bootstrap mean of ΔAUC = {a} − {b} (points)", ylabel="resamples",
           title=f"{k} of {n} sequences" + ("" if k >= n else f" (drawn with seed {k})") + ", shaded: 95% CI")
    ax.legend(fontsize="small", loc="upper left")
    fig.tight_layout()
    return fig


def ci_width_figure(scan_k: Mapping[str, Mapping[int, np.ndarray]], scan_m: Mapping[str, Mapping[int, float]],
                    s2: Mapping[str, float], small: Mapping[str, Any], full: Mapping[str, Any], bins: np.ndarray,
                    a: str, b: str):
    """Matplotlib, three panels: the 95 % CI width against the number of sequences k (per baseline: mean over
    random subsets, 10–90 % bars, and the normal approximation 2·1.96·sqrt((k−1)/k² S²) from ``s2`` = S²),
    against the number of seeds per sequence, and the bootstrap distributions at the fewest and all sequences.
    ``scan_k[baseline][k]``: widths of the subsets; ``scan_m[baseline][m]``: mean width with m seeds."""
    import matplotlib.pyplot as plt
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 3.6))
    n = full["k"]
    for j, bb in enumerate(scan_k):
        ks = np.array(sorted(scan_k[bb]))
        w = [100 * scan_k[bb][k] for k in ks]
        mean_w = np.array([x.mean() for x in w])
        lo_w, hi_w = np.array([np.quantile(x, 0.1) for x in w]), np.array([np.quantile(x, 0.9) for x in w])
        ax1.errorbar(ks + 0.08 * j, mean_w, yerr=[mean_w - lo_w, hi_w - mean_w], fmt="o", color=f"C{j}", capsize=3,
                     label=f"{a} vs {bb}: mean (bar: 10-90% of subsets)")
        ax1.plot(ks, 100 * 2 * 1.96 * np.sqrt((ks - 1) / ks**2 * s2[bb]), "-", color=f"C{j}", alpha=0.6,
                 label="2 x 1.96 x sqrt((k-1)/k² S²)" if j == len(scan_k) - 1 else None)
        ms = sorted(scan_m[bb])
        ax2.plot(ms, [100 * scan_m[bb][m] for m in ms], "o-", color=f"C{j}", label=f"{a} vs {bb}")
    ax1.set(xlabel="sequences k", ylabel="95% CI width (points)", title="CI width vs number of sequences", ylim=(0, None))
    ax2.set(xlabel="seeds per sequence m", ylabel="95% CI width (points)", title=f"CI width vs seeds (all {n} sequences)",
            xticks=sorted(next(iter(scan_m.values()))), ylim=(0, None))
    _hist_pair(ax3, small, full, bins, n)
    ax3.set(xlabel=f"bootstrap ΔAUC {a} − {b} (points)", title="bootstrap distribution of the mean")
    ax1.legend(fontsize="x-small", loc="upper right")
    for ax in (ax2, ax3):
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig

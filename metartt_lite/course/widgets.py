"""The notebooks' widgets and their static companions.

Every widget here is a thin shell (sliders, a dropdown, a Play button, an ``Output``) around a **plain
function** that takes ordinary values and returns numbers or a figure. The notebooks show the widget for
a reader with a kernel *and* the static companion (a matplotlib figure or a plotly figure, which render
in a saved notebook or an HTML export without any kernel); the tests call the plain functions directly.

Widget (needs a kernel) → the plain function it calls → its static companion:

* :func:`learning_rate_widget` → :func:`plot_learning_rates` (:func:`lr_summary` for the numbers)
  → :func:`learning_rate_figure`
* :func:`episode_widget` → the notebook's ``show(episode, seed)`` → :func:`episode_overview`,
  :func:`episode_grid`
* :func:`triplet_widget` → the notebook's ``show(gamma, xi)`` → :func:`unit_circle_grid`
* :func:`mask_threshold_widget` → :func:`mask_threshold_effect`, :func:`plot_mask_threshold` → the same
  plot for every τ
* :func:`tracking_player` → :func:`draw_boxes` → :func:`tracking_strip`
* :func:`upload_widget` → :func:`track_uploaded` → :func:`tracking_strip`

Conventions: steps ``k`` are **1-based** as in the paper's Eqs. 2–3 (``rates[k - 1]`` is α^k); boxes are
0-based ``[x, y, w, h]``; frames uint8 RGB. Nothing in the package imports this module; ipywidgets is
imported lazily, so the plain functions work without it (as are IPython, matplotlib and plotly: optional
notebook extras, lazy on purpose).
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import cv2
import numpy as np
import torch

from ..core.boxes import parse_box
from ..data.sequences import SequenceView, load_video
from ..core.drawing import GT_COLOR, paint_boxes
from ..evaluation.ope import IOU_THRESHOLDS, run_sequence, sequence_metrics
from ..model.surgery import hard_keep, hard_masks, layer_widths, masked_scores, prune_rates
from ..track.registry import make_tracker
from ..core.utils import MetaRTTError

__all__ = [
    "setup_notebook", "SequenceView", "as_sequence", "encode_video",
    "lr_summary", "plot_learning_rates", "learning_rate_figure", "learning_rate_widget",
    "crop_patch", "crop_patches", "episode_grid", "episode_overview", "episode_widget",
    "unit_circle_figure", "unit_circle_grid", "triplet_widget", "figure_widget",
    "channel_mask_figure", "mask_threshold_effect", "plot_mask_threshold", "mask_threshold_widget",
    "TRACKER_COLORS", "draw_boxes", "tracking_strip", "tracking_player", "success_figure",
    "track_uploaded", "upload_widget", "bbox_text", "first_frame", "figure_png",
]

TRACKER_COLORS: dict[str, tuple[int, int, int]] = {
    "metartt": (230, 40, 40), "metartt-prune": (250, 150, 0), "rtmdnet": (40, 90, 240),
    "rtmdnet-k5": (120, 60, 200), "rtmdnet-k5-tuned": (180, 60, 200), "csrt": (0, 190, 210),
    "kcf": (200, 200, 0), "mil": (150, 150, 150),
}
_FALLBACK = [(230, 40, 40), (40, 90, 240), (250, 150, 0), (0, 190, 210), (150, 60, 200), (120, 120, 120)]


def _color(name: str, i: int = 0) -> tuple[int, int, int]:
    return TRACKER_COLORS.get(name, _FALLBACK[i % len(_FALLBACK)])


def _hex(rgb: Sequence[int]) -> str:
    return "#%02x%02x%02x" % tuple(int(c) for c in rgb)


# ------------------------------------------------------------------------------------------ helpers
def setup_notebook(name: str, seed: int = 0) -> tuple[bool, torch.device, float]:
    """The first cell of every notebook: fast mode, seeds, threads, device, feature cache, start time.

    * ``FAST`` is ``METARTT_FAST == "1"`` (small sizes: tests, a first look);
    * torch and numpy are seeded with ``seed``;
    * the tensors are small, so intra-op threads buy nothing and, on a busy machine, fight each other:
      fast mode runs torch on one thread unless ``METARTT_THREADS`` says otherwise;
    * everything in the notebooks is small enough for a CPU;
    * trunk features are cached in a fresh temporary folder unless ``METARTT_CACHE`` names one.

    Returns ``(FAST, DEV, T_START)`` and prints what it set."""
    fast = os.environ.get("METARTT_FAST") == "1"
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(int(os.environ.get("METARTT_THREADS") or (1 if fast else torch.get_num_threads())))
    os.environ["METARTT_CACHE"] = os.environ.get("METARTT_CACHE") or tempfile.mkdtemp(prefix=f"metartt_nb{name}_")
    print(f"notebook {name}: FAST={fast}  seed={seed}  torch {torch.__version__}  threads={torch.get_num_threads()}  "
          f"feature cache {os.environ['METARTT_CACHE']}")
    return fast, torch.device("cpu"), time.time()


def as_sequence(video: Any, n_frames: int | None = None) -> SequenceView:
    """A :class:`SequenceView` of a SampleVideo (or anything with ``name``, ``frames`` list/method and
    ``groundtruth``), optionally cut to its first ``n_frames``."""
    frames = video.frames
    return SequenceView(str(getattr(video, "name", "video")), frames, video.groundtruth, n_frames=n_frames)


def encode_video(frames: Sequence[np.ndarray], fps: float = 15.0, fourcc: str = "MJPG", suffix: str = ".avi") -> bytes:
    """Encode RGB frames as a video file (default Motion-JPEG AVI, which every OpenCV build writes)
    and return its bytes (what a browser upload hands to :func:`track_uploaded`)."""
    if not len(frames):
        raise ValueError("no frames to encode")
    h, w = frames[0].shape[:2]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"video{suffix}"
        wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), float(fps), (w, h))
        if not wr.isOpened():
            raise RuntimeError(f"OpenCV cannot write {fourcc} {suffix} videos here")
        try:
            for f in frames:
                wr.write(cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2BGR))
        finally:
            wr.release()
        return path.read_bytes()


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def figure_png(fig: Any, dpi: float | None = None) -> bytes:
    """A matplotlib figure as PNG bytes (tight bounding box, like the inline backend's rendering)."""
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return buf.getvalue()


def _callback_figures():
    """Context for drawing matplotlib figures inside a widget callback: pyplot's interactive mode off.

    Why: ipykernel (7.x) runs the inline backend's ``post_execute`` hook, ``flush_figures``, after every
    comm message, on its shell thread, while the widget's callback is still drawing on the main thread.
    In interactive mode every new pyplot figure marks itself "to draw", so that flush displays the
    half-built figure and then calls ``plt.close('all')`` under the callback's feet: the Output got a
    white PNG (notebook 01's patch grid) or a sliver (notebook 06's strip). With interactive mode off,
    new figures are not queued for the inline backend, the flush has nothing to do, and the callback
    alone renders (:func:`figure_png`), displays and closes its figures."""
    import matplotlib.pyplot as plt
    return plt.ioff()


def _show(fig: Any) -> None:
    """Display a plotly or matplotlib figure, or a tuple/list of them (inside the current Output
    context); a matplotlib figure is rendered to PNG here (:func:`figure_png`) and closed, so it is
    not shown again at the end of the cell."""
    if isinstance(fig, (list, tuple)):
        for f in fig:
            _show(f)
        return
    if hasattr(fig, "savefig"):
        import matplotlib.pyplot as plt
        if _in_kernel():
            from IPython.display import Image, display
            display(Image(data=figure_png(fig), format="png"))
        plt.close(fig)
    elif _in_kernel():
        from IPython.display import display
        display(fig)


def figure_widget(render: Callable[..., Any], controls: Mapping[str, Any], title: str | None = None):
    """A VBox of ``controls`` (ipywidgets keyed by ``render``'s argument names) above an Output that
    shows ``render(**values)`` and is redrawn whenever a control changes.

    ``box.refresh()`` redraws by hand; ``box.last`` holds the latest keyword arguments and figure (what
    a test inspects after setting a control's ``.value``)."""
    import ipywidgets as W
    out = W.Output()
    rows = ([W.HTML(f"<b>{title}</b>")] if title else []) + [W.HBox(list(controls.values())), out]
    box = W.VBox(rows)
    box.last = {}

    def refresh(_change: Any = None) -> None:
        kw = {k: c.value for k, c in controls.items()}
        # rendering to PNG and closing happen inside the same context as drawing: savefig marks the
        # figure stale, and in interactive mode that queues it for the shell thread's flush, which then
        # displayed a half-drawn (white) copy into the Output (notebook 01's patch grid, seen in CI)
        with _callback_figures():
            fig = render(**kw)
            box.last.clear()
            box.last.update(kwargs=kw, figure=fig)
            if _in_kernel():
                out.clear_output(wait=True)
            with out:
                _show(fig)

    for c in controls.values():
        c.observe(refresh, names="value")
    box.refresh = refresh
    box.controls = dict(controls)
    box.output = out
    refresh()
    return box


# ------------------------------------------------------------------------- learning rates (nb 02)
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


def _np(t: Any) -> np.ndarray:
    return (t.detach().float().cpu().numpy() if torch.is_tensor(t) else np.asarray(t, dtype=np.float64)).reshape(-1)


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


# ---------------------------------------------------------------------------------- episodes (nb 01)
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


# ------------------------------------------------------------------------------ triplet loss (nb 03)
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


# ---------------------------------------------------------------------------------- pruning (nb 05)
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
    from ..core.boxes import iou
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


# ---------------------------------------------------------------------------------- tracking (nb 06)
def draw_boxes(frame: np.ndarray, boxes_by_tracker: Mapping[str, np.ndarray], gt: np.ndarray | None, i: int,
               thickness: int = 1, label: bool = True) -> np.ndarray:
    """Frame ``i`` with the ground truth (green) and each tracker's box (its colour) drawn on a copy.

    Boxes are drawn in order (ground truth first) with decreasing line width, ``thickness`` for the
    last one, so trackers that agree exactly still show every colour."""
    items = ([(gt[i], GT_COLOR)] if gt is not None and np.all(np.isfinite(gt[i])) else [])
    items += [(np.asarray(b)[i], _color(n, j)) for j, (n, b) in enumerate(boxes_by_tracker.items())]
    img = paint_boxes(frame, [(b, c, thickness + len(items) - 1 - k) for k, (b, c) in enumerate(items)])
    if label:
        cv2.putText(img, f"#{i}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def _legend_html(names: Sequence[str], gt: bool) -> str:
    items = ([("ground truth", GT_COLOR)] if gt else []) + [(n, _color(n, j)) for j, n in enumerate(names)]
    return " ".join(f"<span style='color:{_hex(c)};font-weight:bold;font-size:15px;margin-right:12px'>&#9632; {n}</span>"
                    for n, c in items)


def tracking_strip(frames: Sequence[np.ndarray], boxes_by_tracker: Mapping[str, np.ndarray],
                   gt: np.ndarray | None = None, n: int = 6, title: str | None = None):
    """Static companion of the player: ``n`` evenly spaced frames with every tracker's box (matplotlib)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    idx = np.unique(np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int))
    h, w = frames[0].shape[:2]
    fig, axes = plt.subplots(1, len(idx), figsize=(2.4 * len(idx), 2.4 * h / w + 0.7), squeeze=False)
    for ax, i in zip(axes[0], idx):
        ax.imshow(draw_boxes(frames[i], boxes_by_tracker, gt, i, label=False))
        ax.set_title(f"frame {i}", fontsize=12)
        ax.set_xticks([]); ax.set_yticks([])
    handles = ([Patch(color=np.array(GT_COLOR) / 255, label="ground truth")] if gt is not None else [])
    handles += [Patch(color=np.array(_color(nm, j)) / 255, label=nm) for j, nm in enumerate(boxes_by_tracker)]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=13, frameon=False)
    if title:
        fig.suptitle(title, fontsize=13)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    return fig


def _png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def tracking_player(frames: Sequence[np.ndarray], boxes_by_tracker: Mapping[str, np.ndarray],
                    gt: np.ndarray | None = None, interval_ms: int = 150):
    """A Play button linked to a frame slider (``jslink``: they move together in the browser), a **pause**
    button that stops playing on the current frame (ipywidgets' own second button is *stop*, which rewinds
    to frame 0), a frame counter, and an Image showing :func:`draw_boxes` of the current frame; a legend
    names the colours."""
    import ipywidgets as W
    n = len(frames)
    play = W.Play(value=0, min=0, max=n - 1, step=1, interval=interval_ms, description="play", show_repeat=False)
    slider = W.IntSlider(value=0, min=0, max=n - 1, description="frame")
    W.jslink((play, "value"), (slider, "value"))
    pause = W.Button(description="pause", icon="pause", tooltip="stop on this frame (▶ goes on from here)",
                     layout=W.Layout(width="90px"))
    counter = W.Label(value=f"frame 0 / {n - 1}")
    image = W.Image(value=_png(draw_boxes(frames[0], boxes_by_tracker, gt, 0)), format="png",
                    width=frames[0].shape[1])

    def show(change: Any) -> None:
        image.value = _png(draw_boxes(frames[change["new"]], boxes_by_tracker, gt, change["new"]))
        counter.value = f"frame {change['new']} / {n - 1}"

    def do_pause(_: Any = None) -> None:
        play.playing = False

    slider.observe(show, names="value")
    pause.on_click(do_pause)
    box = W.VBox([W.HBox([play, pause, slider, counter]), image,
                  W.HTML(_legend_html(list(boxes_by_tracker), gt is not None))])
    box.play, box.slider, box.image, box.pause, box.counter = play, slider, image, pause, counter
    return box


def success_figure(boxes_by_tracker: Mapping[str, np.ndarray], gt: np.ndarray, title: str = "Success plot (OPE)"):
    """Plotly success curves (fraction of frames with IoU > t) with each tracker's AUC in the legend,
    from :func:`metartt_lite.evaluation.ope.sequence_metrics`."""
    import plotly.graph_objects as go
    fig = go.Figure()
    for j, (n, b) in enumerate(boxes_by_tracker.items()):
        m = sequence_metrics(b, gt)
        fig.add_trace(go.Scatter(x=IOU_THRESHOLDS, y=m["success_curve"], mode="lines",
                                 name=f"{n} [AUC {m['auc']:.3f}]", line=dict(color=_hex(_color(n, j)), width=2.5)))
    fig.update_layout(title=title, xaxis_title="overlap threshold t", yaxis_title="success rate (IoU > t)",
                      yaxis_range=[0, 1.02], xaxis_range=[0, 1], height=400, width=680,
                      margin=dict(l=50, r=20, t=50, b=40), legend=dict(font=dict(size=14)), font=dict(size=13))
    return fig


def track_uploaded(video_bytes: bytes, box_text: str, tracker: str = "metartt", filename: str = "upload.avi",
                   max_frames: int | None = 300, checkpoint: str | None = None, progress: Any = None) -> dict[str, Any]:
    """Track the target ``box_text`` ('x,y,w,h', 0-based pixels of the first frame) through an uploaded
    video with the preset ``tracker``. The bytes are written to a temporary file named like ``filename``
    (its extension tells OpenCV the container), read with :func:`metartt_lite.data.sequences.load_video` and run
    with :func:`metartt_lite.evaluation.ope.run_sequence`. At most ``max_frames`` frames are tracked.

    Returns ``tracker``, ``frames`` (the frames tracked), ``boxes`` (N, 4), ``scores``, ``times`` and
    ``fps`` (update frames / update time)."""
    if not video_bytes:
        raise MetaRTTError("no video uploaded")
    box = parse_box(box_text)
    suffix = Path(filename).suffix or ".avi"
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"upload{suffix}"
        path.write_bytes(bytes(video_bytes))
        seq = load_video(path, box)
        n = len(seq) if max_frames is None else min(len(seq), int(max_frames))
        kept: list[np.ndarray] = []

        def frames() -> Iterator[np.ndarray]:
            for f in seq.frames():
                kept.append(f)
                yield f

        view = SequenceView(seq.name, frames, seq.groundtruth, init_box=seq.init_box, n_frames=n)
        trk = make_tracker(tracker, checkpoint=checkpoint)
        r = run_sequence(trk, view, progress=progress)
    upd = r["times"][1:]
    return {"tracker": tracker, "frames": kept, "boxes": r["boxes"], "scores": r["scores"], "times": r["times"],
            "fps": float(len(upd) / upd.sum()) if len(upd) and upd.sum() > 0 else None, "init_box": box}


def upload_widget(tracker: str = "metartt", trackers: Sequence[str] = ("metartt", "metartt-prune", "rtmdnet", "csrt"),
                  max_frames: int = 300):
    """FileUpload (a video) + Text ('x,y,w,h' of the target in frame 0) + tracker Dropdown + Button: the
    button calls :func:`track_uploaded` and shows a :func:`tracking_player` and a :func:`tracking_strip`
    of the result (or the error message) in an Output. With ``jupyter-bbox-widget`` installed, the
    uploaded video's first frame appears in a box-drawing widget (``ui.picker``); the box drawn there is
    written into the Text field (:func:`bbox_text`), which stays the fallback for typed coordinates."""
    import ipywidgets as W
    up = W.FileUpload(accept="video/*,.mp4,.avi,.mov,.mkv,.webm", multiple=False, description="video")
    box = W.Text(value="", placeholder="x,y,w,h (0-based px, frame 0)", description="target")
    which = W.Dropdown(options=list(trackers), value=tracker if tracker in trackers else trackers[0], description="tracker")
    go_btn = W.Button(description="Track", button_style="primary", icon="play")
    out = W.Output()
    draw = _bbox_picker(box)          # None without jupyter-bbox-widget: then the box is typed
    hint = W.HTML("<i>Draw the target's box on the first frame below, or type it as x,y,w,h.</i>" if draw is not None
                  else "<i>Type the target's box in the first frame as x,y,w,h (0-based pixels).</i>")

    def on_upload(_change: Any = None) -> None:
        if draw is None or not up.value:
            return
        f = up.value[0]
        try:
            frame = first_frame(bytes(f["content"]), f["name"])
        except Exception as e:   # shown by Track later; the picker just stays empty
            ui.last.update(error=str(e))
            return
        import base64
        draw.bboxes = []
        draw.image = "data:image/png;base64," + base64.b64encode(_png(frame)).decode()
        draw.layout.display = None

    up.observe(on_upload, names="value")
    ui = W.VBox([W.HBox([up, box]), W.HBox([which, go_btn]), hint] + ([draw] if draw is not None else []) + [out])
    ui.last = {}

    def run(_btn: Any = None) -> None:
        if _in_kernel():
            out.clear_output()
        with out:
            try:
                if not up.value:
                    print("choose a video file first")
                    return
                f = up.value[0]
                res = track_uploaded(bytes(f["content"]), box.value, which.value, filename=f["name"], max_frames=max_frames)
            except Exception as e:  # shown to the user, not raised into the event loop
                print(f"could not track: {e}")
                ui.last.update(error=str(e))
                return
            ui.last.update(result=res)
            fps = f"{res['fps']:.1f}" if res["fps"] else "n/a"
            print(f"{res['tracker']}: {len(res['frames'])} frames, {fps} frames/s")
            from IPython.display import display
            display(tracking_player(res["frames"], {res["tracker"]: res["boxes"]}))
            with _callback_figures():
                _show(tracking_strip(res["frames"], {res["tracker"]: res["boxes"]}))

    go_btn.on_click(run)
    ui.run = run
    ui.upload, ui.box_text, ui.tracker, ui.button, ui.output, ui.picker = up, box, which, go_btn, out, draw
    return ui


def bbox_text(bboxes: Sequence[Mapping[str, Any]]) -> str:
    """'x,y,w,h' of the last box drawn in a ``jupyter_bbox_widget.BBoxWidget`` ('' when none, or when it
    has no area yet)."""
    if not bboxes:
        return ""
    b = bboxes[-1]
    if float(b["width"]) <= 0 or float(b["height"]) <= 0:     # a click, not a box (yet)
        return ""
    return f"{float(b['x']):.0f},{float(b['y']):.0f},{float(b['width']):.0f},{float(b['height']):.0f}"


def _bbox_picker(box_text: Any):
    """A BBoxWidget (PyPI ``jupyter-bbox-widget``) whose last drawn box is written into ``box_text``;
    None when that package is not installed (the box is then typed)."""
    try:
        from jupyter_bbox_widget import BBoxWidget
    except ImportError:
        return None
    picker = BBoxWidget(classes=["target"], hide_buttons=True)
    picker.layout.display = "none"            # shown once a video's first frame is in it

    def on_boxes(change: Any) -> None:
        t = bbox_text(change["new"])
        if t:
            box_text.value = t

    picker.observe(on_boxes, names="bboxes")
    return picker


def first_frame(video_bytes: bytes, filename: str = "upload.avi") -> np.ndarray:
    """The first frame (RGB uint8) of a video given as bytes (``filename``'s extension names the container)."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"upload{Path(filename).suffix or '.avi'}"
        path.write_bytes(bytes(video_bytes))
        cap = cv2.VideoCapture(str(path))
        try:
            ok, frame = cap.read()
        finally:
            cap.release()
    if not ok:
        raise MetaRTTError(f"cannot read a frame from {filename}")
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

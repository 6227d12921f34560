"""OTB one-pass evaluation (OPE), following the got10k toolkit's ``ExperimentOTB``.

Metrics
-------
* **Success curve**: for each IoU threshold t in ``linspace(0, 1, 21)``, the fraction of frames whose
  IoU with the ground truth is strictly **greater** than t (so IoU 1.0 never counts at t = 1.0 and a
  perfect tracker scores 20/21). **AUC** is the mean of the curve.
* **Precision curve**: for each threshold t in ``0, 1, ..., 50`` px, the fraction of frames whose
  centre error is **at most** t. The **precision** score is the curve's value at 20 px.
* Frames whose ground-truth row is not finite (NaN: target absent / not annotated) are **excluded**
  from both metrics. A predicted box that is not finite counts as IoU 0 and centre error infinity.
  The first frame (whose prediction is the initial box, as in OPE) is included.
* **Overall** scores of a tracker: as got10k, the overall success / precision curves are the
  **mean over sequences** of the per-sequence curves (every sequence weighs the same, whatever its
  length); overall AUC / precision are computed from these mean curves. Sequences with no valid
  ground-truth frame have undefined metrics (``None`` in the JSON) and are left out of the mean.

Speed
-----
Each ``update`` is timed with ``time.perf_counter()``; reading/decoding the frame is timed separately
(``decode_time``) and is never inside the tracker's time. ``fps`` = update frames / total update time
(init excluded); ``fps_with_init`` = all frames / (init time + total update time). The overall fps of a
tracker uses the totals over all sequences.

Sequences are duck-typed: any object with ``name``, ``groundtruth`` ((N, 4) 0-based xywh),
``__len__`` and ``frames()`` (an iterator of uint8 RGB frames) or ``frame(i)``; the initial box is
``init_box`` (attribute or method) when present, else ``groundtruth[0]``.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import platform
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from .boxes import center_error, iou, validate_box
from .utils import MetaRTTError, atomic_write, atomic_write_json, device

__all__ = [
    "IOU_THRESHOLDS", "ERROR_THRESHOLDS", "PRECISION_AT",
    "success_curve", "auc", "precision_curve", "precision_at", "sequence_metrics",
    "run_sequence", "evaluate", "format_table", "load_results", "device_description",
    "plot_results",
]

IOU_THRESHOLDS = np.linspace(0, 1, 21)
ERROR_THRESHOLDS = np.arange(51)
PRECISION_AT = 20  # px


# --------------------------------------------------------------------------------------------- metrics
def success_curve(ious: Iterable[float], thresholds: np.ndarray = IOU_THRESHOLDS) -> np.ndarray:
    """Fraction of frames with IoU **>** t for each threshold t (NaN IoU counts as 0).

    An empty input has no defined curve: the result is all NaN.
    """
    v = np.nan_to_num(np.asarray(ious, dtype=np.float64).reshape(-1), nan=0.0)
    t = np.asarray(thresholds, dtype=np.float64)
    if v.size == 0:
        return np.full(t.shape, np.nan)
    return (v[:, None] > t[None, :]).mean(axis=0)


def auc(success: Iterable[float]) -> float:
    """Area under the success curve: the mean of its values (OTB/got10k convention)."""
    return float(np.mean(np.asarray(success, dtype=np.float64)))


def precision_curve(center_errors: Iterable[float], thresholds: np.ndarray = ERROR_THRESHOLDS) -> np.ndarray:
    """Fraction of frames with centre error **<=** t for each threshold t (NaN error counts as infinite).

    An empty input has no defined curve: the result is all NaN.
    """
    e = np.asarray(center_errors, dtype=np.float64).reshape(-1)
    e = np.where(np.isnan(e), np.inf, e)
    t = np.asarray(thresholds, dtype=np.float64)
    if e.size == 0:
        return np.full(t.shape, np.nan)
    return (e[:, None] <= t[None, :]).mean(axis=0)


def precision_at(center_errors: Iterable[float], threshold: float = PRECISION_AT) -> float:
    """The precision score: fraction of frames with centre error <= ``threshold`` px (default 20)."""
    return float(precision_curve(center_errors, np.array([threshold]))[0])


def sequence_metrics(boxes: np.ndarray, groundtruth: np.ndarray) -> dict[str, Any]:
    """IoUs, centre errors, curves and scores of predicted ``boxes`` against ``groundtruth`` (both (N, 4)).

    Ground-truth rows with a non-finite value are excluded (``n_valid`` counts the rest); predicted
    boxes with a non-finite value get IoU 0 and error infinity.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    g = np.asarray(groundtruth, dtype=np.float64).reshape(-1, 4)
    if len(b) != len(g):
        raise MetaRTTError(f"{len(b)} predicted boxes but {len(g)} ground-truth rows")
    valid = np.all(np.isfinite(g), axis=1)
    b, g = b[valid], g[valid]
    bad = ~np.all(np.isfinite(b), axis=1)
    ious = np.where(bad, 0.0, iou(np.where(bad[:, None], 0.0, b), g))
    errs = np.where(bad, np.inf, center_error(np.where(bad[:, None], 0.0, b), g))
    sc = success_curve(ious)
    pc = precision_curve(errs)
    n = int(valid.sum())
    return {"ious": ious, "center_errors": errs, "success_curve": sc, "precision_curve": pc,
            "auc": auc(sc) if n else None,
            "precision": float(pc[PRECISION_AT]) if n else None,
            "n_valid": n}


# ------------------------------------------------------------------------------------------ running
def _init_box(seq: Any) -> np.ndarray:
    ib = getattr(seq, "init_box", None)
    if callable(ib):
        ib = ib()
    if ib is None:
        ib = np.asarray(seq.groundtruth, dtype=np.float64)[0]
    return validate_box(ib, what=f"initial box of sequence {getattr(seq, 'name', '?')!r}")


def _frame_iter(seq: Any) -> Iterator[np.ndarray]:
    frames = getattr(seq, "frames", None)
    if callable(frames):          # data.Sequence: a generator (sequential video reads)
        return iter(frames())
    if frames is not None:        # samples.SampleVideo: a list of frames
        return iter(frames)
    return (seq.frame(i) for i in range(len(seq)))


def _tracker_name(tracker: Any) -> str:
    return str(getattr(tracker, "name", type(tracker).__name__))


def _tick(progress: Any, i: int) -> None:
    if progress is None:
        return
    if hasattr(progress, "update") and not callable(progress):
        progress.update(1)
    else:
        progress(i)


def run_sequence(tracker: Any, seq: Any, progress: Any = None) -> dict[str, Any]:
    """Run ``tracker`` once over ``seq`` (OPE) and return its boxes, scores and timings.

    ``tracker.init(frame0, init_box)`` then ``tracker.update(frame)`` for every later frame, in order.
    ``boxes[0]`` is the initial box and ``scores[0]`` is 1.0; ``times[0]`` is the init time and
    ``times[i]`` the update time of frame i (seconds, ``perf_counter``; frame decoding excluded and
    summed in ``decode_time``). ``progress``: None, a callable called with each finished frame index,
    or an object with ``update(n)`` (a tqdm bar) advanced by one per frame.

    A tracker exception propagates as ``RuntimeError("tracker X failed on SEQ frame i: ...")``
    chained to the original; errors reading the sequence propagate unchanged.
    """
    name = str(getattr(seq, "name", "?"))
    tname = _tracker_name(tracker)
    n = len(seq)
    if n < 1:
        raise MetaRTTError(f"sequence {name!r} has no frames")
    box0 = _init_box(seq)
    boxes = np.full((n, 4), np.nan)
    scores = np.zeros(n)
    times = np.zeros(n)
    decode = 0.0
    frames = _frame_iter(seq)
    i = 0
    while True:
        t0 = time.perf_counter()
        try:
            frame = next(frames)
        except StopIteration:
            break
        decode += time.perf_counter() - t0
        if i >= n:
            raise MetaRTTError(f"sequence {name!r} yields more frames than its length {n}")
        try:
            if i == 0:
                t0 = time.perf_counter()
                tracker.init(frame, box0.copy())
                times[0] = time.perf_counter() - t0
                boxes[0], scores[0] = box0, 1.0
            else:
                t0 = time.perf_counter()
                box, score = tracker.update(frame)
                times[i] = time.perf_counter() - t0
                boxes[i] = np.asarray(box, dtype=np.float64).reshape(4)
                scores[i] = float(score)
        except Exception as e:
            raise RuntimeError(f"tracker {tname} failed on {name} frame {i}: {type(e).__name__}: {e}") from e
        _tick(progress, i)
        i += 1
    if i != n:
        raise MetaRTTError(f"sequence {name!r} yielded {i} frames but its length is {n}")
    return {"boxes": boxes, "scores": scores, "times": times,
            "init_time": float(times[0]), "decode_time": float(decode)}


def _div(a: float, b: float) -> float | None:
    return float(a / b) if b > 0 else None


def _clean(x: Any) -> Any:
    """JSON-safe copy: numpy -> Python, non-finite floats -> None, unknown objects -> str."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if x is None or isinstance(x, str):
        return x
    return str(x)


def device_description() -> str:
    """The compute device (``utils.device()``, GPU name if CUDA), the CPU model and torch's thread count."""
    import torch

    dev = device()
    parts = [str(dev)]
    if dev.type == "cuda":
        try:
            parts[0] += f" ({torch.cuda.get_device_name(dev)})"
        except Exception:
            pass
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cpu = cpu or platform.processor() or platform.machine() or "unknown CPU"
    parts.append(f"CPU: {cpu}")
    parts.append(f"torch threads: {torch.get_num_threads()}")
    return "; ".join(parts)


def evaluate(tracker_names: list[str], sequences: list, make_tracker: Callable[[str], Any],
             out_dir: str | Path | None = None, progress: bool = True,
             config: dict | None = None) -> dict[str, Any]:
    """Run every tracker on every sequence (OPE) and return the results dict (see the module docstring).

    ``make_tracker(name)`` is called once per tracker name; the tracker's ``init`` must reset it
    fully, since the same object runs all sequences (as the got10k toolkit). Layout::

        {"device": str, "config": {...}, "wall_time": s, "created": ISO time,
         "trackers": {NAME: {"auc", "precision", "fps", "fps_with_init", "init_time" (mean s),
                             "success_curve": [21], "precision_curve": [51],
                             "sequences": {SEQ: {"auc", "precision", "fps", "fps_with_init",
                                                 "init_time", "n_frames", "boxes", "scores"}}}}}

    Undefined values (no valid ground truth, a one-frame sequence's fps) are ``None``. With
    ``out_dir``: writes ``results.json``, ``success.png``, ``precision.png`` and ``success.html``
    (interactive success and precision plots, plotly.js embedded so it opens offline).
    """
    tracker_names = [str(t) for t in tracker_names]
    sequences = list(sequences)
    if not tracker_names:
        raise MetaRTTError("no trackers to evaluate")
    if not sequences:
        raise MetaRTTError("no sequences to evaluate on")
    if len(set(tracker_names)) != len(tracker_names):
        raise MetaRTTError(f"duplicate tracker names in {tracker_names}")
    seq_names = [str(getattr(s, "name", "?")) for s in sequences]
    if len(set(seq_names)) != len(seq_names):
        raise MetaRTTError(f"duplicate sequence names in {seq_names}")
    for s, sn in zip(sequences, seq_names):
        g = np.asarray(s.groundtruth, dtype=np.float64)
        if g.ndim != 2 or g.shape[1] != 4 or len(g) != len(s):
            raise MetaRTTError(f"sequence {sn!r}: ground truth of shape {g.shape} does not match its "
                               f"{len(s)} frames (expected ({len(s)}, 4))")

    from tqdm.auto import tqdm

    t_start = time.perf_counter()
    cfg = dict(config or {})
    cfg.setdefault("protocol", "OTB OPE (got10k ExperimentOTB)")
    cfg.setdefault("sequences", seq_names)
    out: dict[str, Any] = {"device": device_description(), "config": cfg, "trackers": {}}
    bar = tqdm(total=len(tracker_names) * len(sequences), disable=not progress, unit="seq")
    try:
        for tname in tracker_names:
            tracker = make_tracker(tname)
            per_seq: dict[str, Any] = {}
            curves_s, curves_p = [], []
            n_upd = n_all = 0
            t_upd = t_init = 0.0
            for seq, sn in zip(sequences, seq_names):
                bar.set_description(f"{tname}/{sn}")
                r = run_sequence(tracker, seq)
                m = sequence_metrics(r["boxes"], seq.groundtruth)
                n = len(r["boxes"])
                upd = float(r["times"][1:].sum())
                per_seq[sn] = {
                    "auc": m["auc"], "precision": m["precision"],
                    "fps": _div(n - 1, upd), "fps_with_init": _div(n, r["init_time"] + upd),
                    "init_time": r["init_time"], "n_frames": n,
                    "boxes": r["boxes"], "scores": r["scores"],
                }
                if m["n_valid"]:
                    curves_s.append(m["success_curve"])
                    curves_p.append(m["precision_curve"])
                n_upd += n - 1
                n_all += n
                t_upd += upd
                t_init += r["init_time"]
                bar.update(1)
            if curves_s:
                sc, pc = np.mean(curves_s, axis=0), np.mean(curves_p, axis=0)
                a, p = auc(sc), float(pc[PRECISION_AT])
            else:
                sc, pc = np.full(len(IOU_THRESHOLDS), np.nan), np.full(len(ERROR_THRESHOLDS), np.nan)
                a = p = None
            out["trackers"][tname] = {
                "auc": a, "precision": p, "fps": _div(n_upd, t_upd),
                "fps_with_init": _div(n_all, t_init + t_upd), "init_time": t_init / len(sequences),
                "success_curve": sc, "precision_curve": pc, "sequences": per_seq,
            }
    finally:
        bar.close()
    out["wall_time"] = time.perf_counter() - t_start
    out["created"] = _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")
    out = _clean(out)
    if out_dir is not None:
        out_dir = Path(out_dir)
        atomic_write_json(out_dir / "results.json", out)
        plot_results(out, out_dir)
    return out


# ------------------------------------------------------------------------------------------- output
def _ranked(results: dict, key: str) -> list[tuple[str, dict]]:
    items = list(results["trackers"].items())
    return sorted(items, key=lambda kv: -(kv[1].get(key) if kv[1].get(key) is not None else -1.0))


def _fmt(v: Any, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def plot_results(results: dict, out_dir: str | Path) -> dict[str, Path]:
    """Write ``success.png``, ``precision.png`` (OTB-style, legend best first with AUC / precision@20)
    and ``success.html`` (both plots, interactive) into ``out_dir``; return their paths."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out_dir = Path(out_dir)
    paths = {}
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
               "#7f7f7f", "#bcbd22", "#17becf"]
    # same colour and dash in all plots; past 10 trackers the dash tells same-coloured curves apart
    colors = {t: palette[i % len(palette)] for i, t in enumerate(results["trackers"])}
    dashes = {t: [("-", "solid"), ("--", "dash"), (":", "dot"), ("-.", "dashdot")][(i // len(palette)) % 4]
              for i, t in enumerate(results["trackers"])}
    many = len(results["trackers"]) > 8  # legend beside the axes instead of over the curves
    specs = [("success", "auc", IOU_THRESHOLDS, "success_curve", "Overlap threshold",
              "Success rate", "Success plots of OPE", "AUC"),
             ("precision", "precision", ERROR_THRESHOLDS, "precision_curve", "Location error threshold (px)",
              "Precision", "Precision plots of OPE", f"precision@{PRECISION_AT}")]
    for stem, key, xs, ckey, xlabel, ylabel, title, _ in specs:
        fig = Figure(figsize=(8.5, 5) if many else (6, 5), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        for tname, r in _ranked(results, key):
            ys = np.array([np.nan if v is None else v for v in r[ckey]], dtype=np.float64)
            ax.plot(xs, ys, linewidth=2, color=colors[tname], linestyle=dashes[tname][0],
                    label=f"{tname} [{_fmt(r[key], '.3f')}]")
        ax.set(xlabel=xlabel, ylabel=ylabel, title=title, xlim=(xs[0], xs[-1]), ylim=(0, 1.01))
        ax.grid(True, alpha=0.3)
        if many:
            ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small", borderaxespad=0)
        else:
            ax.legend(loc="lower left" if stem == "success" else "lower right")
        fig.tight_layout()
        paths[stem] = atomic_write(out_dir / f"{stem}.png", lambda tmp, fig=fig: fig.savefig(tmp, format="png"))

    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    titles = ["Success plot of OPE (legend: AUC)", f"Precision plot of OPE (legend: precision@{PRECISION_AT})"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=titles)
    for col, (stem, key, xs, ckey, xlabel, ylabel, _, _) in enumerate(specs, start=1):
        for tname, r in _ranked(results, key):
            fig.add_trace(go.Scatter(x=xs.tolist(), y=r[ckey], mode="lines", line={"color": colors[tname], "dash": dashes[tname][1]},
                                     name=f"{tname} [{_fmt(r[key], '.3f')}]", legendgroup=stem,
                                     legendgrouptitle_text=ylabel), row=1, col=col)
        fig.update_xaxes(title_text=xlabel, row=1, col=col)
        fig.update_yaxes(title_text=ylabel, range=[0, 1.01], row=1, col=col)
    fig.update_layout(title=f"OPE results ({results.get('created', '')}; {results.get('device', '')})",
                      legend={"groupclick": "toggleitem"}, height=520, width=1150)
    html = fig.to_html(include_plotlyjs=True, full_html=True)

    def _w(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(html)
    paths["html"] = atomic_write(out_dir / "success.html", _w)
    return paths


def format_table(results: dict, max_sequence_columns: int = 6) -> str:
    """A markdown table, one row per tracker (best AUC first): tracker | AUC | Prec@20 | FPS | init (s),
    plus one AUC column per sequence when there are at most ``max_sequence_columns`` sequences."""
    trackers = results.get("trackers", {})
    seqs: list[str] = []
    for r in trackers.values():
        for s in r.get("sequences", {}):
            if s not in seqs:
                seqs.append(s)
    per_seq = 0 < len(seqs) <= max_sequence_columns
    head = ["tracker", "AUC", f"Prec@{PRECISION_AT}", "FPS", "init (s)"]
    if per_seq:
        head += [f"AUC {s}" for s in seqs]
    rows = []
    for tname, r in _ranked(results, "auc"):
        row = [tname, _fmt(r.get("auc"), ".3f"), _fmt(r.get("precision"), ".3f"),
               _fmt(r.get("fps"), ".1f"), _fmt(r.get("init_time"), ".3g")]
        if per_seq:
            row += [_fmt(r.get("sequences", {}).get(s, {}).get("auc"), ".3f") for s in seqs]
        rows.append(row)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    sep = "|" + "|".join(("-" * (w + 2)) if i == 0 else ("-" * (w + 1) + ":") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(head), sep] + [line(r) for r in rows])


def load_results(path: str | Path) -> dict[str, Any]:
    """Read a ``results.json`` written by :func:`evaluate` (a folder means ``folder/results.json``)."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    if not p.is_file():
        raise MetaRTTError(f"results file {p} does not exist (run the evaluation first)")
    try:
        with open(p, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MetaRTTError(f"results file {p} is corrupt or truncated (not valid JSON: {e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("trackers"), dict):
        raise MetaRTTError(f"{p} is not a metartt_lite results file (no 'trackers' table)")
    return data

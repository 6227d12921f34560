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
(init excluded); ``fps_with_init`` = all frames / (init time + total update time); ``fps_e2e`` (end to
end, what a user's clock sees) = update frames / (total update time + the time to decode those frames),
the decode time per frame being the sequence's decode time / its length. The overall fps of a tracker
uses the totals over all sequences.

Sequences are duck-typed: any object with ``name``, ``groundtruth`` ((N, 4) 0-based xywh),
``__len__`` and ``frames()`` (an iterator of uint8 RGB frames) or ``frame(i)``; the initial box is
``init_box`` (attribute or method) when present, else ``groundtruth[0]``.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import multiprocessing as mp
import os
import pickle
import platform
import shutil
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch

from ..core.boxes import center_error, iou, validate_box
from ..core.utils import MetaRTTError, atomic_write, atomic_write_json, device, fmt_value as _fmt

__all__ = [
    "IOU_THRESHOLDS", "ERROR_THRESHOLDS", "PRECISION_AT",
    "success_curve", "auc", "precision_curve", "precision_at", "sequence_metrics",
    "run_sequence", "evaluate", "RunStore", "run_key", "format_table", "markdown_table", "load_results", "device_description",
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
    success = np.zeros(n, dtype=bool)
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
                boxes[0], scores[0], success[0] = box0, 1.0, True
            else:
                t0 = time.perf_counter()
                box, score = tracker.update(frame)
                times[i] = time.perf_counter() - t0
                boxes[i] = np.asarray(box, dtype=np.float64).reshape(4)
                scores[i] = float(score)
                flag = getattr(tracker, "success", None)  # the tracker's own calibrated flag, else score > 0
                success[i] = bool(flag) if flag is not None else scores[i] > 0
        except Exception as e:
            raise RuntimeError(f"tracker {tname} failed on {name} frame {i}: {type(e).__name__}: {e}") from e
        _tick(progress, i)
        i += 1
    if i != n:
        raise MetaRTTError(f"sequence {name!r} yielded {i} frames but its length is {n}")
    return {"boxes": boxes, "scores": scores, "success": success, "times": times,
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


class _Decoded:
    """A sequence whose frames were decoded once (shared by every tracker and seed that runs on it)."""

    def __init__(self, seq: Any, frames: list[np.ndarray]):
        self.name = str(getattr(seq, "name", "?"))
        self.groundtruth = np.asarray(seq.groundtruth, dtype=np.float64)
        self.init_box = _init_box(seq)
        self.frames = frames

    def __len__(self) -> int:
        return len(self.frames)


def _decode(seq: Any, max_bytes: float) -> tuple[Any, float]:
    """Decode ``seq`` once into memory (returns the in-memory view and the decode time); a sequence over
    ``max_bytes`` (or any, when ``max_bytes <= 0``) is left as it is and decoded again by each run."""
    if max_bytes <= 0:
        return seq, 0.0
    frames, nbytes = [], 0
    t0 = time.perf_counter()
    for f in _frame_iter(seq):
        frames.append(f)
        nbytes += f.nbytes
        if nbytes > max_bytes:
            return seq, 0.0
    dt = time.perf_counter() - t0
    if len(frames) != len(seq):
        raise MetaRTTError(f"sequence {getattr(seq, 'name', '?')!r} yielded {len(frames)} frames "
                           f"but its length is {len(seq)}")
    return _Decoded(seq, frames), dt


def _is_deterministic(tracker: Any) -> bool:
    """OpenCV's peers set ``deterministic = True``: one run stands for every seed."""
    return bool(getattr(tracker, "deterministic", False))


class RunStore:
    """Finished runs of one ``evaluate`` (one file per sequence × tracker × seed, written atomically as each
    run ends), so that a killed evaluation rerun with the same arguments continues where it stopped.

    Files: ``FOLDER/SEQ__TRACKER__SEED.json`` (JSON with NaN allowed, so every float comes back exactly);
    an unreadable file is ignored (that run is done again). Plain data only: loading runs no code."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def _path(self, seq: str, tracker: str, seed: int) -> Path:
        safe = lambda t: "".join(c if c.isalnum() or c in "-_." else "_" for c in t)  # noqa: E731
        return self.folder / f"{safe(seq)}__{safe(tracker)}__{int(seed)}.json"

    def load(self, seq: str, tracker: str, seed: int) -> dict[str, Any] | None:
        p = self._path(seq, tracker, seed)
        try:
            rec = json.loads(p.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(rec, dict) or rec.get("_key") != [seq, tracker, int(seed)]:
            return None
        rec.pop("_key")
        return rec

    def save(self, seq: str, tracker: str, seed: int, record: dict[str, Any]) -> None:
        def plain(x: Any) -> Any:
            if isinstance(x, dict):
                return {k: plain(v) for k, v in x.items()}
            if isinstance(x, np.ndarray):
                return x.tolist()
            if isinstance(x, (np.bool_,)):
                return bool(x)
            if isinstance(x, np.integer):
                return int(x)
            if isinstance(x, np.floating):
                return float(x)
            return x
        text = json.dumps({**plain(record), "_key": [seq, tracker, int(seed)]})
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write(self._path(seq, tracker, seed), lambda tmp: Path(tmp).write_text(text))


def run_key(config: dict, sequences: list) -> str:
    """What must match for a rerun to reuse finished runs: the configuration (without the keys that only
    choose which runs or how many processes: trackers, seeds, workers, output, threads, commit) and every
    sequence's name, length and first box."""
    import hashlib
    skip = {"trackers", "seeds", "seed", "workers", "out", "quiet", "threads", "git_commit", "sequences", "func",
            "restart"}
    cfg = {k: v for k, v in sorted(config.items()) if k not in skip}
    seqs = [[str(getattr(s, "name", "?")), len(s), [round(float(v), 4) for v in np.asarray(s.groundtruth[0]).reshape(-1)]]
            for s in sequences]
    blob = json.dumps({"config": cfg, "sequences": seqs}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def _run_one_sequence(seq: Any, tracker_names: list[str], seeds: list[int], get_tracker: Callable[[str, int], Any],
                      max_decoded_bytes: float, store: RunStore | None = None) -> dict[str, Any]:
    """Every tracker and seed on one sequence (decoded once): {tname: {seed: per-run record}}. With a
    ``store``, runs found there are reused and each new run is saved there as soon as it ends."""
    sn = str(getattr(seq, "name", "?"))
    view, decode_s = None, 0.0
    out: dict[str, Any] = {"decode_time": 0.0, "runs": {}, "deterministic": {}, "resumed": 0, "ran": 0}
    for tname in tracker_names:
        runs = {}
        for k, seed in enumerate(seeds):
            if k > 0 and out["deterministic"][tname]:
                break
            rec = store.load(sn, tname, seed) if store is not None else None
            if rec is not None:
                if k == 0:
                    out["deterministic"][tname] = bool(rec.get("_deterministic", False))
                rec.pop("_deterministic", None)
                runs[seed] = rec
                out["resumed"] += 1
                continue
            if view is None:  # decoded only when some run is left to do
                view, decode_s = _decode(seq, max_decoded_bytes)
                out["decode_time"] = decode_s
            tracker = get_tracker(tname, seed)
            if k == 0:
                out["deterministic"][tname] = _is_deterministic(tracker)
            r = run_sequence(tracker, view)
            m = sequence_metrics(r["boxes"], seq.groundtruth)
            n = len(r["boxes"])
            upd = float(r["times"][1:].sum())
            dec_upd = (decode_s + r["decode_time"]) * (n - 1) / n  # decoding the n - 1 update frames
            runs[seed] = {"auc": m["auc"], "precision": m["precision"],
                          "fps": _div(n - 1, upd), "fps_with_init": _div(n, r["init_time"] + upd),
                          "fps_e2e": _div(n - 1, upd + dec_upd), "decode_time_updates": dec_upd,
                          "init_time": r["init_time"], "update_time": upd, "n_frames": n,
                          "boxes": r["boxes"], "scores": r["scores"], "success": r["success"],
                          "success_curve": m["success_curve"] if m["n_valid"] else None,
                          "precision_curve": m["precision_curve"] if m["n_valid"] else None}
            out["ran"] += 1
            if store is not None:
                store.save(sn, tname, seed, {**runs[seed], "_deterministic": out["deterministic"][tname]})
        out["runs"][tname] = runs
    return out


# one process-wide tracker cache per worker (a tracker's ``init`` resets it fully, as in got10k)
_WORKER: dict[str, Any] = {}


def _cached(make_tracker: Callable[[str, int], Any]) -> Callable[[str, int], Any]:
    """``make_tracker`` that builds each (name, seed) once and then hands back the same object."""
    cache: dict[tuple[str, int], Any] = {}

    def get(tname: str, seed: int) -> Any:
        if (tname, seed) not in cache:
            cache[(tname, seed)] = make_tracker(tname, seed)
        return cache[(tname, seed)]
    return get


def exit_when_orphaned(parent_pid: int, interval: float = 1.0) -> threading.Thread:
    """Start a daemon thread that ends this process once ``parent_pid`` is gone (a killed ``evaluate``
    must not leave its workers tracking for the rest of their sequence)."""
    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent_pid:
                os._exit(1)
    t = threading.Thread(target=watch, name="orphan-watch", daemon=True)
    t.start()
    return t


def _worker_init(make_tracker: Callable[[str, int], Any], threads: int, parent_pid: int | None = None) -> None:
    torch.set_num_threads(threads)
    os.environ["METARTT_THREADS"] = str(threads)  # make_tracker's thread policy keeps this worker's share
    _WORKER["get"] = _cached(make_tracker)
    if parent_pid is not None:
        exit_when_orphaned(parent_pid)


def _worker_run(seq: Any, tracker_names: list[str], seeds: list[int], max_decoded_bytes: float,
                store: RunStore | None = None) -> dict[str, Any]:
    return _run_one_sequence(seq, tracker_names, seeds, _WORKER["get"], max_decoded_bytes, store)


def _mean_or_none(values: list) -> float | None:
    v = [x for x in values if x is not None]
    return float(np.mean(v)) if v else None


def _aggregate(tracker_names: list[str], seq_names: list[str], per_seq: dict[str, dict]) -> dict[str, Any]:
    """Per tracker: per-seed overall scores (mean of per-sequence curves, as got10k), their mean / std /
    worst / best over seeds, the median FPS over seeds, and per-sequence seed means."""
    trackers: dict[str, Any] = {}
    for tname in tracker_names:
        seeds = list(per_seq[seq_names[0]]["runs"][tname])
        per_seed: dict[str, Any] = {}
        for seed in seeds:
            runs = [per_seq[sn]["runs"][tname][seed] for sn in seq_names]
            cs = [r["success_curve"] for r in runs if r["success_curve"] is not None]
            cp = [r["precision_curve"] for r in runs if r["precision_curve"] is not None]
            if cs:
                sc, pc = np.mean(cs, axis=0), np.mean(cp, axis=0)
                a, p = auc(sc), float(pc[PRECISION_AT])
            else:
                sc, pc = np.full(len(IOU_THRESHOLDS), np.nan), np.full(len(ERROR_THRESHOLDS), np.nan)
                a = p = None
            n_upd = sum(r["n_frames"] - 1 for r in runs)
            n_all = sum(r["n_frames"] for r in runs)
            t_upd = sum(r["update_time"] for r in runs)
            t_init = sum(r["init_time"] for r in runs)
            t_dec = sum(r["decode_time_updates"] for r in runs)
            per_seed[str(seed)] = {"auc": a, "precision": p, "fps": _div(n_upd, t_upd),
                                   "fps_with_init": _div(n_all, t_init + t_upd), "fps_e2e": _div(n_upd, t_upd + t_dec),
                                   "init_time": t_init / len(runs), "success_curve": sc, "precision_curve": pc}
        ps = list(per_seed.values())
        aucs = [r["auc"] for r in ps if r["auc"] is not None]
        precs = [r["precision"] for r in ps if r["precision"] is not None]
        fpss = [r["fps"] for r in ps if r["fps"] is not None]
        fpsi = [r["fps_with_init"] for r in ps if r["fps_with_init"] is not None]
        fpse = [r["fps_e2e"] for r in ps if r["fps_e2e"] is not None]
        scs = np.array([r["success_curve"] for r in ps])
        pcs = np.array([r["precision_curve"] for r in ps])
        sequences = {}
        for sn in seq_names:
            runs = per_seq[sn]["runs"][tname]
            first = runs[seeds[0]]
            fps_s = [r["fps"] for r in runs.values() if r["fps"] is not None]
            fps_e = [r["fps_e2e"] for r in runs.values() if r["fps_e2e"] is not None]
            sequences[sn] = {
                "auc": _mean_or_none([r["auc"] for r in runs.values()]),
                "precision": _mean_or_none([r["precision"] for r in runs.values()]),
                "fps": float(np.median(fps_s)) if fps_s else None,
                "fps_e2e": float(np.median(fps_e)) if fps_e else None,
                "fps_with_init": first["fps_with_init"], "init_time": first["init_time"],
                "n_frames": first["n_frames"], "boxes": first["boxes"], "scores": first["scores"],
                "success": first.get("success"),
                "seeds": {str(s): {"auc": r["auc"], "precision": r["precision"], "fps": r["fps"],
                                   "boxes": r["boxes"]} for s, r in runs.items()},
            }
        trackers[tname] = {
            "seeds": [int(s) for s in seeds], "deterministic": bool(per_seq[seq_names[0]]["deterministic"][tname]),
            "auc": float(np.mean(aucs)) if aucs else None,
            "auc_std": float(np.std(aucs, ddof=1)) if len(aucs) > 1 else 0.0 if aucs else None,
            "auc_min": min(aucs) if aucs else None, "auc_max": max(aucs) if aucs else None,
            "precision": float(np.mean(precs)) if precs else None,
            "precision_std": float(np.std(precs, ddof=1)) if len(precs) > 1 else 0.0 if precs else None,
            "fps": float(np.median(fpss)) if fpss else None,
            "fps_with_init": float(np.median(fpsi)) if fpsi else None,
            "fps_e2e": float(np.median(fpse)) if fpse else None,
            "init_time": float(np.mean([r["init_time"] for r in ps])),
            "success_curve": scs.mean(axis=0), "success_curve_min": scs.min(axis=0), "success_curve_max": scs.max(axis=0),
            "precision_curve": pcs.mean(axis=0), "precision_curve_min": pcs.min(axis=0),
            "precision_curve_max": pcs.max(axis=0),
            "per_seed": per_seed, "sequences": sequences,
        }
    return trackers


def evaluate(tracker_names: list[str], sequences: list, make_tracker: Callable[[str, int], Any],
             out_dir: str | Path | None = None, progress: bool = True, config: dict | None = None,
             seeds: Iterable[int] = (0,), workers: int = 1, max_decoded_bytes: float = 2e9,
             log: Callable[[str], None] | None = None, resume: bool = True) -> dict[str, Any]:
    """Run every tracker with every seed on every sequence (OPE) and return the results dict.

    ``make_tracker(name, seed)`` is called once per tracker and seed; the tracker's ``init`` must reset
    it fully, since the same object runs all sequences (as the got10k toolkit). A tracker whose
    ``deterministic`` attribute is true (OpenCV's peers) runs once, with the first seed: its one value
    stands for every seed in a paired comparison. Each sequence is decoded once for all trackers and
    seeds (unless larger than ``max_decoded_bytes``); ``workers > 1`` runs sequences in that many
    processes (``make_tracker`` must then be picklable; torch threads are split between them).
    Layout::

        {"device": str, "config": {..., "seeds": [...], "workers": n}, "wall_time": s, "created": ISO time,
         "decode_time": s,
         "trackers": {NAME: {"seeds": [...], "deterministic": bool,
                             "auc" (mean over seeds), "auc_std" (sample std over seeds), "auc_min", "auc_max",
                             "precision", "precision_std", "fps" (median over seeds), "fps_with_init",
                             "fps_e2e" (median over seeds: decode + track),
                             "init_time" (mean s), "success_curve" [21] (mean over seeds), "success_curve_min",
                             "success_curve_max" (worst / best seed per threshold), "precision_curve" [51] (+ min/max),
                             "per_seed": {SEED: {"auc", "precision", "fps", "fps_with_init", "fps_e2e", "init_time",
                                                 "success_curve", "precision_curve"}},
                             "sequences": {SEQ: {"auc", "precision" (means over seeds), "fps", "fps_e2e" (medians),
                                                 "fps_with_init", "init_time", "n_frames", "boxes", "scores",
                                                 "success" (first seed's; the tracker's ``success`` flag
                                                 per frame), "seeds": {SEED: {"auc", "precision", "fps",
                                                 "boxes"}}}}}}}

    A seed's overall AUC is the AUC of the mean of its per-sequence success curves (got10k).
    Undefined values (no valid ground truth, a one-frame sequence's fps) are ``None``. With
    ``out_dir``: writes ``results.json``, ``success.png``, ``precision.png`` and ``success.html``.

    **Resuming** (``out_dir`` and ``resume``): each finished sequence × tracker × seed is written at once to
    ``out_dir/runs/KEY/`` (:class:`RunStore`; KEY = :func:`run_key` of the configuration and sequences), so
    a killed run started again with the same arguments reuses them and runs only what is left; the
    folder is removed once ``results.json`` is written. Every result but the timings (fps, times,
    ``wall_time``, ``created``) equals an uninterrupted run's. ``log`` (e.g. ``print``) gets one line per
    finished sequence.
    """
    tracker_names = [str(t) for t in tracker_names]
    sequences = list(sequences)
    seeds = [int(s) for s in seeds]
    if not tracker_names:
        raise MetaRTTError("no trackers to evaluate")
    if not sequences:
        raise MetaRTTError("no sequences to evaluate on")
    if not seeds:
        raise MetaRTTError("no seeds given")
    if len(set(seeds)) != len(seeds):
        raise MetaRTTError(f"duplicate seeds in {seeds}")
    if workers < 1:
        raise MetaRTTError(f"workers must be at least 1, got {workers}")
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
    cfg["seeds"] = seeds
    cfg["workers"] = workers
    out: dict[str, Any] = {"device": device_description(), "config": cfg, "trackers": {}}
    per_seq: dict[str, dict] = {}
    store = RunStore(Path(out_dir) / "runs" / run_key(cfg, sequences)) if (out_dir is not None and resume) else None
    done = [0]

    def finished(sn: str, rec: dict) -> None:
        done[0] += 1
        if log is None:
            return
        aucs = []
        for t in tracker_names:
            v = [r.get("auc") for r in rec["runs"][t].values() if r.get("auc") is not None]
            aucs.append(f"{t} {np.mean(v):.3f}" if v else f"{t} -")
        how = " (resumed)" if rec["ran"] == 0 else (f" ({rec['resumed']} runs resumed)" if rec["resumed"] else "")
        log(f"[{done[0]}/{len(seq_names)}] {sn}: AUC " + ", ".join(aucs) + how)

    bar = tqdm(total=len(sequences), disable=not progress, unit="seq")
    try:
        if workers == 1:
            get = _cached(make_tracker)
            for seq, sn in zip(sequences, seq_names):
                bar.set_description(sn)
                per_seq[sn] = _run_one_sequence(seq, tracker_names, seeds, get, max_decoded_bytes, store)
                finished(sn, per_seq[sn])
                bar.update(1)
        else:
            per_seq = _run_parallel(sequences, seq_names, tracker_names, seeds, make_tracker, workers,
                                    max_decoded_bytes, bar, store, finished)
    finally:
        bar.close()
    out["trackers"] = _aggregate(tracker_names, seq_names, per_seq)
    out["decode_time"] = float(sum(p["decode_time"] for p in per_seq.values()))
    out["wall_time"] = time.perf_counter() - t_start
    out["created"] = _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")
    out = _clean(out)
    if out_dir is not None:
        out_dir = Path(out_dir)
        atomic_write_json(out_dir / "results.json", out)
        plot_results(out, out_dir)
        if store is not None and store.folder.is_dir():  # finished: the partial runs are in results.json
            shutil.rmtree(store.folder, ignore_errors=True)
            with contextlib.suppress(OSError):
                store.folder.parent.rmdir()  # only when no other run's folder is left in it
    return out


def _run_parallel(sequences: list, seq_names: list[str], tracker_names: list[str], seeds: list[int],
                  make_tracker: Callable, workers: int, max_decoded_bytes: float, bar: Any,
                  store: RunStore | None = None, finished: Callable[[str, dict], None] | None = None) -> dict[str, dict]:
    """Sequences in ``workers`` spawned processes (longest first), torch threads split between them."""
    try:
        pickle.dumps(make_tracker)
    except Exception as e:
        raise MetaRTTError(f"workers > 1 needs a picklable make_tracker (a module-level function or "
                           f"functools.partial), not {make_tracker!r}: {e}") from None
    threads = max(1, torch.get_num_threads() // workers)
    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
    per_seq: dict[str, dict] = {}
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                             initargs=(make_tracker, threads, os.getpid())) as pool:
        futs = {pool.submit(_worker_run, sequences[i], tracker_names, seeds, max_decoded_bytes, store): seq_names[i]
                for i in order}
        for f in as_completed(futs):
            per_seq[futs[f]] = f.result()
            if finished is not None:
                finished(futs[f], per_seq[futs[f]])
            bar.update(1)
    return {sn: per_seq[sn] for sn in seq_names}


# ------------------------------------------------------------------------------------------- output
def _ranked(results: dict, key: str) -> list[tuple[str, dict]]:
    items = list(results["trackers"].items())
    return sorted(items, key=lambda kv: -(kv[1].get(key) if kv[1].get(key) is not None else -1.0))


def _curve(values: Any) -> np.ndarray | None:
    return None if values is None else np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _legend(tname: str, r: dict, key: str) -> str:
    """``name [mean]``, or ``name [mean ± std, n seeds]`` for a tracker run with several seeds."""
    n = len(r.get("seeds", []))
    std = r.get(f"{key}_std")
    if n > 1 and std is not None:
        return f"{tname} [{_fmt(r[key], '.3f')} ± {std:.3f}, {n} seeds]"
    return f"{tname} [{_fmt(r[key], '.3f')}]"


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
            ys = _curve(r[ckey])
            ax.plot(xs, ys, linewidth=2, color=colors[tname], linestyle=dashes[tname][0],
                    label=_legend(tname, r, key))
            lo, hi = _curve(r.get(ckey + "_min")), _curve(r.get(ckey + "_max"))
            if lo is not None and hi is not None and len(r.get("seeds", [])) > 1:
                ax.fill_between(xs, lo, hi, color=colors[tname], alpha=0.15, linewidth=0)
        if any(len(r.get("seeds", [])) > 1 for r in results["trackers"].values()):
            title += " (band: worst to best seed)"
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
            if len(r.get("seeds", [])) > 1 and r.get(ckey + "_min") is not None:
                band_x = xs.tolist() + xs.tolist()[::-1]
                band_y = list(r[ckey + "_max"]) + list(r[ckey + "_min"])[::-1]
                fig.add_trace(go.Scatter(x=band_x, y=band_y, fill="toself", fillcolor=colors[tname], opacity=0.15,
                                         line={"width": 0}, hoverinfo="skip", showlegend=False,
                                         legendgroup=stem), row=1, col=col)
            fig.add_trace(go.Scatter(x=xs.tolist(), y=r[ckey], mode="lines", line={"color": colors[tname], "dash": dashes[tname][1]},
                                     name=_legend(tname, r, key), legendgroup=stem,
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
    """A markdown table, one row per tracker (best mean AUC first): tracker | seeds | AUC (mean over seeds) |
    std | worst | best | Prec@20 | FPS (tracker only, median over seeds) | FPS e2e (decode + track) | init (s), plus one AUC column per sequence
    (mean over seeds) when there are at most ``max_sequence_columns`` sequences. A deterministic tracker's
    seeds column reads ``1 (det.)``."""
    trackers = results.get("trackers", {})
    seqs: list[str] = []
    for r in trackers.values():
        for s in r.get("sequences", {}):
            if s not in seqs:
                seqs.append(s)
    per_seq = 0 < len(seqs) <= max_sequence_columns
    head = ["tracker", "seeds", "AUC", "std", "worst", "best", f"Prec@{PRECISION_AT}", "FPS", "FPS e2e", "init (s)"]
    if per_seq:
        head += [f"AUC {s}" for s in seqs]
    rows = []
    for tname, r in _ranked(results, "auc"):
        n = len(r.get("seeds", [0]))
        row = [tname, f"{n} (det.)" if r.get("deterministic") else str(n), _fmt(r.get("auc"), ".3f"),
               _fmt(r.get("auc_std"), ".3f"), _fmt(r.get("auc_min", r.get("auc")), ".3f"),
               _fmt(r.get("auc_max", r.get("auc")), ".3f"), _fmt(r.get("precision"), ".3f"),
               _fmt(r.get("fps"), ".1f"), _fmt(r.get("fps_e2e"), ".1f"), _fmt(r.get("init_time"), ".3g")]
        if per_seq:
            row += [_fmt(r.get("sequences", {}).get(s, {}).get("auc"), ".3f") for s in seqs]
        rows.append(row)
    return markdown_table(head, rows)


def markdown_table(head: list[str], rows: list[list[str]]) -> str:
    """A padded markdown table (first column left-aligned, the others right-aligned)."""
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

#!/usr/bin/env python
"""Soak test: track EVERY sequence of a data root to its last frame with each tracker, and report what
broke instead of stopping at the first failure.

For each (tracker, sequence) pair a fresh tracker runs the whole sequence through
``evaluation.run_sequence`` (the code path of ``evaluate``); any exception — building the tracker,
reading the sequence, init, any update — is caught, counted and recorded with its message and
traceback, and the soak goes on. Reported: frames tracked per pair, exceptions, FPS per tracker
(update frames / update time, frames of failed runs included), AUC of completed runs, the process's
peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, KiB) and, per pair, the peak RSS during the
run minus the RSS before it (Linux: VmHWM, reset through ``/proc/self/clear_refs`` before each run;
elsewhere the growth of ``ru_maxrss``) — the table shows it for the longest sequence. The first pair of
each tracker also counts building the tracker (trunk weights, first allocations), so it is larger.

``--out`` (default ``soak.json``) is rewritten atomically after every pair (``"complete": false``
until the end), so an interrupted soak leaves its partial results. Exit code 0: no exception;
1: at least one exception; 2: bad arguments (one ``error:`` line); 130: interrupted.

    python scripts/soak.py                                   # every sequence, metartt,metartt-prune,rtmdnet
    python scripts/soak.py --sequences DTB70_Gull2,TinyTLP_Drone1 --trackers rtmdnet-k5-tuned --out s.json
"""
from __future__ import annotations

import argparse
import os
import datetime as _dt
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_TRACKERS = "metartt,metartt-prune,rtmdnet"


# ------------------------------------------------------------------------------------------- memory
def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_kib() -> int | None:
    """Current resident set size (KiB), Linux only."""
    return _status_kib("VmRSS")


def maxrss_kib() -> int:
    """Peak RSS of the process so far (KiB; macOS reports bytes)."""
    v = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return v // 1024 if sys.platform == "darwin" else v


def reset_peak() -> bool:
    """Reset the kernel's VmHWM (peak RSS) to the current RSS; False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _status_kib("VmHWM") is not None
    except OSError:
        return False


# ------------------------------------------------------------------------------------------ tracking
class TimedTracker:
    """Wraps a tracker: counts frames that finished and the time spent in init / update."""

    def __init__(self, tracker: Any):
        self.tracker = tracker
        self.name = getattr(tracker, "name", type(tracker).__name__)
        self.frames = 0
        self.init_time = 0.0
        self.update_time = 0.0

    def init(self, frame, box):
        t0 = time.perf_counter()
        self.tracker.init(frame, box)
        self.init_time += time.perf_counter() - t0
        self.frames += 1

    def update(self, frame):
        t0 = time.perf_counter()
        out = self.tracker.update(frame)
        self.update_time += time.perf_counter() - t0
        self.frames += 1
        return out


def _message(e: BaseException) -> str:
    msg = f"{type(e).__name__}: {' '.join(str(e).split())}"
    cause = e.__cause__
    if cause is not None and str(cause) not in str(e):
        msg += f" (caused by {type(cause).__name__}: {' '.join(str(cause).split())})"
    return msg


def soak_one(tracker_name: str, seq_name: str, root: Path, checkpoint: str | None, seed: int) -> dict:
    """Run one tracker over one whole sequence; never raises (except KeyboardInterrupt)."""
    from metartt_lite.data.sequences import load_sequence
    from metartt_lite.evaluation.ope import run_sequence, sequence_metrics
    from metartt_lite.track.registry import make_tracker

    rec: dict[str, Any] = {"tracker": tracker_name, "sequence": seq_name, "n_frames": None, "frames_tracked": 0,
                           "complete": False, "error": None, "traceback": None}
    rss0 = rss_kib()
    hwm = reset_peak()
    max0 = maxrss_kib()
    t0 = time.perf_counter()
    timed = None
    try:
        seq = load_sequence(root / seq_name)
        seq.name = seq_name
        rec["n_frames"] = len(seq)
        timed = TimedTracker(make_tracker(tracker_name, checkpoint=checkpoint, seed=seed))
        res = run_sequence(timed, seq)
        rec["complete"] = True
        m = sequence_metrics(res["boxes"], seq.groundtruth)
        rec["auc"] = m["auc"]
        rec["precision"] = m["precision"]
    except Exception as e:  # noqa: BLE001 - the point of a soak is to keep going
        rec["error"] = _message(e)
        rec["traceback"] = traceback.format_exc(limit=-8)
    rec["wall_s"] = time.perf_counter() - t0
    if timed is not None:
        rec["frames_tracked"] = timed.frames
        rec["init_time_s"] = timed.init_time
        rec["update_time_s"] = timed.update_time
        rec["fps"] = (timed.frames - 1) / timed.update_time if timed.frames > 1 and timed.update_time > 0 else None
    rss1 = rss_kib()
    peak = _status_kib("VmHWM") if hwm else None
    rec["rss_before_kib"], rec["rss_after_kib"] = rss0, rss1
    if peak is not None and rss0 is not None:
        rec["peak_rss_kib"], rec["peak_rss_delta_kib"], rec["peak_method"] = peak, peak - rss0, "VmHWM"
    else:  # ru_maxrss only grows: its growth during the run (0 when the run stayed below an earlier peak)
        rec["peak_rss_kib"], rec["peak_rss_delta_kib"], rec["peak_method"] = maxrss_kib(), maxrss_kib() - max0, "ru_maxrss"
    return rec


# ------------------------------------------------------------------------------------------ summary
def summarize(records: list[dict], trackers: list[str], lengths: dict[str, int | None]) -> dict[str, dict]:
    known = {s: n for s, n in lengths.items() if n is not None}
    longest = max(known, key=known.get) if known else None
    out = {}
    for t in trackers:
        rs = [r for r in records if r["tracker"] == t]
        upd_frames = sum(max(r["frames_tracked"] - 1, 0) for r in rs if r.get("update_time_s"))
        upd_time = sum(r.get("update_time_s") or 0.0 for r in rs)
        aucs = [r["auc"] for r in rs if r.get("auc") is not None]
        lr = next((r for r in rs if r["sequence"] == longest), None)
        out[t] = {
            "sequences": len(rs),
            "completed": sum(r["complete"] for r in rs),
            "frames_tracked": sum(r["frames_tracked"] for r in rs),
            "frames_total": sum(r["n_frames"] or 0 for r in rs),
            "exceptions": sum(r["error"] is not None for r in rs),
            "fps": upd_frames / upd_time if upd_time > 0 else None,
            "mean_auc": float(np.mean(aucs)) if aucs else None,
            "longest_sequence": longest,
            "longest_peak_rss_delta_kib": lr["peak_rss_delta_kib"] if lr else None,
            "max_peak_rss_delta_kib": max((r["peak_rss_delta_kib"] for r in rs), default=None),
        }
    return out


def _mb(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.1f}"


def format_table(summary: dict[str, dict], records: list[dict], peak_kib: int) -> str:
    head = f"{'tracker':<18} {'seqs':>5} {'done':>5} {'frames':>14} {'exc':>4} {'FPS':>7} {'AUC':>6} " \
           f"{'peakΔ longest (MB)':>19} {'peakΔ max (MB)':>15}"
    lines = [head, "-" * len(head)]
    for t, s in summary.items():
        fps = "n/a" if s["fps"] is None else f"{s['fps']:.1f}"
        auc = "n/a" if s["mean_auc"] is None else f"{s['mean_auc']:.3f}"
        lines.append(f"{t:<18} {s['sequences']:>5} {s['completed']:>5} "
                     f"{str(s['frames_tracked']) + '/' + str(s['frames_total']):>14} {s['exceptions']:>4} "
                     f"{fps:>7} {auc:>6} {_mb(s['longest_peak_rss_delta_kib']):>19} {_mb(s['max_peak_rss_delta_kib']):>15}")
    longest = next(iter(summary.values()), {}).get("longest_sequence")
    lines.append(f"longest sequence: {longest}; process peak RSS (ru_maxrss): {_mb(peak_kib)} MB")
    errs = [r for r in records if r["error"] is not None]
    if errs:
        lines.append(f"{len(errs)} exception(s):")
        lines += [f"  {r['tracker']} / {r['sequence']} after {r['frames_tracked']}/{r['n_frames'] if r['n_frames'] is not None else '?'} frames: {r['error']}"
                  for r in errs]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="soak.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=None, help="data root (default: $METARTT_DATA, else ../shared/data)")
    p.add_argument("--trackers", default=DEFAULT_TRACKERS, help=f"comma-separated (default {DEFAULT_TRACKERS})")
    p.add_argument("--sequences", default=None, help="comma-separated names (default: every sequence)")
    p.add_argument("--checkpoint", default=None, help="weights for the trackers (default: the packaged ones)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--out", default="soak.json", help="results JSON (default ./soak.json), written atomically")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-pair progress lines")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from metartt_lite.data.sequences import data_root, list_sequences
    from metartt_lite.evaluation.ope import device_description
    from metartt_lite.track.registry import list_trackers
    from metartt_lite.core.utils import MetaRTTError, atomic_write_json, git_commit

    try:
        root = data_root(args.data)
        names = list_sequences(root, names=args.sequences)
        trackers = [t.strip() for t in args.trackers.split(",") if t.strip()]
        unknown = [t for t in trackers if t not in list_trackers()]
        if not trackers or unknown:
            raise MetaRTTError(f"unknown tracker(s) {', '.join(unknown) or '(none given)'}; "
                               f"known: {', '.join(list_trackers())}")
        out = Path(args.out)
        if out.is_dir():
            raise MetaRTTError(f"--out {out} is a folder; give a file name")
        if args.checkpoint is not None and not Path(args.checkpoint).is_file():
            raise MetaRTTError(f"checkpoint {args.checkpoint} does not exist")
    except MetaRTTError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
        os.environ["METARTT_THREADS"] = str(args.threads)  # make_tracker applies the package's thread policy

    from metartt_lite.data.sequences import load_sequence
    lengths: dict[str, int | None] = {}
    for n in names:
        try:
            lengths[n] = len(load_sequence(root / n))
        except Exception:  # noqa: BLE001 - reported when its pairs run
            lengths[n] = None
    started = _dt.datetime.now().isoformat(timespec="seconds")
    records: list[dict] = []

    def write(complete: bool) -> dict:
        summary = summarize(records, trackers, lengths)
        doc = {"complete": complete, "created": started, "data": str(root), "trackers": trackers,
               "sequences": names, "sequence_lengths": lengths, "device": device_description(),
               "git_commit": git_commit(), "argv": sys.argv[1:] if argv is None else list(argv),
               "peak_rss_kib": maxrss_kib(), "exceptions": sum(r["error"] is not None for r in records),
               "summary": summary, "runs": records}
        atomic_write_json(out, doc)
        return doc

    t_start = time.perf_counter()
    try:
        for t in trackers:
            for n in names:
                rec = soak_one(t, n, root, args.checkpoint, args.seed)
                records.append(rec)
                if not args.quiet:
                    status = "ok" if rec["error"] is None else f"EXCEPTION {rec['error'][:200]}"
                    fps = "n/a" if rec.get("fps") is None else f"{rec['fps']:.1f}"
                    print(f"[{time.perf_counter() - t_start:7.1f}s] {t} / {n}: {rec['frames_tracked']}/"
                          f"{rec['n_frames'] if rec['n_frames'] is not None else '?'} frames, {fps} FPS, peak RSS +{_mb(rec['peak_rss_delta_kib'])} MB, "
                          f"{status}", flush=True)
                write(complete=False)
    except KeyboardInterrupt:
        write(complete=False)
        print("error: interrupted (partial results in " + str(out) + ")", file=sys.stderr)
        return 130
    doc = write(complete=True)
    print(format_table(doc["summary"], records, doc["peak_rss_kib"]))
    print(f"wrote {out}")
    return 1 if doc["exceptions"] else 0


if __name__ == "__main__":
    sys.exit(main())

"""Our trackers against OpenCV's CSRT, side by side: one process, the same decoded frames, the trackers
interleaved (their order rotated each repeat) so that they share the machine's load. Prints, per frame
group (``val``: every val sequence; ``720p``: the 1280x720 ones), tracker-only FPS, end-to-end FPS
(decode + track; the decode time is measured again in every repeat, interleaved too) and their ratios to
CSRT, as medians over repeats (the ratio is taken within each repeat, then the median).

    python benchmarks/speed_vs_csrt.py --frames 60 --repeats 3 --threads 2
    python benchmarks/speed_vs_csrt.py --upscale   # 720p group: also the small val sequences upscaled to 1280x720

Targets (issue #15): metartt-prune >= 1.3x CSRT, metartt >= 1.0x CSRT, metartt-prune end to end >= 1.0x.
Targets (issue #25): metartt-nano >= 1.5x CSRT and >= 0.5x nanotrack (OpenCV's TrackerNano).
"""
from __future__ import annotations

import argparse
import os
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from metartt_lite.data.sequences import data_root, load_split
from metartt_lite.track.registry import make_tracker, split_spec


def decode(seq, n: int, upscale: bool) -> tuple[list[np.ndarray], np.ndarray, float]:
    """Frames, initial box, decode seconds for the n frames (an upscaled sequence: the time to decode
    the same frames re-encoded as 1280x720 JPEGs, i.e. what a 720p source costs)."""
    t0 = time.perf_counter()
    frames = [seq.frame(i) for i in range(n)]
    dt = time.perf_counter() - t0
    box = np.asarray(seq.groundtruth[0], dtype=np.float64)
    if upscale:
        H0, W0 = frames[0].shape[:2]
        sx, sy = 1280 / W0, 720 / H0
        frames = [cv2.resize(f, (1280, 720), interpolation=cv2.INTER_LINEAR) for f in frames]
        box = box * np.array([sx, sy, sx, sy])
        jpgs = [cv2.imencode(".jpg", f)[1] for f in frames]
        t0 = time.perf_counter()
        for j in jpgs:
            cv2.imdecode(j, cv2.IMREAD_COLOR)
        dt = time.perf_counter() - t0
    return frames, box, dt


def run(name: str, frames: list[np.ndarray], box: np.ndarray) -> tuple[float, float]:
    """Wall and process CPU seconds for the updates (frames 1..n-1), init excluded."""
    name, ckpt = split_spec(name)
    t = make_tracker(name, checkpoint=ckpt, seed=0)
    t.init(frames[0], box.copy())
    c0, t0 = time.process_time(), time.perf_counter()
    for f in frames[1:]:
        t.update(f)
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trackers", default="csrt,metartt,metartt-prune,nanotrack,nanotrack-torch,metartt-nano", help="the first is the reference; NAME@CHECKPOINT runs a tracker on other weights")
    ap.add_argument("--split", default="val")
    ap.add_argument("--frames", type=int, default=60, help="frames per sequence (0 = all)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch and OpenCV threads (a 2-core user: 2)")
    ap.add_argument("--upscale", action="store_true", help="720p group: add the val sequences upscaled to 1280x720")
    ap.add_argument("--sequences", default="", help="comma-separated subset of the split")
    ap.add_argument("--json", default="", help="write the medians here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["METARTT_THREADS"] = str(args.threads)  # make_tracker applies the package's thread policy
    cv2.setNumThreads(args.threads)
    names = args.trackers.split(",")
    seqs = load_split(data_root(), args.split, args.sequences or None)
    groups: dict[str, list] = {"val": [], "720p": []}
    for s in seqs:
        n = len(s) if args.frames <= 0 else min(args.frames, len(s))
        fr, box, dt = decode(s, n, upscale=False)
        item = (s, n, False, fr, box)
        groups["val"].append(item)
        if fr[0].shape[:2] == (720, 1280):
            groups["720p"].append(item)
        elif args.upscale:
            groups["720p"].append((s, n, True, *decode(s, n, upscale=True)[:2]))
    load0 = open("/proc/loadavg").read().split()[:3]
    print(f"torch threads {torch.get_num_threads()}, OpenCV threads {cv2.getNumThreads()}; load average {load0}")
    summary = {}
    for g, items in groups.items():
        if not items:
            continue
        nfr = sum(n - 1 for _, n, _, _, _ in items)
        per_rep = {k: [] for k in names}
        cpu_rep = {k: [] for k in names}
        dec_rep = []
        for r in range(args.repeats):
            order = names[r % len(names):] + names[:r % len(names)]
            t = {k: 0.0 for k in names}
            c = {k: 0.0 for k in names}
            dec = 0.0
            for s, n, up, fr, box in items:
                dec += decode(s, n, up)[2] * (n - 1) / n  # the n-1 update frames' share, re-measured
                for k in order:
                    w, cp = run(k, fr, box)
                    t[k] += w
                    c[k] += cp
            dec_rep.append(dec)
            for k in names:
                per_rep[k].append(t[k])
                cpu_rep[k].append(c[k])
        ref = names[0]
        print(f"\n[{g}] {len(items)} sequences, {nfr} update frames, {args.repeats} repeats "
              f"(sizes {sorted({f'{f[0].shape[1]}x{f[0].shape[0]}' for _, _, _, f, _ in items})}); "
              f"decode {1000 * np.median(dec_rep) / nfr:.1f} ms/frame")
        print(f"{'tracker':15s}{'fps':>8s}{'x ' + ref:>10s}{'fps_e2e':>9s}{'x ' + ref + ' e2e':>14s}"
              f"{'fps_cpu':>9s}{'x ' + ref + ' cpu':>14s}")
        summary[g] = {}
        for k in names:
            fps = [nfr / t for t in per_rep[k]]
            e2e = [nfr / (t + d) for t, d in zip(per_rep[k], dec_rep)]
            ratio = [a / b for a, b in zip(per_rep[ref], per_rep[k])]
            ratio_e2e = [(a + d) / (b + d) for a, b, d in zip(per_rep[ref], per_rep[k], dec_rep)]
            row = {"fps": float(np.median(fps)), "ratio": float(np.median(ratio)), "fps_e2e": float(np.median(e2e)),
                   "ratio_e2e": float(np.median(ratio_e2e)), "ratio_all": ratio,
                   # frames per CPU second (1 thread: the compute cost, which the load disturbs least)
                   "fps_cpu": float(np.median([nfr / c for c in cpu_rep[k]])),
                   "ratio_cpu": float(np.median([a / b for a, b in zip(cpu_rep[ref], cpu_rep[k])]))}
            summary[g][k] = row
            print(f"{k:15s}{row['fps']:8.1f}{row['ratio']:10.2f}{row['fps_e2e']:9.1f}{row['ratio_e2e']:14.2f}"
                  f"{row['fps_cpu']:9.1f}{row['ratio_cpu']:14.2f}")
    print(f"\nload average at the end {open('/proc/loadavg').read().split()[:3]}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "load_start": load0, "groups": summary}, indent=1))


if __name__ == "__main__":
    main()

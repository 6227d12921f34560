"""Per-frame time split of our trackers, per frame size: decode, crop, trunk, head scoring (of which
RoIAlign), bbox regression, sample collection, online updates, the rest ("other": colour check, box
maths), the tracker total and the end-to-end total (decode + track). ms per frame, medians of repeats;
trackers run interleaved within each repeat (same process, same decoded frames), so they share the
machine's load. Also the process CPU time per frame (``cpu``), which a loaded machine disturbs less.

    python benchmarks/profile_tracker.py                       # small: Crossing + Boy; large: person12_1 (1280x720)
    python benchmarks/profile_tracker.py --small Crossing --large "" --trackers metartt --frames 60
    python benchmarks/profile_tracker.py --large Crossing --upscale 1280x720   # a small sequence upscaled

``--cprofile FILE`` also writes a cProfile of the last tracker's last repeat.
"""
from __future__ import annotations

import argparse
import os
import cProfile
import time

import cv2
import numpy as np
import torch

from metartt_lite.data.sequences import data_root, load_sequence
from metartt_lite.track import rtmdnet as tracker_module
from metartt_lite.track.registry import make_tracker, split_spec

STAGES = ("crop", "trunk", "scoring", "roi", "bbreg", "collect", "update")


def decode(seq_name: str, frames: int, upscale: tuple[int, int] | None) -> tuple[list[np.ndarray], np.ndarray, float]:
    """The first ``frames`` frames (RGB uint8), the initial box and the decode time per frame (s; the
    upscale, when asked, is not counted: a user's 1280x720 video decodes at 1280x720)."""
    seq = load_sequence(str(data_root() / seq_name) if "/" not in seq_name else seq_name)
    n = len(seq) if frames <= 0 else min(frames, len(seq))
    t0 = time.perf_counter()
    out = [seq.frame(i) for i in range(n)]
    dt = (time.perf_counter() - t0) / n
    box = np.asarray(seq.groundtruth[0], dtype=np.float64)
    if upscale is not None:
        W, H = upscale
        sx, sy = W / out[0].shape[1], H / out[0].shape[0]
        out = [cv2.resize(f, (W, H), interpolation=cv2.INTER_LINEAR) for f in out]
        box = box * np.array([sx, sy, sx, sy])
        # decoding a W x H JPEG: time one re-encoded frame
        ok, jpg = cv2.imencode(".jpg", out[0])
        t0 = time.perf_counter()
        for _ in range(10):
            cv2.imdecode(jpg, cv2.IMREAD_COLOR)
        dt = (time.perf_counter() - t0) / 10
    return out, box, dt


def run_once(name: str, seed: int, frames: list[np.ndarray], box: np.ndarray, profiler=None) -> dict[str, float]:
    name, ckpt = split_spec(name)
    t = make_tracker(name, checkpoint=ckpt, seed=seed)
    t.init(frames[0], box.copy())
    t.times.__init__()
    n = len(frames) - 1
    if profiler is not None:
        profiler.enable()
    c0, t0 = time.process_time(), time.perf_counter()
    for f in frames[1:]:
        t.update(f)
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    if profiler is not None:
        profiler.disable()
    row = {k: 1000 * getattr(t.times, k, 0.0) / n for k in STAGES}
    ref = cpu if tracker_module.clock is time.process_time else total  # 'other' on the stages' clock
    row["other"] = 1000 * ref / n - sum(v for k, v in row.items() if k != "roi")
    row["track"] = 1000 * total / n
    row["cpu"] = 1000 * cpu / n
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", default="Crossing,Boy", help="comma-separated sequences with small frames")
    ap.add_argument("--large", default="UAV123_10fps_person12_1", help="sequences with 1280x720 frames ('' = none)")
    ap.add_argument("--upscale", default="", help="WxH: resize the --large frames to this size (e.g. 1280x720)")
    ap.add_argument("--trackers", default="metartt,metartt-prune", help="comma-separated; NAME@CHECKPOINT runs a tracker on other weights")
    ap.add_argument("--frames", type=int, default=80, help="frames per sequence (0 = all)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                    help="stage times in process CPU time (default; steadier on a loaded machine) or wall time")
    ap.add_argument("--cprofile", default="", help="write a cProfile of the last run to this file")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["METARTT_THREADS"] = str(args.threads)  # make_tracker applies the package's thread policy
    tracker_module.clock = time.process_time if args.clock == "cpu" else time.perf_counter
    up = tuple(int(v) for v in args.upscale.split("x")) if args.upscale else None
    groups = {"small": [(s, None) for s in args.small.split(",") if s],
              "large": [(s, up) for s in args.large.split(",") if s]}
    trackers = args.trackers.split(",")
    print(f"stage clock: {args.clock}; 'track' and 'e2e' are wall time, 'cpu' the process CPU time per frame")
    print(f"torch threads {torch.get_num_threads()}; load average {open('/proc/loadavg').read().split()[:3]}")
    prof = cProfile.Profile() if args.cprofile else None
    for group, seqs in groups.items():
        if not seqs:
            continue
        data = [decode(s, args.frames, u) for s, u in seqs]
        sizes = sorted({f"{d[0][0].shape[1]}x{d[0][0].shape[0]}" for d in data})
        dec = 1000 * float(np.mean([d[2] for d in data]))
        rows: dict[str, list] = {n: [] for n in trackers}
        for r in range(args.repeats):
            for name in trackers:  # interleaved: every tracker once per repeat
                per_seq = [run_once(name, r, fr, box, prof if (r == args.repeats - 1 and name == trackers[-1]) else None)
                           for fr, box, _ in data]
                rows[name].append({k: float(np.mean([p[k] for p in per_seq])) for k in per_seq[0]})
        print(f"\n[{group}] {', '.join(s for s, _ in seqs)} ({', '.join(sizes)}), {args.frames or 'all'} frames each, "
              f"{args.repeats} repeats; decode {dec:.1f} ms/frame")
        cols = [*STAGES, "other", "track", "cpu"]
        print(f"{'tracker':15s}" + "".join(f"{c:>9s}" for c in cols) + f"{'e2e':>9s}{'fps':>8s}{'fps_e2e':>9s}")
        for name in trackers:
            med = {k: float(np.median([row[k] for row in rows[name]])) for k in cols}
            e2e = med["track"] + dec
            print(f"{name:15s}" + "".join(f"{med[c]:9.1f}" for c in cols)
                  + f"{e2e:9.1f}{1000 / med['track']:8.1f}{1000 / e2e:9.1f}")
    if prof is not None:
        prof.dump_stats(args.cprofile)
        print(f"\ncProfile of the last run: {args.cprofile}")


if __name__ == "__main__":
    main()

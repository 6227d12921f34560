"""Per-frame time split of our trackers on one sequence: decode, crop, trunk, head scoring, bbox
regression, sample collection, online updates (ms per frame, medians of repeats).

    python benchmarks/profile_tracker.py --seq ../shared/data/Crossing --trackers rtmdnet,metartt,metartt-prune
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from metartt_lite.data.sequences import load_sequence
from metartt_lite.track.registry import make_tracker


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seq", required=True)
    ap.add_argument("--trackers", default="rtmdnet,rtmdnet-k5,metartt,metartt-prune")
    ap.add_argument("--frames", type=int, default=0, help="limit (0 = all)")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    seq = load_sequence(args.seq)
    n = len(seq) if args.frames <= 0 else min(args.frames, len(seq))
    t0 = time.perf_counter()
    frames = [seq.frame(i) for i in range(n)]
    decode = (time.perf_counter() - t0) / n
    print(f"{seq.name}: {n} frames, decode {1000 * decode:.1f} ms/frame")
    for name in args.trackers.split(","):
        rows = []
        for r in range(args.repeats):
            t = make_tracker(name, seed=r)
            t0 = time.perf_counter()
            t.init(frames[0], seq.init_box)
            init = time.perf_counter() - t0
            t.times.__init__()
            t0 = time.perf_counter()
            for f in frames[1:]:
                t.update(f)
            total = time.perf_counter() - t0
            rows.append({"init_s": init, "fps": (n - 1) / total, "total_ms": 1000 * total / (n - 1),
                         **{k + "_ms": 1000 * v / (n - 1) for k, v in vars(t.times).items()}})
        med = {k: float(np.median([r[k] for r in rows])) for k in rows[0]}
        print(f"{name:16s} " + " ".join(f"{k}={v:.1f}" for k, v in med.items()))


if __name__ == "__main__":
    main()

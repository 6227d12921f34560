"""How often each tracker calls a frame a success (its score > ``TrackConfig.success_thr``: RT-MDNet's
target logit > 0), per sequence. A failed frame widens the search and skips sample collection and box
regression, so this rate says which procedure a tracker actually runs.

    python benchmarks/success_rate.py --trackers metartt,metartt-prune --frames 60
"""
from __future__ import annotations

import argparse

import numpy as np

from metartt_lite.data.sequences import data_root, load_split
from metartt_lite.track.registry import make_tracker, split_spec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trackers", default="metartt,metartt-prune", help="comma-separated; NAME@CHECKPOINT allowed")
    ap.add_argument("--split", default="val")
    ap.add_argument("--frames", type=int, default=60, help="frames per sequence (0 = all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sequences", default="", help="comma-separated subset of the split")
    args = ap.parse_args()
    seqs = load_split(data_root(), args.split, args.sequences or None)
    names = args.trackers.split(",")
    print(f"fraction of frames with score > success_thr, first {args.frames or 'all'} frames, seed {args.seed}")
    print(f"{'sequence':30s}" + "".join(f"{n:>16s}" for n in names))
    rates = {n: [] for n in names}
    for seq in seqs:
        n_fr = len(seq) if args.frames <= 0 else min(args.frames, len(seq))
        row = []
        for spec in names:
            name, ckpt = split_spec(spec)
            t = make_tracker(name, checkpoint=ckpt, seed=args.seed)
            t.init(seq.frame(0), np.asarray(seq.groundtruth[0], dtype=np.float64))
            thr = t.cfg.success_thr
            ok = [t.update(seq.frame(i))[1] > thr for i in range(1, n_fr)]
            rates[spec].append(float(np.mean(ok)))
            row.append(rates[spec][-1])
        print(f"{seq.name:30s}" + "".join(f"{r:16.2f}" for r in row))
    print(f"{'mean':30s}" + "".join(f"{np.mean(rates[n]):16.2f}" for n in names))


if __name__ == "__main__":
    main()

"""Our PyTorch NanoTrack (``nanotrack-torch``) against OpenCV's ``cv2.TrackerNano`` (``nanotrack``), box for box.

Both start from the same integer box on every sequence of a split; per sequence it prints the mean and the
minimum IoU between our box (truncated to integers, as OpenCV returns ``int(x)``) and OpenCV's, the first frame
where they part (IoU < 0.99), and each tracker's FPS in this process (1 thread).

    python benchmarks/nanotrack_oracle.py --split val --json docs/results/nanotrack/oracle_val.json
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from metartt_lite.core.boxes import iou
from metartt_lite.core.utils import atomic_write_json
from metartt_lite.data.sequences import load_split
from metartt_lite.track.nanotrack import NanoTracker
from metartt_lite.track.peers import _round_box, make_peer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--split", default="val")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = {}
    for seq in load_split(args.data, args.split):
        frames = list(seq.frames())
        H, W = frames[0].shape[:2]
        b0 = np.array(_round_box(seq.groundtruth[0], (W, H)), float)
        ref, ours = make_peer("nanotrack"), NanoTracker()
        ref.init(frames[0], b0)
        ours.init(frames[0], b0)
        t_ref = t_ours = 0.0
        ious = []
        for f in frames[1:]:
            a = time.perf_counter()
            br, _ = ref.update(f)
            b = time.perf_counter()
            bo, _ = ours.update(f)
            t_ref, t_ours = t_ref + b - a, t_ours + time.perf_counter() - b
            ious.append(float(iou(np.trunc(bo), br)))
        ious = np.array(ious)
        part = int(np.argmax(ious < 0.99)) + 1 if (ious < 0.99).any() else None
        rows[seq.name] = {"frames": len(frames), "mean_iou": float(ious.mean()), "min_iou": float(ious.min()),
                          "first_parting_frame": part, "fps_opencv": (len(frames) - 1) / t_ref,
                          "fps_ours": (len(frames) - 1) / t_ours}
        r = rows[seq.name]
        print(f"{seq.name:26s} {len(frames):4d} frames  mean IoU {r['mean_iou']:.4f}  min {r['min_iou']:.3f}  "
              f"parts at {part}  FPS opencv {r['fps_opencv']:.0f} ours {r['fps_ours']:.0f}", flush=True)
    m = [r["mean_iou"] for r in rows.values()]
    print(f"sequences with mean IoU >= 0.99: {sum(v >= 0.99 for v in m)}/{len(m)}; lowest {min(m):.4f}")
    if args.json:
        atomic_write_json(args.json, {"split": args.split, "sequences": rows})


if __name__ == "__main__":
    main()

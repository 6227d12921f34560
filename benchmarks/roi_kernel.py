"""RoI features of the tracker's candidates, side by side in one process: ``TrackerNet.roi_features`` on
torchvision's ``roi_align`` + 2x2 max-pool (``METARTT_ROI_KERNEL=0``, the differentiable path) against the
compiled kernel (``model/roi_kernel.py``, the tracker's path). Boxes drawn like the tracker's candidates (Gaussian around a 64 px target in the 256 px
crop); per channel count (128: metartt; ~60-110: metartt-prune's pruned maps) the median ms of
``--repeats`` calls, the ratio, and whether the outputs are bit-identical.

    python benchmarks/roi_kernel.py --threads 2
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from metartt_lite.core.config import ModelConfig
from metartt_lite.course.toy import StubTrunk
from metartt_lite.model.net import TrackerNet


def _roi_features(net: TrackerNet, fmap: torch.Tensor, boxes: np.ndarray, kernel: bool) -> torch.Tensor:
    os.environ["METARTT_ROI_KERNEL"] = "1" if kernel else "0"
    return net.roi_features(fmap, boxes)


def _median_ms(fn, repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts) * 1e3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--boxes", type=int, default=256, help="boxes per call (the tracker scores 256 candidates)")
    ap.add_argument("--channels", default="64,98,128", help="comma-separated channel counts")
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the kernel itself runs on one)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    n = args.boxes
    side = 64 * 1.05 ** rng.standard_normal(n)
    cx, cy = 128 + rng.normal(0, 0.6 * 64 / 2, (2, n))
    boxes = np.stack([cx - side / 2, cy - side / 2, side, side], 1)  # xywh in crop px
    print(f"{n} boxes, 16x16 map, RoIAlign 6x6 -> 2x2 max -> 3x3; torch threads {args.threads}; "
          f"median of {args.repeats} calls")
    print(f"{'channels':>8s} {'torchvision ms':>15s} {'kernel ms':>10s} {'ratio':>7s}  identical")
    with torch.inference_mode():
        for c in (int(s) for s in args.channels.split(",")):
            net = TrackerNet(ModelConfig(shared_channels=c), trunk=StubTrunk())  # stride 16, as the trunk
            fmap = torch.relu(torch.randn(1, c, 16, 16, generator=torch.Generator().manual_seed(c)))
            a, b = (_roi_features(net, fmap, boxes, k) for k in (False, True))  # the kernel also compiles
            t_tv = _median_ms(lambda: _roi_features(net, fmap, boxes, False), args.repeats)
            t_k = _median_ms(lambda: _roi_features(net, fmap, boxes, True), args.repeats)
            print(f"{c:8d} {t_tv:15.2f} {t_k:10.2f} {t_tv / t_k:6.2f}x  {torch.equal(a, b)}")


if __name__ == "__main__":
    main()

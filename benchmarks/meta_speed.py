"""Meta-training speed with and without the trunk-feature cache, measured side by side in one run.

Without the cache every episode must decode and run the trunk on its 6 frames + the hard-example
frames; with it, episodes read float16 features. Prints medians over repeats and their ratio.

    python benchmarks/meta_speed.py [--data DIR] [--episodes 10]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from metartt_lite.data.sequences import data_root, load_split
from metartt_lite.train.features import cache_sequence
from metartt_lite.train.meta import MetaConfig, MetaLearner, episode_loss, make_episode
from metartt_lite.model.net import crop_image, to_tensor
from metartt_lite.model.net import build_net


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=None)
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--first-order", action="store_true")
    args = ap.parse_args()
    seqs = load_split(data_root(args.data), split="train")
    cfg = MetaConfig(first_order=args.first_order)
    net = build_net()
    feats = [cache_sequence(s, net.trunk, net.cfg, cfg.cache) for s in seqs]
    learner = MetaLearner(net, cfg)
    dev = torch.device("cpu")
    cached, uncached = [], []
    for i in range(args.episodes):
        ep = make_episode(feats, cfg, i)
        # the work the cache saves: decode + crop + trunk for every frame the episode touches
        t0 = time.perf_counter()
        for j, f in [(ep.seq, f) for f in ep.frames] + [(j, f) for j, f, _ in ep.hard]:
            sf = feats[j]
            frame = seqs[j].frame(int(sf.frame_index[f]))
            with torch.no_grad():
                net.trunk(to_tensor(crop_image(frame, sf.crop(f, net.cfg.crop_size)), dev))
        t_trunk = time.perf_counter() - t0
        t0 = time.perf_counter()
        loss, _ = episode_loss(learner, feats, ep, dev)
        loss.backward()
        learner.zero_grad(set_to_none=True)
        t_ep = time.perf_counter() - t0
        cached.append(t_ep)
        uncached.append(t_ep + t_trunk)
    c, u = float(np.median(cached)), float(np.median(uncached))
    print(f"torch threads {torch.get_num_threads()}, {'first' if args.first_order else 'second'}-order, {args.episodes} episodes")
    print(f"episodes/s with cache {1 / c:.2f}, without cache {1 / u:.2f}, ratio {u / c:.2f}x")


if __name__ == "__main__":
    main()

"""Offline pretraining of the baseline by RT-MDNet's multi-domain learning (Jung et al. 2018, §3.3).

The shared conv and fc4–fc5 are shared by all training sequences; each sequence (domain) has its own
2-way fc6 branch. Loss = cross-entropy of the domain's branch + ``instance_weight`` × the instance
embedding loss (a softmax over the positive scores of *all* branches for the domain's positives, so a
target scores high only in its own branch). The trunk is frozen and read from the feature cache.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..core import boxes as bx
from ..core.checkpoint import WEIGHTS_DIR, save_checkpoint
from ..core.config import SAMPLING, ModelConfig
from .features import CacheConfig, SequenceFeatures, cache_sequence
from ..data.sequences import data_root, load_split
from ..model.net import TRUNK_STRIDE, TrackerNet, build_net
from ..core.utils import (MetaRTTError, atomic_write_json, check_output_dir, device as default_device, git_commit, git_dirty,
                    seed_everything)


@dataclass
class PretrainConfig:
    iterations: int = 1500
    frames_per_batch: int = 8
    batch_pos: int = 32
    batch_neg: int = 96
    lr: float = 1e-3
    weight_decay: float = 5e-4
    instance_weight: float = 0.1
    pos_iou: float = 0.7
    neg_iou: float = 0.5
    seed: int = 0
    cache: CacheConfig = field(default_factory=CacheConfig)


def sample_rois(sf: SequenceFeatures, i: int, n_pos: int, n_neg: int, crop_size: int,
                rng: np.random.Generator, pos_iou: float = 0.7, neg_iou: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative boxes (in crop px) around frame ``i``'s ground truth."""
    W, H = (int(v) for v in sf.frame_sizes[i])
    gt = sf.gt[i]
    pos = bx.sample_by_iou(bx.sampler(SAMPLING.pos, (W, H)), gt, n_pos, (pos_iou, 1.0), rng)
    neg = bx.sample_by_iou(bx.sampler(SAMPLING.neg, (W, H)), gt, n_neg, (0.0, neg_iou), rng)
    crop = sf.crop(i, crop_size)
    return crop.to_crop(pos), crop.to_crop(neg)


def batch_features(net: TrackerNet, sf: SequenceFeatures, frames: np.ndarray, n_pos: int, n_neg: int,
                   rng: np.random.Generator, dev: torch.device, pos_iou: float = 0.7,
                   neg_iou: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """RoI features (through the *trainable* shared conv) of positives and negatives from ``frames``."""
    fmap = net.shared_forward(sf.trunk[frames].to(dev).float())
    pos_b, neg_b, pos_i, neg_i = [], [], [], []
    per_p, per_n = -(-n_pos // len(frames)), -(-n_neg // len(frames))
    for j, i in enumerate(frames):
        p, n = sample_rois(sf, int(i), per_p, per_n, net.cfg.crop_size, rng, pos_iou, neg_iou)
        pos_b.append(p); neg_b.append(n)
        pos_i += [j] * len(p); neg_i += [j] * len(n)
    pos = net.roi_features(fmap, np.concatenate(pos_b), torch.tensor(pos_i))[:n_pos]
    neg = net.roi_features(fmap, np.concatenate(neg_b), torch.tensor(neg_i))[:n_neg]
    return pos, neg


def pretrain(sequences: list, out: Path, cfg: PretrainConfig | None = None, model_cfg: ModelConfig | None = None,
             dev: torch.device | None = None, command: str = "") -> Path:
    """Multi-domain training of the shared conv + fc4–fc5; writes ``out/pretrain.pt`` + provenance JSON."""
    cfg = cfg or PretrainConfig()
    model_cfg = model_cfg or ModelConfig()
    dev = dev or default_device()
    out = check_output_dir(out)
    if cfg.iterations < 1:
        raise MetaRTTError(f"--iterations must be at least 1 (got {cfg.iterations})")
    if len(sequences) < 2:
        raise MetaRTTError("multi-domain pretraining needs at least 2 training sequences")
    rng = seed_everything(cfg.seed)
    net = build_net(model_cfg, dev, seed=cfg.seed)
    t0 = time.time()
    feats = [cache_sequence(s, net.trunk, model_cfg, cfg.cache, dev=dev) for s in tqdm(sequences, desc="feature cache")]
    t_cache = time.time() - t0
    D = len(feats)
    torch.manual_seed(cfg.seed)
    branches = torch.nn.Linear(model_cfg.fc_width, 2 * D).to(dev)  # fc6 of every domain, [neg_d, pos_d] pairs
    params = list(net.shared.parameters()) + list(net.head.fc4.parameters()) + list(net.head.fc5.parameters()) + list(branches.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    net.head.train()
    bar = tqdm(range(cfg.iterations), desc="pretrain")
    losses = []
    for it in bar:
        d = it % D if it >= D else int(rng.integers(D))
        sf = feats[d]
        frames = rng.choice(len(sf), min(cfg.frames_per_batch, len(sf)), replace=False)
        pos, neg = batch_features(net, sf, frames, cfg.batch_pos, cfg.batch_neg, rng, dev, cfg.pos_iou, cfg.neg_iou)
        h = net.head_forward(torch.cat([pos, neg]), out_layer="fc5")
        h = F.dropout(h, model_cfg.dropout, True)
        logits = branches(h).view(len(h), D, 2)
        own = logits[:, d]
        labels = torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))]).long().to(dev)
        loss_cls = F.cross_entropy(own, labels)
        loss_inst = F.cross_entropy(logits[: len(pos), :, 1], torch.full((len(pos),), d, device=dev))
        loss = loss_cls + cfg.instance_weight * loss_inst
        if not torch.isfinite(loss):
            raise FloatingPointError(f"pretraining loss became {loss.item()} at iteration {it}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        opt.step()
        losses.append(loss.item())
        if it % 50 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
    out = Path(out)
    tensors = {f"shared.{k}": v for k, v in net.shared.state_dict().items()}
    tensors.update({f"head.{k}": v for k, v in net.head.state_dict().items()})
    prov = {"command": command, "commit": git_commit(), "dirty": git_dirty(), "selection": "last iteration",
            "data": [s.name for s in sequences],
            "frames": int(sum(len(f) for f in feats)), "iterations": cfg.iterations,
            "wall_time_s": round(time.time() - t0, 1), "cache_time_s": round(t_cache, 1), "device": str(dev),
            "final_loss": float(np.mean(losses[-100:])), "config": asdict(cfg), "model_config": model_cfg.to_dict()}
    path = save_checkpoint(out / "pretrain.pt", "pretrain", model_cfg, tensors, extra=prov)
    atomic_write_json(out / "pretrain.json", prov)
    return path


def add_parser(sub) -> None:
    p = sub.add_parser("pretrain", help="multi-domain pretraining of the baseline (RT-MDNet) on the train split")
    p.add_argument("--data", default=None, help="data root (default: $METARTT_DATA or ../shared/data)")
    p.add_argument("--split", default="train")
    p.add_argument("--sequences", default=None, help="comma-separated names (default: the whole split)")
    p.add_argument("--out", default=str(WEIGHTS_DIR))
    p.add_argument("--iterations", type=int, default=PretrainConfig.iterations)
    p.add_argument("--frame-step", type=int, default=CacheConfig.frame_step)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--trunk-blocks", type=int, default=ModelConfig.trunk_blocks,
                   help="EfficientNet-Lite0 stages kept in the frozen trunk (5: stride 16, 112 channels; "
                        "4: stride 16, 80 channels, about half the trunk's cost)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import sys
    root = data_root(args.data)
    seqs = load_split(root, split=args.split, names=args.sequences)
    cfg = PretrainConfig(iterations=args.iterations, seed=args.seed, cache=CacheConfig(frame_step=args.frame_step))
    if args.trunk_blocks not in TRUNK_STRIDE:
        raise MetaRTTError(f"--trunk-blocks must be one of {sorted(TRUNK_STRIDE)} (EfficientNet-Lite0 stages), "
                           f"got {args.trunk_blocks}")
    path = pretrain(seqs, Path(args.out), cfg, ModelConfig(trunk_blocks=args.trunk_blocks),
                    command="python -m metartt_lite " + " ".join(sys.argv[1:]))
    print(f"wrote {path}")
    return 0

"""Named trackers: ours (``rtmdnet``, ``rtmdnet-k5``, ``rtmdnet-k5-tuned``, ``metartt``, ...) and OpenCV's
peers, all behind one ``make_tracker(name)`` so the evaluation harness treats them alike."""
from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Callable

import torch

from .checkpoint import WEIGHTS_DIR, check_tensors, load_checkpoint
from .config import ModelConfig, OptimConfig, TrackConfig
from .model import TrackerNet, Trunk
from .tracker import RTMDNetTracker
from .utils import MetaRTTError, device as default_device

PRETRAINED = WEIGHTS_DIR / "pretrain.pt"


@lru_cache(maxsize=4)
def shared_trunk(n_blocks: int, dev: str) -> Trunk:
    """One frozen trunk per process and device (loading the weights takes ~0.3 s)."""
    return Trunk(n_blocks).to(dev)


def build_net(cfg: ModelConfig | None = None, dev: torch.device | None = None, seed: int | None = None) -> TrackerNet:
    """A TrackerNet on the shared trunk; with ``seed`` its fresh layers (shared conv, fc4–fc6) are drawn
    from a private RNG seeded with it (the global torch RNG is left untouched), so θ0 is reproducible."""
    cfg = cfg or ModelConfig()
    dev = dev or default_device()
    trunk = shared_trunk(cfg.trunk_blocks, str(dev))  # cached: building it consumes RNG only once
    if seed is None:
        return TrackerNet(cfg, trunk=trunk).to(dev)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = TrackerNet(cfg, trunk=trunk)
    return net.to(dev)


def load_pretrained_into(net: TrackerNet, path: str | Path) -> dict:
    """Load the shared conv and fc4–fc5 of a ``pretrain`` checkpoint; fc6 stays freshly initialised
    (a new 2-way branch per video, as MDNet)."""
    obj = load_checkpoint(path, kind="pretrain", model_cfg=net.cfg)
    want = {f"shared.{k}": v.shape for k, v in net.shared.state_dict().items()}
    want.update({f"head.{k}": v.shape for k, v in net.head.state_dict().items() if not k.startswith("fc6")})
    check_tensors(obj, want, path)
    t = obj["tensors"]
    with torch.no_grad():
        for k in want:
            net.get_parameter(k).copy_(t[k])
    return obj


RTMDNET = TrackConfig()                                   # K_init 50, K_on 15, SGD 1e-4 / 3e-4
RTMDNET_K5 = replace(TrackConfig(), k_init=5, k_on=5)
RTMDNET_K5_TUNED = replace(TrackConfig(), k_init=5, k_on=5,
                           optim=OptimConfig(kind="adam", lr_init=1e-3, lr_update=1e-3, fc6_lr_mult=1.0, weight_decay=0.0))

OURS: dict[str, TrackConfig] = {"rtmdnet": RTMDNET, "rtmdnet-k5": RTMDNET_K5, "rtmdnet-k5-tuned": RTMDNET_K5_TUNED}


def tracker_names() -> list[str]:
    from .peers import PEERS
    return list(OURS) + list(EXTRA) + list(PEERS)


EXTRA: dict[str, Callable] = {}  # presets registered by later modules (metartt, metartt-prune)


def make_tracker(name: str, checkpoint: str | Path | None = None, seed: int = 0,
                 dev: torch.device | None = None, model_cfg: ModelConfig | None = None):
    """A fresh tracker for preset ``name`` (one per video)."""
    from .peers import PEERS, make_peer
    if name in PEERS:
        return make_peer(name)
    if name in EXTRA:
        return EXTRA[name](checkpoint=checkpoint, seed=seed, dev=dev)
    if name not in OURS:
        raise MetaRTTError(f"unknown tracker {name!r}; known: {', '.join(tracker_names())}")
    net = build_net(model_cfg, dev, seed=seed)
    ckpt = Path(checkpoint) if checkpoint else PRETRAINED
    if ckpt.exists():
        load_pretrained_into(net, ckpt)
    elif checkpoint:
        raise MetaRTTError(f"checkpoint {ckpt} does not exist")
    return RTMDNetTracker(net, OURS[name], name=name, seed=seed, dev=dev)


META_CHECKPOINT = WEIGHTS_DIR / "meta.pt"
METARTT = replace(TrackConfig(), k_init=5, k_on=5, optim=OptimConfig(kind="meta"))


def make_metartt(checkpoint: str | Path | None = None, seed: int = 0, dev: torch.device | None = None,
                 cfg: TrackConfig = METARTT, name: str = "metartt") -> RTMDNetTracker:
    """MetaRTT: θ0, A_init, A_on from a meta checkpoint; K_init, K_on as learned (5/5 by default)."""
    from .meta import load_meta
    path = Path(checkpoint) if checkpoint else META_CHECKPOINT
    if not path.exists():
        raise MetaRTTError(f"meta-learned checkpoint {path} not found; train one with "
                           f"'python -m metartt_lite meta-train --out DIR' and pass --checkpoint DIR/meta.pt")
    net = build_net(None, dev)
    r_init, r_on, extra = load_meta(path, net)
    # a Meta-Tracker-style checkpoint (--meta-tracker) has no A_on: online updates then reuse α_init^1
    k_init, k_on = len(r_init), (len(r_on) or cfg.k_on)
    return RTMDNetTracker(net, replace(cfg, k_init=k_init, k_on=k_on), name=name, seed=seed,
                          meta_rates=(r_init, r_on or r_init), dev=dev)


EXTRA["metartt"] = make_metartt
EXTRA["metartt-prune"] = lambda **kw: __import__("metartt_lite.pruning", fromlist=["x"]).make_metartt_prune(**kw)

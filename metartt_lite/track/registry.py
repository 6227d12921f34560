"""Every shipped tracker by name: the one place that lists and builds them.

==========================  ==================================================================
``rtmdnet``                 RT-MDNet schedule (K_init 50, K_on 15, SGD), ``weights/pretrain.pt``
``rtmdnet-k5``              the same with K_init = K_on = 5
``rtmdnet-k5-tuned``        K = 5 with Adam at tuned rates
``metartt``                 θ0, A_init, A_on from ``weights/meta.pt``
``metartt-prune``           metartt + ψ from ``weights/prune.pt``
``metartt-prune-static``    one learned mask for every video, ``weights/prune_static.pt``
``metartt-prune-nometa``    ψ trained on the pretrained (not meta-learned) net, ``weights/prune_nometa.pt``
``nanotrack-torch``         NanoTrack v2 in our PyTorch code (:mod:`metartt_lite.track.nanotrack`)
``metartt-nano``            NanoTrack + online head, meta-learned θ0/A_init/A_on (``weights/nano_meta.pt``)
``metartt-nano-hand``       the same head with hand-set rates (SGD, fc6 ×10) from a random θ0
``csrt``, ``kcf``, ``mil``  OpenCV's trackers (:mod:`metartt_lite.track.peers`)
``nanotrack``               OpenCV's ``TrackerNano`` on the vendored NanoTrack v2 ONNX pair
==========================  ==================================================================

``make_tracker(name, ...)`` returns a fresh tracker (one per video); ``list_trackers()`` the names.
``make_tracker(name, color="bgr")`` takes OpenCV's BGR frames (``cv2.VideoCapture``, ``cv2.imread``)
instead of RGB ones (:class:`BGRFrames`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch

from ..core.checkpoint import (META_CHECKPOINT, NANO_META_CHECKPOINT, PRETRAINED, PRUNE_CHECKPOINT, PRUNE_NOMETA_CHECKPOINT,
                         PRUNE_STATIC_CHECKPOINT, checkpoint_model_config)
from ..core.config import ModelConfig, TrackConfig
from ..data.sequences import as_rgb
from ..train.meta import load_meta
from ..model.net import build_net, load_pretrained_into
from .peers import PEERS, make_peer
from .presets import METARTT, OURS
from .metartt_nano import MetaRTTNano, NanoAdaptConfig
from .nanotrack import NanoTracker
from .pruned import make_metartt_prune
from ..train.nano_meta import load_nano_meta
from .rtmdnet import RTMDNetTracker
from ..core.threads import configure_threads
from ..core.utils import MetaRTTError, parse_device

__all__ = ["TrackerSpec", "TRACKERS", "COLORS", "BGRFrames", "list_trackers", "make_tracker", "split_spec", "make_rtmdnet",
           "make_metartt", "make_metartt_nano", "make_nanotrack_torch"]


def make_rtmdnet(name: str = "rtmdnet", checkpoint: str | Path | None = None, seed: int = 0,
                 dev: torch.device | None = None, model_cfg: ModelConfig | None = None,
                 pretrained: bool = True) -> RTMDNetTracker:
    """An RT-MDNet preset (``OURS[name]``) on the pretrained shared conv + fc4–fc5 of ``checkpoint``
    (default ``weights/pretrain.pt``; missing: an error). ``pretrained=False`` (and no checkpoint) keeps
    the seed-``seed`` random init instead — for tests and the from-scratch ablation only. The network is
    built for the checkpoint's own model config (its trunk cut) unless ``model_cfg`` is given."""
    if name not in OURS:
        raise MetaRTTError(f"{name!r} is not an RT-MDNet preset; known: {', '.join(OURS)}")
    ckpt = None
    if checkpoint is not None or pretrained:
        ckpt = Path(checkpoint) if checkpoint is not None else PRETRAINED
        if not ckpt.exists():
            raise MetaRTTError(f"checkpoint {ckpt} does not exist" if checkpoint is not None else
                               f"the shipped pretrain checkpoint {ckpt} is missing; run 'python -m metartt_lite "
                               f"pretrain' or pass pretrained=False for a randomly initialised head")
    net = build_net(model_cfg or (checkpoint_model_config(ckpt) if ckpt else None), dev, seed=seed)
    if ckpt is not None:
        load_pretrained_into(net, ckpt)
    return RTMDNetTracker(net, OURS[name], name=name, seed=seed, dev=dev)


def make_metartt(checkpoint: str | Path | None = None, seed: int = 0, dev: torch.device | None = None,
                 cfg: TrackConfig = METARTT, name: str = "metartt") -> RTMDNetTracker:
    """MetaRTT: θ0, A_init, A_on from a meta checkpoint; K_init, K_on as learned (5/5 by default)."""
    path = Path(checkpoint) if checkpoint else META_CHECKPOINT
    if not path.exists():
        raise MetaRTTError(f"meta-learned checkpoint {path} not found; train one with "
                           f"'python -m metartt_lite meta-train --out DIR' and pass --checkpoint DIR/meta.pt")
    net = build_net(checkpoint_model_config(path), dev)  # the architecture the checkpoint was trained for
    r_init, r_on, _extra = load_meta(path, net)
    # a Meta-Tracker-style checkpoint (--meta-tracker) has no A_on: online updates then reuse α_init^1
    k_init, k_on = len(r_init), (len(r_on) or cfg.k_on)
    return RTMDNetTracker(net, replace(cfg, k_init=k_init, k_on=k_on), name=name, seed=seed,
                          meta_rates=(r_init, r_on or r_init), dev=dev)


def make_nanotrack_torch(checkpoint: str | Path | None = None, seed: int = 0, dev: torch.device | None = None,
                         **kw: Any) -> NanoTracker:
    """NanoTrack v2 in PyTorch (``checkpoint``: other NanoTrack v2 weights). CPU only: it is a 1.5 MB net."""
    return NanoTracker(weights=checkpoint, **kw)


def make_metartt_nano(checkpoint: str | Path | None = None, seed: int = 0, dev: torch.device | None = None,
                      name: str = "metartt-nano", rates: str = "meta", **kw: Any) -> MetaRTTNano:
    """NanoTrack + the online MetaRTT head (:mod:`metartt_lite.track.metartt_nano`). ``rates='meta'``: θ0,
    A_init, A_on from ``checkpoint`` (default ``weights/nano_meta.pt``); ``'hand'``: hand-set rates, random θ0.
    ``kw`` override :class:`NanoAdaptConfig` fields."""
    cfg = NanoAdaptConfig(rates=rates, **kw)
    if rates == "hand":
        return MetaRTTNano(NanoTracker(frozen=True), cfg=cfg, seed=seed, name=name)
    path = Path(checkpoint) if checkpoint else NANO_META_CHECKPOINT
    theta, r_init, r_on, _ = load_nano_meta(path)
    cfg = replace(cfg, k_init=len(r_init), k_on=len(r_on))
    return MetaRTTNano(NanoTracker(frozen=True), theta, r_init, r_on, cfg=cfg, seed=seed, name=name)


def _prune_variant(name: str, default_prune: Path) -> Callable[..., Any]:
    def build(checkpoint: str | Path | None = None, seed: int = 0, dev: torch.device | None = None, **kw: Any):
        return make_metartt_prune(checkpoint=checkpoint, seed=seed, dev=dev, name=name,
                                  default_prune_checkpoint=default_prune, **kw)
    return build


@dataclass(frozen=True)
class TrackerSpec:
    """One named tracker: ``kind`` 'ours' (RT-MDNet presets), 'meta' (meta-learned), 'prune' (meta-learned
    + pruning), 'nano' (NanoTrack-based) or 'peer' (OpenCV); ``build(checkpoint=, seed=, dev=, **kw)`` makes a fresh one."""
    name: str
    kind: str
    build: Callable[..., Any]
    weights: Path | None = None


def _ours(name: str) -> Callable[..., Any]:
    return lambda checkpoint=None, seed=0, dev=None, **kw: make_rtmdnet(name, checkpoint, seed, dev, **kw)


def _peer(name: str) -> Callable[..., Any]:
    return lambda checkpoint=None, seed=0, dev=None, **kw: make_peer(name)


TRACKERS: dict[str, TrackerSpec] = {s.name: s for s in [
    *(TrackerSpec(n, "ours", _ours(n), PRETRAINED) for n in OURS),
    TrackerSpec("metartt", "meta", make_metartt, META_CHECKPOINT),
    TrackerSpec("metartt-prune", "prune", _prune_variant("metartt-prune", PRUNE_CHECKPOINT), PRUNE_CHECKPOINT),
    TrackerSpec("metartt-prune-static", "prune", _prune_variant("metartt-prune-static", PRUNE_STATIC_CHECKPOINT),
                PRUNE_STATIC_CHECKPOINT),
    TrackerSpec("metartt-prune-nometa", "prune", _prune_variant("metartt-prune-nometa", PRUNE_NOMETA_CHECKPOINT),
                PRUNE_NOMETA_CHECKPOINT),
    TrackerSpec("nanotrack-torch", "nano", make_nanotrack_torch),
    TrackerSpec("metartt-nano", "nano", make_metartt_nano, NANO_META_CHECKPOINT),
    TrackerSpec("metartt-nano-hand", "nano",
                lambda checkpoint=None, seed=0, dev=None, **kw: make_metartt_nano(
                    checkpoint, seed, dev, name="metartt-nano-hand", rates="hand", **kw)),
    *(TrackerSpec(n, "peer", _peer(n)) for n in PEERS),
]}


def list_trackers(kind: str | None = None) -> list[str]:
    """Every tracker name (or those of one ``kind``), in a fixed order: ours, meta, prune, peers."""
    return [n for n, s in TRACKERS.items() if kind is None or s.kind == kind]


COLORS = ("rgb", "bgr")


class BGRFrames:
    """A tracker that takes OpenCV's BGR (or BGRA) frames: each frame is converted to RGB
    (:func:`metartt_lite.data.as_rgb`) and handed to the wrapped tracker; everything else (``name``,
    ``prune_rate``, ``times``, ...) is the wrapped tracker's. ``make_tracker(..., color="bgr")`` makes one."""

    def __init__(self, tracker: Any):
        self.tracker = tracker
        self.name = tracker.name

    def init(self, frame, box) -> None:
        self.tracker.init(as_rgb(frame, bgr=True), box)

    def update(self, frame):
        return self.tracker.update(as_rgb(frame, bgr=True))

    def __getattr__(self, attr: str) -> Any:  # only called for attributes not found on the wrapper
        if attr == "tracker":
            raise AttributeError(attr)
        return getattr(self.tracker, attr)

    def __repr__(self) -> str:
        return f"BGRFrames({self.tracker!r})"


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"NAME"`` or ``"NAME@CHECKPOINT"`` (a registered tracker on other weights, e.g.
    ``metartt@runs/m/meta.pt``, as benchmark scripts take them) → (name, checkpoint or None)."""
    name, sep, ckpt = spec.partition("@")
    if sep and not ckpt:
        raise MetaRTTError(f"tracker spec {spec!r}: no checkpoint after '@'")
    return name, (ckpt or None)


def make_tracker(name: str, checkpoint: str | Path | None = None, seed: int = 0,
                 dev: torch.device | str | None = None, color: str = "rgb", threads: int | None = None, **kw: Any):
    """A fresh tracker ``name`` (one per video), following :class:`~metartt_lite.peers.Tracker`:

    * ``tracker.init(frame, box)``: the first frame and the target's box ``[x, y, w, h]`` (0-based px);
    * ``box, score = tracker.update(frame)`` for every later frame: the box (float xywh, inside the
      frame) and a score; ``tracker.success`` says whether the target was found, the same test for every
      tracker. For our trackers the score is the fc6 target logit (mean of the top-5 candidates) and
      ``success`` is ``score > tracker.success_threshold`` (0; for the pruned trackers 0 moved by the
      logit shift pruning causes, measured on the first frame); for OpenCV's (csrt, kcf, mil) the score is
      1.0 when OpenCV located the target, else 0.0 (previous box kept), and ``success`` is ``score > 0``;
      nanotrack's score is OpenCV's tracking score (0–1; success above 0.98), nanotrack-torch's the target
      probability (success above 0.99), metartt-nano's the online head's logit (success above 0).

    Frames are uint8 (H, W, 3) RGB; ``color="bgr"`` takes OpenCV's BGR frames as read by
    ``cv2.VideoCapture`` / ``cv2.imread`` (gray and 4-channel frames are accepted either way).
    ``checkpoint`` replaces the shipped weights (for the prune variants: a meta checkpoint, or a prune
    checkpoint); ``dev`` the device (default ``utils.device()``: ``METARTT_DEVICE``, else CUDA when
    present); ``threads`` the torch CPU threads, process-wide (default ``METARTT_THREADS``, else 1: the
    package's thread policy, :mod:`metartt_lite.core.threads`); ``kw`` go to the builder (``model_cfg``/``pretrained`` for the RT-MDNet presets,
    ``prune_checkpoint``/``tau``/``min_keep`` for the prune variants)."""
    spec = TRACKERS.get(name)
    if spec is None:
        raise MetaRTTError(f"unknown tracker {name!r}; known: {', '.join(list_trackers())}")
    col = str(color).lower()
    if col not in COLORS:
        raise MetaRTTError(f"color {color!r}: expected one of {', '.join(COLORS)}")
    if dev is not None:
        dev = parse_device(dev)  # "cpu", "cuda:0", torch.device: checked here, with a clear error
    configure_threads(threads)
    tracker = spec.build(checkpoint=checkpoint, seed=seed, dev=dev, **kw)
    return BGRFrames(tracker) if col == "bgr" else tracker

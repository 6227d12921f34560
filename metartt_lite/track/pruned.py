"""The ``metartt-prune`` tracker (paper §4 at test time): adapt on the first frame, predict the masks
with ψ, remove the pruned channels for good (:mod:`metartt_lite.model.surgery`), track on the smaller network."""
from __future__ import annotations

import warnings
from collections import OrderedDict, deque
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..core.checkpoint import META_CHECKPOINT, PRETRAINED, PRUNE_CHECKPOINT, checkpoint_model_config, load_checkpoint
from ..core.config import TrackConfig
from ..core.utils import MetaRTTError, device as default_device
from ..model.net import TrackerNet
from ..model.pruning_net import MaskPredictor
from ..model.surgery import hard_keep, layer_widths, prune_network, prune_rates, roi_columns, slice_head_tensor
from ..train.inner_loop import HeadOptimizer, MetaRateOptimizer
from ..train.prune import fixed_rates, file_sha1, build_learner, load_pruner
from .presets import METARTT
from .rtmdnet import RTMDNetTracker


# ------------------------------------------------------------------------------------------- tracker
class PrunedTracker(RTMDNetTracker):
    """MetaRTT+Prune. ``init``: (1) RTMDNetTracker's first-frame adaptation on the full network (θ_init^K,
    D_init); (2) β = Ψ(D_init; θ_init^K); (3) hard masks (τ, floor); (4) the network, θ_init^K, the rates
    (or the optimiser's buffers), the sample memories and the bounding-box regressor switch to the kept
    channels (the regressor is refitted on its first-frame samples' kept feature columns: ridge weights
    of a column subset are not the sliced full solution); (5) every later frame runs on the pruned
    network. ``prune_rate``: fraction of channels removed per layer; ``betas``: the soft masks;
    ``d_init`` / ``theta_init``: Ψ's inputs (D_init's RoI features, θ_init^K on the full network)."""

    def __init__(self, net: TrackerNet, cfg: TrackConfig | None = None, pruner: MaskPredictor | None = None,
                 tau: float = 0.5, min_keep: int | None = None, name: str = "metartt-prune", **kw):
        super().__init__(net, cfg, name=name, **kw)
        if pruner is None:
            raise MetaRTTError("PrunedTracker needs a pruning network")
        self.full_net = self.net
        self.pruner = pruner.to(self.device).eval()
        self.tau = tau
        self.min_keep = min_keep
        self.prune_rate: dict[str, float] = {}
        self.calibrate_success = True  # see init(): the success flag's threshold follows the pruning shift
        self.score_shift = 0.0

    def _train(self, pos, neg, iters, phase):
        if phase == "init":
            self._d_init = (pos, neg)
        return super()._train(pos, neg, iters, phase)

    def _fit_bbreg(self, feats, boxes, gt):
        self._bb_data = (feats, np.array(boxes, copy=True), np.array(gt, copy=True))
        return super()._fit_bbreg(feats, boxes, gt)

    def init(self, frame: np.ndarray, box: np.ndarray) -> None:
        self.net = self.full_net
        self._d_init, self._bb_data = None, None
        super().init(frame, box)
        box0 = self.box.copy()
        ref_full = self._reference_score(frame, box0) if self.calibrate_success else None
        frame_size, self.frame_size = self.frame_size, None  # update() refuses until pruning succeeded
        pos, neg = self._d_init
        # what Ψ is given, kept for inspection (notebook 05): D_init's RoI features and θ_init^K
        self.d_init = torch.cat([pos, neg]).detach()
        self.theta_init = OrderedDict((k, v.detach().clone()) for k, v in self.params.items())
        self.betas = self.pruner.predict(self.net, self.d_init, self.theta_init)
        self.keep = hard_keep(self.betas, self.tau, self.min_keep)
        widths = layer_widths(self.full_net)
        old_params = self.params
        new_net, new_params, rates = prune_network(self.full_net, old_params, self.meta_rates, self.keep)
        r = self.full_net.cfg.roi_size
        self.params = OrderedDict((k, v.detach().clone().requires_grad_(True)) for k, v in new_params.items())
        if isinstance(self.optimizer, MetaRateOptimizer):
            self.optimizer = MetaRateOptimizer(self.params, rates[0], rates[1])
        elif isinstance(self.optimizer, HeadOptimizer):
            old = self.optimizer
            self.optimizer = HeadOptimizer(self.params, self.cfg)
            for (k, p_old), p_new in zip(old_params.items(), self.params.values()):
                st = old.opt.state.get(p_old)
                if st:
                    self.optimizer.opt.state[p_new] = {
                        s: (slice_head_tensor(k, v, self.keep, r).clone() if torch.is_tensor(v) and v.shape == p_old.shape
                            and v.dim() > 0 else v) for s, v in st.items()}
        cols = roi_columns(self.keep["shared"], r).to(self.device)
        self.pos_mem = deque([t[:, cols] for t in self.pos_mem], maxlen=self.pos_mem.maxlen)
        self.neg_mem = deque([t[:, cols] for t in self.neg_mem], maxlen=self.neg_mem.maxlen)
        if self.use_bbreg and self._bb_data is not None:
            f, b, g = self._bb_data
            super()._fit_bbreg(f[:, cols], b, g)
        self._d_init, self._bb_data = None, None
        self.net = new_net
        self.prune_rate = prune_rates(self.keep, widths)
        self.frame_size = frame_size
        # Success calibration. Removing channels from the adapted head lowers the target logit of the
        # target itself (the masks of Eq. 10 are applied to θ_init^K after the first-frame update and no
        # step re-adapts the kept channels: on the samples about -1.5, so `score > 0` almost never
        # holds; tests/test_success.py). The flag therefore compares the score with the full network's
        # threshold moved by that shift, measured on the first frame: success_thr + (pruned − full)
        # reference score. The tracking procedure itself still tests `score > success_thr`.
        if ref_full is not None:
            self.score_shift = self._reference_score(frame, box0) - ref_full
            self.success_threshold = self.cfg.success_thr + min(self.score_shift, 0.0)


def _source_checkpoint(extra: dict, shipped: Path = META_CHECKPOINT) -> Path:
    """The checkpoint a prune checkpoint was trained on (meta, or pretrain for ``--no-meta``), when its
    recorded file is still there unchanged (same SHA-1); else the shipped one (``weights/meta.pt`` or
    ``weights/pretrain.pt``): a recorded path is an absolute path on the training machine."""
    recorded, sha = extra.get("meta_checkpoint"), extra.get("meta_checkpoint_sha1")
    if recorded and sha and Path(recorded).is_file() and file_sha1(recorded) == sha:
        return Path(recorded)
    return shipped


def load_tracker_parts(prune_checkpoint: str | Path, checkpoint: str | Path | None = None,
                       dev: torch.device | None = None):
    """(full net, TrackConfig, (A_init, A_on), ψ, PruneConfig) for ``metartt-prune``: θ0 and rates from
    the meta checkpoint ``checkpoint`` — by default the one the prune checkpoint was trained on (its recorded
    path, if that file still has the recorded SHA-1), else ``weights/meta.pt`` — or for a ``--no-meta`` prune
    checkpoint from the pretrain checkpoint it was trained with (the same rule, else ``weights/pretrain.pt``;
    or ``checkpoint``) and the constant rates it used."""
    dev = dev or default_device()
    pruner, pc, extra = load_pruner(prune_checkpoint)
    model_cfg = checkpoint_model_config(prune_checkpoint)
    if pc.no_meta:
        src = checkpoint if checkpoint is not None else (
            _source_checkpoint(extra, PRETRAINED) if extra.get("meta_checkpoint") else None)
        learner, _ = build_learner(src, pc, dev, model_cfg)
    else:
        src = Path(checkpoint) if checkpoint is not None else _source_checkpoint(extra)
        if not Path(src).exists():
            raise MetaRTTError(f"meta-learned checkpoint {src} not found; train one with "
                               f"'python -m metartt_lite meta-train --out DIR' and pass --checkpoint DIR/meta.pt")
        learner, _ = build_learner(src, pc, dev, model_cfg)
    if src is not None and extra.get("meta_checkpoint_sha1") and file_sha1(src) != extra["meta_checkpoint_sha1"]:
        warnings.warn(f"{prune_checkpoint} was trained for another network than {src}; its masks may not fit")
    r_init, r_on = fixed_rates(learner)
    net = learner.net
    net.shared.requires_grad_(True)
    cfg = replace(METARTT, k_init=len(r_init), k_on=len(r_on))
    return net, cfg, (r_init, r_on or r_init), pruner, pc


def record_prune_rates(tracker, name: str, rates: dict[str, list]) -> None:
    """Wrap ``tracker.init`` (a :class:`PrunedTracker`) so each video's per-layer pruning rate is appended
    to ``rates[name]`` right after its first-frame pruning; other trackers are left as they are."""
    if not hasattr(tracker, "prune_rate"):
        return
    init = tracker.init

    def init_and_record(frame, box):
        init(frame, box)
        rates.setdefault(name, []).append(dict(tracker.prune_rate))
    tracker.init = init_and_record


def prune_rate_summary(per_video: list[dict[str, float]]) -> dict:
    """Mean ± std over videos of the pruning rate per layer and over layers, plus the per-video values."""
    layers = list(per_video[0])
    overall = [float(np.mean([v[l] for l in layers])) for v in per_video]
    return {"layers": {l: {"mean": float(np.mean([v[l] for v in per_video])),
                           "std": float(np.std([v[l] for v in per_video]))} for l in layers},
            "mean": float(np.mean(overall)), "std": float(np.std(overall)), "per_video": per_video}


def make_metartt_prune(checkpoint: str | Path | None = None, seed: int = 0, dev: torch.device | None = None,
                       prune_checkpoint: str | Path | None = None, tau: float | None = None,
                       min_keep: int | None | str = "checkpoint", name: str = "metartt-prune",
                       default_prune_checkpoint: str | Path = PRUNE_CHECKPOINT) -> PrunedTracker:
    """The ``metartt-prune`` tracker and its variants. ``prune_checkpoint`` defaults to
    ``default_prune_checkpoint`` (``weights/prune.pt``); a prune checkpoint passed as ``checkpoint`` is
    taken as the prune checkpoint (the meta one is then the one it was trained on, see
    :func:`load_tracker_parts`). ``tau``/``min_keep``
    default to the values the checkpoint was trained with."""
    if checkpoint is not None and prune_checkpoint is None and Path(checkpoint).is_file():
        try:
            if load_checkpoint(checkpoint).get("kind") == "prune":
                checkpoint, prune_checkpoint = None, checkpoint
        except MetaRTTError:
            pass
    ppath = Path(prune_checkpoint) if prune_checkpoint else Path(default_prune_checkpoint)
    if not ppath.exists():
        raise MetaRTTError(f"pruning checkpoint {ppath} not found; train one with 'python -m metartt_lite "
                           f"prune-train --checkpoint META.pt --out DIR' and pass DIR/prune.pt")
    dev = dev or default_device()
    net, cfg, rates, pruner, pc = load_tracker_parts(ppath, checkpoint, dev)
    return PrunedTracker(net, cfg, pruner, tau=pc.tau if tau is None else tau,
                         min_keep=pc.min_keep if min_keep == "checkpoint" else min_keep,
                         name=name, seed=seed, meta_rates=rates, dev=dev)

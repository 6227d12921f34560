"""Meta-learned one-shot channel pruning (paper §4, Eqs. 9–12) and the ``metartt-prune`` tracker.

Layers pruned (the paper's S): the shared conv's out-channels (``"shared"``), fc4's and fc5's out-units
(``"fc4"``, ``"fc5"``); never fc6 (its two outputs are the scores).

**Masked forward (Eq. 10).** ``F_B^l = β^l ⊙ σ(layer(F_B^{l-1}))``. The shared conv's mask multiplies
the channels of the shared feature map; RoIAlign is linear and per-channel, and the 2×2 max-pool after it
is per-channel and commutes with multiplication by a *non-negative* scalar (max(βa, βb) = β·max(a, b)
for β ≥ 0), so masking channel c of the map is the same as masking the RoI-feature columns
``9c … 9c+8`` (channel-major flatten; :func:`expand_shared_mask`). Every mask here lies in [0, 1], so
the pruning loss works on cached RoI features and never recomputes RoIAlign (tested against masking the
map itself).

**Pruning network ψ (§4, "Meta-learning for channel mask prediction").** One small MLP per layer in S
(Linear → LeakyReLU → dropout → Linear → sigmoid). Its input for one D_init sample is the layer's
unmasked feature, globally average-pooled: the RoI feature averaged over the 3×3 grid (C values) for
the shared conv, the activations themselves for fc4/fc5 (computed with θ_init^{K_init}, as the paper).
Each input vector is standardised (LayerNorm without affine parameters) so ψ sees the pattern of channel
activity, not its scale. The sigmoid gives a *soft* mask in (0, 1) per sample; β^l is its mean over
D_init's samples (pos and neg together, as the paper's 1/N Σ). ``static_mask`` replaces ψ by one free
logit vector per layer (sigmoid → β), the same for every video (the paper's "no adaptive pruning").

**Loss (Eqs. 9, 11).** For each step of an episode's trajectory — D_init with θ_init^K, D_on with each
θ_on^k (k = 1..K_on), D_test (std positives + negatives + hard examples) with θ_on^{K_on} — the LASSO
loss ``λ Σ_l mean(β^l) + Σ_{l∈S} E_x ‖F^l − F_B^l‖₂ / E_x ‖F^l‖₂``. Two normalisations, both
deliberate: the L1 norm is divided by the channel count (``mean(β^l)``), so λ does not depend on the
layer widths; the reconstruction error is divided by the batch's mean feature norm (detached), so the
three layers weigh alike whatever their activation scale and λ is scale-free (``relative=False`` gives
the paper's absolute ‖·‖₂). The trajectory comes from :func:`metartt_lite.meta.episode_loss` with θ0
and the rates fixed (every tensor detached); only ψ is trained (Adam, lr 5e-5 as the paper).
With ``--meta-tracker`` checkpoints (K_on = 0) the D_test term uses θ_init^K.

**Hard masks.** At test time channel j of layer l is kept iff β^l_j ≥ τ (default 0.5; τ sets the
pruning rate — 0 keeps everything). A floor keeps at least ``min_keep`` channels per layer, the
highest-β ones (default ``max(4, ⌈10 %⌉)`` of the layer, never more than the layer has), so a mask that
collapses to zero never empties a layer; ``min_keep=0`` switches the floor off and an empty layer raises
:class:`MetaRTTError` instead.

**Physical removal** (:func:`prune_network`): the kept out-channels of the shared conv, the matching
RoI-feature columns of fc4, kept rows of fc4/fc5 and columns of fc5/fc6, and the per-parameter learning
rates sliced the same way (scalar rates stay scalar). With a 0/1 mask the pruned network computes exactly
what the masked one does, and keeps doing so through adaptation: a zeroed unit's outgoing gradient is
multiplied by 0 (pruned rows never matter), and kept rows see identical inputs and identical gradients.

``--no-meta`` trains ψ for a network that was *not* meta-learned: θ0 from a pretrain checkpoint (or the
seeded initialisation), and constant hand-set rates ``MetaConfig.init_rate`` for each of K_init/K_on
steps instead of the meta checkpoint's A_init/A_on; the trajectory is otherwise produced the same way.
(The paper's Table 3 "no meta-learning" row is described as training ψ on the first frame only; that
reading is not implemented.)
"""
from __future__ import annotations

import argparse
import hashlib
import math
import time
import warnings
from collections import OrderedDict, deque
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import meta
from .adaptation import HeadOptimizer, MetaRateOptimizer
from .checkpoint import (META_CHECKPOINT, PRETRAINED, PRUNE_CHECKPOINT, load_checkpoint, load_optimizer_state,
                         save_checkpoint)
from .config import ModelConfig, TrackConfig
from .data import data_root, load_split
from .episodes import EpisodeConfig
from .features import CacheConfig, cache_sequence
from .model import Head, TrackerNet, build_net, load_pretrained_into
from .presets import METARTT
from .tracker import RTMDNetTracker
from .utils import (MetaRTTError, atomic_write_json, check_output_dir, device as default_device, git_commit,
                    remove_stale_temps)

LAYERS = ("shared", "fc4", "fc5")


# ------------------------------------------------------------------------------------------ config
@dataclass
class PruneConfig:
    episodes: int = 2000
    lr: float = 5e-5               # Adam on ψ (paper: 5e-5)
    lam: float = 0.5               # λ of Eq. 9 (per layer: λ · mean(β^l))
    tau: float = 0.5               # hard-mask threshold at test time (kept iff β ≥ τ)
    hidden: int = 64               # ψ's hidden width
    dropout: float = 0.25          # ψ's dropout
    leaky_slope: float = 0.01
    init_keep: float = 0.9         # ψ starts predicting β ≈ this (its last bias is logit(init_keep))
    min_keep: int | None = None    # floor of kept channels per layer; None → max(4, ⌈10 %⌉); 0 → no floor
    relative: bool = True          # reconstruction error relative to the feature norm (see module doc)
    static_mask: bool = False      # --static-mask: one learned mask per layer for every video
    no_meta: bool = False          # --no-meta: prune a network that was not meta-learned
    checkpoint_every: int = 50
    seed: int = 0
    meta: meta.MetaConfig = field(default_factory=lambda: meta.MetaConfig(
        episode=EpisodeConfig(n_neg=256, n_neg_on=64)))


def prune_config_from_dict(d: Mapping[str, Any]) -> PruneConfig:
    d = dict(d)
    m = dict(d.pop("meta"))
    ep, cc = EpisodeConfig(**m.pop("episode")), CacheConfig(**m.pop("cache"))
    return PruneConfig(**d, meta=meta.MetaConfig(**m, episode=ep, cache=cc))


def meta_config_from_checkpoint(path: str | Path) -> meta.MetaConfig:
    """The MetaConfig a meta checkpoint was trained with (episodes drawn as in Eq. 7)."""
    c = dict(load_checkpoint(path, kind="meta")["extra"]["config"])
    ep, cc = EpisodeConfig(**c.pop("episode")), CacheConfig(**c.pop("cache"))
    return meta.MetaConfig(**c, episode=ep, cache=cc)


def default_min_keep(width: int) -> int:
    return min(width, max(4, math.ceil(0.1 * width)))


def layer_widths(net: TrackerNet) -> dict[str, int]:
    return {"shared": net.shared.out_channels, "fc4": net.head.fc4.out_features, "fc5": net.head.fc5.out_features}


# ------------------------------------------------------------------------------------ masked forward
def expand_shared_mask(beta: torch.Tensor, roi_size: int) -> torch.Tensor:
    """A per-channel mask (C,) → the RoI-feature column mask (C·roi_size²,), channel-major."""
    return beta.repeat_interleave(roi_size ** 2)


def roi_columns(keep_shared: torch.Tensor, roi_size: int) -> torch.Tensor:
    """The RoI-feature columns owned by the kept shared channels: concat(r²·c + 0..r²−1), channel-major."""
    r2 = roi_size ** 2
    return (keep_shared.view(-1, 1) * r2 + torch.arange(r2, device=keep_shared.device)).flatten()


def layer_features(net: TrackerNet, x: torch.Tensor, theta: Mapping[str, torch.Tensor] | None = None,
                   masks: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Features F^l (``masks=None``) or F_B^l (Eq. 10) of every layer in S, eval mode (no dropout).

    ``x``: RoI features (N, C·9) of the full network; ``theta``: head parameters (default θ0);
    ``masks``: {layer: β^l} (a layer missing is unmasked)."""
    theta = theta if theta is not None else net.head_params()
    masks = masks or {}
    if "shared" in masks:
        x = x * expand_shared_mask(masks["shared"], net.cfg.roi_size)
    out = {"shared": x}
    h = F.relu(F.linear(x, theta["fc4.weight"], theta["fc4.bias"]))
    if "fc4" in masks:
        h = h * masks["fc4"]
    out["fc4"] = h
    h = F.relu(F.linear(h, theta["fc5.weight"], theta["fc5.bias"]))
    if "fc5" in masks:
        h = h * masks["fc5"]
    out["fc5"] = h
    return out


def masked_scores(net: TrackerNet, x: torch.Tensor, theta: Mapping[str, torch.Tensor] | None = None,
                  masks: Mapping[str, torch.Tensor] | None = None, training: bool = False) -> torch.Tensor:
    """fc6 scores of the masked network (dropout as ``net.head`` when ``training``)."""
    theta = theta if theta is not None else net.head_params()
    masks = masks or {}
    p = net.head.dropout
    if "shared" in masks:
        x = x * expand_shared_mask(masks["shared"], net.cfg.roi_size)
    h = F.relu(F.linear(x, theta["fc4.weight"], theta["fc4.bias"]))
    if "fc4" in masks:
        h = h * masks["fc4"]
    h = F.dropout(h, p, training)
    h = F.relu(F.linear(h, theta["fc5.weight"], theta["fc5.bias"]))
    if "fc5" in masks:
        h = h * masks["fc5"]
    h = F.dropout(h, p, training)
    return F.linear(h, theta["fc6.weight"], theta["fc6.bias"])


def psi_inputs(net: TrackerNet, x: torch.Tensor, theta: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """ψ's per-sample inputs: global average pooling of each layer's unmasked features."""
    f = layer_features(net, x, theta)
    r2 = net.cfg.roi_size ** 2
    return {"shared": f["shared"].view(len(x), -1, r2).mean(-1), "fc4": f["fc4"], "fc5": f["fc5"]}


# ------------------------------------------------------------------------------------------- ψ
class MaskPredictor(nn.Module):
    """Ψ(D_init; θ, φ) = {ψ^l}: per layer, mean over samples of sigmoid(MLP(LayerNorm(AvgPool F^l)))
    (or, with ``static``, sigmoid of a free logit vector). Returns soft masks in (0, 1)."""

    def __init__(self, widths: Mapping[str, int], hidden: int = 64, dropout: float = 0.25, static: bool = False,
                 leaky_slope: float = 0.01, init_keep: float = 0.9):
        super().__init__()
        self.widths = dict(widths)
        self.static = static
        b0 = float(np.log(init_keep / (1 - init_keep)))
        if static:
            self.logits = nn.ParameterDict({l: nn.Parameter(torch.full((w,), b0)) for l, w in self.widths.items()})
        else:
            self.mlps = nn.ModuleDict()
            for l, w in self.widths.items():
                last = nn.Linear(hidden, w)
                with torch.no_grad():
                    last.weight.mul_(0.1)
                    last.bias.fill_(b0)
                self.mlps[l] = nn.Sequential(nn.LayerNorm(w, elementwise_affine=False), nn.Linear(w, hidden),
                                             nn.LeakyReLU(leaky_slope), nn.Dropout(dropout), last)

    def forward(self, inputs: Mapping[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
        if self.static:
            return {l: torch.sigmoid(p) for l, p in self.logits.items()}
        return {l: torch.sigmoid(mlp(inputs[l])).mean(0) for l, mlp in self.mlps.items()}

    def predict(self, net: TrackerNet, x: torch.Tensor, theta: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """β for one video from its D_init RoI features ``x`` under θ_init^K (no dropout, no grad)."""
        was = self.training
        self.eval()
        try:
            with torch.no_grad():
                theta = {k: v.detach() for k, v in theta.items()}
                return self(None if self.static else psi_inputs(net, x.detach(), theta))
        finally:
            self.train(was)


def hard_keep(betas: Mapping[str, torch.Tensor], tau: float = 0.5, min_keep: int | None = None) -> dict[str, torch.Tensor]:
    """Kept channel indices per layer (sorted): β ≥ τ, topped up to the floor with the highest-β channels
    (ties: lowest index first). ``min_keep=None`` → ``default_min_keep(width)``; 0 → no floor, and a layer
    left empty raises MetaRTTError."""
    keep = {}
    for l, b in betas.items():
        b = b.detach().flatten()
        C = len(b)
        floor = default_min_keep(C) if min_keep is None else min(int(min_keep), C)
        idx = torch.nonzero(b >= tau).flatten()
        if len(idx) < floor:
            idx = torch.sort(b, descending=True, stable=True).indices[:floor]
        if len(idx) == 0:
            raise MetaRTTError(f"the hard mask of layer {l!r} keeps no channel (every β < τ={tau}); "
                               f"use min_keep ≥ 1 or a lower τ")
        keep[l] = torch.sort(idx).values
    return keep


def hard_masks(keep: Mapping[str, torch.Tensor], widths: Mapping[str, int], like: torch.Tensor) -> dict[str, torch.Tensor]:
    """0/1 masks (dtype/device of ``like``) from kept indices; a layer missing from ``keep`` is all ones."""
    out = {}
    for l, w in widths.items():
        if l in keep:
            m = torch.zeros(w, dtype=like.dtype, device=like.device)
            m[keep[l].to(like.device)] = 1
        else:
            m = torch.ones(w, dtype=like.dtype, device=like.device)
        out[l] = m
    return out


def prune_rates(keep: Mapping[str, torch.Tensor], widths: Mapping[str, int]) -> dict[str, float]:
    """Fraction of channels removed per layer."""
    return {l: 1.0 - len(keep[l]) / widths[l] if l in keep else 0.0 for l in widths}


# ---------------------------------------------------------------------------------------- loss
def lasso_loss(net: TrackerNet, x: torch.Tensor, theta: Mapping[str, torch.Tensor], betas: Mapping[str, torch.Tensor],
               lam: float, relative: bool = True) -> torch.Tensor:
    """Eq. 9 on one data set: λ Σ_l mean(β^l) + Σ_{l∈S} E_x ‖F^l − F_B^l‖₂ (÷ E_x ‖F^l‖₂ if ``relative``)."""
    with torch.no_grad():
        full = layer_features(net, x, theta)
    masked = layer_features(net, x, theta, betas)
    loss = lam * sum(b.mean() for b in betas.values())
    for l in LAYERS:
        err = (full[l] - masked[l]).norm(dim=1).mean()
        if relative:
            err = err / full[l].norm(dim=1).mean().clamp_min(1e-6)
        loss = loss + err
    return loss


def episode_prune_loss(net: TrackerNet, pruner: MaskPredictor, traj: Mapping[str, Any], lam: float,
                       relative: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. 12 for one episode: L_ep(τ, Ψ(D_init; θ_init^K, φ)) (Eq. 11). ``traj`` as filled by
    ``meta.episode_loss``; it is detached here. Returns the loss and the soft masks β."""
    d = lambda t: t.detach() if torch.is_tensor(t) else t
    dt = lambda th: OrderedDict((k, v.detach()) for k, v in th.items())
    th_init = dt(traj["theta_init"][-1])
    x_init = torch.cat([d(traj["pos_init"]), d(traj["neg_init"])])
    betas = pruner(None if pruner.static else psi_inputs(net, x_init, th_init))
    loss = lasso_loss(net, x_init, th_init, betas, lam, relative)
    th_last = th_init
    if traj.get("theta_on"):
        x_on = torch.cat([d(traj["pos_on"]), d(traj["neg_on"])])
        for th in traj["theta_on"]:
            loss = loss + lasso_loss(net, x_on, dt(th), betas, lam, relative)
        th_last = dt(traj["theta_on"][-1])
    x_test = torch.cat([d(traj["test_pos"]), d(traj["test_neg"])] + ([d(traj["hard"])] if traj.get("hard") is not None else []))
    loss = loss + lasso_loss(net, x_test, th_last, betas, lam, relative)
    return loss, betas


# --------------------------------------------------------------------------------- physical removal
def slice_head_tensor(name: str, t: torch.Tensor, keep: Mapping[str, torch.Tensor], roi_size: int) -> torch.Tensor:
    """Slice a head parameter (or anything shaped like it: a rate, an optimiser buffer) to the kept
    channels. 0-d tensors (scalar rates) are returned unchanged."""
    if t.dim() == 0:
        return t
    dev = t.device
    k4 = keep["fc4"].to(dev) if "fc4" in keep else None
    k5 = keep["fc5"].to(dev) if "fc5" in keep else None
    cols = roi_columns(keep["shared"], roi_size).to(dev) if "shared" in keep else None
    layer, kind = name.split(".")
    if layer == "fc4":
        if k4 is not None:
            t = t[k4]
        if kind == "weight" and cols is not None:
            t = t[:, cols]
    elif layer == "fc5":
        if k5 is not None:
            t = t[k5]
        if kind == "weight" and k4 is not None:
            t = t[:, k4]
    elif layer == "fc6":
        if kind == "weight" and k5 is not None:
            t = t[:, k5]
    else:
        raise MetaRTTError(f"unknown head parameter {name!r}")
    return t


def _slice_params(params: Mapping[str, torch.Tensor], keep, roi_size: int) -> "OrderedDict[str, torch.Tensor]":
    return OrderedDict((k, slice_head_tensor(k, v.detach(), keep, roi_size).clone().requires_grad_(v.requires_grad))
                       for k, v in params.items())


def slice_rates(rates, keep: Mapping[str, torch.Tensor], roi_size: int):
    """Slice rates shaped like head parameters: a {name: α} dict, or (nested) lists/tuples of them."""
    if rates is None:
        return None
    if isinstance(rates, Mapping):
        return {k: slice_head_tensor(k, v.detach(), keep, roi_size).clone() for k, v in rates.items()}
    return type(rates)(slice_rates(r, keep, roi_size) for r in rates)


def prune_network(net: TrackerNet, theta: Mapping[str, torch.Tensor] | None, rates, keep: Mapping[str, torch.Tensor]):
    """Physically remove channels: returns (pruned TrackerNet, sliced θ, sliced rates).

    The new net shares ``net``'s trunk; its shared conv keeps ``keep['shared']`` out-channels, fc4 the
    matching RoI columns and ``keep['fc4']`` rows, fc5 ``keep['fc5']`` rows (and fc4's kept columns),
    fc6 fc5's kept columns. Its own head holds ``net``'s θ0 sliced; ``theta`` (default θ0) and ``rates``
    (a dict, or lists/tuples of per-step dicts; scalars stay scalars) are sliced alike. ``net.cfg`` is
    copied with the new ``shared_channels`` and ``fc_width`` = fc4's width; fc5 may be narrower (see
    ``net.head.fc5``). Building it draws no random numbers."""
    keep = {l: torch.as_tensor(v, dtype=torch.long).flatten().cpu() for l, v in keep.items()}
    widths = layer_widths(net)
    for l, idx in keep.items():
        if l not in widths:
            raise MetaRTTError(f"unknown prunable layer {l!r} (known: {', '.join(LAYERS)})")
        if len(idx) == 0:
            raise MetaRTTError(f"pruning would leave layer {l!r} with no channel")
        if idx.min() < 0 or idx.max() >= widths[l] or len(torch.unique(idx)) != len(idx):
            raise MetaRTTError(f"kept indices of layer {l!r} must be distinct and in 0..{widths[l] - 1}")
    keep = {l: torch.sort(v).values for l, v in keep.items()}
    full = {l: keep.get(l, torch.arange(w)) for l, w in widths.items()}
    r = net.cfg.roi_size
    cfg = replace(net.cfg, shared_channels=len(full["shared"]), fc_width=len(full["fc4"]))
    with torch.random.fork_rng(devices=[]):
        new = TrackerNet(cfg, trunk=net.trunk)
        new.head = Head(cfg.shared_channels * r * r, cfg.fc_width, net.head.dropout)
        new.head.fc5 = nn.Linear(len(full["fc4"]), len(full["fc5"]))
        new.head.fc6 = nn.Linear(len(full["fc5"]), net.head.fc6.out_features)
    ks = full["shared"].to(net.shared.weight.device)
    new.shared.weight = nn.Parameter(net.shared.weight.detach()[ks].clone(), requires_grad=net.shared.weight.requires_grad)
    new.shared.bias = nn.Parameter(net.shared.bias.detach()[ks].clone(), requires_grad=net.shared.bias.requires_grad)
    for k, v in net.head_params().items():
        mod, kind = k.split(".")
        setattr(getattr(new.head, mod), kind, nn.Parameter(slice_head_tensor(k, v.detach(), full, r).clone(),
                                                           requires_grad=v.requires_grad))
    new.train(net.training)
    new.pruned_keep = full
    new.unpruned_widths = widths
    theta = _slice_params(theta if theta is not None else net.head_params(), full, r)
    return new, theta, slice_rates(rates, full, r)


# ------------------------------------------------------------------------------ learner / tracker parts
def _sha1(path: str | Path | None) -> str | None:
    if path is None or not Path(path).is_file():
        return None
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


def build_learner(checkpoint: str | Path | None, cfg: PruneConfig, dev: torch.device,
                  model_cfg: ModelConfig | None = None) -> tuple[meta.MetaLearner, ModelConfig]:
    """The (fixed) network ψ is trained for: θ0 and rates from a meta checkpoint, or with ``no_meta``
    θ0 from a pretrain checkpoint (fc6 seeded; ``checkpoint=None``: everything seeded) and constant
    rates ``cfg.meta.init_rate``. Inner loops run first-order (no meta-gradient is needed)."""
    if not cfg.no_meta:
        if checkpoint is None:
            raise MetaRTTError("pruning needs a meta checkpoint (--checkpoint META.pt), or --no-meta")
        obj = load_checkpoint(checkpoint, kind="meta", model_cfg=model_cfg)
        model_cfg = ModelConfig(**obj["model_config"])
        mc = dict(obj["extra"]["config"])
        lcfg = replace(cfg.meta, k_init=mc["k_init"], k_on=mc["k_on"], scalar_lr=mc["scalar_lr"],
                       meta_tracker=mc["meta_tracker"], first_order=True)
        net = build_net(model_cfg, dev, seed=cfg.seed)
        learner = meta.MetaLearner(net, lcfg).to(dev)
        meta.load_learner_tensors(learner, obj["tensors"], checkpoint)
    else:
        if checkpoint is not None:
            obj = load_checkpoint(checkpoint, kind="pretrain", model_cfg=model_cfg)
            model_cfg = ModelConfig(**obj["model_config"])
        model_cfg = model_cfg or ModelConfig()
        net = build_net(model_cfg, dev, seed=cfg.seed)
        if checkpoint is not None:
            load_pretrained_into(net, checkpoint)
        learner = meta.MetaLearner(net, replace(cfg.meta, first_order=True)).to(dev)
    net.shared.requires_grad_(False)        # θ0 and the rates stay fixed
    learner.log_rates.requires_grad_(False)
    return learner, model_cfg


def _fixed_rates(learner: meta.MetaLearner) -> tuple[list, list]:
    with torch.no_grad():
        return ([{k: v.detach().clone() for k, v in d.items()} for d in learner.rates("init")],
                [{k: v.detach().clone() for k, v in d.items()} for d in learner.rates("on")])


# ------------------------------------------------------------------------------------------ training
def _psi_tensors(pruner: MaskPredictor) -> dict[str, torch.Tensor]:
    return {f"psi.{k}": v for k, v in pruner.state_dict().items()}


def load_pruner(path: str | Path, model_cfg: ModelConfig | None = None) -> tuple[MaskPredictor, PruneConfig, dict]:
    """ψ (eval mode) from a prune checkpoint, its PruneConfig and the checkpoint's ``extra``."""
    obj = load_checkpoint(path, kind="prune", model_cfg=model_cfg)
    extra = obj["extra"]
    cfg = prune_config_from_dict(extra["config"])
    pruner = MaskPredictor(extra["widths"], cfg.hidden, cfg.dropout, cfg.static_mask, cfg.leaky_slope, cfg.init_keep)
    want = _psi_tensors(pruner)
    t = {k[4:]: v for k, v in obj["tensors"].items() if k.startswith("psi.")}
    missing = [k for k in want if k[4:] not in t]
    if missing:
        raise MetaRTTError(f"{path} is missing tensors: {', '.join(missing[:6])}")
    bad = [f"{k} {tuple(t[k[4:]].shape)} vs {tuple(v.shape)}" for k, v in want.items() if t[k[4:]].shape != v.shape]
    if bad:
        raise MetaRTTError(f"{path} has tensors of the wrong shape: {'; '.join(bad[:4])}")
    pruner.load_state_dict({k: v.float() for k, v in t.items()})
    return pruner.eval(), cfg, extra


def prune_train(sequences: list, out: str | Path, meta_checkpoint: str | Path | None, cfg: PruneConfig | None = None,
                model_cfg: ModelConfig | None = None, resume: bool = False, dev: torch.device | None = None,
                command: str = "", progress: bool = True) -> Path:
    """Train ψ (Eq. 12) on episodes of ``sequences``; writes ``out/prune.pt`` + ``out/prune.json``
    (and ``out/prune_last.pt`` every ``checkpoint_every`` episodes, with the optimiser state)."""
    cfg = cfg or PruneConfig()
    dev = dev or default_device()
    out = check_output_dir(out)
    if not sequences:
        raise MetaRTTError("prune-train needs at least 1 training sequence (the split is empty)")
    if len(sequences) < 2 and cfg.meta.episode.hard_examples:
        raise MetaRTTError("pruning episodes with hard examples need at least 2 training sequences")
    if cfg.episodes < 1:
        raise MetaRTTError("--episodes must be at least 1")
    learner, model_cfg = build_learner(meta_checkpoint, cfg, dev, model_cfg)
    net = learner.net
    widths = layer_widths(net)
    with torch.random.fork_rng(devices=[]):  # ψ's initialisation depends on the seed only
        torch.manual_seed(cfg.seed)
        pruner = MaskPredictor(widths, cfg.hidden, cfg.dropout, cfg.static_mask, cfg.leaky_slope, cfg.init_keep).to(dev)
    opt = torch.optim.Adam(pruner.parameters(), lr=cfg.lr)
    ep_cfg = replace(cfg.meta, seed=cfg.seed)
    step, history, wall_prev = 0, [], 0.0
    last = out / "prune_last.pt"
    if resume:
        remove_stale_temps(last)  # left by a run killed in the middle of a checkpoint write
    if resume and last.exists():  # before the feature cache: a bad file fails fast
        p2, _, ex = load_pruner(last, model_cfg)
        if p2.widths != widths or p2.static != pruner.static:
            raise MetaRTTError(f"{last} was trained for another network or variant; use a new --out")
        pruner.load_state_dict(p2.state_dict())
        load_optimizer_state(opt, ex, last)
        step, history, wall_prev = ex["step"], ex["history"], ex["wall_time_s"]
    t0 = time.time()
    feats = [cache_sequence(s, net.trunk, model_cfg, cfg.meta.cache, dev=dev) for s in sequences]
    t_cache = time.time() - t0
    names = [s.name for s in sequences]
    meta_sha = _sha1(meta_checkpoint)

    def summary() -> dict:
        tail = history[-100:]
        rate = {l: float(np.mean([h["rate"][l] for h in tail])) for l in LAYERS} if tail else {}
        loss = float(np.mean([h["loss"] for h in history[-25:]])) if history else None
        return {"mean_prune_rate": rate, "final_loss": loss}

    def save(path: Path, final: bool) -> None:
        extra = {"step": step, "history": history, "wall_time_s": wall_prev + time.time() - t_start,
                 "config": asdict(cfg), "widths": widths, "sequences": names, "episodes": cfg.episodes,
                 "lambda": cfg.lam, "tau": cfg.tau, "command": command, "commit": git_commit(), "device": str(dev),
                 "meta_checkpoint": str(meta_checkpoint) if meta_checkpoint else None,
                 "meta_checkpoint_sha1": meta_sha, "no_meta": cfg.no_meta, "static_mask": cfg.static_mask,
                 "cache_time_s": t_cache, **summary()}
        if not final:
            extra["optimizer"] = opt.state_dict()
        save_checkpoint(path, "prune", model_cfg, _psi_tensors(pruner), extra)

    t_start = time.time()
    pruner.train()
    bar = tqdm(range(step, cfg.episodes), desc="prune-train", disable=not progress, initial=step, total=cfg.episodes)
    for i in bar:
        torch.manual_seed(hash((cfg.seed, i)) % (2**31))  # dropout masks of this episode (trajectory and ψ)
        traj: dict = {}
        try:
            meta.episode_loss(learner, feats, meta.make_episode(feats, ep_cfg, i), dev, trajectory=traj)
            loss, betas = episode_prune_loss(net, pruner, traj, cfg.lam, cfg.relative)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"prune loss is {float(loss.detach())}")
        except FloatingPointError as e:
            raise MetaRTTError(f"{e} on episode {i}; stopped; the last good checkpoint is "
                               f"{last if last.exists() else 'none yet'}") from None
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step = i + 1
        keep = hard_keep(betas, cfg.tau, cfg.min_keep)
        history.append({"episode": i, "loss": float(loss.detach()), "rate": prune_rates(keep, widths),
                        "mean_beta": {l: float(b.detach().mean()) for l, b in betas.items()}})
        bar.set_postfix(loss=f"{np.mean([h['loss'] for h in history[-20:]]):.3f}",
                        prune=f"{np.mean(list(history[-1]['rate'].values())):.2f}")
        if step % cfg.checkpoint_every == 0 or step == cfg.episodes:
            save(last, final=False)
    save(out / "prune.pt", final=True)
    prov = {k: v for k, v in load_checkpoint(out / "prune.pt")["extra"].items() if k != "history"}
    prov["episodes_per_s"] = step / max(prov["wall_time_s"], 1e-9)
    atomic_write_json(out / "prune.json", prov)
    return out / "prune.pt"


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


def load_tracker_parts(prune_checkpoint: str | Path, checkpoint: str | Path | None = None,
                       dev: torch.device | None = None):
    """(full net, TrackConfig, (A_init, A_on), ψ, PruneConfig) for ``metartt-prune``: θ0 and rates from
    the meta checkpoint (default ``weights/meta.pt``), or for a ``--no-meta`` prune checkpoint from the
    pretrain checkpoint it was trained with (or ``checkpoint``) and the constant rates it used."""
    dev = dev or default_device()
    pruner, pc, extra = load_pruner(prune_checkpoint)
    model_cfg = ModelConfig(**load_checkpoint(prune_checkpoint)["model_config"])
    if pc.no_meta:
        src = checkpoint if checkpoint is not None else extra.get("meta_checkpoint")
        learner, _ = build_learner(src, pc, dev, model_cfg)
    else:
        src = Path(checkpoint) if checkpoint is not None else META_CHECKPOINT
        if not Path(src).exists():
            raise MetaRTTError(f"meta-learned checkpoint {src} not found; train one with "
                               f"'python -m metartt_lite meta-train --out DIR' and pass --checkpoint DIR/meta.pt")
        learner, _ = build_learner(src, pc, dev, model_cfg)
    if src is not None and extra.get("meta_checkpoint_sha1") and _sha1(src) != extra["meta_checkpoint_sha1"]:
        warnings.warn(f"{prune_checkpoint} was trained for another network than {src}; its masks may not fit")
    r_init, r_on = _fixed_rates(learner)
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
    taken as the prune checkpoint (the meta one is then ``weights/meta.pt``). ``tau``/``min_keep``
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


# ---------------------------------------------------------------------------------------------- CLI
def add_parser(sub) -> None:
    p = sub.add_parser("prune-train", help="meta-learn the one-shot channel-pruning network ψ (paper §4)")
    p.add_argument("--data", default=None)
    p.add_argument("--split", default="train")
    p.add_argument("--sequences", default=None)
    p.add_argument("--checkpoint", default=None,
                   help="meta checkpoint (meta.pt); with --no-meta a pretrain checkpoint (default: the shipped one)")
    p.add_argument("--out", required=True)
    p.add_argument("--episodes", type=int, default=PruneConfig.episodes)
    p.add_argument("--lambda", dest="lam", type=float, default=PruneConfig.lam)
    p.add_argument("--tau", type=float, default=PruneConfig.tau)
    p.add_argument("--lr", type=float, default=PruneConfig.lr)
    p.add_argument("--min-keep", type=int, default=None)
    p.add_argument("--absolute", action="store_true", help="absolute reconstruction error (paper) instead of relative")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--no-meta", action="store_true", help="prune a non-meta-learned network (θ0 pretrained, hand-set rates)")
    p.add_argument("--static-mask", action="store_true", help="one learned mask for every video (no ψ)")
    p.add_argument("--frame-step", type=int, default=None)
    p.set_defaults(func=_run)


def prune_config(*, checkpoint: str | Path | None = None, no_meta: bool = False, static_mask: bool = False,
                 frame_step: int | None = None, tau: float = PruneConfig.tau, episodes: int = PruneConfig.episodes,
                 lr: float = PruneConfig.lr, lam: float = PruneConfig.lam, min_keep: int | None = None,
                 absolute: bool = False, seed: int = 0) -> PruneConfig:
    """The PruneConfig ``prune-train``'s flags describe, from plain keywords (the flags' names)."""
    if no_meta:
        mc = PruneConfig().meta
    else:
        if not checkpoint:
            raise MetaRTTError("prune-train needs --checkpoint META.pt (or --no-meta)")
        mc = meta_config_from_checkpoint(checkpoint)
    if frame_step is not None:
        mc = replace(mc, cache=replace(mc.cache, frame_step=frame_step))
    if tau < 0 or tau > 1:
        raise MetaRTTError(f"--tau {tau} is outside [0, 1]")
    return PruneConfig(episodes=episodes, lr=lr, lam=lam, tau=tau, min_keep=min_keep,
                       relative=not absolute, static_mask=static_mask, no_meta=no_meta,
                       seed=seed, meta=mc)


def config_from_args(args: argparse.Namespace) -> PruneConfig:
    return prune_config(checkpoint=args.checkpoint, no_meta=args.no_meta, static_mask=args.static_mask,
                        frame_step=args.frame_step, tau=args.tau, episodes=args.episodes, lr=args.lr, lam=args.lam,
                        min_keep=args.min_keep, absolute=args.absolute, seed=args.seed)


def _run(args: argparse.Namespace) -> int:
    import sys
    cfg = config_from_args(args)
    ckpt = args.checkpoint
    if args.no_meta and ckpt is None and PRETRAINED.exists():
        ckpt = PRETRAINED
    seqs = load_split(data_root(args.data), split=args.split, names=args.sequences)
    path = prune_train(seqs, Path(args.out), ckpt, cfg, resume=args.resume,
                       command="python -m metartt_lite " + " ".join(sys.argv[1:]))
    print(f"wrote {path}")
    return 0

"""Meta-training the pruning network ψ (paper §4, Eqs. 9, 11, 12): the loss, the episode loop, its CLI.

**Loss (Eqs. 9, 11).** For each step of an episode's trajectory — D_init with θ_init^K, D_on with each
θ_on^k (k = 1..K_on), D_test (std positives + negatives + hard examples) with θ_on^{K_on} — the LASSO
loss ``λ Σ_l mean(β^l) + Σ_{l∈S} E_x ‖F^l − F_B^l‖₂ / E_x ‖F^l‖₂``. Two normalisations, both
deliberate: the L1 norm is divided by the channel count (``mean(β^l)``), so λ does not depend on the
layer widths; the reconstruction error is divided by the batch's mean feature norm (detached), so the
three layers weigh alike whatever their activation scale and λ is scale-free (``relative=False`` gives
the paper's absolute ‖·‖₂). The trajectory comes from :func:`metartt_lite.train.meta.episode_loss` with θ0
and the rates fixed (every tensor detached); only ψ is trained (Adam, lr 5e-5 as the paper).
With ``--meta-tracker`` checkpoints (K_on = 0) the D_test term uses θ_init^K.

``--no-meta`` trains ψ for a network that was *not* meta-learned: θ0 from a pretrain checkpoint (or the
seeded initialisation), and constant hand-set rates ``MetaConfig.init_rate`` for each of K_init/K_on
steps instead of the meta checkpoint's A_init/A_on; the trajectory is otherwise produced the same way.
(The paper's Table 3 "no meta-learning" row is described as training ψ on the first frame only; that
reading is not implemented.)
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from tqdm.auto import tqdm

from ..core.checkpoint import PRETRAINED, load_checkpoint, load_optimizer_state, save_checkpoint
from ..core.config import ModelConfig
from ..core.utils import (MetaRTTError, atomic_write_json, check_output_dir, device as default_device, git_commit, git_dirty,
                          remove_stale_temps)
from ..data.sequences import data_root, load_split
from ..model.net import TrackerNet, build_net, load_pretrained_into
from ..model.pruning_net import MaskPredictor, psi_inputs
from ..model.surgery import LAYERS, hard_keep, layer_features, layer_widths, prune_rates
from . import meta
from .episodes import EpisodeConfig
from .features import CacheConfig, cache_sequence


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



# ------------------------------------------------------------------------------ learner / tracker parts
def file_sha1(path: str | Path | None) -> str | None:
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


def fixed_rates(learner: meta.MetaLearner) -> tuple[list, list]:
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
    meta_sha = file_sha1(meta_checkpoint)

    def summary() -> dict:
        tail = history[-100:]
        rate = {l: float(np.mean([h["rate"][l] for h in tail])) for l in LAYERS} if tail else {}
        loss = float(np.mean([h["loss"] for h in history[-25:]])) if history else None
        return {"mean_prune_rate": rate, "final_loss": loss}

    def save(path: Path, final: bool) -> None:
        extra = {"step": step, "history": history, "wall_time_s": wall_prev + time.time() - t_start,
                 "config": asdict(cfg), "widths": widths, "sequences": names, "episodes": cfg.episodes,
                 "lambda": cfg.lam, "tau": cfg.tau, "command": command, "commit": git_commit(), "dirty": git_dirty(),
                 "selection": "last episode", "device": str(dev),
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
    cfg = config_from_args(args)
    ckpt = args.checkpoint
    if args.no_meta and ckpt is None:
        if not PRETRAINED.exists():  # never a silent random-weights run
            raise MetaRTTError(f"--no-meta prunes the pretrained net, but the shipped pretrain checkpoint "
                               f"{PRETRAINED} is missing; run 'python -m metartt_lite pretrain' or pass --checkpoint")
        ckpt = PRETRAINED
    seqs = load_split(data_root(args.data), split=args.split, names=args.sequences)
    path = prune_train(seqs, Path(args.out), ckpt, cfg, resume=args.resume,
                       command="python -m metartt_lite " + " ".join(sys.argv[1:]))
    print(f"wrote {path}")
    return 0

"""Meta-training (paper §3, Algorithm 1): learn M = {θ0, A_init, A_on} so that K_init = K_on = 5 steps
of Eqs. 2–3 give a good tracker. L_meta = L_test(θ_init^K) + L_test(θ_on^K) (Eq. 7), differentiated
through both inner loops (Eq. 8; ``create_graph=True``, or first-order with ``first_order``).

θ0 covers the shared conv *and* the head; only the head adapts inside an episode, the shared conv is
learned through the meta-gradient alone (paper §5). Learning rates are stored as log-rates ρ and used as
α = exp(ρ), which keeps them positive without clipping. The trunk is frozen and read from the feature
cache. Randomness is derived from (seed, episode index), so a resumed or sharded run sees exactly the
same episodes as a straight one.
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from ..core import boxes as bx
from .inner_loop import adapt
from ..core.checkpoint import (PRETRAINED, check_tensors, checkpoint_model_config, load_checkpoint, load_optimizer_state,
                               save_checkpoint)
from ..core.config import ModelConfig
from .episodes import Episode, EpisodeConfig, pos_neg, sample_episode
from ..data.synthetic import SyntheticConfig, make_clips
from .features import CacheConfig, SequenceFeatures, cache_sequence
from .losses import meta_test_loss, pos_neg_ce
from ..data.sequences import data_root, load_split
from ..model.net import TrackerNet, build_net, load_pretrained_into
from ..core.utils import (MetaRTTError, add_device_argument, atomic_write_json, check_output_dir, device as default_device,
                    dist_backend, git_commit, git_dirty, remove_stale_temps)


@dataclass
class MetaConfig:
    episodes: int = 2000
    meta_batch: int = 4
    lr: float = 1e-4               # Adam on θ0 (paper: 1e-4)
    lr_rates: float = 1e-3         # Adam on the log-rates ρ
    k_init: int = 5                # K_init
    k_on: int = 5                  # K_on
    init_rate: float = 5e-3        # α at the start of meta-training
    gamma: float = 0.5             # γ, weight of the triplet loss (Eq. 4)
    xi: float = 0.5                # ξ, triplet margin (Eq. 5)
    batch_neg: int = 96            # hard negatives per inner step, mined from the episode's negative pool
    first_order: bool = False
    scalar_lr: bool = False        # --scalar-lr: one α per parameter tensor and step
    meta_tracker: bool = False     # --meta-tracker: one initial step, no online adaptation
    grad_clip: float = 10.0
    checkpoint_every: int = 25     # meta-steps
    seed: int = 0
    learn_theta: bool = True       # False: keep θ0 from pretraining, meta-learn only A_init, A_on (--rates-only)
    synthetic_ratio: float = 0.0   # share of episodes drawn from synthetic clips (GOTURN-style, synthetic.py)
    n_synthetic: int = 0           # synthetic clips made from train frames (0: none)
    holdout_fold: int = -1         # ≥ 0: hold aside train sequences i with i % n_folds == fold for model selection
    n_folds: int = 4
    val_every: int = 25            # meta-steps between validation meta-losses
    val_episodes: int = 32         # fixed episodes on the held-aside sequences
    patience: int = 0              # stop after this many validations without improvement (0: never)
    episode: EpisodeConfig = field(default_factory=lambda: EpisodeConfig(n_neg=256, n_neg_on=64))
    cache: CacheConfig = field(default_factory=CacheConfig)


class MetaLearner(torch.nn.Module):
    """Holds M = {θ0 (shared conv + head), A_init, A_on}; ``rates(phase)`` gives α^k = exp(ρ^k) per step."""

    def __init__(self, net: TrackerNet, cfg: MetaConfig):
        super().__init__()
        self.net = net
        self.cfg = cfg
        self.k_init = 1 if cfg.meta_tracker else cfg.k_init
        self.k_on = 0 if cfg.meta_tracker else cfg.k_on
        self.names = list(net.head_params().keys())
        self.log_rates = torch.nn.ParameterDict()
        for phase, K in (("init", self.k_init), ("on", self.k_on)):
            for k in range(K):
                for name, p in net.head_params().items():
                    shape = () if cfg.scalar_lr else p.shape
                    self.log_rates[self.key(phase, k, name)] = torch.nn.Parameter(torch.full(shape, float(np.log(cfg.init_rate))))

    @staticmethod
    def key(phase: str, k: int, name: str) -> str:
        return f"{phase}{k}__{name.replace('.', '_')}"

    def rates(self, phase: str) -> list[dict[str, torch.Tensor]]:
        K = self.k_init if phase == "init" else self.k_on
        return [{n: self.log_rates[self.key(phase, k, n)].exp() for n in self.names} for k in range(K)]

    def theta_params(self) -> list[torch.nn.Parameter]:
        return list(self.net.shared.parameters()) + list(self.net.head.parameters())


def _hard_batch(net: TrackerNet, theta, neg: torch.Tensor, n: int) -> torch.Tensor:
    """Hard-negative mining (RT-MDNet): the ``n`` negatives the current θ scores most positive."""
    if len(neg) <= n:
        return neg
    with torch.no_grad():
        net.head.eval()
        s = net.head_forward(neg.detach(), {k: v.detach() for k, v in theta.items()})[:, 1]
    return neg[torch.topk(s, n).indices]


def _ce_loss_fn(net: TrackerNet, pos: torch.Tensor, neg: torch.Tensor, n_neg: int):
    """The inner-loop loss of Eq. 1 on D (all positives, hard-mined negatives, dropout on)."""
    def loss_fn(theta, k):
        hn = _hard_batch(net, theta, neg, n_neg)
        net.head.train()
        out = net.head_forward(torch.cat([pos, hn]), theta)
        return pos_neg_ce(out[: len(pos)], out[len(pos):])
    return loss_fn


def episode_loss(learner: MetaLearner, feats: list[SequenceFeatures], ep: Episode, dev: torch.device,
                 trajectory: dict | None = None, create_graph: bool | None = None) -> tuple[torch.Tensor, dict]:
    """Run one simulated episode (Algorithm 1, lines 5–12) and return L_meta (Eq. 7) and statistics.

    ``trajectory``, if given, receives D_init/D_on/D_test features and every θ^k (for the pruning loss).
    ``create_graph`` overrides the config's second/first order (validation needs no outer graph).
    ``stats`` (with K_on > 0) holds the estimated ``targets`` of the online frames and ``on_boxes``, the
    D_on boxes sampled around them: one ``(positives, negatives)`` pair of (N, 4) arrays per online frame.
    """
    cfg, net = learner.cfg, learner.net
    second_order = (not cfg.first_order) if create_graph is None else create_graph
    ec = cfg.episode
    S = net.cfg.crop_size
    sf = feats[ep.seq]
    # one shared-conv pass over all frames of the episode (+ hard frames), keeping the graph to θ0's conv
    keys = [(ep.seq, f) for f in ep.frames] + [(j, f) for j, f, _ in ep.hard]
    trunk = torch.stack([feats[j].trunk[f] for j, f in keys]).to(dev).float()
    fmap = net.shared_forward(trunk)

    def roi(slot: int, seq: int, frame: int, boxes: np.ndarray) -> torch.Tensor:
        crop = feats[seq].crop(frame, S)
        return net.roi_features(fmap, crop.to_crop(boxes), torch.full((len(boxes),), slot, device=fmap.device))

    pos_init, neg_init = roi(0, ep.seq, ep.init.frame, ep.init.pos), roi(0, ep.seq, ep.init.frame, ep.init.neg)
    theta0 = net.head_params()
    traj_init: list = []
    theta_init = adapt(theta0, _ce_loss_fn(net, pos_init, neg_init, cfg.batch_neg), learner.rates("init"),
                       create_graph=second_order, trajectory=traj_init)

    # D_test: std from the last frame's ground truth, hard from other sequences' targets
    t_slot = len(ep.frames) - 1
    test_pos, test_neg = roi(t_slot, ep.seq, ep.test.frame, ep.test.pos), roi(t_slot, ep.seq, ep.test.frame, ep.test.neg)
    hard = torch.cat([roi(len(ep.frames) + i, j, f, b) for i, (j, f, b) in enumerate(ep.hard)]) if ep.hard else None
    gen = torch.Generator().manual_seed(int(ep.rng.integers(2**31)))

    def l_test(theta) -> torch.Tensor:
        net.head.eval()
        outs = net.head_forward(torch.cat([test_pos, test_neg] + ([hard] if hard is not None else [])), theta)
        np_, nn_ = len(test_pos), len(test_neg)
        return meta_test_loss(outs[:np_], outs[np_:np_ + nn_], outs[np_ + nn_:] if hard is not None else None,
                              cfg.gamma, cfg.xi, gen)

    loss_init = l_test(theta_init)
    stats = {"l_test_init": float(loss_init.detach())}
    meta_loss = loss_init
    if learner.k_on > 0:
        # D_on around the targets estimated by θ_init^K (or the ground truth for the ablation)
        pos_on, neg_on, est_iou, targets, on_boxes = [], [], [], [], []
        for i, (f, cand) in enumerate(zip(ep.frames[1:-1], ep.online_candidates), start=1):
            if ec.estimated_target:
                with torch.no_grad():
                    net.head.eval()
                    s = net.head_forward(roi(i, ep.seq, f, cand).detach(), {k: v.detach() for k, v in theta_init.items()})[:, 1]
                target = cand[int(torch.argmax(s))]
            else:
                target = sf.gt[f]
            est_iou.append(float(bx.iou(target, sf.gt[f])))
            targets.append(np.asarray(target, dtype=np.float64))
            p, n = pos_neg(sf, f, target, ec.n_pos_on, ec.n_neg_on, ec, ep.rng)
            on_boxes.append((p, n))
            pos_on.append(roi(i, ep.seq, f, p)); neg_on.append(roi(i, ep.seq, f, n))
        pos_on, neg_on = torch.cat(pos_on), torch.cat(neg_on)
        traj_on: list = []
        theta_on = adapt(theta_init, _ce_loss_fn(net, pos_on, neg_on, cfg.batch_neg), learner.rates("on"),
                         create_graph=second_order, trajectory=traj_on)
        loss_on = l_test(theta_on)
        meta_loss = meta_loss + loss_on
        stats.update(l_test_on=float(loss_on.detach()), est_iou=float(np.mean(est_iou)), targets=targets,
                     on_boxes=on_boxes)
        if trajectory is not None:
            trajectory.update(pos_on=pos_on, neg_on=neg_on, theta_on=traj_on)
    if trajectory is not None:
        trajectory.update(pos_init=pos_init, neg_init=neg_init, theta_init=traj_init, test_pos=test_pos,
                          test_neg=test_neg, hard=hard, fmap=fmap, theta0=theta0)
    stats["meta_loss"] = float(meta_loss.detach())
    return meta_loss, stats


def make_episode(feats: list[SequenceFeatures], cfg: MetaConfig, index: int, n_real: int | None = None,
                 offset: int = 0) -> Episode:
    """Episode number ``index``: its sequence and samples depend only on (seed, index).

    ``feats[:n_real]`` are real videos, the rest synthetic clips; with ``synthetic_ratio`` > 0 an episode
    is on a clip with that probability. D_test^hard comes from real videos other than the episode's source.
    ``offset`` shifts the stream (validation episodes use their own)."""
    rng = np.random.default_rng([cfg.seed + offset, index])
    n_real = len(feats) if n_real is None else n_real
    if n_real < len(feats) and cfg.synthetic_ratio > 0 and rng.random() < cfg.synthetic_ratio:
        seq = n_real + int(rng.integers(len(feats) - n_real))
    else:
        seq = int(rng.integers(n_real))
    src = feats[seq].source or feats[seq].name
    pool = [j for j in range(n_real) if (feats[j].source or feats[j].name) != src]
    return sample_episode(feats, seq, cfg.episode, rng, hard_pool=pool)


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def meta_step(learner: MetaLearner, opt: torch.optim.Optimizer, feats: list[SequenceFeatures], indices: list[int],
              dev: torch.device, n_real: int | None = None) -> tuple[float, list[dict]]:
    """One meta-update (Algorithm 1, lines 4–14 for one meta-batch): zero the gradients,
    :func:`meta_gradient` of the mean L_meta over episodes ``indices``, clip the gradient norm to
    ``cfg.grad_clip``, one step of ``opt``. Returns the mean L_meta and the episodes' statistics.
    :func:`meta_train` runs exactly this, between its checkpoints."""
    opt.zero_grad(set_to_none=True)
    loss, stats = meta_gradient(learner, feats, indices, dev, n_real)
    torch.nn.utils.clip_grad_norm_(list(learner.parameters()), learner.cfg.grad_clip)
    opt.step()
    return loss, stats


def meta_gradient(learner: MetaLearner, feats: list[SequenceFeatures], indices: list[int], dev: torch.device,
                  n_real: int | None = None) -> tuple[float, list[dict]]:
    """Accumulate ∇_M of the mean L_meta over episodes ``indices`` (this rank's share, all-reduced)."""
    rank, world = _world()
    mine = [i for j, i in enumerate(indices) if j % world == rank]
    total, stats = 0.0, []
    for i in mine:
        torch.manual_seed(hash((learner.cfg.seed, i)) % (2**31))  # dropout masks of this episode
        loss, st = episode_loss(learner, feats, make_episode(feats, learner.cfg, i, n_real), dev)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"meta-loss is {float(loss.detach())} on episode {i}")
        (loss / len(indices)).backward()
        total += float(loss.detach())
        stats.append(st)
    if dist.is_available() and dist.is_initialized():  # also with one process (torchrun --nproc_per_node=1)
        # every tensor all-reduced lives on the learner's device: NCCL only reduces CUDA tensors
        pdev = next(learner.parameters()).device
        for p in learner.parameters():
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad)
        t = torch.tensor([total], dtype=torch.float64, device=pdev)
        dist.all_reduce(t)
        total = float(t)
    return total / len(indices), stats


VAL_SEED_OFFSET = 1_000_003  # validation episodes draw from their own stream


def validation_loss(learner: MetaLearner, feats: list[SequenceFeatures], n_val: int, n_episodes: int,
                    dev: torch.device) -> float:
    """Mean L_meta (first order, no outer graph, dropout masks fixed) over ``n_episodes`` fixed episodes
    on ``feats[:n_val]`` (the held-aside train sequences); D_test^hard from every other real video."""
    cfg = learner.cfg
    total = 0.0
    with torch.random.fork_rng(devices=[]):
        for i in range(n_episodes):
            torch.manual_seed(i)
            rng = np.random.default_rng([cfg.seed + VAL_SEED_OFFSET, i])
            ep = sample_episode(feats, int(rng.integers(n_val)), cfg.episode, rng)
            loss, _ = episode_loss(learner, feats, ep, dev, create_graph=False)
            total += float(loss.detach())
    return total / n_episodes


def split_holdout(sequences: list, fold: int, n_folds: int) -> tuple[list, list]:
    """(train, held-aside) by sequence: sequence i (in name order) is held aside when i % n_folds == fold."""
    if fold < 0:
        return list(sequences), []
    if not 0 <= fold < n_folds:
        raise MetaRTTError(f"--holdout-fold {fold} must be in [0, {n_folds})")
    order = sorted(sequences, key=lambda s: s.name)
    held = [s for i, s in enumerate(order) if i % n_folds == fold]
    train = [s for s in sequences if s not in held]
    if len(train) < 2 or not held:
        raise MetaRTTError(f"fold {fold} of {n_folds} leaves {len(train)} train / {len(held)} held-aside sequences")
    return train, held


def build_optimizer(learner: MetaLearner, cfg: MetaConfig) -> torch.optim.Adam:
    groups = [{"params": list(learner.log_rates.parameters()), "lr": cfg.lr_rates}]
    if cfg.learn_theta:
        groups.insert(0, {"params": learner.theta_params(), "lr": cfg.lr})
    return torch.optim.Adam(groups)


def learner_tensors(learner: MetaLearner) -> dict[str, torch.Tensor]:
    t = {f"shared.{k}": v for k, v in learner.net.shared.state_dict().items()}
    t.update({f"head.{k}": v for k, v in learner.net.head.state_dict().items()})
    t.update({f"rate.{k}": v for k, v in learner.log_rates.items()})
    return t


def load_learner_tensors(learner: MetaLearner, tensors: dict[str, torch.Tensor], path: str | Path = "checkpoint") -> None:
    want = {k: v.shape for k, v in learner_tensors(learner).items()}
    check_tensors({"tensors": tensors}, want, path)
    with torch.no_grad():
        for k, v in learner_tensors(learner).items():
            v.copy_(tensors[k].to(v.dtype))


def meta_train(sequences: list, out: Path, cfg: MetaConfig | None = None, model_cfg: ModelConfig | None = None,
               init_from: str | Path | None = None, resume: bool = False, dev: torch.device | None = None,
               command: str = "", progress: bool = True) -> Path:
    """Meta-train on ``sequences`` and write ``out/meta.pt`` (+ ``meta_last.pt`` while running). The network
    has ``model_cfg``, else the architecture of ``init_from`` (e.g. a ``pretrain --trunk-blocks 4`` checkpoint)."""
    cfg = cfg or MetaConfig()
    model_cfg = model_cfg or (checkpoint_model_config(init_from) if init_from else ModelConfig())
    dev = dev or default_device()
    out = check_output_dir(out)
    if cfg.episodes < 1 or cfg.meta_batch < 1:
        raise MetaRTTError(f"--episodes and --meta-batch must be at least 1 (got {cfg.episodes}, {cfg.meta_batch})")
    if not sequences:
        raise MetaRTTError("meta-training needs at least 1 training sequence (the split is empty)")
    if len(sequences) < 2 and cfg.episode.hard_examples:
        raise MetaRTTError("meta-training with hard examples needs at least 2 training sequences")
    net = build_net(model_cfg, dev, seed=cfg.seed)
    if init_from:
        load_pretrained_into(net, init_from)
    learner = MetaLearner(net, cfg).to(dev)
    opt = build_optimizer(learner, cfg)
    rank, world = _world()
    step, history, wall_prev = 0, [], 0.0
    last = out / "meta_last.pt"
    if resume:
        remove_stale_temps(last)  # left by a run killed in the middle of a checkpoint write
    obj = None
    if resume and last.exists():  # before the feature cache: a bad file fails fast
        obj = load_checkpoint(last, kind="meta", model_cfg=model_cfg)
        load_learner_tensors(learner, obj["tensors"], last)
        load_optimizer_state(opt, obj["extra"], last)
        step, history, wall_prev = obj["extra"]["step"], obj["extra"]["history"], obj["extra"]["wall_time_s"]
    t0 = time.time()
    train_seqs, held = split_holdout(sequences, cfg.holdout_fold, cfg.n_folds)
    feats = [cache_sequence(s, net.trunk, model_cfg, cfg.cache, dev=dev) for s in train_seqs]
    n_real = len(feats)
    clips = make_clips(train_seqs, cfg.n_synthetic, SyntheticConfig(), seed=cfg.seed) if cfg.n_synthetic else []
    for c in clips:
        sf = cache_sequence(c, net.trunk, model_cfg, cfg.cache, dev=dev)
        sf.distractors = np.asarray(c.distractors)[sf.frame_index]
        sf.source = c.source
        feats.append(sf)
    # validation: held-aside videos first, then every training video (D_test^hard pool)
    val_feats = [cache_sequence(s, net.trunk, model_cfg, cfg.cache, dev=dev) for s in held] + feats[:n_real]
    t_cache = time.time() - t0
    n_steps = -(-cfg.episodes // cfg.meta_batch)
    names = [s.name for s in train_seqs]
    selection = {"criterion": "last step" if not held else
                 f"min validation meta-loss (first order, {cfg.val_episodes} fixed episodes) on held-aside train "
                 f"sequences (fold {cfg.holdout_fold} of {cfg.n_folds}), every {cfg.val_every} meta-steps"
                 + (f", early stop after {cfg.patience} validations without improvement" if cfg.patience else ""),
                 "held_aside": [s.name for s in held], "val_history": [], "best_step": None, "best_val_loss": None}
    best_path = out / "meta_best.pt"
    if obj is not None:
        selection = obj["extra"].get("selection", selection)
    mix = {"real_sequences": n_real, "synthetic_clips": len(clips), "synthetic_ratio": cfg.synthetic_ratio if clips else 0.0}

    def save(path: Path, final: bool, tensors: dict | None = None) -> None:
        if rank != 0:
            return
        extra = {"step": step, "history": history, "wall_time_s": wall_prev + time.time() - t_start,
                 "config": asdict(cfg), "sequences": names, "command": command, "commit": git_commit(),
                 "dirty": git_dirty(), "device": str(dev), "world_size": world,
                 "init_from": str(init_from) if init_from else None, "cache_time_s": t_cache,
                 "episode_mix": mix, "selection": selection}
        if not final:
            extra["optimizer"] = opt.state_dict()
        tensors = dict(learner_tensors(learner) if tensors is None else tensors)
        if final:  # compact: rates as float16 log-rates
            tensors = {k: (v.half() if k.startswith("rate.") else v) for k, v in tensors.items()}
        save_checkpoint(path, "meta", model_cfg, tensors, extra)

    def validate() -> bool:
        """Record the validation meta-loss; keep the best tensors; True when patience has run out."""
        v = validation_loss(learner, val_feats, len(held), cfg.val_episodes, dev)
        selection["val_history"].append({"step": step, "val_loss": v})
        if selection["best_val_loss"] is None or v < selection["best_val_loss"]:
            selection.update(best_step=step, best_val_loss=v)
            save(best_path, final=True)
        since = sum(1 for h in selection["val_history"] if h["step"] > selection["best_step"])
        return bool(cfg.patience) and since >= cfg.patience

    t_start = time.time()
    if held and not selection["val_history"]:
        validate()  # θ0 before any meta-step is a candidate too
    bar = tqdm(range(step, n_steps), desc="meta-train", disable=not progress or rank != 0, initial=step, total=n_steps)
    for step_i in bar:
        idx = list(range(step_i * cfg.meta_batch, min((step_i + 1) * cfg.meta_batch, cfg.episodes)))
        try:
            loss, stats = meta_step(learner, opt, feats, idx, dev, n_real)
        except FloatingPointError as e:
            raise MetaRTTError(f"{e}; stopped; the last good checkpoint is {last if last.exists() else 'none yet'}") from None
        step = step_i + 1
        history.append({"step": step, "meta_loss": loss,
                        "est_iou": float(np.mean([s.get("est_iou", np.nan) for s in stats])) if stats else None})
        bar.set_postfix(meta_loss=f"{np.mean([h['meta_loss'] for h in history[-20:]]):.3f}")
        stop = held and (step % cfg.val_every == 0 or step == n_steps) and validate()
        if step % cfg.checkpoint_every == 0 or step == n_steps or stop:
            save(last, final=False)
        if stop:
            break
    if held:  # the selected checkpoint: the best validation meta-loss
        best = load_checkpoint(best_path, kind="meta", model_cfg=model_cfg)["tensors"]
        save(out / "meta.pt", final=True, tensors=best)
    else:
        save(out / "meta.pt", final=True)
    if rank == 0:
        prov = {k: v for k, v in load_checkpoint(out / "meta.pt")["extra"].items() if k != "history"}
        prov.update(episodes=cfg.episodes, steps_run=step, final_meta_loss=float(np.mean([h["meta_loss"] for h in history[-25:]])),
                    episodes_per_s=step * cfg.meta_batch / max(prov["wall_time_s"], 1e-9),
                    meta_loss_curve=[{"step": h["step"], "meta_loss": h["meta_loss"]} for h in history[::max(1, len(history) // 100)]])
        atomic_write_json(out / "meta.json", prov)
    return out / "meta.pt"


def load_meta(path: str | Path, net: TrackerNet) -> tuple[list, list, dict]:
    """Load θ0 into ``net`` and return (A_init, A_on, extra) as lists of {name: α} per step."""
    obj = load_checkpoint(path, kind="meta", model_cfg=net.cfg)
    extra = obj["extra"]
    cfg = MetaConfig(**{k: v for k, v in extra["config"].items() if k not in ("episode", "cache")})
    learner = MetaLearner(net, cfg).to(net.shared.weight.device)  # the rates on the net's device
    load_learner_tensors(learner, obj["tensors"], path)
    with torch.no_grad():
        r_init = [{k: v.detach().clone() for k, v in d.items()} for d in learner.rates("init")]
        r_on = [{k: v.detach().clone() for k, v in d.items()} for d in learner.rates("on")]
    return r_init, r_on, extra


def add_parser(sub) -> None:
    p = sub.add_parser("meta-train", help="meta-learn θ0, A_init, A_on on the train split (Algorithm 1)")
    p.add_argument("--data", default=None)
    p.add_argument("--split", default="train")
    p.add_argument("--sequences", default=None)
    p.add_argument("--out", required=True)
    p.add_argument("--episodes", type=int, default=MetaConfig.episodes)
    p.add_argument("--meta-batch", type=int, default=MetaConfig.meta_batch)
    p.add_argument("--lr", type=float, default=MetaConfig.lr)
    p.add_argument("--lr-rates", type=float, default=MetaConfig.lr_rates)
    p.add_argument("--gamma", type=float, default=MetaConfig.gamma)
    p.add_argument("--xi", type=float, default=MetaConfig.xi)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init-from", default="pretrained", help="'pretrained' (shipped pretrain.pt), 'scratch', or a path")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--first-order", action="store_true")
    p.add_argument("--no-estimated-target", action="store_true")
    p.add_argument("--no-hard-examples", action="store_true")
    p.add_argument("--scalar-lr", action="store_true")
    p.add_argument("--meta-tracker", action="store_true")
    p.add_argument("--frame-step", type=int, default=CacheConfig.frame_step)
    p.add_argument("--rates-only", action="store_true", help="keep θ0 from --init-from; meta-learn only A_init, A_on")
    p.add_argument("--synthetic", type=int, default=0, help="synthetic clips made from train frames (GOTURN-style)")
    p.add_argument("--synthetic-ratio", type=float, default=0.5, help="share of episodes on synthetic clips")
    p.add_argument("--holdout-fold", type=int, default=-1,
                   help="hold aside train sequences of this fold for the validation meta-loss; meta.pt is the best")
    p.add_argument("--n-folds", type=int, default=MetaConfig.n_folds)
    p.add_argument("--val-every", type=int, default=MetaConfig.val_every)
    p.add_argument("--val-episodes", type=int, default=MetaConfig.val_episodes)
    p.add_argument("--patience", type=int, default=0, help="early stop after this many validations without improvement")
    p.add_argument("--test-gap", type=int, default=0, help="D_test frame up to max_gap + this many cached frames away")
    p.add_argument("--near-neg", type=int, default=0, help="extra D_test negatives near the target")
    p.add_argument("--distractor-neg", type=int, default=0, help="extra D_test negatives on pasted distractors")
    add_device_argument(p)
    p.set_defaults(func=_run)


def meta_config(*, episodes: int = MetaConfig.episodes, meta_batch: int = MetaConfig.meta_batch,
                lr: float = MetaConfig.lr, lr_rates: float = MetaConfig.lr_rates, gamma: float = MetaConfig.gamma,
                xi: float = MetaConfig.xi, seed: int = 0, first_order: bool = False,
                no_estimated_target: bool = False, no_hard_examples: bool = False, scalar_lr: bool = False,
                meta_tracker: bool = False, frame_step: int | None = None, rates_only: bool = False,
                synthetic: int = 0, synthetic_ratio: float = 0.5, holdout_fold: int = -1,
                n_folds: int = MetaConfig.n_folds, val_every: int = MetaConfig.val_every,
                val_episodes: int = MetaConfig.val_episodes, patience: int = 0, test_gap: int = 0,
                near_neg: int = 0, distractor_neg: int = 0) -> MetaConfig:
    """The MetaConfig ``meta-train``'s flags describe, from plain keywords (the flags' names)."""
    ep = EpisodeConfig(n_neg=256, n_neg_on=64, estimated_target=not no_estimated_target,
                       hard_examples=not no_hard_examples, test_gap=test_gap, n_near_neg=near_neg,
                       n_distractor_neg=distractor_neg)
    return MetaConfig(episodes=episodes, meta_batch=meta_batch, lr=lr, lr_rates=lr_rates,
                      gamma=0.0 if no_hard_examples else gamma, xi=xi, seed=seed,
                      first_order=first_order, scalar_lr=scalar_lr, meta_tracker=meta_tracker,
                      episode=ep, cache=CacheConfig() if frame_step is None else CacheConfig(frame_step=frame_step),
                      learn_theta=not rates_only, n_synthetic=synthetic,
                      synthetic_ratio=synthetic_ratio if synthetic else 0.0, holdout_fold=holdout_fold,
                      n_folds=n_folds, val_every=val_every, val_episodes=val_episodes, patience=patience)


def config_from_args(args: argparse.Namespace) -> MetaConfig:
    g = lambda k, d=0: getattr(args, k, d)  # noqa: E731  (namespaces built before the newer flags existed)
    return meta_config(episodes=args.episodes, meta_batch=args.meta_batch, lr=args.lr, lr_rates=args.lr_rates,
                       gamma=args.gamma, xi=args.xi, seed=args.seed, first_order=args.first_order,
                       no_estimated_target=args.no_estimated_target, no_hard_examples=args.no_hard_examples,
                       scalar_lr=args.scalar_lr, meta_tracker=args.meta_tracker, frame_step=args.frame_step,
                       rates_only=g("rates_only", False), synthetic=g("synthetic"),
                       synthetic_ratio=g("synthetic_ratio", 0.5), holdout_fold=g("holdout_fold", -1),
                       n_folds=g("n_folds", MetaConfig.n_folds), val_every=g("val_every", MetaConfig.val_every),
                       val_episodes=g("val_episodes", MetaConfig.val_episodes), patience=g("patience"),
                       test_gap=g("test_gap"), near_neg=g("near_neg"), distractor_neg=g("distractor_neg"))


def _distributed_launch() -> bool:
    """Launched by torchrun (``LOCAL_RANK`` set; also with one process) or with ``WORLD_SIZE`` > 1."""
    return "LOCAL_RANK" in os.environ or int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(dev: torch.device) -> torch.device:
    """Under torchrun, join the process group with the backend for ``dev``
    (:func:`~metartt_lite.core.utils.dist_backend`: NCCL only when ``dev`` is CUDA, else Gloo; so
    ``METARTT_DEVICE=cpu`` on a CUDA machine runs Gloo on CPU tensors). On CUDA this rank's GPU is
    ``cuda:LOCAL_RANK`` (or the index given), made current with ``torch.cuda.set_device`` before
    ``init_process_group``. Returns the device this rank computes on."""
    if not _distributed_launch() or not dist.is_available():
        return dev
    if dev.type == "cuda":
        dev = torch.device("cuda", dev.index if dev.index is not None else int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(dist_backend(dev))
    return dev


def _run(args: argparse.Namespace) -> int:
    import sys
    owned = dist.is_available() and not dist.is_initialized()  # a group made here is destroyed here
    dev = init_distributed(default_device(getattr(args, "device", None)))
    try:
        if args.init_from == "pretrained" and not PRETRAINED.exists():  # never a silent from-scratch run
            raise MetaRTTError(f"--init-from pretrained: the shipped pretrain checkpoint {PRETRAINED} is missing; "
                               f"run 'python -m metartt_lite pretrain', or pass --init-from scratch or a path")
        init = {"pretrained": PRETRAINED, "scratch": None}.get(args.init_from, args.init_from)
        if init is not None and not Path(init).exists():
            raise MetaRTTError(f"--init-from checkpoint {init} does not exist")
        if init is not None and not Path(init).is_file():
            raise MetaRTTError(f"--init-from checkpoint {init} is not a file")
        seqs = load_split(data_root(args.data), split=args.split, names=args.sequences)
        path = meta_train(seqs, Path(args.out), config_from_args(args), init_from=init, resume=args.resume, dev=dev,
                          command="python -m metartt_lite " + " ".join(sys.argv[1:]))
        if _world()[0] == 0:
            print(f"wrote {path}")
    finally:
        if owned and dist.is_initialized():
            dist.destroy_process_group()
    return 0

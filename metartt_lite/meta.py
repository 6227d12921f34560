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

from . import boxes as bx
from .adaptation import adapt
from .checkpoint import PRETRAINED, check_tensors, load_checkpoint, load_optimizer_state, save_checkpoint
from .config import ModelConfig
from .episodes import Episode, EpisodeConfig, pos_neg, sample_episode
from .features import CacheConfig, SequenceFeatures, cache_sequence
from .losses import meta_test_loss, pos_neg_ce
from .data import data_root, load_split
from .model import TrackerNet, build_net, load_pretrained_into
from .utils import (MetaRTTError, atomic_write_json, check_output_dir, device as default_device, git_commit,
                    remove_stale_temps)


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
                 trajectory: dict | None = None) -> tuple[torch.Tensor, dict]:
    """Run one simulated episode (Algorithm 1, lines 5–12) and return L_meta (Eq. 7) and statistics.

    ``trajectory``, if given, receives D_init/D_on/D_test features and every θ^k (for the pruning loss).
    """
    cfg, net = learner.cfg, learner.net
    ec = cfg.episode
    S = net.cfg.crop_size
    sf = feats[ep.seq]
    # one shared-conv pass over all frames of the episode (+ hard frames), keeping the graph to θ0's conv
    keys = [(ep.seq, f) for f in ep.frames] + [(j, f) for j, f, _ in ep.hard]
    trunk = torch.stack([feats[j].trunk[f] for j, f in keys]).to(dev).float()
    fmap = net.shared_forward(trunk)

    def roi(slot: int, seq: int, frame: int, boxes: np.ndarray) -> torch.Tensor:
        crop = feats[seq].crop(frame, S)
        return net.roi_features(fmap, crop.to_crop(boxes), torch.full((len(boxes),), slot))

    pos_init, neg_init = roi(0, ep.seq, ep.init.frame, ep.init.pos), roi(0, ep.seq, ep.init.frame, ep.init.neg)
    theta0 = net.head_params()
    traj_init: list = []
    theta_init = adapt(theta0, _ce_loss_fn(net, pos_init, neg_init, cfg.batch_neg), learner.rates("init"),
                       create_graph=not cfg.first_order, trajectory=traj_init)

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
        pos_on, neg_on, est_iou, targets = [], [], [], []
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
            pos_on.append(roi(i, ep.seq, f, p)); neg_on.append(roi(i, ep.seq, f, n))
        pos_on, neg_on = torch.cat(pos_on), torch.cat(neg_on)
        traj_on: list = []
        theta_on = adapt(theta_init, _ce_loss_fn(net, pos_on, neg_on, cfg.batch_neg), learner.rates("on"),
                         create_graph=not cfg.first_order, trajectory=traj_on)
        loss_on = l_test(theta_on)
        meta_loss = meta_loss + loss_on
        stats.update(l_test_on=float(loss_on.detach()), est_iou=float(np.mean(est_iou)), targets=targets)
        if trajectory is not None:
            trajectory.update(pos_on=pos_on, neg_on=neg_on, theta_on=traj_on)
    if trajectory is not None:
        trajectory.update(pos_init=pos_init, neg_init=neg_init, theta_init=traj_init, test_pos=test_pos,
                          test_neg=test_neg, hard=hard, fmap=fmap, theta0=theta0)
    stats["meta_loss"] = float(meta_loss.detach())
    return meta_loss, stats


def make_episode(feats: list[SequenceFeatures], cfg: MetaConfig, index: int) -> Episode:
    """Episode number ``index``: its sequence and samples depend only on (seed, index)."""
    rng = np.random.default_rng([cfg.seed, index])
    return sample_episode(feats, int(rng.integers(len(feats))), cfg.episode, rng)


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def meta_gradient(learner: MetaLearner, feats: list[SequenceFeatures], indices: list[int], dev: torch.device) -> tuple[float, list[dict]]:
    """Accumulate ∇_M of the mean L_meta over episodes ``indices`` (this rank's share, all-reduced)."""
    rank, world = _world()
    mine = [i for j, i in enumerate(indices) if j % world == rank]
    total, stats = 0.0, []
    for i in mine:
        torch.manual_seed(hash((learner.cfg.seed, i)) % (2**31))  # dropout masks of this episode
        loss, st = episode_loss(learner, feats, make_episode(feats, learner.cfg, i), dev)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"meta-loss is {float(loss.detach())} on episode {i}")
        (loss / len(indices)).backward()
        total += float(loss.detach())
        stats.append(st)
    if world > 1:
        for p in learner.parameters():
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad)
        t = torch.tensor([total], dtype=torch.float64)
        dist.all_reduce(t)
        total = float(t)
    return total / len(indices), stats


def build_optimizer(learner: MetaLearner, cfg: MetaConfig) -> torch.optim.Adam:
    return torch.optim.Adam([{"params": learner.theta_params(), "lr": cfg.lr},
                             {"params": list(learner.log_rates.parameters()), "lr": cfg.lr_rates}])


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
    """Meta-train on ``sequences`` and write ``out/meta.pt`` (+ ``meta_last.pt`` while running)."""
    cfg = cfg or MetaConfig()
    model_cfg = model_cfg or ModelConfig()
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
    if resume and last.exists():  # before the feature cache: a bad file fails fast
        obj = load_checkpoint(last, kind="meta", model_cfg=model_cfg)
        load_learner_tensors(learner, obj["tensors"], last)
        load_optimizer_state(opt, obj["extra"], last)
        step, history, wall_prev = obj["extra"]["step"], obj["extra"]["history"], obj["extra"]["wall_time_s"]
    t0 = time.time()
    feats = [cache_sequence(s, net.trunk, model_cfg, cfg.cache, dev=dev) for s in sequences]
    t_cache = time.time() - t0
    n_steps = -(-cfg.episodes // cfg.meta_batch)
    names = [s.name for s in sequences]

    def save(path: Path, final: bool) -> None:
        if rank != 0:
            return
        extra = {"step": step, "history": history, "wall_time_s": wall_prev + time.time() - t_start,
                 "config": asdict(cfg), "sequences": names, "command": command, "commit": git_commit(),
                 "device": str(dev), "world_size": world, "init_from": str(init_from) if init_from else None,
                 "cache_time_s": t_cache}
        if not final:
            extra["optimizer"] = opt.state_dict()
        tensors = learner_tensors(learner)
        if final:  # compact: rates as float16 log-rates
            tensors = {k: (v.half() if k.startswith("rate.") else v) for k, v in tensors.items()}
        save_checkpoint(path, "meta", model_cfg, tensors, extra)

    t_start = time.time()
    bar = tqdm(range(step, n_steps), desc="meta-train", disable=not progress or rank != 0, initial=step, total=n_steps)
    for step_i in bar:
        idx = list(range(step_i * cfg.meta_batch, min((step_i + 1) * cfg.meta_batch, cfg.episodes)))
        opt.zero_grad(set_to_none=True)
        try:
            loss, stats = meta_gradient(learner, feats, idx, dev)
        except FloatingPointError as e:
            raise MetaRTTError(f"{e}; stopped; the last good checkpoint is {last if last.exists() else 'none yet'}") from None
        torch.nn.utils.clip_grad_norm_(list(learner.parameters()), cfg.grad_clip)
        opt.step()
        step = step_i + 1
        history.append({"step": step, "meta_loss": loss,
                        "est_iou": float(np.mean([s.get("est_iou", np.nan) for s in stats])) if stats else None})
        bar.set_postfix(meta_loss=f"{np.mean([h['meta_loss'] for h in history[-20:]]):.3f}")
        if step % cfg.checkpoint_every == 0 or step == n_steps:
            save(last, final=False)
    save(out / "meta.pt", final=True)
    if rank == 0:
        prov = {k: v for k, v in load_checkpoint(out / "meta.pt")["extra"].items() if k != "history"}
        prov.update(episodes=cfg.episodes, final_meta_loss=float(np.mean([h["meta_loss"] for h in history[-25:]])),
                    episodes_per_s=cfg.episodes / max(prov["wall_time_s"], 1e-9))
        atomic_write_json(out / "meta.json", prov)
    return out / "meta.pt"


def load_meta(path: str | Path, net: TrackerNet) -> tuple[list, list, dict]:
    """Load θ0 into ``net`` and return (A_init, A_on, extra) as lists of {name: α} per step."""
    obj = load_checkpoint(path, kind="meta", model_cfg=net.cfg)
    extra = obj["extra"]
    cfg = MetaConfig(**{k: v for k, v in extra["config"].items() if k not in ("episode", "cache")})
    learner = MetaLearner(net, cfg)
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
    p.set_defaults(func=_run)


def meta_config(*, episodes: int = MetaConfig.episodes, meta_batch: int = MetaConfig.meta_batch,
                lr: float = MetaConfig.lr, lr_rates: float = MetaConfig.lr_rates, gamma: float = MetaConfig.gamma,
                xi: float = MetaConfig.xi, seed: int = 0, first_order: bool = False,
                no_estimated_target: bool = False, no_hard_examples: bool = False, scalar_lr: bool = False,
                meta_tracker: bool = False, frame_step: int | None = None) -> MetaConfig:
    """The MetaConfig ``meta-train``'s flags describe, from plain keywords (the flags' names)."""
    ep = EpisodeConfig(n_neg=256, n_neg_on=64, estimated_target=not no_estimated_target,
                       hard_examples=not no_hard_examples)
    return MetaConfig(episodes=episodes, meta_batch=meta_batch, lr=lr, lr_rates=lr_rates,
                      gamma=0.0 if no_hard_examples else gamma, xi=xi, seed=seed,
                      first_order=first_order, scalar_lr=scalar_lr, meta_tracker=meta_tracker,
                      episode=ep, cache=CacheConfig(frame_step=frame_step))


def config_from_args(args: argparse.Namespace) -> MetaConfig:
    return meta_config(episodes=args.episodes, meta_batch=args.meta_batch, lr=args.lr, lr_rates=args.lr_rates,
                       gamma=args.gamma, xi=args.xi, seed=args.seed, first_order=args.first_order,
                       no_estimated_target=args.no_estimated_target, no_hard_examples=args.no_hard_examples,
                       scalar_lr=args.scalar_lr, meta_tracker=args.meta_tracker, frame_step=args.frame_step)


def _run(args: argparse.Namespace) -> int:
    import sys
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    seqs = load_split(data_root(args.data), split=args.split, names=args.sequences)
    init = {"pretrained": PRETRAINED if PRETRAINED.exists() else None, "scratch": None}.get(args.init_from, args.init_from)
    path = meta_train(seqs, Path(args.out), config_from_args(args), init_from=init, resume=args.resume,
                      command="python -m metartt_lite " + " ".join(sys.argv[1:]))
    if _world()[0] == 0:
        print(f"wrote {path}")
    return 0

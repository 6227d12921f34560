"""Meta-learning the online head of ``metartt-nano`` (paper Algorithm 1, Eqs. 2–8, on NanoTrack's features).

**Cache.** NanoTrack's backbone is frozen, so for every ``frame_step``-th frame of each training video one
search crop is cut around the ground truth (jittered as the tracker's crop is around a noisy estimate) and its
48×16×16 map stored, with NanoTrack's 256 proposals and their target probabilities (template: the video's
first frame) — the proposals are where NanoTrack's look-alikes are.

**Episode** (one video, frames f0 < f1..f_on < f_test in order):

* D_init: positives around the ground truth of f0, negatives around it plus NanoTrack's confident proposals
  away from the target (its distractors);
* D_on: the same around the *estimated* target of f1..f_on — NanoTrack's best proposal, right or wrong, so the
  online update learns from noisy labels as in tracking;
* D_test^std: ground truth of f_test, with its distractor proposals as negatives; D_test^hard: targets of
  other videos (negatives, for the triplet term, Eqs. 5–6).

θ0 → K_init steps with A_init (Eq. 2) → K_on steps with A_on (Eq. 3) → L_test (Eq. 4); Adam on
(θ0, A_init, A_on) through both loops (second-order, Eq. 8; ``first_order`` for the approximation).
Rates start at the hand-set ones (``lr``, fc6 ×10), so meta-learning starts from RT-MDNet's schedule."""
from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..core import boxes as bx
from ..core.config import SAMPLING
from ..core.utils import MetaRTTError, atomic_torch_save, cache_dir
from ..data.sequences import list_sequences, load_split
from ..model.nano_head import NanoHeadConfig, frame_to_crop, head_forward, init_head, roi_vectors
from ..model.nanotrack import (NanoTrackNet, load_nanotrack, ltrb_corners, nano_subwindow, point_grid,
                               subwindow_origin, to_blob)
from .inner_loop import adapt
from .losses import meta_test_loss, pos_neg_ce

__all__ = ["NanoCache", "NanoMetaConfig", "cache_nano", "nano_meta_train", "load_nano_meta", "nano_episode_loss"]


@dataclass
class NanoCache:
    """One video's cached NanoTrack maps: (N, 48, 16, 16) float16 and per-crop geometry and proposals."""
    name: str
    xf: torch.Tensor
    origins: np.ndarray      # (N, 2)
    scales: np.ndarray       # (N,)
    gt: np.ndarray           # (N, 4) frame px
    frame_sizes: np.ndarray  # (N, 2)
    proposals: np.ndarray    # (N, 256, 4) frame px
    probs: np.ndarray        # (N, 256)

    def __len__(self) -> int:
        return len(self.gt)


@dataclass(frozen=True)
class NanoMetaConfig:
    """Meta-training settings (Algorithm 1)."""
    iterations: int = 400
    meta_batch: int = 4
    k_init: int = 5
    k_on: int = 5
    n_on_frames: int = 3
    max_gap: int = 12          # cached frames between f0 and f_test at most
    lr: float = 1e-2           # initial inner-loop rate (fc6 ×10): the hand-set schedule
    fc6_mult: float = 10.0
    meta_lr_theta: float = 5e-4
    meta_lr_rates: float = 1e-4
    gamma: float = 0.5         # triplet weight (Eq. 4)
    margin: float = 0.5
    n_pos: int = 32
    n_neg: int = 96
    hard_iou: float = 0.3
    hard_prob: float = 0.3
    first_order: bool = False
    frame_step: int = 2
    jitter: float = 0.2
    seed: int = 0


def _template(net: NanoTrackNet, frame: np.ndarray, box: np.ndarray) -> torch.Tensor:
    w, h = float(box[2]), float(box[3])
    s = w + h
    sz = int(np.sqrt(np.float32((w + 0.5 * s) * (h + 0.5 * s))))
    c = np.array([box[0] + w / 2, box[1] + h / 2], np.float32)
    return net.backbone(to_blob(nano_subwindow(frame, c, max(sz, 1), 127)))


def cache_nano(seq, net: NanoTrackNet | None = None, frame_step: int = 2, jitter: float = 0.2, seed: int = 0,
               root: Path | None = None) -> NanoCache:
    """NanoTrack maps and proposals for ``seq`` (name, groundtruth, frame(i)), from disk when cached."""
    ident = {"name": seq.name, "n": len(seq), "step": frame_step, "jitter": jitter, "seed": seed, "v": 1,
             "gt": hashlib.sha1(np.nan_to_num(np.asarray(seq.groundtruth, np.float64), nan=-7).tobytes()).hexdigest()}
    key = hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    path = (Path(root) if root else cache_dir() / "nano_features") / f"{seq.name}-{key}.pt"
    if path.exists():
        d = torch.load(path, map_location="cpu", weights_only=True)
        if d.get("ident") == json.dumps(ident, sort_keys=True):
            return NanoCache(**{k: (v.numpy() if torch.is_tensor(v) and k != "xf" else v) for k, v in d.items()
                                if k != "ident"})
    net = net or load_nanotrack()
    gt = np.asarray(seq.groundtruth, np.float64)
    ok = [i for i in range(len(seq)) if np.all(np.isfinite(gt[i])) and gt[i, 2] > 1 and gt[i, 3] > 1]
    if len(ok) < 8:
        raise MetaRTTError(f"sequence {seq.name} has fewer than 8 frames with a valid box")
    rng = np.random.default_rng([seed, int(hashlib.sha1(seq.name.encode()).hexdigest()[:8], 16)])
    with torch.no_grad():
        zf = _template(net, seq.frame(ok[0]), gt[ok[0]])
        xs, origins, scales, sizes, props, probs = [], [], [], [], [], []
        for i in tqdm(ok[::frame_step], desc=f"nano cache {seq.name}", leave=False):
            f = seq.frame(i)
            b = gt[i]
            w, h = b[2], b[3]
            s_z = np.sqrt((w + (w + h) / 2) * (h + (w + h) / 2))
            side = max(int(s_z * 255 / 127), 1)
            c = np.array([b[0] + w / 2, b[1] + h / 2]) + rng.uniform(-1, 1, 2) * jitter * np.sqrt(w * h)
            origin = subwindow_origin(c, side)
            xf = net.backbone(to_blob(nano_subwindow(f, c.astype(np.float32), side, 255)))
            logits, ltrb = net.ban_head(zf, xf)
            p = torch.softmax(logits[0].reshape(2, -1), 0)[1].numpy()
            d = ltrb[0].reshape(4, -1).numpy()
            x1, y1, x2, y2 = ltrb_corners(d, point_grid())
            sc = 255.0 / side
            pb = np.stack([x1 / sc + origin[0], y1 / sc + origin[1], (x2 - x1) / sc, (y2 - y1) / sc], 1)
            xs.append(xf.half())
            origins.append(origin)
            scales.append(sc)
            sizes.append((f.shape[1], f.shape[0]))
            props.append(pb)
            probs.append(p)
    nc = NanoCache(seq.name, torch.cat(xs), np.array(origins), np.array(scales), gt[ok[::frame_step]],
                   np.array(sizes), np.array(props), np.array(probs))
    saved = {k: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v) for k, v in asdict(nc).items()}
    saved["ident"] = json.dumps(ident, sort_keys=True)
    atomic_torch_save(path, saved)
    return nc


def _frame_sets(c: NanoCache, i: int, box: np.ndarray, cfg: NanoMetaConfig, rng: np.random.Generator,
                hcfg: NanoHeadConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """RoI vectors of positives around ``box`` and negatives (random + NanoTrack's distractor proposals)."""
    W, H = (int(v) for v in c.frame_sizes[i])
    pos = bx.sample_by_iou(bx.sampler(SAMPLING.pos, (W, H)), box, cfg.n_pos, (0.7, 1.0), rng)
    neg = bx.sample_by_iou(bx.sampler(SAMPLING.neg, (W, H)), box, cfg.n_neg, (0.0, 0.3), rng)
    ov = bx.iou(c.proposals[i], np.asarray(box)[None])
    hard = c.proposals[i][(ov < cfg.hard_iou) & (c.probs[i] >= cfg.hard_prob)]
    fmap = c.xf[i: i + 1].float()
    vp = roi_vectors(fmap, frame_to_crop(pos, c.origins[i], c.scales[i]), hcfg)
    vn = roi_vectors(fmap, frame_to_crop(np.concatenate([neg, hard]), c.origins[i], c.scales[i]), hcfg)
    return vp, vn


class NanoMetaLearner(torch.nn.Module):
    """θ0 and A_init / A_on (one tensor per parameter and step), as learn2learn's MetaSGD."""

    def __init__(self, cfg: NanoMetaConfig, hcfg: NanoHeadConfig = NanoHeadConfig()):
        super().__init__()
        self.names = list(init_head(hcfg, cfg.seed))
        self.theta = torch.nn.ParameterDict({n.replace(".", "__"): torch.nn.Parameter(t)
                                             for n, t in init_head(hcfg, cfg.seed).items()})
        def rate(n: str, t: torch.Tensor) -> torch.nn.Parameter:
            return torch.nn.Parameter(torch.full_like(t, cfg.lr * (cfg.fc6_mult if n.startswith("fc6") else 1.0)))
        self.a_init = torch.nn.ParameterList([torch.nn.ParameterDict({n.replace(".", "__"): rate(n, t)
                                             for n, t in init_head(hcfg).items()}) for _ in range(cfg.k_init)])
        self.a_on = torch.nn.ParameterList([torch.nn.ParameterDict({n.replace(".", "__"): rate(n, t)
                                           for n, t in init_head(hcfg).items()}) for _ in range(cfg.k_on)])

    def params(self) -> "OrderedDict[str, torch.Tensor]":
        return OrderedDict((n, self.theta[n.replace(".", "__")]) for n in self.names)

    def rates(self, which: str) -> list[dict[str, torch.Tensor]]:
        lst = self.a_init if which == "init" else self.a_on
        return [{n: d[n.replace(".", "__")] for n in self.names} for d in lst]


def nano_episode_loss(learner: NanoMetaLearner, caches: list[NanoCache], v: int, cfg: NanoMetaConfig,
                      rng: np.random.Generator, hcfg: NanoHeadConfig = NanoHeadConfig()) -> torch.Tensor:
    """L_test (Eq. 4) of one simulated episode on video ``v`` (module docstring)."""
    c = caches[v]
    n_need = cfg.n_on_frames + 2
    gap = min(cfg.max_gap, len(c) - 1)
    f0 = int(rng.integers(0, max(len(c) - gap, 1)))
    frames = np.sort(rng.choice(np.arange(f0 + 1, min(f0 + gap, len(c) - 1) + 1), n_need - 1, replace=False))
    on_frames, f_test = frames[:-1], int(frames[-1])
    p0, n0 = _frame_sets(c, f0, c.gt[f0], cfg, rng, hcfg)
    on = [_frame_sets(c, int(i), c.proposals[int(i)][int(np.argmax(c.probs[int(i)]))], cfg, rng, hcfg)
          for i in on_frames]
    pon, non = torch.cat([p for p, _ in on]), torch.cat([n for _, n in on])
    pt, nt = _frame_sets(c, f_test, c.gt[f_test], cfg, rng, hcfg)
    others = [j for j in range(len(caches)) if j != v]
    hard = []
    for j in rng.choice(others, min(4, len(others)), replace=False):
        oc = caches[int(j)]
        k = int(rng.integers(len(oc)))
        hard.append(roi_vectors(oc.xf[k: k + 1].float(), frame_to_crop(oc.gt[k], oc.origins[k], oc.scales[k]), hcfg))
    hard_t = torch.cat(hard)

    def loss_init(theta, k):
        return pos_neg_ce(head_forward(theta, p0), head_forward(theta, n0))

    def loss_on(theta, k):
        return pos_neg_ce(head_forward(theta, pon), head_forward(theta, non))

    second = not cfg.first_order
    theta = adapt(learner.params(), loss_init, learner.rates("init"), create_graph=second)
    theta = adapt(theta, loss_on, learner.rates("on"), create_graph=second)
    return meta_test_loss(head_forward(theta, pt), head_forward(theta, nt), head_forward(theta, hard_t),
                          cfg.gamma, cfg.margin, generator=torch.Generator().manual_seed(int(rng.integers(2**31))))


def nano_meta_train(caches: list[NanoCache], out: Path, cfg: NanoMetaConfig = NanoMetaConfig(),
                    holdout: list[NanoCache] | None = None, log=print) -> dict:
    """Algorithm 1 on ``caches``; every 50 iterations the mean L_test on ``holdout`` (fixed episodes) is
    logged and the best state kept (early stopping on held-aside *training* videos, never on ``val``)."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    learner = NanoMetaLearner(cfg)
    opt = torch.optim.Adam([{"params": list(learner.theta.parameters()), "lr": cfg.meta_lr_theta},
                            {"params": list(learner.a_init.parameters()) + list(learner.a_on.parameters()),
                             "lr": cfg.meta_lr_rates}])

    def held_loss() -> float:
        if not holdout:
            return float("nan")
        r = np.random.default_rng(12345)
        pool = holdout + caches
        vals = [float(nano_episode_loss(learner, pool, v, cfg, r).detach()) for v in range(len(holdout))
                for _ in range(4)]
        return float(np.mean(vals))

    history, best = [], (held_loss(), 0, _state(learner))
    log(f"iter 0 held-aside L_test {best[0]:.4f}")
    for it in range(1, cfg.iterations + 1):
        opt.zero_grad(set_to_none=True)
        loss = sum(nano_episode_loss(learner, caches, int(rng.integers(len(caches))), cfg, rng)
                   for _ in range(cfg.meta_batch)) / cfg.meta_batch
        loss.backward()
        opt.step()
        with torch.no_grad():
            for p in list(learner.a_init.parameters()) + list(learner.a_on.parameters()):
                p.clamp_(min=0.0)
        history.append(loss.item())
        if it % 50 == 0 or it == cfg.iterations:
            h = held_loss()
            log(f"iter {it} train L_test {np.mean(history[-50:]):.4f} held-aside {h:.4f}")
            if not np.isfinite(best[0]) or h < best[0]:
                best = (h, it, _state(learner))
    tensors = best[2]
    extra = {"config": asdict(cfg), "best_iteration": best[1], "held_aside_loss": best[0],
             "train_videos": [c.name for c in caches], "held_aside_videos": [c.name for c in holdout or []],
             "history": history}
    atomic_torch_save(out, {"format_version": 1, "kind": "nano_meta", "tensors": tensors, "extra": json.dumps(extra)})
    return extra


def _state(learner: NanoMetaLearner) -> dict[str, torch.Tensor]:
    out = {f"theta/{n}": t.detach().clone() for n, t in learner.params().items()}
    for which in ("init", "on"):
        for k, d in enumerate(learner.rates(which)):
            out.update({f"{which}/{k}/{n}": t.detach().clone() for n, t in d.items()})
    return out


def load_nano_meta(path: str | Path) -> tuple["OrderedDict[str, torch.Tensor]", list, list, dict]:
    """(θ0, A_init, A_on, extra) from a file written by :func:`nano_meta_train`."""
    path = Path(path)
    if not path.is_file():
        raise MetaRTTError(f"metartt-nano checkpoint {path} not found")
    d = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(d, dict) or d.get("kind") != "nano_meta":
        raise MetaRTTError(f"{path} is not a metartt-nano checkpoint")
    t = d["tensors"]
    theta = OrderedDict((k.split("/", 1)[1], v) for k, v in t.items() if k.startswith("theta/"))
    def rates(which: str) -> list:
        ks = sorted({int(k.split("/")[1]) for k in t if k.startswith(which + "/")})
        return [{k2.split("/", 2)[2]: v for k2, v in t.items() if k2.startswith(f"{which}/{k}/")} for k in ks]
    return theta, rates("init"), rates("on"), json.loads(d.get("extra", "{}"))


def held_aside(names: list[str], n: int = 8) -> list[str]:
    """The ``n`` training videos held aside for selection: the first by SHA-1 of the name (fixed, data-blind)."""
    return sorted(names, key=lambda s: hashlib.sha1(s.encode()).hexdigest())[:n]


def add_parser(sub) -> None:
    p = sub.add_parser("nano-meta-train", help="meta-learn metartt-nano's online head (θ0, A_init, A_on) on "
                       "NanoTrack features of training videos (Algorithm 1)")
    p.add_argument("--data", action="append", default=None,
                   help="data folder (repeatable; default $METARTT_DATA or ../shared/data); with --split")
    p.add_argument("--split", default="train", help="split of the first --data folder ('all': every sequence); "
                   "later folders contribute every sequence (e.g. data_scripts/build_corpus.py's output)")
    p.add_argument("--out", required=True, help="checkpoint to write (e.g. metartt_lite/weights/nano_meta.pt)")
    p.add_argument("--iterations", type=int, default=NanoMetaConfig.iterations)
    p.add_argument("--held-aside", type=int, default=8, help="training videos held aside for early stopping")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--first-order", action="store_true")
    p.set_defaults(func=_run)


def _run(args) -> int:
    torch.set_num_threads(1)
    roots = args.data or [None]
    seqs = load_split(roots[0], None if args.split == "all" else args.split)
    for r in roots[1:]:
        seqs += load_split(r, None)
    if any(s.name in _val_names(roots[0]) for s in seqs):
        raise MetaRTTError("a val sequence is among the training videos; refusing to meta-train on it")
    held = set(held_aside([s.name for s in seqs], args.held_aside))
    cfg = NanoMetaConfig(iterations=args.iterations, seed=args.seed, first_order=args.first_order)
    caches = [cache_nano(s, frame_step=cfg.frame_step, jitter=cfg.jitter)
              for s in tqdm(seqs, desc="NanoTrack features")]
    extra = nano_meta_train([c for c in caches if c.name not in held], Path(args.out), cfg,
                            [c for c in caches if c.name in held])
    print(f"wrote {args.out}: best held-aside L_test {extra['held_aside_loss']:.4f} at iteration "
          f"{extra['best_iteration']}")
    return 0


def _val_names(root) -> set[str]:
    try:
        return set(list_sequences(root, "val"))
    except Exception:
        return set()

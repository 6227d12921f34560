"""Simulated tracking episodes (paper §3, "Tracking Simulation", Fig. 1, Algorithm 1 lines 5, 8, 11).

An episode draws 6 frames of one training sequence in time order: frame 1 gives D_init (ground truth),
frames 2–5 give D_on (around the *estimated* target: the top-scoring candidate of the model adapted on
D_init), frame 6 gives D_test^std (ground truth); D_test^hard holds target patches of *other*
sequences, labelled negative. Everything is drawn from a seeded generator, so an episode index and a
seed fix the episode exactly. Boxes are sampled here; RoI features are computed in ``meta.py``
because they must keep the graph to the meta-learned shared conv.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core import boxes as bx
from ..core.config import SAMPLING
from .features import SequenceFeatures


@dataclass
class EpisodeConfig:
    n_frames: int = 6
    max_gap: int = 10              # max distance between consecutive episode frames (cached-frame units)
    n_pos: int = 32                # positives per D_init / per D_test^std
    n_neg: int = 96                # negatives per D_init / per D_test^std
    n_pos_on: int = 8              # positives per online frame (× 4 frames)
    n_neg_on: int = 24             # negatives per online frame
    n_hard: int = 32               # D_test^hard size
    hard_frames: int = 8           # other-sequence frames the hard examples come from
    n_candidates: int = 256        # candidates scored to estimate the target on online frames
    trans_f: float = 0.6
    scale_f: float = 1.05
    pos_iou: float = 0.7
    neg_iou: float = 0.3
    estimated_target: bool = True  # False: the --no-estimated-target ablation (D_on from ground truth)
    hard_examples: bool = True     # False: the --no-hard-examples ablation
    # harder meta-tests (all 0 = the paper's D_test):
    test_gap: int = 0              # the test frame may lie up to max_gap + test_gap cached frames after the last online one
    n_near_neg: int = 0            # extra D_test^std negatives close to the target (IoU in [0.05, neg_iou])
    n_distractor_neg: int = 0      # extra D_test^std negatives on pasted distractors (synthetic clips only)


@dataclass
class FrameSamples:
    """Boxes (frame px) for one frame of one cached sequence."""
    seq: int
    frame: int
    pos: np.ndarray
    neg: np.ndarray


@dataclass
class Episode:
    seq: int
    frames: list[int]                       # cached-frame indices, time order
    init: FrameSamples
    online_candidates: list[np.ndarray]     # per online frame: candidate boxes for target estimation
    test: FrameSamples
    hard: list[tuple[int, int, np.ndarray]] = field(default_factory=list)  # (seq, frame, boxes)
    rng: np.random.Generator | None = None  # continues the episode's stream (D_on sampling)


def pos_neg(sf: SequenceFeatures, i: int, box: np.ndarray, n_pos: int, n_neg: int, cfg: EpisodeConfig,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """RT-MDNet sampling around ``box``: Gaussian positives (IoU ≥ pos_iou), uniform negatives (IoU ≤ neg_iou)."""
    W, H = (int(v) for v in sf.frame_sizes[i])
    pos = bx.sample_by_iou(bx.sampler(SAMPLING.pos, (W, H)), box, n_pos, (cfg.pos_iou, 1.0), rng)
    neg = bx.sample_by_iou(bx.sampler(SAMPLING.neg, (W, H)), box, n_neg, (0.0, cfg.neg_iou), rng)
    return pos, neg


def sample_frames(n_avail: int, cfg: EpisodeConfig, rng: np.random.Generator) -> list[int]:
    """``n_frames`` increasing indices with consecutive gaps in [1, max_gap] (the last one, to the test frame,
    in [1, max_gap + test_gap]); a short sequence shrinks the gaps (repeats allowed)."""
    gaps = rng.integers(1, cfg.max_gap + 1, cfg.n_frames - 1)
    if cfg.test_gap > 0:
        gaps[-1] = int(rng.integers(1, cfg.max_gap + cfg.test_gap + 1))
    span = int(gaps.sum())
    if span >= n_avail:  # short sequence: shrink the gaps proportionally
        gaps = np.floor(gaps * (n_avail - 1) / max(span, 1)).astype(int)
        span = int(gaps.sum())
    start = int(rng.integers(0, n_avail - span)) if n_avail - span > 0 else 0
    return list(start + np.concatenate([[0], np.cumsum(gaps)]).astype(int))


def harder_test_negatives(sf: SequenceFeatures, i: int, cfg: EpisodeConfig, rng: np.random.Generator) -> np.ndarray:
    """Negatives that matter on test frame ``i``: near misses around the target (IoU in [0.05, neg_iou]) and
    boxes on the pasted distractors of a synthetic clip (IoU ≥ 0.5 with a distractor, ≤ neg_iou with the target)."""
    W, H = (int(v) for v in sf.frame_sizes[i])
    gt = sf.gt[i]
    out = [np.zeros((0, 4))]
    if cfg.n_near_neg:
        gen = bx.SampleGenerator("gaussian", (W, H), 0.8, 1.2)
        out.append(bx.sample_by_iou(gen, gt, cfg.n_near_neg, (0.05, cfg.neg_iou), rng))
    dis = getattr(sf, "distractors", None)
    if cfg.n_distractor_neg and dis is not None and len(dis[i]):
        per = -(-cfg.n_distractor_neg // len(dis[i]))
        for d in dis[i]:
            if not np.all(np.isfinite(d)):   # no room was left to paste this one
                continue
            cand = bx.sample_by_iou(bx.SampleGenerator("gaussian", (W, H), 0.1, 1.2), d, 2 * per, (0.5, 1.0), rng)
            if len(cand):
                cand = cand[bx.iou(cand, gt) <= cfg.neg_iou][:per]
                out.append(cand)
    return np.concatenate(out)


def sample_episode(feats: list[SequenceFeatures], seq: int, cfg: EpisodeConfig, rng: np.random.Generator,
                   hard_pool: list[int] | None = None) -> Episode:
    """Draw the frames and the ground-truth-based sample sets of one episode on sequence ``seq``.

    ``hard_pool``: the sequences D_test^hard may come from (default: every other one); a synthetic clip
    made from the episode's own video must not be there (its target would be labelled negative)."""
    sf = feats[seq]
    frames = sample_frames(len(sf), cfg, rng)
    f_init, f_on, f_test = frames[0], frames[1:-1], frames[-1]
    p, n = pos_neg(sf, f_init, sf.gt[f_init], cfg.n_pos, cfg.n_neg, cfg, rng)
    init = FrameSamples(seq, f_init, p, n)
    cands = []
    for f in f_on:
        W, H = (int(v) for v in sf.frame_sizes[f])
        cands.append(bx.SampleGenerator("gaussian", (W, H), cfg.trans_f, cfg.scale_f, valid=True)(sf.gt[f], cfg.n_candidates, rng))
    p, n = pos_neg(sf, f_test, sf.gt[f_test], cfg.n_pos, cfg.n_neg, cfg, rng)
    if cfg.n_near_neg or cfg.n_distractor_neg:
        n = np.concatenate([n, harder_test_negatives(sf, f_test, cfg, rng)])
    test = FrameSamples(seq, f_test, p, n)
    hard = []
    others = [j for j in range(len(feats)) if j != seq] if hard_pool is None else [j for j in hard_pool if j != seq]
    if cfg.hard_examples and others:
        per = -(-cfg.n_hard // cfg.hard_frames)
        for _ in range(cfg.hard_frames):
            j = int(rng.choice(others))
            f = int(rng.integers(len(feats[j])))
            W, H = (int(v) for v in feats[j].frame_sizes[f])
            boxes = bx.sample_by_iou(bx.sampler(SAMPLING.pos, (W, H)), feats[j].gt[f], per, (cfg.pos_iou, 1.0), rng)
            if len(boxes):
                hard.append((j, f, boxes))
    return Episode(seq, frames, init, cands, test, hard, rng)

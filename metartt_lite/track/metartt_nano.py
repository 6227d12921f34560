"""``metartt-nano``: NanoTrack proposes, a MetaRTT head adapted online re-scores.

NanoTrack (trained on GOT-10k-scale data) is accurate but fails on look-alikes and appearance change: its
template never changes and its score is a similarity to the first frame. On top of it, MetaRTT's recipe:

* **Proposals.** Each frame, NanoTrack's step (:class:`~metartt_lite.track.nanotrack.NanoTracker`) gives 256
  boxes with their penalised, window-blended score ``pscore``; the ``top_n`` best are the candidates.
* **Re-scoring.** The online head (:mod:`metartt_lite.model.nano_head`, fc4–fc6 on RoI features of NanoTrack's
  own backbone map) scores each candidate; the pick maximises ``(1-w)·pscore + w·p_head``. ``w = 0`` is
  NanoTrack exactly (a test checks it box for box).
* **Initial adaptation (Eq. 2).** On the first frame, ``K_init`` steps on positives around the given box and
  negatives around it — including NanoTrack's own high-scoring proposals away from the target, i.e. the
  look-alikes it would confuse (hard negatives from the distractors themselves).
* **Online adaptation (Eq. 3).** Confident frames add positives (around the pick) and negatives (background
  and the other proposals) to a memory; every ``interval`` frames, and whenever the head's score of the pick
  falls below 0, ``K_on`` steps on the memory.
* **Rates.** ``rates="meta"``: θ0 and the per-parameter, per-step rates A_init, A_on meta-learned
  (:mod:`metartt_lite.train.nano_meta`, Eqs. 2–8); ``rates="hand"``: RT-MDNet's schedule (SGD with hand-set
  rates, fc6 ×10) from a random θ0.

The score ``update`` returns is the head's target logit of the pick (``> 0``: the head calls it the target).
"""
from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

import numpy as np
import torch

from ..core import boxes as bx
from ..core.config import SAMPLING
from ..model.nano_head import NanoHeadConfig, frame_to_crop, head_forward, init_head, roi_vectors
from ..train.inner_loop import adapt
from ..train.losses import pos_neg_ce
from .nanotrack import NanoStep, NanoTracker

__all__ = ["NanoAdaptConfig", "MetaRTTNano"]


@dataclass(frozen=True)
class NanoAdaptConfig:
    """How the online head is used and adapted (defaults: ``metartt-nano``)."""
    w: float = 0.3             # weight of the head's probability in the pick (chosen on held-aside training videos)
    top_n: int = 16            # candidates re-scored per frame
    rates: str = "meta"        # 'meta' (learned A_init, A_on) or 'hand' (SGD, lr_init / lr_on, fc6 ×10)
    k_init: int = 5
    k_on: int = 5
    lr_init: float = 1e-2      # hand-set rates (rates='hand')
    lr_on: float = 1e-2
    fc6_mult: float = 10.0
    n_pos_init: int = 64
    n_neg_init: int = 192
    n_pos: int = 16            # per confident frame
    n_neg: int = 32
    hard_iou: float = 0.3      # other proposals with IoU below this to the pick are negatives
    hard_prob: float = 0.3     # ... when NanoTrack's probability for them is at least this
    interval: int = 10         # frames between long-term updates
    long_term: int = 50        # frames of positives kept
    short_term: int = 20       # frames of negatives kept
    batch_pos: int = 32
    batch_neg: int = 96
    head: NanoHeadConfig = field(default_factory=NanoHeadConfig)


class MetaRTTNano:
    """NanoTrack + an online MetaRTT head (module docstring). ``init(frame, box)`` / ``update(frame)``."""

    deterministic = False
    success_threshold = 0.0  # the head's logit: > 0 while the target is there, < 0 once it left (tests/test_success.py)

    def __init__(self, nano: NanoTracker, theta0: "OrderedDict[str, torch.Tensor] | None" = None,
                 rates_init: list | None = None, rates_on: list | None = None,
                 cfg: NanoAdaptConfig = NanoAdaptConfig(), seed: int = 0, name: str = "metartt-nano"):
        self.nano = nano
        self.cfg = cfg
        self.name = name
        self.seed = seed
        self.theta0 = theta0 if theta0 is not None else init_head(cfg.head, seed)
        self.rates_init, self.rates_on = rates_init, rates_on
        if cfg.rates == "meta" and (not rates_init or not rates_on):
            raise ValueError("rates='meta' needs meta-learned rates (rates_init, rates_on)")
        self.rng = np.random.default_rng(seed)
        self.params: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.pos_mem: deque = deque(maxlen=cfg.long_term)
        self.neg_mem: deque = deque(maxlen=cfg.short_term)
        self.frame = 0
        self.frame_size: tuple[int, int] | None = None
        self.last_probs: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"MetaRTTNano({self.name!r}, rates={self.cfg.rates!r}, w={self.cfg.w})"

    # ------------------------------------------------------------------ head
    def _scores(self, feats: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return head_forward(self.params, feats)

    def _adapt(self, pos: torch.Tensor, neg: torch.Tensor, phase: str) -> None:
        """K steps of Eq. 2 (phase 'init') or Eq. 3 ('on') on mini-batches of ``pos``/``neg``
        (:func:`~metartt_lite.train.inner_loop.adapt`, first order: nothing is meta-learned here)."""
        cfg = self.cfg
        k = cfg.k_init if phase == "init" else cfg.k_on
        if cfg.rates == "meta":
            learned = self.rates_init if phase == "init" else self.rates_on
            rates = [learned[min(step, len(learned) - 1)] for step in range(k)]
        else:  # one hand-set rate per layer, fc6 × fc6_mult, the same at every step
            lr = cfg.lr_init if phase == "init" else cfg.lr_on
            rates = [{n: lr * (cfg.fc6_mult if n.startswith("fc6") else 1.0) for n in self.params}] * k
        g = torch.Generator().manual_seed(int(self.rng.integers(2**31)))

        def loss_fn(theta, _step: int) -> torch.Tensor:
            ip = torch.randint(len(pos), (min(cfg.batch_pos, len(pos)),), generator=g)
            ineg = torch.randint(len(neg), (min(cfg.batch_neg, len(neg)),), generator=g)
            return pos_neg_ce(head_forward(theta, pos[ip]), head_forward(theta, neg[ineg]))

        start = OrderedDict((n, p.detach().requires_grad_(True)) for n, p in self.params.items())
        self.params = OrderedDict((n, p.detach()) for n, p in adapt(start, loss_fn, rates, create_graph=False).items())

    # ------------------------------------------------------------------ samples
    def _samples(self, box: np.ndarray, n_pos: int, n_neg: int) -> tuple[np.ndarray, np.ndarray]:
        W, H = self.frame_size
        pos = bx.sample_by_iou(bx.sampler(SAMPLING.pos, (W, H)), box, n_pos, (0.7, 1.0), self.rng)
        neg = bx.sample_by_iou(bx.sampler(SAMPLING.neg, (W, H)), box, n_neg, (0.0, 0.3), self.rng)
        return pos, neg

    def _hard(self, step: NanoStep, box: np.ndarray) -> np.ndarray:
        """NanoTrack's own confident proposals away from ``box``: the look-alikes it could jump to."""
        ov = bx.iou(step.boxes, np.asarray(box)[None])
        keep = (ov < self.cfg.hard_iou) & (step.prob >= self.cfg.hard_prob)
        return step.boxes[keep]

    def _vectors(self, step: NanoStep, boxes: np.ndarray) -> torch.Tensor:
        """RoI vectors of frame-pixel ``boxes`` on the backbone map of ``step``'s search crop."""
        return roi_vectors(step.xf, frame_to_crop(boxes, step.origin, step.crop_scale), self.cfg.head)

    # ------------------------------------------------------------------ tracker
    def init(self, frame: np.ndarray, box) -> None:
        self.nano.init(frame, box)
        f = np.asarray(frame)
        self.frame_size = (f.shape[1], f.shape[0])
        b = np.array([*(self.nano.pos - self.nano.sz / 2), *self.nano.sz], np.float64)
        self.params = OrderedDict((n, t.clone()) for n, t in self.theta0.items())
        self.pos_mem.clear()
        self.neg_mem.clear()
        self.frame = 0
        self.success: bool | None = None
        # the first frame's search crop (as the next frame's would be), and NanoTrack's proposals on it
        step = self.nano.step(f)
        pos, neg = self._samples(b, self.cfg.n_pos_init, self.cfg.n_neg_init)
        hard = self._hard(step, b)
        feats_pos = self._vectors(step, pos)
        feats_neg = self._vectors(step, np.concatenate([neg, hard]))
        self._adapt(feats_pos, feats_neg, "init")
        self.pos_mem.append(feats_pos[: self.cfg.n_pos])
        self.neg_mem.append(feats_neg)

    def update(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        cfg = self.cfg
        self.frame += 1
        step = self.nano.step(frame)
        cand = np.argsort(-step.pscore, kind="stable")[: cfg.top_n]
        feats = self._vectors(step, step.boxes[cand])
        s = self._scores(feats)
        logit = (s[:, 1] - s[:, 0]).numpy()
        p_head = 1.0 / (1.0 + np.exp(-logit))
        fused = (1 - cfg.w) * step.pscore[cand] + cfg.w * p_head
        j = int(np.argmax(fused))
        self.last_probs = p_head
        box = self.nano.commit(step, int(cand[j]))
        box = bx.clip_boxes(box, self.frame_size)
        score = float(logit[j])
        self.success = score > self.success_threshold
        if cfg.w > 0:
            if score > 0:  # a confident frame: remember it
                pos, neg = self._samples(box, cfg.n_pos, cfg.n_neg)
                hard = self._hard(step, box)
                self.pos_mem.append(self._vectors(step, pos))
                self.neg_mem.append(self._vectors(step, np.concatenate([neg, hard])))
            if score < 0 or self.frame % cfg.interval == 0:
                self._adapt(torch.cat(list(self.pos_mem)), torch.cat(list(self.neg_mem)), "on")
        return box, score

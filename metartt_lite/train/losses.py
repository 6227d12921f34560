"""Losses: the 2-way cross-entropy of paper Eq. 1 and the hard-example triplet loss of Eqs. 5–6."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def binary_ce(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 1: mean cross-entropy of 2-way scores; ``labels`` 1 = target (index 1 positive, as RT-MDNet)."""
    return F.cross_entropy(scores, labels.long())


def pos_neg_ce(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """Eq. 1 on a positive and a negative batch (each sample weighted equally)."""
    scores = torch.cat([pos_scores, neg_scores])
    labels = torch.cat([torch.ones(len(pos_scores), device=scores.device), torch.zeros(len(neg_scores), device=scores.device)])
    return binary_ce(scores, labels)


def normalized_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Eq. 6: squared Euclidean distance between L2-normalised outputs."""
    return (F.normalize(a, dim=-1) - F.normalize(b, dim=-1)).pow(2).sum(-1)


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float) -> torch.Tensor:
    """Eq. 5: E[(ξ + Δ(x, x⁺) − Δ(x, x⁻))₊] over aligned rows of anchor/positive/negative outputs."""
    return F.relu(margin + normalized_distance(anchor, positive) - normalized_distance(anchor, negative)).mean()


def meta_test_loss(std_pos: torch.Tensor, std_neg: torch.Tensor, hard: torch.Tensor | None, gamma: float, margin: float,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Eq. 4: L_test = CE(D_test^std) + γ·L_tri, anchors and positives from D_test^std's positives,
    negatives from D_test^hard (targets of other videos). ``std_*``/``hard`` are fc6 outputs."""
    loss = pos_neg_ce(std_pos, std_neg)
    if hard is None or gamma == 0 or len(hard) == 0 or len(std_pos) < 2:
        return loss
    n = len(std_pos)
    perm = torch.randperm(n, generator=generator)
    pos_idx = torch.where(perm == torch.arange(n), (perm + 1) % n, perm)  # x⁺ ≠ x
    neg_idx = torch.randint(len(hard), (n,), generator=generator)
    return loss + gamma * triplet_loss(std_pos, std_pos[pos_idx.to(std_pos.device)], hard[neg_idx.to(hard.device)], margin)

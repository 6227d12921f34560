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

"""The pruning network ψ (paper §4, "Meta-learning for channel mask prediction"; Eq. 11's Ψ).

**Pruning network ψ (§4, "Meta-learning for channel mask prediction").** One small MLP per layer in S
(Linear → LeakyReLU → dropout → Linear → sigmoid). Its input for one D_init sample is the layer's
unmasked feature, globally average-pooled: the RoI feature averaged over the 3×3 grid (C values) for
the shared conv, the activations themselves for fc4/fc5 (computed with θ_init^{K_init}, as the paper).
Each input vector is standardised (LayerNorm without affine parameters) so ψ sees the pattern of channel
activity, not its scale. The sigmoid gives a *soft* mask in (0, 1) per sample; β^l is its mean over
D_init's samples (pos and neg together, as the paper's 1/N Σ). ``static_mask`` replaces ψ by one free
logit vector per layer (sigmoid → β), the same for every video (the paper's "no adaptive pruning").
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
import torch.nn as nn

from .net import TrackerNet
from .surgery import layer_features


def psi_inputs(net: TrackerNet, x: torch.Tensor, theta: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """ψ's per-sample inputs: global average pooling of each layer's unmasked features."""
    f = layer_features(net, x, theta)
    r2 = net.cfg.roi_size ** 2
    return {"shared": f["shared"].view(len(x), -1, r2).mean(-1), "fc4": f["fc4"], "fc5": f["fc5"]}


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

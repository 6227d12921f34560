"""The inner loop (paper Eqs. 2–3): θ^k = θ^{k-1} − α^k ⊙ ∇θ L(D; θ^{k-1}), K steps, one learnable
rate tensor per parameter *and* per step, run functionally over a parameter dict so the meta-gradient
(Eq. 8) can flow through every step.

The tracker's in-place head updates live here too: :class:`MetaRateOptimizer` (the same rule with the
learned rates, no graph kept) and :class:`HeadOptimizer` (hand-set rates, a torch optimiser)."""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Mapping, Sequence

import torch

from ..core.config import TrackConfig
from ..core.utils import MetaRTTError

LossFn = Callable[[Mapping[str, torch.Tensor], int], torch.Tensor]


def sgd_step(params: Mapping[str, torch.Tensor], grads: Sequence[torch.Tensor],
             rates: Mapping[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
    """One step of Eq. 2/3: new tensors, never in place (double backward needs the old ones)."""
    return OrderedDict((k, p - rates[k] * g) for (k, p), g in zip(params.items(), grads))


def adapt(params: Mapping[str, torch.Tensor], loss_fn: LossFn, rates: Sequence[Mapping[str, torch.Tensor]],
          create_graph: bool = True, trajectory: list | None = None) -> "OrderedDict[str, torch.Tensor]":
    """Run ``len(rates)`` inner steps from ``params``.

    ``loss_fn(params, k)`` returns the loss at step ``k`` (it may draw a different mini-batch per step).
    ``rates[k]`` maps each parameter name to α^k (shaped like the parameter, or a scalar for the
    ``--scalar-lr`` ablation). ``create_graph=False`` gives the first-order approximation.
    Appends every intermediate θ^k to ``trajectory`` if given (needed by the pruning loss, Eq. 11).
    """
    theta = OrderedDict(params)
    for k, alpha in enumerate(rates):
        loss = loss_fn(theta, k)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"inner-loop loss is {loss.item()} at step {k + 1}")
        grads = torch.autograd.grad(loss, list(theta.values()), create_graph=create_graph)
        if not create_graph:
            grads = [g.detach() for g in grads]
        theta = sgd_step(theta, grads, alpha)
        if trajectory is not None:
            trajectory.append(theta)
    return theta


# ----------------------------------------------- in-place head updates at tracking time (the tracker's)
class HeadOptimizer:
    """Hand-set-rate updates of the head with a torch optimiser (SGD+momentum as RT-MDNet, or Adam)."""

    def __init__(self, params: "OrderedDict[str, torch.Tensor]", cfg: TrackConfig):
        o = cfg.optim
        groups = [{"params": [p for k, p in params.items() if not k.startswith("fc6")], "mult": 1.0},
                  {"params": [p for k, p in params.items() if k.startswith("fc6")], "mult": o.fc6_lr_mult}]
        if o.kind == "sgd":
            self.opt = torch.optim.SGD(groups, lr=o.lr_init, momentum=o.momentum, weight_decay=o.weight_decay)
        elif o.kind == "adam":
            self.opt = torch.optim.Adam(groups, lr=o.lr_init, weight_decay=o.weight_decay)
        else:
            raise MetaRTTError(f"unknown optimiser kind {o.kind!r} (sgd, adam)")
        self.params = params
        self.cfg = o

    def step(self, loss: torch.Tensor, phase: str, k: int) -> None:
        lr = self.cfg.lr_init if phase == "init" else self.cfg.lr_update
        for g in self.opt.param_groups:
            g["lr"] = lr * g["mult"]
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(self.params.values()), self.cfg.grad_clip)
        self.opt.step()


class MetaRateOptimizer:
    """Updates with meta-learned per-parameter, per-step rates (paper Eqs. 2–3): θ ← θ − α^k ⊙ ∇θ L."""

    def __init__(self, params: "OrderedDict[str, torch.Tensor]", rates_init: list, rates_on: list):
        self.params = params
        self.rates = {"init": rates_init, "on": rates_on}

    def step(self, loss: torch.Tensor, phase: str, k: int) -> None:
        rates = self.rates["init" if phase == "init" else "on"]
        alpha = rates[min(k, len(rates) - 1)]
        grads = torch.autograd.grad(loss, list(self.params.values()))
        with torch.no_grad():
            for (name, p), g in zip(self.params.items(), grads):
                p.sub_(alpha[name] * g)

"""The inner loop (paper Eqs. 2–3): θ^k = θ^{k-1} − α^k ⊙ ∇θ L(D; θ^{k-1}), K steps, one learnable
rate tensor per parameter *and* per step, run functionally over a parameter dict so the meta-gradient
(Eq. 8) can flow through every step."""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Mapping, Sequence

import torch

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

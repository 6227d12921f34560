"""Channel surgery for one-shot pruning (paper §4, Eq. 10): masked forward, hard masks, physical removal.

Layers pruned (the paper's S): the shared conv's out-channels (``"shared"``), fc4's and fc5's out-units
(``"fc4"``, ``"fc5"``); never fc6 (its two outputs are the scores).

**Masked forward (Eq. 10).** ``F_B^l = β^l ⊙ σ(layer(F_B^{l-1}))``. The shared conv's mask multiplies
the channels of the shared feature map; RoIAlign is linear and per-channel, and the 2×2 max-pool after it
is per-channel and commutes with multiplication by a *non-negative* scalar (max(βa, βb) = β·max(a, b)
for β ≥ 0), so masking channel c of the map is the same as masking the RoI-feature columns
``9c … 9c+8`` (channel-major flatten; :func:`expand_shared_mask`). Every mask here lies in [0, 1], so
the pruning loss works on cached RoI features and never recomputes RoIAlign (tested against masking the
map itself).

**Hard masks.** At test time channel j of layer l is kept iff β^l_j ≥ τ (default 0.5; τ sets the
pruning rate — 0 keeps everything). A floor keeps at least ``min_keep`` channels per layer, the
highest-β ones (default ``max(4, ⌈10 %⌉)`` of the layer, never more than the layer has), so a mask that
collapses to zero never empties a layer; ``min_keep=0`` switches the floor off and an empty layer raises
:class:`MetaRTTError` instead.

**Physical removal** (:func:`prune_network`): the kept out-channels of the shared conv, the matching
RoI-feature columns of fc4, kept rows of fc4/fc5 and columns of fc5/fc6, and the per-parameter learning
rates sliced the same way (scalar rates stay scalar). With a 0/1 mask the pruned network computes exactly
what the masked one does, and keeps doing so through adaptation: a zeroed unit's outgoing gradient is
multiplied by 0 (pruned rows never matter), and kept rows see identical inputs and identical gradients.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import replace
from typing import Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.utils import MetaRTTError
from .net import Head, TrackerNet

LAYERS = ("shared", "fc4", "fc5")


def default_min_keep(width: int) -> int:
    return min(width, max(4, math.ceil(0.1 * width)))


def layer_widths(net: TrackerNet) -> dict[str, int]:
    return {"shared": net.shared.out_channels, "fc4": net.head.fc4.out_features, "fc5": net.head.fc5.out_features}


# ------------------------------------------------------------------------------------ masked forward
def expand_shared_mask(beta: torch.Tensor, roi_size: int) -> torch.Tensor:
    """A per-channel mask (C,) → the RoI-feature column mask (C·roi_size²,), channel-major."""
    return beta.repeat_interleave(roi_size ** 2)


def roi_columns(keep_shared: torch.Tensor, roi_size: int) -> torch.Tensor:
    """The RoI-feature columns owned by the kept shared channels: concat(r²·c + 0..r²−1), channel-major."""
    r2 = roi_size ** 2
    return (keep_shared.view(-1, 1) * r2 + torch.arange(r2, device=keep_shared.device)).flatten()


def layer_features(net: TrackerNet, x: torch.Tensor, theta: Mapping[str, torch.Tensor] | None = None,
                   masks: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Features F^l (``masks=None``) or F_B^l (Eq. 10) of every layer in S, eval mode (no dropout).

    ``x``: RoI features (N, C·9) of the full network; ``theta``: head parameters (default θ0);
    ``masks``: {layer: β^l} (a layer missing is unmasked)."""
    theta = theta if theta is not None else net.head_params()
    masks = masks or {}
    if "shared" in masks:
        x = x * expand_shared_mask(masks["shared"], net.cfg.roi_size)
    out = {"shared": x}
    h = F.relu(F.linear(x, theta["fc4.weight"], theta["fc4.bias"]))
    if "fc4" in masks:
        h = h * masks["fc4"]
    out["fc4"] = h
    h = F.relu(F.linear(h, theta["fc5.weight"], theta["fc5.bias"]))
    if "fc5" in masks:
        h = h * masks["fc5"]
    out["fc5"] = h
    return out


def masked_scores(net: TrackerNet, x: torch.Tensor, theta: Mapping[str, torch.Tensor] | None = None,
                  masks: Mapping[str, torch.Tensor] | None = None, training: bool = False) -> torch.Tensor:
    """fc6 scores of the masked network (dropout as ``net.head`` when ``training``)."""
    theta = theta if theta is not None else net.head_params()
    masks = masks or {}
    p = net.head.dropout
    if "shared" in masks:
        x = x * expand_shared_mask(masks["shared"], net.cfg.roi_size)
    h = F.relu(F.linear(x, theta["fc4.weight"], theta["fc4.bias"]))
    if "fc4" in masks:
        h = h * masks["fc4"]
    h = F.dropout(h, p, training)
    h = F.relu(F.linear(h, theta["fc5.weight"], theta["fc5.bias"]))
    if "fc5" in masks:
        h = h * masks["fc5"]
    h = F.dropout(h, p, training)
    return F.linear(h, theta["fc6.weight"], theta["fc6.bias"])



def hard_keep(betas: Mapping[str, torch.Tensor], tau: float = 0.5, min_keep: int | None = None) -> dict[str, torch.Tensor]:
    """Kept channel indices per layer (sorted): β ≥ τ, topped up to the floor with the highest-β channels
    (ties: lowest index first). ``min_keep=None`` → ``default_min_keep(width)``; 0 → no floor, and a layer
    left empty raises MetaRTTError."""
    keep = {}
    for l, b in betas.items():
        b = b.detach().flatten()
        C = len(b)
        floor = default_min_keep(C) if min_keep is None else min(int(min_keep), C)
        idx = torch.nonzero(b >= tau).flatten()
        if len(idx) < floor:
            idx = torch.sort(b, descending=True, stable=True).indices[:floor]
        if len(idx) == 0:
            raise MetaRTTError(f"the hard mask of layer {l!r} keeps no channel (every β < τ={tau}); "
                               f"use min_keep ≥ 1 or a lower τ")
        keep[l] = torch.sort(idx).values
    return keep


def hard_masks(keep: Mapping[str, torch.Tensor], widths: Mapping[str, int], like: torch.Tensor) -> dict[str, torch.Tensor]:
    """0/1 masks (dtype/device of ``like``) from kept indices; a layer missing from ``keep`` is all ones."""
    out = {}
    for l, w in widths.items():
        if l in keep:
            m = torch.zeros(w, dtype=like.dtype, device=like.device)
            m[keep[l].to(like.device)] = 1
        else:
            m = torch.ones(w, dtype=like.dtype, device=like.device)
        out[l] = m
    return out


def prune_rates(keep: Mapping[str, torch.Tensor], widths: Mapping[str, int]) -> dict[str, float]:
    """Fraction of channels removed per layer."""
    return {l: 1.0 - len(keep[l]) / widths[l] if l in keep else 0.0 for l in widths}



# --------------------------------------------------------------------------------- physical removal
def slice_head_tensor(name: str, t: torch.Tensor, keep: Mapping[str, torch.Tensor], roi_size: int) -> torch.Tensor:
    """Slice a head parameter (or anything shaped like it: a rate, an optimiser buffer) to the kept
    channels. 0-d tensors (scalar rates) are returned unchanged."""
    if t.dim() == 0:
        return t
    dev = t.device
    k4 = keep["fc4"].to(dev) if "fc4" in keep else None
    k5 = keep["fc5"].to(dev) if "fc5" in keep else None
    cols = roi_columns(keep["shared"], roi_size).to(dev) if "shared" in keep else None
    layer, kind = name.split(".")
    if layer == "fc4":
        if k4 is not None:
            t = t[k4]
        if kind == "weight" and cols is not None:
            t = t[:, cols]
    elif layer == "fc5":
        if k5 is not None:
            t = t[k5]
        if kind == "weight" and k4 is not None:
            t = t[:, k4]
    elif layer == "fc6":
        if kind == "weight" and k5 is not None:
            t = t[:, k5]
    else:
        raise MetaRTTError(f"unknown head parameter {name!r}")
    return t


def _slice_params(params: Mapping[str, torch.Tensor], keep, roi_size: int) -> "OrderedDict[str, torch.Tensor]":
    return OrderedDict((k, slice_head_tensor(k, v.detach(), keep, roi_size).clone().requires_grad_(v.requires_grad))
                       for k, v in params.items())


def slice_rates(rates, keep: Mapping[str, torch.Tensor], roi_size: int):
    """Slice rates shaped like head parameters: a {name: α} dict, or (nested) lists/tuples of them."""
    if rates is None:
        return None
    if isinstance(rates, Mapping):
        return {k: slice_head_tensor(k, v.detach(), keep, roi_size).clone() for k, v in rates.items()}
    return type(rates)(slice_rates(r, keep, roi_size) for r in rates)


def prune_network(net: TrackerNet, theta: Mapping[str, torch.Tensor] | None, rates, keep: Mapping[str, torch.Tensor]):
    """Physically remove channels: returns (pruned TrackerNet, sliced θ, sliced rates).

    The new net shares ``net``'s trunk; its shared conv keeps ``keep['shared']`` out-channels, fc4 the
    matching RoI columns and ``keep['fc4']`` rows, fc5 ``keep['fc5']`` rows (and fc4's kept columns),
    fc6 fc5's kept columns. Its own head holds ``net``'s θ0 sliced; ``theta`` (default θ0) and ``rates``
    (a dict, or lists/tuples of per-step dicts; scalars stay scalars) are sliced alike. ``net.cfg`` is
    copied with the new ``shared_channels`` and ``fc_width`` = fc4's width; fc5 may be narrower (see
    ``net.head.fc5``). Building it draws no random numbers."""
    keep = {l: torch.as_tensor(v, dtype=torch.long).flatten().cpu() for l, v in keep.items()}
    widths = layer_widths(net)
    for l, idx in keep.items():
        if l not in widths:
            raise MetaRTTError(f"unknown prunable layer {l!r} (known: {', '.join(LAYERS)})")
        if len(idx) == 0:
            raise MetaRTTError(f"pruning would leave layer {l!r} with no channel")
        if idx.min() < 0 or idx.max() >= widths[l] or len(torch.unique(idx)) != len(idx):
            raise MetaRTTError(f"kept indices of layer {l!r} must be distinct and in 0..{widths[l] - 1}")
    keep = {l: torch.sort(v).values for l, v in keep.items()}
    full = {l: keep.get(l, torch.arange(w)) for l, w in widths.items()}
    r = net.cfg.roi_size
    cfg = replace(net.cfg, shared_channels=len(full["shared"]), fc_width=len(full["fc4"]))
    with torch.random.fork_rng(devices=[]):
        new = TrackerNet(cfg, trunk=net.trunk)
        new.head = Head(cfg.shared_channels * r * r, cfg.fc_width, net.head.dropout)
        new.head.fc5 = nn.Linear(len(full["fc4"]), len(full["fc5"]))
        new.head.fc6 = nn.Linear(len(full["fc5"]), net.head.fc6.out_features)
    ks = full["shared"].to(net.shared.weight.device)
    new.shared.weight = nn.Parameter(net.shared.weight.detach()[ks].clone(), requires_grad=net.shared.weight.requires_grad)
    new.shared.bias = nn.Parameter(net.shared.bias.detach()[ks].clone(), requires_grad=net.shared.bias.requires_grad)
    for k, v in net.head_params().items():
        mod, kind = k.split(".")
        setattr(getattr(new.head, mod), kind, nn.Parameter(slice_head_tensor(k, v.detach(), full, r).clone(),
                                                           requires_grad=v.requires_grad))
    new.train(net.training)
    new.pruned_keep = full
    new.unpruned_widths = widths
    theta = _slice_params(theta if theta is not None else net.head_params(), full, r)
    return new, theta, slice_rates(rates, full, r)

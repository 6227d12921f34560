"""The tracking schedules of our named trackers (:class:`~metartt_lite.core.config.TrackConfig` presets).

Which name builds which tracker, with which weights, is :mod:`metartt_lite.track.registry`'s job."""
from __future__ import annotations

from dataclasses import replace

from ..core.config import OptimConfig, TrackConfig

RTMDNET = TrackConfig()                                   # K_init 50, K_on 15, SGD 1e-4 / 3e-4
RTMDNET_K5 = replace(TrackConfig(), k_init=5, k_on=5)
RTMDNET_K5_TUNED = replace(TrackConfig(), k_init=5, k_on=5,
                           optim=OptimConfig(kind="adam", lr_init=1e-3, lr_update=1e-3, fc6_lr_mult=1.0, weight_decay=0.0))
METARTT = replace(TrackConfig(), k_init=5, k_on=5, optim=OptimConfig(kind="meta"))  # K as learned (5/5 by default)

OURS: dict[str, TrackConfig] = {"rtmdnet": RTMDNET, "rtmdnet-k5": RTMDNET_K5, "rtmdnet-k5-tuned": RTMDNET_K5_TUNED}

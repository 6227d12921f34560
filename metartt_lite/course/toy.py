"""A toy TrackerNet and toy cached-feature sequences, shared by the tests and notebook 04.

Episodes read cached trunk features only, so a network whose trunk is a stand-in (:class:`StubTrunk`:
it has the real trunk's stride and a channel count, no weights) runs the whole meta-learning pipeline.
:data:`TINY` makes it small: 4 shared channels, fc layers 8 wide, no dropout (so L_meta is a smooth,
deterministic function of the meta-parameters, what finite differences need)."""
from __future__ import annotations

import numpy as np
import torch

from ..core.config import ModelConfig
from ..train.features import SequenceFeatures
from ..model.net import TrackerNet

__all__ = ["StubTrunk", "TINY", "tiny_net", "toy_sequences"]


class StubTrunk(torch.nn.Module):
    """Stands in for the frozen trunk: the episodes read cached trunk features only."""
    stride = 16
    out_channels = 6


TINY = ModelConfig(crop_size=128, target_size=40.0, shared_channels=4, fc_width=8, dropout=0.0)


def tiny_net(dtype: torch.dtype = torch.float32, seed: int = 0) -> TrackerNet:
    """A :data:`TINY` TrackerNet with weights drawn from ``seed`` (the global RNG is left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TrackerNet(TINY, trunk=StubTrunk()).to(dtype)


def toy_sequences(n_seq: int = 3, n_frames: int = 12, seed: int = 0, dtype: torch.dtype = torch.float32,
                  prefix: str = "fake") -> list[SequenceFeatures]:
    """Cached-feature sequences without a trunk: noise maps (std 0.3) with a bright 2×2 blob (+2) at the
    target, in channel ``s % 6`` for sequence ``s``, so there is something to learn; the target box
    jitters around (100, 80, 40, 40) in a 320×240 frame."""
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    out = []
    S = TINY.crop_size // 16
    for s in range(n_seq):
        gt = np.tile([100.0, 80.0, 40.0, 40.0], (n_frames, 1)) + rng.uniform(-8, 8, (n_frames, 4)) * [1, 1, 0.3, 0.3]
        scale = TINY.target_size / np.sqrt(gt[:, 2] * gt[:, 3])
        origin = gt[:, :2] + gt[:, 2:] / 2 - TINY.crop_size / 2 / scale[:, None]
        trunk = torch.randn(n_frames, StubTrunk.out_channels, S, S, generator=g, dtype=dtype) * 0.3
        trunk[:, s % StubTrunk.out_channels, S // 2 - 1:S // 2 + 1, S // 2 - 1:S // 2 + 1] += 2.0
        out.append(SequenceFeatures(name=f"{prefix}{s}", trunk=trunk, origins=origin, scales=scale, gt=gt,
                                    frame_sizes=np.tile([320, 240], (n_frames, 1)), frame_index=np.arange(n_frames)))
    return out

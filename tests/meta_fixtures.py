"""Small synthetic fixtures for meta-learning tests: cached-feature sequences without the trunk."""
from __future__ import annotations

import numpy as np
import torch

from metartt_lite.core.config import ModelConfig
from metartt_lite.train.features import SequenceFeatures
from metartt_lite.model.net import TrackerNet


class StubTrunk(torch.nn.Module):
    stride = 16
    out_channels = 6


TINY = ModelConfig(crop_size=128, target_size=40.0, shared_channels=4, fc_width=8, dropout=0.0)


def tiny_net(dtype=torch.float32, seed: int = 0) -> TrackerNet:
    torch.manual_seed(seed)
    return TrackerNet(TINY, trunk=StubTrunk()).to(dtype)


def fake_feats(n_seq: int = 3, n_frames: int = 12, seed: int = 0, dtype=torch.float32) -> list[SequenceFeatures]:
    """Random trunk maps with a bright blob where the target is, so the task is learnable."""
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
        out.append(SequenceFeatures(name=f"fake{s}", trunk=trunk, origins=origin, scales=scale, gt=gt,
                                    frame_sizes=np.tile([320, 240], (n_frames, 1)), frame_index=np.arange(n_frames)))
    return out


def sample_seqs(n: int = 3, frames: int = 14) -> list:
    """``n`` synthetic sample videos (translation / scale / distractor in turn), each named after its preset."""
    from metartt_lite.data.samples import make_sample
    presets = ["translation", "scale", "distractor"]
    seqs = []
    for i in range(n):
        v = make_sample(presets[i % 3], seed=i, n_frames=frames, size=(160, 120))
        v.name = f"{presets[i % 3]}{i}"
        seqs.append(v)
    return seqs

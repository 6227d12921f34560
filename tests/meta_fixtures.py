"""Small synthetic fixtures for meta-learning tests: cached-feature sequences without the trunk (the toy
net and sequences live in ``metartt_lite.course.toy``, which notebook 04 uses too)."""
from __future__ import annotations

import torch

from metartt_lite.course import toy
from metartt_lite.train.features import SequenceFeatures
from metartt_lite.model.net import TrackerNet
from metartt_lite.course.toy import TINY, StubTrunk  # noqa: F401  (re-exported for the tests)


def tiny_net(dtype=torch.float32, seed: int = 0) -> TrackerNet:
    """The weights of ``toy.tiny_net(dtype, seed)``, drawn from the *global* RNG seeded with ``seed`` (the
    tests have always relied on that side effect; the package's version leaves the global RNG alone)."""
    torch.manual_seed(seed)
    return TrackerNet(TINY, trunk=StubTrunk()).to(dtype)


def fake_feats(n_seq: int = 3, n_frames: int = 12, seed: int = 0, dtype=torch.float32) -> list[SequenceFeatures]:
    """Random trunk maps with a bright blob where the target is, so the task is learnable."""
    return toy.toy_sequences(n_seq, n_frames, seed, dtype, prefix="fake")


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

"""Multi-domain pretraining end to end on small sample videos: the checkpoint it writes, its provenance,
its architecture (``--trunk-blocks``) and that the trackers build exactly that network from it."""
from __future__ import annotations

import json

import numpy as np
import torch

from metartt_lite.core.checkpoint import load_checkpoint
from metartt_lite.core.config import ModelConfig
from metartt_lite.track.registry import make_tracker
from metartt_lite.train.features import CacheConfig
from metartt_lite.train.pretrain import PretrainConfig, pretrain
from meta_fixtures import sample_seqs

CPU = torch.device("cpu")


def test_pretrain_with_a_shorter_trunk_writes_a_checkpoint_the_trackers_build(tmp_path, monkeypatch):
    monkeypatch.setenv("METARTT_CACHE", str(tmp_path / "cache"))
    seqs = sample_seqs(2, frames=8)
    cfg = PretrainConfig(iterations=30, frames_per_batch=2, seed=0, cache=CacheConfig(frame_step=2))
    path = pretrain(seqs, tmp_path / "pt", cfg, ModelConfig(trunk_blocks=4), command="test")
    obj = load_checkpoint(path, kind="pretrain", model_cfg=ModelConfig(trunk_blocks=4))
    assert obj["tensors"]["shared.weight"].shape[1] == 80            # the 4-stage trunk's channels
    prov = json.loads((tmp_path / "pt" / "pretrain.json").read_text())
    assert prov["data"] == [s.name for s in seqs] and prov["iterations"] == 30 and prov["command"] == "test"
    assert isinstance(prov["commit"], str) and prov["dirty"] in (True, False, None)
    assert prov["selection"] == "last iteration" and np.isfinite(prov["final_loss"])
    assert prov["model_config"]["trunk_blocks"] == 4
    tracker = make_tracker("rtmdnet-k5", checkpoint=path, seed=0, dev=CPU)
    assert tracker.net.trunk.out_channels == 80
    torch.testing.assert_close(tracker.net.head.fc4.weight, obj["tensors"]["head.fc4.weight"])

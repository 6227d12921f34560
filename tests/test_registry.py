"""The registry: every shipped tracker and variant by one name, each buildable; missing weights are errors."""
from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
import torch

from metartt_lite.track import registry
from metartt_lite.core.checkpoint import WEIGHTS_DIR, checkpoint_model_config, save_checkpoint
from metartt_lite.core.config import ModelConfig
from metartt_lite.data import samples
from metartt_lite.model.net import build_net
from metartt_lite.train.meta import MetaConfig, MetaLearner, learner_tensors
from metartt_lite.track.registry import list_trackers, make_tracker
from metartt_lite.core.utils import MetaRTTError

CPU = torch.device("cpu")


def test_every_shipped_weight_file_has_a_tracker():
    shipped = set(WEIGHTS_DIR.glob("*.pt"))
    used = {s.weights for s in registry.TRACKERS.values() if s.weights is not None}
    assert shipped <= used, f"weights without a tracker: {sorted(p.name for p in shipped - used)}"


@pytest.mark.parametrize("name", list_trackers())
def test_every_listed_tracker_builds_under_its_name(name):
    t = make_tracker(name, seed=0, dev=CPU)
    assert t.name == name
    assert callable(t.init) and callable(t.update)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(MetaRTTError, match="unknown tracker 'nope'.*metartt-prune-static"):
        make_tracker("nope")


def test_missing_pretrain_checkpoint_is_an_error_not_random_weights(monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "PRETRAINED", tmp_path / "pretrain.pt")
    with pytest.raises(MetaRTTError, match="pretrain checkpoint .*pretrain.pt is missing"):
        make_tracker("rtmdnet", dev=CPU)
    assert make_tracker("rtmdnet", dev=CPU, pretrained=False).name == "rtmdnet"  # the explicit opt-out


def test_trackers_build_the_architecture_of_their_checkpoint(tmp_path):
    """A checkpoint trained on another trunk cut (``pretrain --trunk-blocks 4``: 80 channels) builds a
    network of that architecture, loaded with the checkpoint's own weights, for the rtmdnet presets and
    for metartt; the box it tracks is finite and inside the frame."""
    cfg4 = ModelConfig(trunk_blocks=4)
    net = build_net(cfg4, CPU, seed=3)
    tensors = {f"shared.{k}": v for k, v in net.shared.state_dict().items()}
    tensors.update({f"head.{k}": v for k, v in net.head.state_dict().items()})
    save_checkpoint(tmp_path / "pretrain.pt", "pretrain", cfg4, tensors)
    learner = MetaLearner(net, MetaConfig())
    save_checkpoint(tmp_path / "meta.pt", "meta", cfg4, learner_tensors(learner), extra={"config": asdict(MetaConfig())})
    assert checkpoint_model_config(tmp_path / "meta.pt") == cfg4

    video = samples.make_sample("translation", seed=0, n_frames=3)
    H, W = video.frames[0].shape[:2]
    for name, ckpt in (("rtmdnet-k5", "pretrain.pt"), ("metartt", "meta.pt")):
        t = make_tracker(name, checkpoint=tmp_path / ckpt, seed=0, dev=CPU)
        assert t.net.trunk.out_channels == 80 and t.net.shared.in_channels == 80, name
        torch.testing.assert_close(t.net.shared.weight, net.shared.weight)  # the checkpoint's weights
        t.init(video.frames[0], video.init_box)
        for f in video.frames[1:]:
            box, _ = t.update(f)
            assert np.all(np.isfinite(box)) and box[0] >= 0 and box[1] >= 0 and box[0] + box[2] <= W + 1e-6 \
                and box[1] + box[3] <= H + 1e-6, (name, box)
    # the shipped (5-stage) trackers are unchanged: 112 trunk channels
    assert make_tracker("rtmdnet", seed=0, dev=CPU).net.trunk.out_channels == 112


def test_split_spec_names_a_tracker_and_optional_weights():
    assert registry.split_spec("metartt") == ("metartt", None)
    assert registry.split_spec("metartt@runs/m/meta.pt") == ("metartt", "runs/m/meta.pt")
    with pytest.raises(MetaRTTError, match="no checkpoint after"):
        registry.split_spec("metartt@")


@pytest.mark.parametrize("name,shipped", [("metartt-prune-nometa", "pretrain.pt"), ("metartt-prune", "meta.pt")])
def test_prune_checkpoints_fall_back_to_the_shipped_source_when_the_recorded_path_is_gone(monkeypatch, tmp_path, name, shipped):
    """A prune checkpoint records the (absolute) path of the checkpoint it was trained on; on another
    machine that path is gone, and the shipped source is used instead — also for ``--no-meta`` ones,
    which took the recorded pretrain path as is and failed on every machine but the training one."""
    import warnings
    from metartt_lite.core.checkpoint import load_checkpoint
    from metartt_lite.track import pruned
    real = pruned.load_pruner

    def gone(path):
        pruner, pc, extra = real(path)
        return pruner, pc, {**extra, "meta_checkpoint": str(tmp_path / "gone" / shipped)}
    monkeypatch.setattr(pruned, "load_pruner", gone)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the shipped source has the recorded SHA-1: no mismatch warning
        t = make_tracker(name, seed=0)
    src = load_checkpoint(WEIGHTS_DIR / shipped)["tensors"]
    key = "shared.weight" if "shared.weight" in src else next(k for k in src if k.endswith("shared.weight"))
    torch.testing.assert_close(t.full_net.shared.weight.detach(), src[key].to(t.full_net.shared.weight), rtol=0, atol=0)

"""The registry: every shipped tracker and variant by one name, each buildable; missing weights are errors."""
from __future__ import annotations

import pytest
import torch

from metartt_lite.track import registry
from metartt_lite.core.checkpoint import WEIGHTS_DIR
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

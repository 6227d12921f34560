"""NanoTrack in the package, against its oracles: the vendored ONNX pair under onnxruntime (same weights as the
converted .pth), OpenCV's ``cv2.TrackerNano`` (same boxes), and ``metartt-nano`` with the head switched off
(w = 0) = NanoTrack box for box. Plus the meta-learning of the online head: gradients vs finite differences."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from metartt_lite import make_tracker
from metartt_lite.core.boxes import iou
from metartt_lite.core.utils import MetaRTTError
from metartt_lite.data.samples import make_sample
from metartt_lite.model.nanotrack import NANOTRACK_DIR, load_nanotrack
from metartt_lite.track.metartt_nano import MetaRTTNano, NanoAdaptConfig
from metartt_lite.track.nanotrack import NanoTracker
from metartt_lite.track.peers import _round_box, make_peer
from metartt_lite.train.nano_meta import (NanoCache, NanoMetaConfig, NanoMetaLearner, load_nano_meta,
                                          nano_episode_loss)


def test_shipped_files_match_their_recorded_hashes_and_licence():
    meta = json.loads((NANOTRACK_DIR / "SOURCES.json").read_text())
    for name, rec in meta["files"].items():
        assert hashlib.sha256((NANOTRACK_DIR / name).read_bytes()).hexdigest() == rec["sha256"], name
    assert "Apache License" in (NANOTRACK_DIR / "LICENSE").read_text()
    assert "NanoTrack" in (NANOTRACK_DIR / "NOTICE").read_text()


def test_backbone_and_head_equal_the_onnx_pair_under_onnxruntime():
    ort = pytest.importorskip("onnxruntime")
    net = load_nanotrack()
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (1, 3, 255, 255)).astype(np.float32)
    z = rng.uniform(0, 255, (1, 3, 127, 127)).astype(np.float32)
    bb = ort.InferenceSession(str(NANOTRACK_DIR / "nanotrack_backbonev2.onnx"))
    hd = ort.InferenceSession(str(NANOTRACK_DIR / "nanotrack_headv2.onnx"))
    with torch.no_grad():
        xf = net.backbone(torch.from_numpy(x))
        zf = net.backbone(torch.from_numpy(z))
        logits, ltrb = net.ban_head(zf, xf)
    xo = bb.run(None, {"input": x})[0]
    np.testing.assert_allclose(xf.numpy(), xo, atol=2e-4 * np.abs(xo).max())
    lo, lto = hd.run(None, {"input1": zf.numpy(), "input2": xo})
    np.testing.assert_allclose(logits.numpy(), lo, atol=1e-3)
    np.testing.assert_allclose(ltrb.numpy(), lto, rtol=1e-4, atol=1e-3)
    # a perturbed weight is caught (the check can fail)
    with torch.no_grad():
        net.backbone.features[3].conv[0].weight.mul_(1.01)
        assert np.abs(net.backbone(torch.from_numpy(x)).numpy() - xo).max() > 1e-2


def test_bad_weights_give_a_named_error(tmp_path):
    with pytest.raises(MetaRTTError, match="not found"):
        load_nanotrack(tmp_path / "none.pt")
    torch.save({"backbone.features.0.0.weight": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(MetaRTTError, match="do not fit NanoTrack v2"):
        load_nanotrack(tmp_path / "bad.pt")


def _run(tracker, frames, box):
    tracker.init(frames[0], box)
    return np.array([tracker.update(f)[0] for f in frames[1:]])


def _oracle_iou(frames, gt0):
    H, W = frames[0].shape[:2]
    b0 = np.array(_round_box(gt0, (W, H)), float)
    ours = _run(NanoTracker(), frames, b0)
    ref = _run(make_peer("nanotrack"), frames, b0)
    return iou(np.trunc(ours), ref)  # OpenCV returns int(x) of its float box


def test_our_nanotrack_gives_opencvs_boxes_on_a_sample_video():
    v = make_sample("translation", seed=0, n_frames=60)
    ious = _oracle_iou(v.frames, v.groundtruth[0])
    assert ious.mean() >= 0.99, ious.mean()


def test_one_step_from_the_same_state_gives_opencvs_box_on_every_frame():
    """Whole runs can part at a near-tie of two peaks (float32 rounding; the look-alike video, seed 0, parts at
    frame 34); one step from the same state must agree everywhere."""
    v = make_sample("distractor", seed=0, n_frames=60)
    H, W = v.frames[0].shape[:2]
    for t in range(0, 59, 3):
        b = np.array(_round_box(v.groundtruth[t], (W, H)), float)
        ours, ref = NanoTracker(), make_peer("nanotrack")
        ours.init(v.frames[t], b)
        ref.init(v.frames[t], b)
        assert iou(np.trunc(ours.update(v.frames[t + 1])[0]), ref.update(v.frames[t + 1])[0]) >= 0.99, t


@pytest.mark.shared
@pytest.mark.parametrize("name", ["Crossing", "Couple"])
def test_our_nanotrack_gives_opencvs_boxes_on_val(shared_data, name):
    from metartt_lite.data.sequences import load_split
    seq = load_split(shared_data, "val", names=name)[0]
    ious = _oracle_iou(list(seq.frames()), seq.groundtruth[0])
    assert ious.mean() >= 0.99, ious.mean()


def test_metartt_nano_with_the_head_off_is_nanotrack_box_for_box():
    v = make_sample("distractor", seed=1, n_frames=40)
    ref = _run(NanoTracker(), v.frames, v.groundtruth[0])
    off = _run(MetaRTTNano(NanoTracker(), cfg=NanoAdaptConfig(w=0.0, rates="hand")), v.frames, v.groundtruth[0])
    np.testing.assert_array_equal(off, ref)
    on = _run(MetaRTTNano(NanoTracker(), cfg=NanoAdaptConfig(w=0.9, rates="hand")), v.frames, v.groundtruth[0])
    assert not np.array_equal(on, ref)  # the head does change the pick when it weighs in


def test_registered_nano_trackers_track_a_sample():
    v = make_sample("translation", seed=0, n_frames=30)
    for name in ("nanotrack", "nanotrack-torch", "metartt-nano", "metartt-nano-hand"):
        out = _run(make_tracker(name, seed=0), v.frames, v.groundtruth[0])
        assert np.mean(iou(out, v.groundtruth[1:])) > 0.6, name


def _tiny_caches(n: int = 3, frames: int = 10) -> list[NanoCache]:
    g = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    out = []
    for v in range(n):
        gt = np.tile([[100.0, 100.0, 40.0, 40.0]], (frames, 1)) + rng.uniform(-5, 5, (frames, 4))
        props = np.repeat(gt[:, None], 256, 1) + rng.uniform(-60, 60, (frames, 256, 4)) * [1, 1, 0.1, 0.1]
        out.append(NanoCache(f"v{v}", torch.rand(frames, 48, 16, 16, generator=g).half() * 8,
                             np.tile([[40.0, 40.0]], (frames, 1)), np.full(frames, 255 / 160), gt,
                             np.tile([[320, 240]], (frames, 1)), props, rng.uniform(0, 1, (frames, 256))))
    return out


def test_meta_gradient_of_a_learning_rate_matches_finite_differences():
    caches = _tiny_caches()
    cfg = NanoMetaConfig(k_init=2, k_on=2, n_pos=8, n_neg=16, gamma=0.5)
    learner = NanoMetaLearner(cfg)
    loss = nano_episode_loss(learner, caches, 0, cfg, np.random.default_rng(3))
    loss.backward()
    p = learner.a_on[1]["fc6__bias"]
    grad = p.grad[1].item()
    eps = 2e-3
    vals = []
    for sign in (1, -1):
        with torch.no_grad():
            p[1] += sign * eps
        vals.append(nano_episode_loss(learner, caches, 0, cfg, np.random.default_rng(3)).item())
        with torch.no_grad():
            p[1] -= sign * eps
    fd = (vals[0] - vals[1]) / (2 * eps)
    assert abs(grad) > 1e-6
    assert abs(fd - grad) <= 0.05 * abs(grad) + 1e-5, (fd, grad)
    # the first-order approximation gives another gradient (the check can tell them apart)
    learner.zero_grad()
    fo = NanoMetaConfig(k_init=2, k_on=2, n_pos=8, n_neg=16, gamma=0.5, first_order=True)
    nano_episode_loss(learner, caches, 0, fo, np.random.default_rng(3)).backward()
    assert learner.theta["fc4__weight"].grad is not None


def test_shipped_nano_meta_checkpoint_loads_and_bad_files_are_named(tmp_path):
    theta, r_init, r_on, extra = load_nano_meta(make_tracker.__globals__["NANO_META_CHECKPOINT"])
    assert list(theta) == ["fc4.weight", "fc4.bias", "fc5.weight", "fc5.bias", "fc6.weight", "fc6.bias"]
    assert len(r_init) == len(r_on) == 5 and all(set(r) == set(theta) for r in r_init + r_on)
    assert not set(extra["train_videos"]) & set(extra["held_aside_videos"])
    with pytest.raises(MetaRTTError, match="not found"):
        load_nano_meta(tmp_path / "x.pt")
    torch.save({"kind": "meta"}, tmp_path / "y.pt")
    with pytest.raises(MetaRTTError, match="not a metartt-nano checkpoint"):
        load_nano_meta(tmp_path / "y.pt")


def test_nano_meta_train_runs_keeps_the_best_held_aside_state_and_loads(tmp_path):
    from metartt_lite.train.nano_meta import nano_meta_train
    caches = _tiny_caches(4)
    cfg = NanoMetaConfig(iterations=3, meta_batch=1, k_init=2, k_on=2, n_pos=8, n_neg=16)
    extra = nano_meta_train(caches[:3], tmp_path / "m.pt", cfg, caches[3:], log=lambda m: None)
    theta, r_init, r_on, ex = load_nano_meta(tmp_path / "m.pt")
    assert len(r_init) == len(r_on) == 2 and ex["held_aside_videos"] == ["v3"]
    assert ex["best_iteration"] == extra["best_iteration"] and len(ex["history"]) == 3
    assert all(float(v.min()) >= 0 for r in r_init + r_on for v in r.values())  # rates stay non-negative

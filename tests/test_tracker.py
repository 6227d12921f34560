"""The tracker end to end: accuracy floors on sample videos, hostile and bad inputs, determinism, memory."""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from metartt_lite.core import boxes as bx
from metartt_lite.track import presets, registry
from metartt_lite.data import samples
from metartt_lite.model.net import build_net
from metartt_lite.evaluation.ope import sequence_metrics
from metartt_lite.data.sequences import as_rgb
from metartt_lite.track.rtmdnet import RTMDNetTracker
from metartt_lite.core.utils import MetaRTTError

CPU = torch.device("cpu")
CHEAP = replace(presets.RTMDNET_K5_TUNED, n_neg_init=300, n_pos_init=100, init_augment_crops=0)




def cheap_tracker(cfg=CHEAP, seed: int = 0) -> RTMDNetTracker:
    return RTMDNetTracker(build_net(dev=CPU, seed=seed), cfg, name="cheap", seed=seed, dev=CPU)


def track(tracker, frames, box) -> tuple[np.ndarray, np.ndarray]:
    """Run a tracker; check every output is a finite, non-degenerate box inside its frame and a float score."""
    tracker.init(frames[0], np.asarray(box, dtype=np.float64))
    out, scores = [np.asarray(box, dtype=np.float64)], [1.0]
    for f in frames[1:]:
        b, s = tracker.update(f)
        H, W = np.asarray(f).shape[:2]
        b = np.asarray(b)
        assert b.shape == (4,) and np.all(np.isfinite(b)), b
        assert isinstance(s, float) and np.isfinite(s)
        assert b[0] >= 0 and b[1] >= 0, b
        assert b[0] + b[2] <= W * (1 + 1e-9) and b[1] + b[3] <= H * (1 + 1e-9), (b, W, H)
        assert b[2] >= min(bx.MIN_SIZE, W) and b[3] >= min(bx.MIN_SIZE, H), b
        out.append(b)
        scores.append(s)
    return np.array(out), np.array(scores)


@pytest.fixture(scope="module")
def small_video():
    return samples.make_sample("translation", seed=1, n_frames=10, size=(160, 120))


def textured_background(W=160, H=120, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    bg = cv2.resize(rng.integers(0, 256, (H // 8, W // 8, 3), dtype=np.uint8), (W, H), interpolation=cv2.INTER_NEAREST)
    return (bg // 2 + 40).astype(np.uint8)


# ------------------------------------------------------------------------------- accuracy floors
# Measured (CPU, the shipped weights trained on 24 sequences; 40 frames, video seed 0, tracker seeds 0-4):
#   translation: rtmdnet-k5-tuned 0.71-0.76, rtmdnet-k5 0.71-0.79, metartt 0.81-0.84   (init box kept: 0.099)
#   scale:       rtmdnet-k5-tuned 0.56-0.62, metartt 0.53-0.57                        (init box kept: 0.242)
# rtmdnet-k5 (hand-set SGD at 1e-4, 5 steps: the paper's deliberately weak Table 1 row) gets 0.28-0.54 on
# `scale` with this pretraining (0.60 with the previous one), so it has no floor there; metartt has.
# The floors sit well above "stand still" and clearly below the measured ranges.
FLOORS = {("translation", "rtmdnet-k5-tuned"): 0.45, ("translation", "rtmdnet-k5"): 0.40,
          ("translation", "metartt"): 0.45,
          ("scale", "rtmdnet-k5-tuned"): 0.42, ("scale", "metartt"): 0.42}


@pytest.mark.parametrize("preset, name", list(FLOORS))
def test_auc_floor_on_sample_video(preset, name):
    video = samples.make_sample(preset, seed=0, n_frames=40)
    tracker = registry.make_tracker(name, seed=0, dev=CPU)
    boxes, _ = track(tracker, video.frames, video.init_box)
    auc = sequence_metrics(boxes, video.groundtruth)["auc"]
    still = sequence_metrics(np.repeat(video.init_box[None], len(video), 0), video.groundtruth)["auc"]
    print(f"AUC {name} on {preset}: {auc:.3f} (standing still {still:.3f})")
    assert auc >= FLOORS[preset, name], f"{name} on {preset}: AUC {auc:.3f}"
    assert auc >= still + 0.15, f"{name} on {preset}: AUC {auc:.3f} vs standing still {still:.3f}"


# --------------------------------------------------------------------------------- hostile inputs
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_target_leaves_frame_and_comes_back(seed):
    """A 20x20 target walks out past the right border (10 px/frame), stays out, walks back and stops:
    the tracker follows it while visible and re-acquires it once it is back (seeds 0-2 measured: IoU
    0.69-0.89 over the last five frames; every seed is back on it within 3 frames of its return)."""
    bg = textured_background()
    xs = list(range(70, 171, 10)) + [180, 180] + list(range(170, 69, -10)) + [70, 70, 70]
    frames, gt = [], []
    for x in xs:
        f = bg.copy()
        f[50:70, max(x, 0):min(x + 20, 160)] = (255, 220, 0)
        frames.append(f)
        gt.append([x, 50, 20, 20])
    boxes, _ = track(cheap_tracker(seed=seed), frames, gt[0])
    ious = np.array([bx.iou(b, g) for b, g in zip(boxes, np.array(gt, dtype=np.float64))]).reshape(-1)
    assert np.all(ious[1:8] >= 0.5), ious.round(2)          # followed on the way out (fully visible)
    assert np.all(ious[-5:] >= 0.6), ious.round(2)          # re-acquired after it came back


def test_tiny_3x3_target():
    bg = textured_background(seed=1)
    frames = []
    for i in range(6):
        f = bg.copy()
        f[60:63, 80 + i:83 + i] = 255
        frames.append(f)
    boxes, _ = track(cheap_tracker(), frames, [80, 60, 3, 3])
    assert np.all(boxes[:, 2:] < 40)  # stays a small box


def test_target_covers_whole_frame(small_video):
    boxes, _ = track(cheap_tracker(), small_video.frames[:6], [0, 0, 160, 120])


def test_constant_black_frames():
    frames = [np.zeros((120, 160, 3), np.uint8)] * 6
    track(cheap_tracker(), frames, [60, 40, 30, 30])


def test_grayscale_rgba_float_frames(small_video):
    rgb = small_video.frames[:6]
    box = small_video.init_box
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in rgb]
    assert gray[0].ndim == 2
    track(cheap_tracker(), gray, box)
    track(cheap_tracker(), [g[:, :, None] for g in gray], box)
    rgba = [np.dstack([f, np.full(f.shape[:2], 255, np.uint8)]) for f in rgb]
    b_rgba, s_rgba = track(cheap_tracker(), rgba, box)
    b_rgb, s_rgb = track(cheap_tracker(), rgb, box)
    np.testing.assert_array_equal(b_rgba, b_rgb)            # alpha is ignored
    b_float, _ = track(cheap_tracker(), [f.astype(np.float32) / 255 for f in rgb], box)
    np.testing.assert_array_equal(b_float, b_rgb)           # [0, 1] floats mean the same image
    np.testing.assert_array_equal(as_rgb(rgb[0].astype(np.float64) / 255), rgb[0])


def test_frame_size_changes_mid_sequence(small_video):
    f = small_video.frames
    frames = [f[0], f[1], cv2.resize(f[2], (320, 240)), cv2.resize(f[3], (320, 240)),
              cv2.resize(f[4], (100, 80)), cv2.resize(f[5], (61, 200)), f[6]]
    track(cheap_tracker(), frames, small_video.init_box)


# ------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("box, words", [
    ([np.nan, 10, 20, 20], "nan"), ([10, 10, 0, 20], "zero"), ([10, 10, 20, -1], "negative"),
    ([500, 10, 20, 20], "outside"), ([-40, 10, 20, 20], "outside"), ([1, 2, 3], "four"),
])
def test_bad_initial_box(box, words):
    tracker = cheap_tracker()
    frame = textured_background()
    with pytest.raises(MetaRTTError, match=f"(?i){words}"):
        tracker.init(frame, box)
    with pytest.raises(MetaRTTError, match="before init"):   # a failed init leaves no half-made state
        tracker.update(frame)


def test_update_before_init_and_bad_frames():
    tracker = cheap_tracker()
    frame = textured_background()
    with pytest.raises(MetaRTTError, match="before init"):
        tracker.update(frame)
    for bad in (np.zeros((10, 10, 2), np.uint8), np.zeros(10, np.uint8), np.zeros((0, 10, 3), np.uint8)):
        with pytest.raises(MetaRTTError, match="not an image"):
            tracker.init(bad, [1, 1, 3, 3])
    tracker.init(frame, [60, 40, 30, 30])
    with pytest.raises(MetaRTTError, match="not an image"):
        tracker.update(np.zeros((10, 10, 5), np.uint8))


# ---------------------------------------------------------------------------------- determinism
def test_same_seed_same_boxes_and_shared_net_untouched():
    video = samples.make_sample("translation", seed=0, n_frames=12)
    a = registry.make_tracker("rtmdnet-k5-tuned", seed=0, dev=CPU)
    before = {k: v.detach().clone() for k, v in a.net.state_dict().items() if not k.startswith("trunk.")}
    boxes_a, scores_a = track(a, video.frames, video.init_box)
    # the tracker trains its own copy of θ0: the net's shared conv and head are unchanged
    for k, v in a.net.state_dict().items():
        if not k.startswith("trunk."):
            assert torch.equal(v, before[k]), f"{k} was modified by tracking"
    assert all(p.data_ptr() != q.data_ptr() for p, q in zip(a.params.values(), a.net.head_params().values()))
    assert any(not torch.equal(p.detach(), q.detach()) for p, q in zip(a.params.values(), a.net.head_params().values()))
    # a fresh tracker with the same seed (in the same process, after other RNG use) repeats it exactly
    torch.rand(7)
    np.random.rand(3)
    b = registry.make_tracker("rtmdnet-k5-tuned", seed=0, dev=CPU)
    boxes_b, scores_b = track(b, video.frames, video.init_box)
    np.testing.assert_array_equal(boxes_a, boxes_b)
    np.testing.assert_array_equal(scores_a, scores_b)
    # and re-initialising the same tracker object repeats it too
    boxes_c, _ = track(a, video.frames, video.init_box)
    np.testing.assert_array_equal(boxes_a, boxes_c)


# ------------------------------------------------------------------------------- bounded memory
def test_tracker_leaves_the_global_torch_rng_alone(small_video):
    """Dropout draws from the tracker's own seeded stream, not from (or into) the caller's global RNG."""
    tracker = cheap_tracker()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    track(tracker, small_video.frames[:4], small_video.init_box)
    assert torch.equal(torch.get_rng_state(), before)


def test_memory_is_bounded():
    cfg = replace(CHEAP, long_interval=2, n_frames_long=6, n_frames_short=3, n_pos_update=20, n_neg_update=40)
    video = samples.make_sample("translation", seed=2, n_frames=60, size=(160, 120))
    tracker = cheap_tracker(cfg)
    track(tracker, video.frames, video.init_box)
    assert 1 <= len(tracker.pos_mem) <= cfg.n_frames_long
    assert 1 <= len(tracker.neg_mem) <= cfg.n_frames_short
    assert len(tracker.pos_mem) == cfg.n_frames_long    # it did fill up: the bound is what held it
    assert all(len(t) <= max(cfg.n_pos_update, 1) for t in tracker.pos_mem)
    assert all(len(t) <= max(cfg.n_neg_update, 1) for t in tracker.neg_mem)


def test_search_size_sets_the_per_frame_crop(small_video, monkeypatch):
    """``search_size`` = the model's crop size is today's tracker (same boxes); a smaller one crops that many
    px per frame at the same target scale, and only after the first frame."""
    frames, box = small_video.frames, np.asarray(small_video.init_box, dtype=np.float64)
    ref, _ = track(cheap_tracker(), frames, box)
    same, _ = track(cheap_tracker(replace(CHEAP, search_size=build_net(dev=CPU).cfg.crop_size)), frames, box)
    np.testing.assert_array_equal(ref, same)
    sizes = []
    real = RTMDNetTracker._feature_map

    def recording(self, frame, crop):
        sizes.append((crop.size, crop.scale))
        return real(self, frame, crop)

    monkeypatch.setattr(RTMDNetTracker, "_feature_map", recording)
    small = cheap_tracker(replace(CHEAP, search_size=160))
    track(small, frames, box)
    n_init = 1 + CHEAP.init_augment_crops
    full = build_net(dev=CPU).cfg
    assert [s for s, _ in sizes[:n_init]] == [full.crop_size] * n_init
    assert [s for s, _ in sizes[n_init:]] == [160] * (len(frames) - 1)
    # the same target scale: the box's sqrt(area) is target_size px in both crops
    side = np.sqrt(box[2] * box[3])
    assert sizes[0][1] == pytest.approx(full.target_size / side)


def test_building_a_cpu_tracker_builds_the_frozen_trunk_for_its_crop_shapes(small_video, monkeypatch):
    """The frozen trunk's one-off build (~0.5 s per process and crop shape) happens when a tracker is built,
    for the first-frame crop and the per-frame search crop, so no tracker's timed ``init`` pays it (the first
    tracker of a notebook used to, and lost the 'metartt initialises faster than rtmdnet' comparison)."""
    from metartt_lite.model import net as net_module
    net = build_net(dev=CPU)
    net.trunk.__dict__.pop("_frozen", None)
    full = net.cfg.crop_size
    RTMDNetTracker(net, replace(CHEAP, search_size=160), dev=CPU)
    assert sorted(k[0] for k in net.trunk._frozen) == [(1, 3, 160, 160), (1, 3, full, full)]
    assert all(fn is not False for fn in net.trunk._frozen.values())  # TorchScript builds here
    builds = []
    real = net_module._freeze
    monkeypatch.setattr(net_module, "_freeze", lambda *a: builds.append(a) or real(*a))
    tracker = RTMDNetTracker(net, replace(CHEAP, search_size=160), dev=CPU)
    track(tracker, small_video.frames, np.asarray(small_video.init_box, dtype=np.float64))
    assert builds == []  # nothing built in init() or update(), nor again for the second tracker

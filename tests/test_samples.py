"""Tests for metartt_lite.data.samples: determinism, exact ground truth, every preset's effect, OTB export."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from metartt_lite.data.samples import (PRESETS, SampleConfig, SampleVideo, list_presets, make_sample,
                                  make_still_pseudo_video, sample_names, write_sample_as_otb)
from metartt_lite.core.utils import MetaRTTError

N = 16  # short videos keep the suite fast
REQUIRED = {"translation", "scale", "occlusion", "distractor", "blur", "illumination"}


def _flat(h: int, w: int, value) -> np.ndarray:
    return np.full((h, w, 3), value, np.uint8)


def _pixel_bbox(frame: np.ndarray, bg_value: int, thresh: float) -> np.ndarray:
    """[x, y, w, h] of the pixels that differ from a flat background by more than ``thresh``."""
    diff = np.abs(frame.astype(np.int16) - bg_value).max(axis=2)
    ys, xs = np.nonzero(diff > thresh)
    assert len(xs), "object not visible"
    return np.array([xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()], float)


def _edges(b: np.ndarray) -> np.ndarray:
    return np.array([b[0], b[1], b[0] + b[2], b[1] + b[3]])


def test_presets_listed():
    assert REQUIRED <= set(list_presets())
    assert sample_names() == list_presets() == list(PRESETS)
    assert all(isinstance(c, SampleConfig) for c in PRESETS.values())


@pytest.mark.parametrize("preset", sorted(REQUIRED))
def test_every_preset_generates_in_frame(preset):
    v = make_sample(preset, seed=5, n_frames=N)
    assert isinstance(v, SampleVideo) and len(v) == N and len(v.frames) == N
    assert v.frame_size == (320, 240)
    for f in v.frames:
        assert f.dtype == np.uint8 and f.shape == (240, 320, 3)
    gt = v.groundtruth
    assert gt.dtype == np.float64 and gt.shape == (N, 4)
    assert np.all(np.isfinite(gt))
    assert np.all(gt[:, 2:] > 2)
    assert np.all(gt[:, :2] >= 0)
    assert np.all(gt[:, 0] + gt[:, 2] <= 320) and np.all(gt[:, 1] + gt[:, 3] <= 240)
    np.testing.assert_array_equal(v.init_box, gt[0])
    assert v.frame(-1) is v.frames[-1]
    assert list(v.frames_iter())[3] is v.frames[3]
    assert preset in v.name


def test_default_size_and_length():
    v = make_sample()
    assert len(v) == 60 and v.frame_size == (320, 240)
    v = make_sample("translation", n_frames=5, size=(160, 120))
    assert len(v) == 5 and v.frames[0].shape == (120, 160, 3)


def test_deterministic_from_seed():
    a = make_sample("distractor", seed=7, n_frames=N)
    b = make_sample("distractor", seed=7, n_frames=N)
    c = make_sample("distractor", seed=8, n_frames=N)
    np.testing.assert_array_equal(a.groundtruth, b.groundtruth)
    for fa, fb in zip(a.frames, b.frames):
        np.testing.assert_array_equal(fa, fb)
    assert not np.array_equal(a.groundtruth, c.groundtruth)
    assert not np.array_equal(a.frames[0], c.frames[0])


@pytest.mark.parametrize("preset", ["translation", "scale"])
def test_groundtruth_is_exact_rect_object(preset):
    # test hook: flat background, flat object, hard rectangular mask, no noise
    v = make_sample(preset, seed=3, n_frames=N, background_source=_flat(60, 80, 40),
                    object_source=_flat(50, 40, 240), mask="rect", noise_std=0.0)
    for f, box in zip(v.frames, v.groundtruth):
        # pixels more than half covered by the object differ by > 100 grey levels
        seen = _pixel_bbox(f, 40, thresh=100)
        assert np.all(np.abs(_edges(seen) - _edges(box)) <= 1.0), (seen, box)
        # fully covered pixels are exactly the object's colour
        x0, y0 = int(np.ceil(box[0])), int(np.ceil(box[1]))
        x1, y1 = int(np.floor(box[0] + box[2])), int(np.floor(box[1] + box[3]))
        assert np.all(f[y0:y1, x0:x1] == 240)


def test_groundtruth_is_exact_feathered_mask():
    # the default feathered ellipse touches the box at the middle of each side
    v = make_sample("translation", seed=4, n_frames=8, background_source=_flat(30, 40, 20),
                    object_source=_flat(30, 30, 220), noise_std=0.0)
    for f, box in zip(v.frames, v.groundtruth):
        seen = _pixel_bbox(f, 20, thresh=3)
        assert np.all(np.abs(_edges(seen) - _edges(box)) <= 1.5), (seen, box)


def test_scale_preset_changes_size():
    gt = make_sample("scale", seed=0).groundtruth
    area = gt[:, 2] * gt[:, 3]
    assert np.sqrt(area.max() / area.min()) > 1.3
    assert gt[:, 2].max() / gt[:, 2].min() > 1.3


def test_occlusion_preset_covers_part_of_box():
    kw = dict(seed=2, n_frames=30, noise_std=0.0)
    occ = make_sample("occlusion", **kw)
    clean = make_sample("occlusion", occluder_source=None, **kw)
    np.testing.assert_array_equal(occ.groundtruth, clean.groundtruth)  # gt stays the full object box
    cover = occ.info["occlusion"]
    assert cover.max() > 0.3 and np.any(cover == 0)
    changed = []
    for f, g, box, c in zip(occ.frames, clean.frames, occ.groundtruth, cover):
        x, y, w, h = np.round(box).astype(int)
        d = np.abs(f[y:y + h, x:x + w].astype(int) - g[y:y + h, x:x + w]).max(axis=2) > 20
        if c == 0:
            assert not d.any()
        else:
            changed.append(d.mean())
    assert max(changed) > 0.2  # a real part of the box is hidden
    assert max(changed) < 0.9  # but only partly


def test_distractor_preset_has_second_object():
    kw = dict(seed=1, n_frames=N, noise_std=0.0)
    v = make_sample("distractor", **kw)
    plain = make_sample("distractor", distractor=False, **kw)
    np.testing.assert_array_equal(v.groundtruth, plain.groundtruth)
    d = v.info["distractor"]
    assert d.shape == (N, 4)
    assert np.all(d[:, :2] >= 0) and np.all(d[:, 0] + d[:, 2] <= 320 + 1e-9)
    centres = lambda b: b[:, :2] + b[:, 2:] / 2
    dist = np.hypot(*(centres(d) - centres(v.groundtruth)).T)
    assert np.all(dist > 5)  # not the target ...
    assert np.median(dist) < 3 * np.sqrt(v.groundtruth[0, 2] * v.groundtruth[0, 3])  # ... but near it
    assert any(not np.array_equal(a, b) for a, b in zip(v.frames, plain.frames))


def test_blur_preset_blurs_object():
    kw = dict(seed=0, n_frames=N, noise_std=0.0)
    v = make_sample("blur", **kw)
    sharp = make_sample("blur", blur_gain=0.0, **kw)
    assert v.info["blur"].max() > 5
    i = int(np.argmax(v.info["blur"]))
    x, y, w, h = np.round(v.groundtruth[i]).astype(int)
    lap = lambda f: cv2.Laplacian(cv2.cvtColor(f[y:y + h, x:x + w], cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()
    assert lap(v.frames[i]) < 0.7 * lap(sharp.frames[i])


def test_illumination_preset_changes_brightness():
    v = make_sample("illumination", seed=0, n_frames=30)
    means = np.array([f.mean() for f in v.frames])
    assert means.max() / means.min() > 1.3


def test_write_sample_as_otb_round_trip(tmp_path):
    v = make_sample("scale", seed=9, n_frames=6)
    out = write_sample_as_otb(v, tmp_path / "seq")
    imgs = sorted((out / "img").glob("*.jpg"))
    assert [p.name for p in imgs] == [f"{i:04d}.jpg" for i in range(1, 7)]
    first = cv2.cvtColor(cv2.imread(str(imgs[0])), cv2.COLOR_BGR2RGB)
    assert first.shape == v.frames[0].shape
    assert np.abs(first.astype(int) - v.frames[0]).mean() < 4  # quality-95 JPEG, RGB order kept
    rows = [[float(t) for t in line.split(",")] for line in (out / "groundtruth_rect.txt").read_text().splitlines()]
    gt = np.array(rows)
    gt[:, :2] -= 1  # OTB is 1-based
    np.testing.assert_array_equal(gt, v.groundtruth)


def test_bad_preset_and_options():
    with pytest.raises(MetaRTTError, match="translation"):
        make_sample("no_such_preset")
    with pytest.raises(MetaRTTError, match="no_such_option"):
        make_sample("translation", no_such_option=1)
    with pytest.raises(MetaRTTError):
        make_sample("translation", n_frames=0)
    with pytest.raises(MetaRTTError):
        make_sample("translation", background_source="no_such_background")
    with pytest.raises(MetaRTTError):
        make_sample("translation", object_source=np.zeros((10, 10, 3), np.float32))
    v = make_sample("translation", n_frames=2)
    with pytest.raises(MetaRTTError):
        v.frame(2)


def test_config_object_accepted():
    cfg = dataclasses.replace(PRESETS["translation"], name="mine", n_frames=3, size=(64, 48))
    v = make_sample(cfg, seed=0)
    assert len(v) == 3 and v.frame_size == (64, 48) and "mine" in v.name


def test_still_pseudo_video_boxes_exact():
    img = _flat(160, 200, 30)
    box = np.array([80.0, 60.0, 40.0, 30.0])
    img[60:90, 80:120] = 230
    frames, boxes = make_still_pseudo_video(img, box, 10, np.random.default_rng(0),
                                            max_scale=1.3, max_shift=0.1)
    assert len(frames) == 10 and boxes.shape == (10, 4)
    np.testing.assert_array_equal(boxes[0], box)
    np.testing.assert_array_equal(frames[0], img)
    assert not np.allclose(boxes[1:], box)  # it moves
    for f, b in zip(frames, boxes):
        assert f.shape == img.shape and f.dtype == np.uint8
        assert b[0] >= 0 and b[1] >= 0 and b[0] + b[2] <= 200 and b[1] + b[3] <= 160
        seen = _pixel_bbox(f, 30, thresh=100)
        assert np.all(np.abs(_edges(seen) - _edges(b)) <= 1.0), (seen, b)
    again, boxes2 = make_still_pseudo_video(img, box, 10, 0, max_scale=1.3, max_shift=0.1)
    np.testing.assert_array_equal(boxes, boxes2)
    with pytest.raises(MetaRTTError):
        make_still_pseudo_video(img, [0, 0, -1, 5], 3, 0)

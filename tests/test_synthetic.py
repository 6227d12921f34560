"""Tests for metartt_lite.data.synthetic: exact ground truth and distractors (pixel oracles), determinism,
GOTURN-like smooth motion statistics, real sources, bad inputs."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from metartt_lite.core.boxes import iou
from metartt_lite.data.synthetic import (SyntheticClip, SyntheticConfig, make_clips, still_image_source)
from metartt_lite.core.utils import MetaRTTError

CROP = (40, 32)  # (w, h) every box is resampled to before comparing


class Still:
    """A minimal sequence-like source: one frame, one box."""

    def __init__(self, image: np.ndarray, box, name: str = "pattern"):
        self.name, self.image = name, image
        self.groundtruth = np.asarray([box], np.float64)

    def __len__(self) -> int:
        return 1

    def frame(self, i: int) -> np.ndarray:
        return self.image


def _pattern_source(box=(100.0, 80.0, 48.0, 40.0), size=(320, 240)) -> Still:
    """A smooth random-noise patch exactly at ``box`` on a flat grey background."""
    rng = np.random.default_rng(7)
    img = np.full((size[1], size[0], 3), 128, np.uint8)
    x, y, w, h = (int(v) for v in box)
    noise = rng.integers(0, 256, (h // 4, w // 4, 3)).astype(np.uint8)
    img[y:y + h, x:x + w] = cv2.GaussianBlur(cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC), (0, 0), 1.0)
    return Still(img, box)


def _crop(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The xywh ``box`` of ``frame`` resampled to CROP (continuous pixel-corner coordinates)."""
    sx, sy = CROP[0] / box[2], CROP[1] / box[3]
    M = np.array([[sx, 0, sx * (0.5 - box[0]) - 0.5], [0, sy, sy * (0.5 - box[1]) - 0.5]])
    interp = cv2.INTER_AREA if min(sx, sy) < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(frame, M, CROP, flags=interp, borderMode=cv2.BORDER_REFLECT).astype(np.float64)


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def _inside(box: np.ndarray, size: tuple[int, int], tol: float = 1e-6) -> bool:
    return bool(box[0] >= -tol and box[1] >= -tol and box[0] + box[2] <= size[0] + tol
                and box[1] + box[3] <= size[1] + tol)


@pytest.fixture(scope="module")
def pattern_clips() -> list[SyntheticClip]:
    cfg = SyntheticConfig(n_frames=16, random_region_prob=0.0, n_distractors=2, motion_scale=0.15)
    return make_clips([_pattern_source()], 6, cfg, seed=1)


def test_groundtruth_is_exact(pattern_clips):
    moved = 0
    for clip in pattern_clips:
        assert not clip.random_region
        ref = _crop(clip.frame(0), clip.groundtruth[0])
        np.testing.assert_allclose(clip.groundtruth[0], [100, 80, 48, 40])  # frame 0 is the still itself
        for i in range(1, len(clip)):
            f, b = clip.frame(i), clip.groundtruth[i]
            assert _mad(_crop(f, b), ref) < 6.0, (clip.name, i)
            shifted = b + np.array([b[2] / 2, 0, 0, 0])
            assert _mad(_crop(f, shifted), ref) > 25.0
            moved += np.abs(b[:2] - clip.groundtruth[0][:2]).max() > 3
    assert moved > 20  # the oracle is not trivially satisfied by a static box


def test_distractors_look_like_the_target_and_do_not_overlap(pattern_clips):
    checked = 0
    for clip in pattern_clips:
        assert clip.distractors.shape == (len(clip), 2, 4)
        assert np.isfinite(clip.distractors).all()  # a 320x240 scene has room for two 48x40 copies
        ref = _crop(clip.frame(0), clip.groundtruth[0])
        assert np.all(iou(clip.distractors, clip.groundtruth[:, None]) == 0)
        assert np.all(iou(clip.distractors[:, 0], clip.distractors[:, 1]) == 0)
        sizes = clip.distractors[0, :, 2:] / clip.groundtruth[0, 2:]
        assert np.all((sizes > 0.85) & (sizes < 1.15))
        for i in (0, len(clip) // 2, len(clip) - 1):
            f = clip.frame(i)
            for d in clip.distractors[i]:
                if _inside(d, clip.frame_size):
                    assert _mad(_crop(f, d), ref) < 8.0
                    assert _mad(_crop(f, d + np.array([d[2] / 2, 0, 0, 0])), ref) > 25.0
                    checked += 1
    assert checked >= 10


def test_deterministic_with_seed():
    src = [_pattern_source()]
    cfg = SyntheticConfig(n_frames=6)
    a, b, c = make_clips(src, 3, cfg, seed=5), make_clips(src, 3, cfg, seed=5), make_clips(src, 3, cfg, seed=6)
    assert [x.name for x in a] == [x.name for x in b]
    assert len({x.name for x in a}) == 3
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.groundtruth, y.groundtruth)
        np.testing.assert_array_equal(x.distractors, y.distractors)
        for i in range(len(x)):
            np.testing.assert_array_equal(x.frame(i), y.frame(i))
        np.testing.assert_array_equal(x.frame(3), x.frame(3))  # rendering is repeatable too
    assert [x.name for x in a] != [x.name for x in c]
    assert not np.allclose(a[0].groundtruth, c[0].groundtruth)
    assert not np.array_equal(a[0].frame(5), c[0].frame(5))


def test_motion_statistics():
    import skimage.data
    src = [still_image_source(skimage.data.astronaut(), name="astronaut"), _pattern_source()]
    clips = make_clips(src, 150, SyntheticConfig(n_frames=24), seed=0)  # geometry only: nothing rendered
    steps, d1, d2 = [], [], []
    for clip in clips:
        gt = clip.groundtruth
        c = gt[:, :2] + gt[:, 2:] / 2
        side = np.sqrt(gt[:, 2] * gt[:, 3])
        steps.append(np.linalg.norm(np.diff(c, axis=0), axis=1) / side[:-1])
        d1.append(np.abs(np.diff(c, axis=0)).mean())
        d2.append(np.abs(np.diff(c, 2, axis=0)).mean())
        rel = gt[:, 2:] / gt[0, 2:]
        assert rel.min() >= 0.6 - 1e-9 and rel.max() <= 1.4 + 1e-9
        np.testing.assert_allclose(rel[:, 0], rel[:, 1])  # the camera zooms; the aspect ratio is kept
        assert all(_inside(b, clip.frame_size) for b in gt)
        assert clip.frame_size[0] <= 640 and clip.frame_size[1] <= 640
    steps = np.concatenate(steps)
    assert 0.005 < np.median(steps) < 0.06  # small per-frame motions dominate ...
    assert np.quantile(steps, 0.99) < 0.5   # ... and there are no jumps
    assert np.mean(d2) < 0.9 * np.mean(d1)  # smooth: velocity changes less than position
    scale_span = [np.ptp(np.log(c.groundtruth[:, 2])) for c in clips]
    assert np.median(scale_span) > 0.02  # the scale does change
    region = np.mean([c.random_region for c in clips if c.source == "pattern"])
    assert 0.3 < region < 0.7  # random_region_prob = 0.5
    astro = [c for c in clips if c.source == "astronaut"]
    assert astro and all(c.random_region for c in astro)  # no box given: always a random region
    for c in astro:
        side = np.sqrt(c.groundtruth[0, 2] * c.groundtruth[0, 3]) / min(c.frame_size)
        ar = c.groundtruth[0, 2] / c.groundtruth[0, 3]
        assert 0.05 - 1e-9 <= side <= 0.3 + 1e-9 and 0.5 - 1e-9 <= ar <= 2 + 1e-9


def test_real_sources_and_feature_cache(tmp_path):
    import skimage.data
    import torch

    from metartt_lite.core.config import ModelConfig
    from metartt_lite.train.features import CacheConfig, cache_sequence
    from metartt_lite.data.samples import make_sample

    video = make_sample("translation", seed=0, n_frames=5)
    big = skimage.data.astronaut()  # 512x512: kept; a 1024-wide copy is resized to 640
    wide = cv2.resize(big, (1024, 512))
    srcs = [video, still_image_source(big, name="astronaut"),
            still_image_source(wide, box=[300, 20, 340, 380], name="astronaut-wide")]
    cfg = SyntheticConfig(n_frames=8, random_region_prob=0.0)
    clips = make_clips(srcs, 9, cfg, seed=2)
    assert {c.source for c in clips} == {video.name, "astronaut", "astronaut-wide"}
    for clip in clips:
        frames = list(clip.frames())
        assert len(frames) == len(clip) == 8 and clip.groundtruth.shape == (8, 4)
        assert frames[0].dtype == np.uint8 and frames[0].shape == (clip.frame_size[1], clip.frame_size[0], 3)
        np.testing.assert_array_equal(clip.init_box, clip.groundtruth[0])
        ref = _crop(frames[0], clip.groundtruth[0])
        for f, b in zip(frames, clip.groundtruth):
            assert _inside(b, clip.frame_size)
            assert _mad(_crop(f, b), ref) < 12.0  # real photos: same content under the box
        if clip.source == "astronaut-wide":
            assert clip.frame_size == (640, 320)
            np.testing.assert_allclose(clip.groundtruth[0], [187.5, 12.5, 212.5, 237.5])
        if clip.source == video.name:
            gt = video.groundtruth[clip.source_frame]
            np.testing.assert_allclose(clip.groundtruth[0], gt)  # the real object box, untouched

    class Pool(torch.nn.Module):  # a stand-in trunk: 4x4 average pooling
        def __init__(self):
            super().__init__()
            self.register_buffer("dummy", torch.zeros(1))

        def forward(self, x):
            return torch.nn.functional.avg_pool2d(x, 16)

    mc = ModelConfig(crop_size=64, target_size=16.0)
    sf = cache_sequence(clips[0], Pool(), mc, CacheConfig(frame_step=1), root=tmp_path)
    assert len(sf) == 8 and sf.name == clips[0].name
    np.testing.assert_array_equal(sf.gt, clips[0].groundtruth)
    np.testing.assert_array_equal(sf.frame_sizes, np.tile(clips[0].frame_size, (8, 1)))


def test_single_clip_and_bounds():
    src = _pattern_source(box=(0.0, 0.0, 320.0, 240.0))  # the box is the whole frame: it can only shrink
    clip = SyntheticClip(src, 0, SyntheticConfig(n_frames=30, n_distractors=1, scale_b=0.05), seed=0,
                         random_region=False)
    gt = clip.groundtruth
    assert all(_inside(b, (320, 240)) for b in gt) and gt[:, 2].max() <= 320 and gt[:, 2].min() < 300
    np.testing.assert_allclose(gt[:, 2] / gt[:, 3], 320 / 240)
    assert clip.distractors.shape == (30, 1, 4) and np.isnan(clip.distractors).all()  # no room for a copy
    assert clip.frame(-1).shape == (240, 320, 3)
    with pytest.raises(MetaRTTError):
        clip.frame(30)


@pytest.mark.parametrize("bad", [dict(n_frames=0), dict(motion_scale=-0.1), dict(scale_b=float("nan")),
                                 dict(momentum=1.0), dict(scale_range=(1.1, 1.4)),
                                 dict(random_region_prob=1.5), dict(n_distractors=-1),
                                 dict(region_size=(0.3, 0.1)), dict(max_side=8)])
def test_bad_config(bad):
    with pytest.raises(MetaRTTError, match=next(iter(bad))):
        SyntheticConfig(**bad)
    with pytest.raises(MetaRTTError):
        dataclasses.replace(SyntheticConfig(), **bad)


def test_bad_inputs():
    src = _pattern_source()
    with pytest.raises(MetaRTTError, match="n_clips"):
        make_clips([src], 0)
    with pytest.raises(MetaRTTError, match="n_clips"):
        make_clips([src], 2.5)
    with pytest.raises(MetaRTTError, match="at least one source"):
        make_clips([], 3)
    with pytest.raises(MetaRTTError, match="SyntheticConfig"):
        make_clips([src], 3, cfg={"n_frames": 3})
    nobox = Still(src.image, [np.nan] * 4, name="nobox")
    with pytest.raises(MetaRTTError, match="nobox.*no frame with a valid"):
        make_clips([src, nobox], 3)
    empty = Still(src.image, [10, 10, 0, 5], name="flat")
    with pytest.raises(MetaRTTError, match="flat"):
        make_clips([empty], 1)
    with pytest.raises(MetaRTTError, match="box"):
        still_image_source(src.image, box=[1, 2, -3, 4])
    with pytest.raises(MetaRTTError, match="uint8"):
        still_image_source(src.image.astype(np.float32))

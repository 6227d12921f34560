"""OpenCV peer trackers (CSRT, KCF, MIL) behind the package's RGB / float-xywh interface."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from metartt_lite.track import peers
from metartt_lite.core.boxes import iou
from metartt_lite.track.peers import PEERS, OpenCVTracker, Tracker, make_peer
from metartt_lite.core.utils import MetaRTTError

W, H, S = 160, 120, 30


def moving_square(seed=0, n=20, step=(4, 2), start=(20, 30)):
    """A 30 px random-texture square moving ``step`` px/frame over a random-texture 160x120 background."""
    rng = np.random.default_rng(seed)
    bg = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    tex = rng.integers(0, 256, (S, S, 3), dtype=np.uint8)
    frames, gt = [], []
    for i in range(n):
        x, y = start[0] + step[0] * i, start[1] + step[1] * i
        f = bg.copy()
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + S, W), min(y + S, H)
        if x1 > x0 and y1 > y0:
            f[y0:y1, x0:x1] = tex[y0 - y:y1 - y, x0 - x:x1 - x]
        frames.append(f)
        gt.append([x, y, S, S])
    return frames, np.array(gt, float)


def track(tracker, frames, box0):
    tracker.init(frames[0], box0)
    out = [tracker.update(f) for f in frames[1:]]
    return np.array([b for b, _ in out]), np.array([s for _, s in out])


# Measured (OpenCV 5.0.0 contrib, seeds 0-2): mean IoU CSRT 0.92-0.93, KCF 1.00 (with the warm-up),
# MIL 0.90-0.93. Floors sit well above chance (a box of the right size at a random place: ~0.02).
FLOORS = {"csrt": 0.6, "kcf": 0.7, "mil": 0.5}


@pytest.mark.parametrize("kind", ["csrt", "kcf", "mil"])
def test_tracks_moving_square(kind):
    frames, gt = moving_square(seed=0)
    boxes, scores = track(make_peer(kind), frames, gt[0])
    ious = iou(boxes, gt[1:])
    assert ious.mean() > FLOORS[kind], (kind, ious.round(3))
    assert boxes.dtype == np.float64 and boxes.shape == (19, 4)
    assert set(np.unique(scores)) <= {0.0, 1.0}


def test_kcf_warmup_removes_one_frame_lag():
    frames, gt = moving_square(seed=1)
    boxes, _ = track(make_peer("kcf"), frames, gt[0])
    assert iou(boxes, gt[1:]).min() > 0.8  # without the warm-up every frame lags: IoU 0.68


def test_peers_table_and_protocol():
    assert set(PEERS) == {"csrt", "kcf", "mil", "nanotrack"}
    for name in PEERS:
        t = make_peer(name.upper())
        assert isinstance(t, OpenCVTracker) and isinstance(t, Tracker) and t.name == name
    with pytest.raises(MetaRTTError, match="unknown peer"):
        make_peer("mosse")


class StubCV:
    """Records what the wrapper hands to OpenCV; answers from a script of (ok, rect)."""

    def __init__(self, answers=()):
        self.answers = list(answers)
        self.frames, self.rects = [], []

    def init(self, image, rect):
        self.frames.append(image)
        self.rects.append(rect)

    def update(self, image):
        self.frames.append(image)
        return self.answers.pop(0) if self.answers else (True, self.rects[0])


def stubbed(kind, stub):
    t = OpenCVTracker(kind)
    t._factory = lambda: stub
    return t


def test_bgr_conversion_and_box_rounding():
    frames, gt = moving_square(n=3)
    stub = StubCV([(True, (24, 32, 30, 30))])
    t = stubbed("csrt", stub)
    t.init(frames[0], np.array([20.4, 29.6, 30.2, 30.3]))
    # corners rounded: x 20.4 -> 20, x+w 50.6 -> 51; y 29.6 -> 30, y+h 59.9 -> 60
    assert stub.rects[0] == (20, 30, 31, 30) and all(isinstance(v, int) for v in stub.rects[0])
    box, score = t.update(frames[1])
    assert score == 1.0 and np.allclose(box, [24, 32, 30, 30])
    for rgb, seen in zip(frames, stub.frames):
        assert seen.dtype == np.uint8 and seen.flags["C_CONTIGUOUS"]
        np.testing.assert_array_equal(seen, rgb[..., ::-1])  # BGR
    red = np.zeros((H, W, 3), np.uint8)
    red[..., 0] = 255
    t.update(red)
    assert stub.frames[-1][0, 0].tolist() == [0, 0, 255]


def test_boxes_clipped_into_frame():
    frames, gt = moving_square(n=3)
    stub = StubCV([(True, (-10, 100, 50, 50)), (True, (150, -5, 40, 400))])
    t = stubbed("kcf", stub)
    t.init(frames[0], gt[0])
    for f in frames[1:]:
        box, score = t.update(f)
        assert score == 1.0
        assert box[0] >= 0 and box[1] >= 0 and box[0] + box[2] <= W and box[1] + box[3] <= H
    # a real tracker following a target that leaves through the right border
    frames, gt = moving_square(n=20, step=(4, 0), start=(60, 40))  # ends at x 136..166
    boxes, _ = track(make_peer("csrt"), frames, gt[0])
    assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 0] + boxes[:, 2] <= W)
    assert np.all(boxes[:, 1] + boxes[:, 3] <= H)


def test_failure_keeps_previous_box():
    frames, gt = moving_square(n=4)
    stub = StubCV([(True, (24, 32, 30, 30)), (False, (0, 0, 0, 0)), (True, (32, 36, 30, 30))])
    t = stubbed("mil", stub)
    t.init(frames[0], gt[0])
    b1, s1 = t.update(frames[1])
    b2, s2 = t.update(frames[2])
    b3, s3 = t.update(frames[3])
    assert (s1, s2, s3) == (1.0, 0.0, 1.0)
    np.testing.assert_allclose(b2, b1)
    np.testing.assert_allclose(b3, [32, 36, 30, 30])


@pytest.mark.parametrize("kind", ["csrt", "kcf"])
def test_real_failure_on_blank_frame(kind):
    frames, gt = moving_square(n=2)
    t = make_peer(kind)
    t.init(frames[0], gt[0])
    b1, s1 = t.update(frames[1])
    b2, s2 = t.update(np.full_like(frames[0], 128))  # nothing to track: OpenCV reports ok=False
    assert s1 == 1.0 and s2 == 0.0
    np.testing.assert_allclose(b2, b1)


def test_input_errors():
    t = make_peer("kcf")
    frames, gt = moving_square(n=2)
    with pytest.raises(MetaRTTError, match="before init"):
        t.update(frames[0])
    with pytest.raises(MetaRTTError, match="uint8 RGB"):
        t.init(frames[0][..., 0], gt[0])
    with pytest.raises(MetaRTTError, match="outside"):
        t.init(frames[0], [500, 500, 10, 10])
    t.init(frames[0], gt[0])
    with pytest.raises(MetaRTTError, match="frame size"):
        t.update(frames[0][:60])


def test_missing_contrib_build_is_explained(monkeypatch):
    fake = types.ModuleType("cv2")
    fake.__version__ = "4.9.0"
    fake.TrackerMIL_create = object  # the main (non-contrib) build has MIL only
    monkeypatch.setitem(sys.modules, "cv2", fake)
    with pytest.raises(MetaRTTError, match="opencv-contrib-python-headless must be the only") as ei:
        make_peer("csrt")
    assert "opencv-python-headless" in str(ei.value)
    assert peers.opencv_factory("mil") is object


def test_evaluate_with_peer(tmp_path):
    from metartt_lite.evaluation.ope import evaluate

    class Seq:
        def __init__(self):
            self._frames, self.groundtruth = moving_square(seed=2)
            self.name = "square"
            self.init_box = self.groundtruth[0]

        def __len__(self):
            return len(self._frames)

        def frames(self):
            return iter(self._frames)

    res = evaluate(["kcf"], [Seq()], lambda name, seed: make_peer(name), progress=False)
    assert res["trackers"]["kcf"]["auc"] > 0.7 and res["trackers"]["kcf"]["precision"] == 1.0

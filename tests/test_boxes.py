"""Box maths and candidate sampling against hand-computed oracles, plus Hypothesis properties."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from metartt_lite.core import boxes as bx
from metartt_lite.core.boxes import MIN_SIZE, SampleGenerator
from metartt_lite.core.utils import MetaRTTError

PROP = settings(deadline=None, max_examples=200)
EPS = 1e-9  # relative slack for "inside the frame" (x + w may round one ulp past W)


# ------------------------------------------------------------------------------------------ IoU
def test_iou_hand_cases():
    a = np.array([0, 0, 10, 10.0])
    assert bx.iou(a, a) == pytest.approx(1.0)
    assert bx.iou(a, [20, 20, 5, 5]) == 0.0
    assert bx.iou(a, [10, 0, 10, 10]) == 0.0                   # touching edges: no overlap
    assert bx.iou(a, [5, 0, 10, 10]) == pytest.approx(50 / 150)
    assert bx.iou(a, [0, 0, 5, 5]) == pytest.approx(25 / 100)  # contained
    assert bx.iou(a, [2.5, 2.5, 5, 5]) == pytest.approx(0.25)
    assert bx.iou([1, 2, 4, 6], [3, 5, 4, 6]) == pytest.approx(2 * 3 / (24 + 24 - 6))
    # (x + w) - x rounds past w here (0.1 + 0.2 - 0.1 > 0.2): identical boxes must still give exactly <= 1
    for b in ([0.1, 0.1, 0.2, 0.2], [1000.1, 0.7, 0.2, 0.1]):
        assert 1.0 - 1e-12 <= bx.iou(b, b) <= 1.0


def test_iou_zero_area_is_zero_not_nan():
    with np.errstate(all="raise"):
        assert bx.iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0
        assert bx.iou([5, 5, 0, 10], [0, 0, 10, 10]) == 0.0
        assert bx.iou([0, 0, 10, 10], [3, 3, 4, 0]) == 0.0
    assert not np.isnan(bx.iou([0, 0, -3, 4], [0, 0, -3, 4]))


def test_iou_broadcasting():
    many = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 1, 1], [0, 0, 5, 5.0]])
    out = bx.iou(many, np.array([0, 0, 10, 10.0]))
    assert out.shape == (4,)
    np.testing.assert_allclose(out, [1.0, 1 / 3, 0.0, 0.25])
    np.testing.assert_allclose(bx.iou(np.array([0, 0, 10, 10.0]), many), out)
    # (N, 1, 4) vs (1, M, 4) -> (N, M) pairwise matrix
    mat = bx.iou(many[:, None], many[None])
    assert mat.shape == (4, 4)
    np.testing.assert_allclose(np.diag(mat), 1.0)
    np.testing.assert_allclose(mat, mat.T)


# ---------------------------------------------------------------------------------- conversions
def test_conversions_hand_values():
    b = np.array([10, 20, 30, 40.0])
    np.testing.assert_array_equal(bx.xywh_to_xyxy(b), [10, 20, 40, 60])
    np.testing.assert_array_equal(bx.xyxy_to_xywh([10, 20, 40, 60]), b)
    np.testing.assert_array_equal(bx.xywh_to_center(b), [25, 40, 30, 40])
    np.testing.assert_array_equal(bx.center_to_xywh([25, 40, 30, 40]), b)
    two = np.array([[0, 0, 4, 2], [1, 1, 1, 1.0]])
    np.testing.assert_array_equal(bx.xywh_to_xyxy(two), [[0, 0, 4, 2], [1, 1, 2, 2]])
    np.testing.assert_array_equal(bx.xywh_to_center(two), [[2, 1, 4, 2], [1.5, 1.5, 1, 1]])


def test_center_error():
    assert bx.center_error([0, 0, 10, 10], [0, 0, 10, 10]) == 0.0
    assert bx.center_error([0, 0, 10, 10], [3, 4, 10, 10]) == pytest.approx(5.0)
    # centres (5, 5) and (5+3, 5+4) through a size change: (0,0,10,10) vs (2,3,12,12) -> centre (8, 9)
    assert bx.center_error([0, 0, 10, 10], [2, 3, 12, 12]) == pytest.approx(5.0)
    np.testing.assert_allclose(bx.center_error(np.array([[0, 0, 2, 2], [6, 8, 2, 2.0]]), [0, 0, 2, 2]), [0, 10])


# ------------------------------------------------------------------------------------ clip_boxes
def test_clip_boxes_hand_cases():
    fs = (100, 50)
    np.testing.assert_array_equal(bx.clip_boxes([-20, -30, 500, 400], fs), [0, 0, 100, 50])  # bigger: the frame
    np.testing.assert_array_equal(bx.clip_boxes([90, 45, 20, 10], fs), [80, 40, 20, 10])    # partly outside
    np.testing.assert_array_equal(bx.clip_boxes([-5, -2, 20, 10], fs), [0, 0, 20, 10])
    np.testing.assert_array_equal(bx.clip_boxes([10, 10, 0.5, 0.1], fs), [10, 10, MIN_SIZE, MIN_SIZE])  # grows
    np.testing.assert_array_equal(bx.clip_boxes([99.5, 49.9, 0.5, 0.1], fs), [98, 48, 2, 2])
    np.testing.assert_array_equal(bx.clip_boxes([300, 300, 10, 10], fs), [90, 40, 10, 10])  # fully outside
    np.testing.assert_array_equal(bx.clip_boxes([5, 5, 10, 10], fs), [5, 5, 10, 10])        # inside: unchanged
    # a 1-px frame: the minimum size cannot exceed the frame
    np.testing.assert_array_equal(bx.clip_boxes([0, 0, 0.2, 5], (1, 1)), [0, 0, 1, 1])
    many = bx.clip_boxes(np.array([[-20, -30, 500, 400], [5, 5, 10, 10.0]]), fs)
    assert many.shape == (2, 4)
    np.testing.assert_array_equal(many, [[0, 0, 100, 50], [5, 5, 10, 10]])


# ---------------------------------------------------------------------------- validation/parsing
@pytest.mark.parametrize("box, frame, words", [
    ([np.nan, 0, 10, 10], None, "nan"),
    ([0, 0, np.inf, 10], None, "nan or infinity"),
    ([0, 0, -5, 10], None, "negative"),
    ([0, 0, 10, 0], None, "zero"),
    ([0, 0, 10], None, "four numbers"),
    ([0, 0, 10, 10, 3], None, "four numbers"),
    ("abc", None, "four numbers"),
    ([200, 10, 10, 10], (100, 50), "outside"),
    ([-30, 10, 10, 10], (100, 50), "outside"),
    ([10, 50, 10, 10], (100, 50), "outside"),
])
def test_validate_box_errors(box, frame, words):
    with pytest.raises(MetaRTTError) as ei:
        bx.validate_box(box, frame, what="initial box")
    msg = str(ei.value).lower()
    assert words in msg and "initial box" in msg


def test_validate_box_ok():
    out = bx.validate_box((1, 2, 3, 4), (100, 50))
    assert out.dtype == np.float64 and out.tolist() == [1, 2, 3, 4]
    bx.validate_box([-5, -5, 10, 10], (100, 50))  # partly outside is allowed


@pytest.mark.parametrize("text, words", [
    ("1,2,3", "malformed"), ("1,2,3,4,5", "malformed"), ("1,2,x,4", "malformed"), ("", "malformed"),
    ("1,2,nan,4", "nan"), ("1,2,-3,4", "negative"),
])
def test_parse_box_errors(text, words):
    with pytest.raises(MetaRTTError, match=f"(?i){words}"):
        bx.parse_box(text)


def test_parse_box_ok():
    for text in ("1,2,3,4", "1 2 3 4", "1\t2\t3\t4", " 1, 2 ,3 ,4 ", "1.0,2e0,3,4"):
        assert bx.parse_box(text).tolist() == [1, 2, 3, 4]


# ------------------------------------------------------------------------------ box regression
def test_box_regression_hand_and_round_trip():
    boxes = np.array([[0, 0, 10, 20], [5, 5, 4, 4.0]])
    gt = np.array([2, 4, 20, 10.0])  # centre (12, 9)
    d = bx.box_regression_targets(boxes, gt)
    np.testing.assert_allclose(d[0], [(12 - 5) / 10, (9 - 10) / 20, np.log(2), np.log(0.5)])
    np.testing.assert_allclose(d[1], [(12 - 7) / 4, (9 - 7) / 4, np.log(5), np.log(2.5)])
    back = bx.apply_box_regression(boxes, d)
    np.testing.assert_allclose(back, np.tile(gt, (2, 1)), atol=1e-12)
    np.testing.assert_allclose(bx.apply_box_regression(boxes, np.zeros((2, 4))), boxes)


# ---------------------------------------------------------------------------------- properties
coord = st.floats(-500, 1500, allow_nan=False)
side = st.floats(0.01, 800, allow_nan=False)
box_st = st.tuples(coord, coord, side, side).map(lambda t: np.array(t, dtype=np.float64))
frame_st = st.tuples(st.integers(1, 4000), st.integers(1, 4000))


@st.composite
def frame_and_box(draw):
    """A frame size and a box that may be tiny (<4 px), huge, partly or fully outside the frame."""
    W, H = draw(frame_st)
    kind = draw(st.sampled_from(["any", "tiny", "huge", "inside", "outside"]))
    if kind == "tiny":
        w, h = draw(st.floats(0.0, 4.0)), draw(st.floats(0.0, 4.0))
    elif kind == "huge":
        w, h = draw(st.floats(W, 4 * W + 10)), draw(st.floats(H, 4 * H + 10))
    else:
        w, h = draw(st.floats(0.5, 2.0 * W + 4)), draw(st.floats(0.5, 2.0 * H + 4))
    if kind == "inside":
        x, y = draw(st.floats(0, max(W - w, 0))), draw(st.floats(0, max(H - h, 0)))
    elif kind == "outside":
        x = draw(st.sampled_from([-w - draw(st.floats(0, 3 * W)), W + draw(st.floats(0, 3 * W))]))
        y = draw(st.floats(-2.0 * H - h, 3.0 * H))
    else:
        x, y = draw(st.floats(-w - 2.0 * W, 3.0 * W)), draw(st.floats(-h - 2.0 * H, 3.0 * H))
    return (W, H), np.array([x, y, w, h], dtype=np.float64)


def assert_inside_nondegenerate(b: np.ndarray, frame_size, inside: bool = True):
    W, H = frame_size
    b = np.atleast_2d(b)
    assert np.all(np.isfinite(b))
    assert np.all(b[:, 2] >= min(MIN_SIZE, W)) and np.all(b[:, 3] >= min(MIN_SIZE, H))
    if inside:
        assert np.all(b[:, :2] >= 0)
        assert np.all(b[:, 0] + b[:, 2] <= W * (1 + EPS)) and np.all(b[:, 1] + b[:, 3] <= H * (1 + EPS))


@PROP
@given(box_st, box_st)
def test_prop_iou_symmetric_in_unit_interval(a, b):
    v = bx.iou(a, b)
    assert np.isfinite(v) and 0.0 <= v <= 1.0
    assert v == bx.iou(b, a)
    assert bx.iou(a, a) == pytest.approx(1.0)


@PROP
@given(box_st)
def test_prop_conversions_round_trip(b):
    scale = np.abs(b).max() + 1
    np.testing.assert_allclose(bx.xyxy_to_xywh(bx.xywh_to_xyxy(b)), b, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(bx.center_to_xywh(bx.xywh_to_center(b)), b, rtol=0, atol=1e-12 * scale)
    assert bx.center_error(b, bx.center_to_xywh(bx.xywh_to_center(b))) <= 1e-9 * scale


@PROP
@given(frame_and_box())
def test_prop_clip_boxes_inside_and_not_degenerate(fb):
    frame, b = fb
    out = bx.clip_boxes(b, frame)
    assert out.shape == (4,)
    assert_inside_nondegenerate(out, frame)
    # a box already inside (and not too small) is left alone
    W, H = frame
    if b[0] >= 0 and b[1] >= 0 and b[0] + b[2] <= W and b[1] + b[3] <= H and min(b[2:]) >= MIN_SIZE:
        np.testing.assert_allclose(out, b, rtol=0, atol=EPS * max(W, H))


@PROP
@given(frame_and_box(), st.sampled_from(["gaussian", "uniform", "whole"]), st.booleans(),
       st.sampled_from([None, 1.1, 2.0]), st.floats(0.05, 3.0), st.floats(1.0, 3.0),
       st.integers(0, 40), st.integers(0, 2**31))
def test_prop_sample_generator_never_degenerate(fb, kind, valid, aspect, trans, scale, n, seed):
    frame, b = fb
    gen = SampleGenerator(kind, frame, trans, scale, aspect, valid)
    out = gen(b, n, np.random.default_rng(seed))
    assert out.shape == (n, 4)
    assert_inside_nondegenerate(out, frame, inside=valid)


@PROP
@given(frame_and_box(), st.sampled_from(["gaussian", "uniform"]),
       st.sampled_from([(0.7, 1.0), (0.0, 0.3), (0.6, 1.0), (0.3, 0.5)]),
       st.integers(1, 60), st.integers(0, 2**31))
def test_prop_sample_by_iou_in_range(fb, kind, rng_range, n, seed):
    frame, b = fb
    b = bx.clip_boxes(b, frame)  # as the tracker calls it
    gen = SampleGenerator(kind, frame, 0.3, 1.5, 1.1)
    out = bx.sample_by_iou(gen, b, n, rng_range, np.random.default_rng(seed), max_rounds=5)
    assert out.ndim == 2 and out.shape[1] == 4 and len(out) <= n
    ov = bx.iou(out, b[None])
    assert np.all(ov >= rng_range[0]) and np.all(ov <= rng_range[1])
    assert_inside_nondegenerate(out, frame, inside=False)


def test_sample_by_iou_easy_case_fills_request():
    frame, b = (320, 240), np.array([100, 80, 60, 50.0])
    rng = np.random.default_rng(0)
    pos = bx.sample_by_iou(SampleGenerator("gaussian", frame, 0.1, 1.2), b, 50, (0.7, 1.0), rng)
    neg = bx.sample_by_iou(SampleGenerator("uniform", frame, 1.0, 2.0, 1.1), b, 200, (0.0, 0.3), rng)
    assert len(pos) == 50 and len(neg) == 200
    assert bx.iou(pos, b).min() >= 0.7 and bx.iou(neg, b).max() <= 0.3


def test_sample_generator_distributions():
    """Gaussian/uniform candidates centre on the box with the documented spread; unknown kinds raise."""
    frame, b = (1000, 1000), np.array([450, 450, 100, 100.0])
    rng = np.random.default_rng(1)
    g = SampleGenerator("gaussian", frame, 0.6, 1.05)(b, 4000, rng)
    c = bx.xywh_to_center(g)
    assert np.abs(c[:, :2].mean(0) - 500).max() < 2.0
    assert np.abs(c[:, :2] - 500).max() <= 60 + 1e-9          # clip(0.5 randn, ±1) · 0.6 · 100
    assert c[:, 2].min() >= 100 / 1.05 - 1e-9 and c[:, 2].max() <= 100 * 1.05 + 1e-9
    np.testing.assert_allclose(c[:, 2], c[:, 3])                # no aspect change without ``aspect``
    u = bx.xywh_to_center(SampleGenerator("uniform", frame, 1.0, 2.0)(b, 4000, rng))
    assert np.abs(u[:, :2] - 500).max() <= 100 + 1e-9 and np.abs(u[:, :2] - 500).max() > 90
    with pytest.raises(MetaRTTError, match="unknown"):
        SampleGenerator("nope", frame)(b, 3, rng)

"""Boxes that are valid but probably wrong (issue 27, item 4 and the small message fixes of item 5):
normalized-looking, corner-looking and mostly-off-frame first boxes warn (an error under ``--strict``);
an OpenCV error on init is one ``error:`` line; ``--first-box`` works on ``NAME/img/`` without ground
truth; box and ground-truth messages name what the user types; ``pick-box`` keeps its last x label."""
from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

from metartt_lite import cli
from metartt_lite.core.boxes import BoxWarning, box_problems, check_box_sanity, validate_box
from metartt_lite.core.utils import MetaRTTError
from metartt_lite.data.samples import make_sample, write_sample_as_otb
from metartt_lite.data.sequences import load_otb_sequence, load_sequence
from metartt_lite.data.video import x_label_left
from metartt_lite.track.peers import OpenCVTracker

FRAME = (720, 400)  # W, H of the first video


@pytest.fixture(scope="module")
def otb(tmp_path_factory):
    """A 6-frame sample as an OTB folder (with ground truth) and the same frames as NAME/img/ without it."""
    T = tmp_path_factory.mktemp("boxes")
    video = make_sample("translation", seed=0, n_frames=6)
    with_gt = write_sample_as_otb(video, T / "WithGT")
    no_gt = T / "NoGT"
    shutil.copytree(with_gt / "img", no_gt / "img")
    return with_gt, no_gt, video


def test_good_boxes_pass_silently():
    for b in ([73, 24, 34, 38], [0, 0, 720, 400], [700, 385, 24, 14], [-5, -5, 40, 40]):
        assert box_problems(b, FRAME) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_box_sanity([73, 24, 34, 38], FRAME, strict=True) == []


def test_normalized_box():
    (p,) = box_problems([0.1, 0.5, 0.1, 0.2], FRAME)
    assert "looks normalized" in p and "72,200,72,80" in p  # the box the user probably meant, in pixels


def test_corner_box():
    # the case: x1,y1,x2,y2 given as x,y,w,h reaches y = 507 on a 400-px frame
    (p,) = box_problems([300, 200, 420, 307], FRAME)
    assert "corners" in p and "y = 507" in p and "300,200,120,107" in p


def test_box_far_past_the_frame():
    (p,) = box_problems([650, 100, 200, 50], FRAME)  # 130 of 200 px wide outside
    assert "65 % outside" in p
    assert box_problems([700, 100, 24, 50], FRAME) == []  # 4 of 24 px outside: fine


def test_warning_or_error_under_strict():
    with pytest.warns(BoxWarning, match="normalized.*--strict"):
        check_box_sanity([0.1, 0.5, 0.1, 0.2], FRAME)
    with pytest.raises(MetaRTTError, match="normalized.*--strict"):
        check_box_sanity([0.1, 0.5, 0.1, 0.2], FRAME, strict=True)


def test_three_number_box_message_prints_plain_numbers():
    with pytest.raises(MetaRTTError) as e:
        validate_box(np.array([3.0, 4.0, 81.0]))
    assert "[3.0, 4.0, 81.0]" in str(e.value) and "np.float64" not in str(e.value)


def test_short_ground_truth_names_the_option(tmp_path, otb):
    with_gt, _, _ = otb
    short = tmp_path / "Short"
    shutil.copytree(with_gt, short)
    gt = short / "groundtruth_rect.txt"
    gt.write_text("\n".join(gt.read_text().splitlines()[:4]) + "\n")
    with pytest.raises(MetaRTTError, match="--allow-short-gt"):
        load_otb_sequence(short)


def test_first_box_on_img_folder_without_groundtruth(otb):
    _, no_gt, video = otb
    seq = load_sequence(no_gt, init_box=video.init_box)
    assert len(seq) == 6 and seq.name == "NoGT"
    np.testing.assert_allclose(seq.init_box, video.init_box)
    assert np.isnan(seq.groundtruth[1:]).all()
    with pytest.raises(MetaRTTError, match="no groundtruth_rect.txt: give the initial box"):
        load_sequence(no_gt)


def test_cli_track_warns_errors_and_takes_img_folder(otb, tmp_path, capsys):
    with_gt, no_gt, video = otb
    box = ",".join(f"{v:g}" for v in video.init_box)
    rc = cli.main(["track", "--seq", str(no_gt), "--first-box", box, "--tracker", "csrt",
                   "--out", str(tmp_path / "b.csv"), "-q"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    lines = (tmp_path / "b.csv").read_text().splitlines()
    assert len(lines) == 1 + 6 and "warning" not in err
    assert lines[0] == "frame,x,y,w,h,score,success" and lines[1].endswith(",1")  # the success flag (issue 27)
    # normalized box: a warning, and the run goes on
    rc = cli.main(["track", "--seq", str(with_gt), "--first-box", "0.1,0.5,0.1,0.2", "--tracker", "kcf",
                   "--out", str(tmp_path / "n.csv"), "-q"])
    out, err = capsys.readouterr()
    assert rc == 0 and err.startswith("warning: --first-box: box 0.1,0.5,0.1,0.2 looks normalized"), err
    # CSRT cannot start on that sub-pixel box: the warning, then one error line (no OpenCV assertion text)
    rc = cli.main(["track", "--seq", str(with_gt), "--first-box", "0.1,0.5,0.1,0.2", "--tracker", "csrt",
                   "--out", str(tmp_path / "c.csv"), "-q"])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 2 and lines[0].startswith("warning:") and lines[1].startswith("error:")
    assert "csrt cannot initialise" in lines[1]
    # --strict: one error line, nothing written
    rc = cli.main(["track", "--seq", str(with_gt), "--first-box", "0.1,0.5,0.1,0.2", "--tracker", "csrt",
                   "--out", str(tmp_path / "s.csv"), "--strict", "-q"])
    out, err = capsys.readouterr()
    assert rc == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s.csv").exists()


def test_opencv_init_error_is_one_line(monkeypatch):
    """Whatever OpenCV raises in init (e.g. CSRT's copyMakeBorder assertion) becomes one MetaRTTError line."""
    import cv2
    t = OpenCVTracker("csrt")

    class Broken:
        def init(self, *a):
            raise cv2.error("OpenCV(4.10.0) /io/opencv/modules/core/src/copy.cpp:1026: error: (-215:Assertion "
                            "failed) top >= 0 && bottom >= 0 && left >= 0 && right >= 0 in function "
                            "'copyMakeBorder'\n")
    monkeypatch.setattr(t, "_factory", Broken)
    frame = np.zeros((400, 720, 3), np.uint8)
    with pytest.raises(MetaRTTError) as e:
        t.init(frame, [10, 10, 30, 30])
    msg = str(e.value)
    assert "\n" not in msg and "csrt cannot initialise" in msg and "copyMakeBorder" in msg


def test_opencv_degenerate_boxes_never_raise_raw_cv2_errors():
    """Tiny and edge boxes on a real frame: each either initialises or raises a one-line MetaRTTError."""
    frame = make_sample("translation", seed=0, n_frames=1).frames[0]
    H, W = frame.shape[:2]
    for kind in ("csrt", "kcf", "mil"):
        for box in ([0, 0, 1, 1], [W - 1, H - 1, 1, 1], [W - 2, 0, 2, H], [0, 0, W, H], [5, 5, 1, 40]):
            try:
                OpenCVTracker(kind).init(frame, box)
            except MetaRTTError as e:
                assert "\n" not in str(e)


def test_pick_box_last_x_label_stays_inside():
    # "700" right of the line at x = 700 would run past a 720-px frame: it goes left of the line
    x = x_label_left("700", 700, 720, 0.44, 1)
    assert x < 700
    assert x_label_left("100", 100, 720, 0.44, 1) == 102

"""The public API: ``from metartt_lite import make_tracker, list_trackers, Tracker``, BGR frames, and the
README's Python example (run verbatim on frames that OpenCV reads back from an mp4 written here)."""
from __future__ import annotations

from pathlib import Path

import contextlib
import io

import cv2
import numpy as np
import pytest
import torch

import metartt_lite
from metartt_lite import Tracker, list_trackers, make_tracker
from metartt_lite.track import registry
from metartt_lite.data import samples
from metartt_lite.core.boxes import iou
from metartt_lite.core.utils import MetaRTTError

CPU = torch.device("cpu")

# The README's example, verbatim (README.md shows exactly this block; keep them the same).
README_SNIPPET = '''\
import cv2
from metartt_lite import list_trackers, make_tracker

print(list_trackers())                          # every tracker name
tracker = make_tracker("metartt", color="bgr")  # color="bgr": frames straight from OpenCV
video = cv2.VideoCapture("video.mp4")
ok, frame = video.read()
tracker.init(frame, [73, 24, 34, 38])           # the target's box x, y, w, h (0-based pixels)
while True:
    ok, frame = video.read()
    if not ok:
        break
    box, score = tracker.update(frame)          # box x, y, w, h and the tracker's own score
    print(box.round(1), tracker.success)        # True: the target was found (every tracker)
'''


def sample(n_frames: int = 10):
    return samples.make_sample("translation", seed=0, n_frames=n_frames, size=(160, 120))


def write_mp4(path, frames) -> None:
    H, W = frames[0].shape[:2]
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 20.0, (W, H))
    assert w.isOpened(), "OpenCV cannot write mp4v"
    for f in frames:
        w.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    w.release()


def test_the_readme_example_runs(tmp_path, monkeypatch):
    video = sample()
    np.testing.assert_allclose(video.init_box, [73, 24, 34, 38], atol=0.5)  # the box the snippet gives
    write_mp4(tmp_path / "video.mp4", list(video.frames))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("METARTT_DEVICE", "cpu")
    out = io.StringIO()
    ns: dict = {"__name__": "__readme__"}
    with contextlib.redirect_stdout(out):
        exec(compile(README_SNIPPET, "README.md", "exec"), ns)
    lines = out.getvalue().splitlines()
    assert lines[0] == str(list_trackers())
    assert len(lines) == len(video) and sum(line.endswith("True") for line in lines[1:]) >= 6, lines
    assert isinstance(ns["tracker"], Tracker)
    assert iou(ns["box"], video.groundtruth[-1]) > 0.5, (lines, video.groundtruth)


def test_public_names():
    for name in ("make_tracker", "list_trackers", "Tracker", "device", "seed_everything", "MetaRTTError",
                 "__version__"):
        assert name in metartt_lite.__all__ and hasattr(metartt_lite, name)
    assert metartt_lite.make_tracker is registry.make_tracker
    assert "metartt" in list_trackers() and "csrt" in list_trackers()


@pytest.mark.parametrize("name", ["rtmdnet-k5-tuned", "csrt"])
def test_bgr_frames_with_color_bgr_give_the_rgb_boxes(name):
    video = sample(6)
    rgb = list(video.frames)
    bgr = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in rgb]
    runs = []
    for frames, kw in ((rgb, {}), (bgr, {"color": "bgr"}), (bgr, {"color": "BGR"})):
        t = make_tracker(name, seed=0, dev=CPU, **kw)
        assert isinstance(t, Tracker) and t.name == name
        t.init(frames[0], video.init_box)
        runs.append([t.update(f) for f in frames[1:]])
    for other in runs[1:]:
        for (b0, s0), (b1, s1) in zip(runs[0], other):
            np.testing.assert_array_equal(b1, b0)
            assert s1 == s0 and isinstance(s1, float)


def test_the_bgr_wrapper_passes_the_trackers_attributes_through():
    t = make_tracker("metartt-prune", dev=CPU, color="bgr")
    assert isinstance(t, registry.BGRFrames) and t.tau == t.tracker.tau and t.prune_rate == {}
    video = sample(3)
    t.init(cv2.cvtColor(video.frames[0], cv2.COLOR_RGB2BGR), video.init_box)
    assert set(t.prune_rate) == {"shared", "fc4", "fc5"}
    assert make_tracker("kcf", color="bgr").deterministic


def test_an_unknown_color_is_an_error():
    with pytest.raises(MetaRTTError, match="color 'hsv': expected one of rgb, bgr"):
        make_tracker("csrt", color="hsv")


def test_readme_shows_the_tested_snippet():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("## Use it as a tracker", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert block.strip() == README_SNIPPET.strip()

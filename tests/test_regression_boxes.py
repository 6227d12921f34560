"""Regression guard for refactors: the boxes of the shipped trackers, pinned.

``rtmdnet``, ``metartt`` and ``metartt-prune`` (tracker seed 0, CPU, one torch thread, shipped
weights) run over (a) the first frames of the ``occlusion`` sample video (seed 0) and (b) the first
frames of the real val sequence ``Crossing``; every box must equal the one pinned in
``tests/regression_boxes.json`` to within ATOL pixels.

The pins were generated before the design refactor (issue #14) and must not change with a
behaviour-preserving change. If a change is *meant* to move the boxes, regenerate them with::

    python tests/test_regression_boxes.py --regen

(it runs every case twice and refuses to write if the two runs differ) and say why in the commit.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from metartt_lite.data import samples
from metartt_lite.data.sequences import load_otb_sequence
from metartt_lite.track.registry import make_tracker

PINS = Path(__file__).with_name("regression_boxes.json")
TRACKERS = ["rtmdnet", "metartt", "metartt-prune"]
N_FRAMES = 30
ATOL = 1e-3  # pixels
CPU = torch.device("cpu")


def sample_frames() -> tuple[list[np.ndarray], np.ndarray]:
    video = samples.make_sample("occlusion", seed=0, n_frames=N_FRAMES)
    return list(video.frames), np.asarray(video.init_box, dtype=np.float64)


def val_frames(data: Path) -> tuple[list[np.ndarray], np.ndarray]:
    seq = load_otb_sequence(data / "Crossing")
    return [seq.frame(i) for i in range(N_FRAMES)], np.asarray(seq.groundtruth[0], dtype=np.float64)


def run_boxes(name: str, frames: list[np.ndarray], box0: np.ndarray) -> np.ndarray:
    tracker = make_tracker(name, seed=0, dev=CPU)
    tracker.init(frames[0], box0.copy())
    return np.array([box0] + [np.asarray(tracker.update(f)[0], dtype=np.float64) for f in frames[1:]])


def _default_data() -> Path:
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="module")
def videos(shared_data):
    return {"sample": sample_frames(), "val": val_frames(shared_data)}


@pytest.mark.parametrize("video", ["sample", "val"])
@pytest.mark.parametrize("name", TRACKERS)
def test_boxes_match_the_pins(videos, name, video):
    pinned = np.asarray(json.loads(PINS.read_text())[video][name], dtype=np.float64)
    got = run_boxes(name, *videos[video])
    assert got.shape == pinned.shape
    err = np.abs(got - pinned).max()
    assert err <= ATOL, f"{name} on {video}: boxes moved by up to {err:.4g} px (frame {np.abs(got - pinned).max(1).argmax()})"


def _regen() -> None:
    torch.set_num_threads(1)
    vids = {"sample": sample_frames(), "val": val_frames(_default_data())}
    out: dict = {}
    for v, (frames, box0) in vids.items():
        for name in TRACKERS:
            a, b = run_boxes(name, frames, box0), run_boxes(name, frames, box0)
            if not np.array_equal(a, b):
                raise SystemExit(f"{name} on {v} is not deterministic: {np.abs(a - b).max():.3g} px apart")
            out.setdefault(v, {})[name] = a.round(6).tolist()
            print(f"{v:6s} {name:14s} last box {np.round(a[-1], 2)}")
    PINS.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {PINS}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--regen"]:
        raise SystemExit(__doc__)
    _regen()

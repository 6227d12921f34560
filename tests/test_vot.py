"""The VOT toolkit runs our tracker through TraX (``python -m metartt_lite.vot``) on a sequence the toolkit
makes itself (its own synthetic ``vot test`` sequence), and the boxes it gets equal what ``track`` gives on
the same frames.

Two routes, both the toolkit's own code: the ``vot test`` command in a subprocess (the documented
integration check: it must end with its success line), and the toolkit's Python runtime API (the same
calls ``vot test`` makes), which hands the boxes back to compare. The trackers.ini is the README's snippet
with this interpreter's path."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("trax", reason="vot-trax is not installed (pip install vot-trax; CI installs it through "
                                   "the 'test' extra)")
vot = pytest.importorskip("vot", reason="vot-toolkit is not installed (scripts/install.sh installs it: "
                                        "pip install --no-deps vot-toolkit, see there why)")

from test_cli import run_cli  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
N = 50  # the length of `vot test`'s own sequence (a shorter one jumps too far per frame to track)


def trackers_ini(folder: Path, *names: str) -> Path:
    text = ""
    for name in names:
        text += (f"[mlite_{name.replace('-', '_')}]\nlabel = metartt_lite {name}\nprotocol = trax\n"
                 f"command = {sys.executable} -m metartt_lite.vot --tracker {name}\n"
                 f"env_PYTHONPATH = {REPO}\nenv_METARTT_DEVICE = cpu\nenv_OMP_NUM_THREADS = 1\n\n")
    (folder / "trackers.ini").write_text(text)
    return folder


def run_vot_runtime(registry_dir: Path, ident: str, length: int):
    """The toolkit's own runtime on its own synthetic sequence: (frame paths, gt boxes, returned boxes)."""
    from vot.dataset.dummy import generate_dummy
    from vot.tracker import ObjectStatus, Registry
    seq = generate_dummy(length)
    tracker = Registry([str(registry_dir)])[ident]
    paths = [seq.frame(i).filename("color") for i in range(len(seq))]
    gt = [seq.frame(i).groundtruth() for i in range(len(seq))]
    out = []
    with tracker.runtime(log=False) as runtime:
        state, _ = runtime.initialize(seq.frame(0), [ObjectStatus(gt[0], {})])
        out.append(state[0].region)
        for i in range(1, len(seq)):
            state, _ = runtime.update(seq.frame(i), [])
            out.append(state[0].region)
    box = lambda r: [r.x, r.y, r.width, r.height]  # noqa: E731
    return paths, np.array([box(r) for r in gt]), np.array([box(r) for r in out], dtype=float)


def track_boxes(paths, first_box, tname, tmp_path, capsys) -> np.ndarray:
    """``track`` on the same frame files (a folder of frames), boxes from its CSV."""
    folder = Path(paths[0]).parent
    assert sorted(Path(p).name for p in paths) == [Path(p).name for p in paths]
    assert len(list(folder.glob("*.jpg"))) == len(paths)
    out = tmp_path / "track.csv"
    rc, _, err = run_cli(["track", "--seq", folder, "--first-box", ",".join(map(str, first_box)),
                          "--tracker", tname, "--out", out, "--device", "cpu"], capsys)
    assert rc == 0, err
    with open(out, newline="") as f:
        return np.array([[float(r[k]) for k in "xywh"] for r in csv.DictReader(f)])


@pytest.mark.parametrize("tname", ["kcf", pytest.param("metartt", marks=pytest.mark.slow)])
def test_vot_toolkit_boxes_equal_track(tname, tmp_path, capsys):
    reg = trackers_ini(tmp_path, tname)
    paths, gt, boxes = run_vot_runtime(reg, f"mlite_{tname}", N)
    assert boxes.shape == (N, 4)
    np.testing.assert_allclose(boxes[0], gt[0])
    expected = track_boxes(paths, gt[0], tname, tmp_path, capsys)
    np.testing.assert_allclose(boxes, expected, atol=1e-3)      # TraX carries floats as text
    # the tracker followed the toolkit's moving object (not a constant box): mean IoU with its gt
    from metartt_lite.core.boxes import iou
    assert np.mean(iou(boxes, gt)) > 0.5
    assert np.abs(np.diff(boxes[:, :2], axis=0)).sum() > 10


def test_vot_test_command_succeeds(tmp_path):
    """``vot test`` (the toolkit's integration check, on its synthetic 50-frame sequence) with the README's
    trackers.ini entry: the toolkit logs its success line and no error."""
    reg = trackers_ini(tmp_path, "kcf")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # `vot test` as the toolkit's own CLI entry point (what `python -m vot` runs), with its update check
    # against GitHub switched off so the test never touches the network
    run_vot = ("import sys, vot.utilities.cli as c; c.check_updates = lambda: (False, None); "
               "sys.argv = ['vot'] + sys.argv[1:]; c.main()")
    r = subprocess.run([sys.executable, "-c", run_vot, "--registry", str(reg), "test", "mlite_kcf"], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=600)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log
    assert "Test concluded successfuly" in log, log   # (sic: the toolkit's spelling)
    assert "Error" not in log, log


def test_server_bad_tracker_is_one_error_line():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "metartt_lite.vot", "--tracker", "nope"], env=env,
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "unknown tracker 'nope'" in r.stderr

"""The command-line interface: demo / track / evaluate / list end to end, and every bad input ending in
exit code 2 with one ``error:`` line naming the problem (never a traceback, never a damaged output)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from metartt_lite import cli
from metartt_lite.track import registry
from metartt_lite.data.samples import make_sample, write_sample_as_otb
from metartt_lite.core.utils import MetaRTTError

REPO = Path(__file__).resolve().parents[1]
N_FRAMES = 12  # short sample sequences: the fast tests use the KCF peer on them
DEMO_AUC_FLOOR = 0.45  # measured 0.76 (rtmdnet-k5-tuned, translation, seed 0, 20 frames, CPU)


# ----------------------------------------------------------------------------------------- helpers

def run_cli(argv, capsys):
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def run_module(argv, cwd, timeout=300):
    """``python -m metartt_lite ...`` in a fresh interpreter, without ../shared or METARTT_DATA."""
    env = {k: v for k, v in os.environ.items() if k != "METARTT_DATA"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "metartt_lite", *map(str, argv)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_user_error(rc, err, *needles):
    """Exit 2, stderr is exactly one line 'error: ...' containing every needle (case-insensitive)."""
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    for n in needles:
        assert str(n).lower() in lines[0].lower(), (n, lines[0])
    return lines[0]


def write_video(path, frames, fps=20.0):
    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert vw.isOpened()
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()
    return path


def video_frame_count(path):
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


@pytest.fixture(scope="module")
def sample():
    return make_sample("translation", seed=1, n_frames=N_FRAMES)


@pytest.fixture(scope="module")
def otb_dir(sample, tmp_path_factory):
    return write_sample_as_otb(sample, tmp_path_factory.mktemp("otb") / "translation_s1")


@pytest.fixture(scope="module")
def video_file(sample, tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", sample.frames)


@pytest.fixture()
def fake_root(otb_dir, tmp_path):
    """A tiny data root: one OTB sequence and a splits.json with a 'val' split."""
    root = tmp_path / "data"
    shutil.copytree(otb_dir, root / "seqA")
    (root / "splits.json").write_text(json.dumps({"val": ["seqA"], "train": []}))
    return root


def box_arg(b):
    return "--box=" + ",".join(repr(float(v)) for v in b)


# --------------------------------------------------------------------------------------- end to end

def test_demo_end_to_end_subprocess(tmp_path):
    """The demo runs in a fresh interpreter from a folder with no ../shared, prints AUC, writes a small GIF
    of every frame at the video's size and results.json in the evaluation layout."""
    out = tmp_path / "demo"
    r = run_module(["demo", "--frames", 20, "--tracker", "rtmdnet-k5-tuned", "--out", out], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    m = re.search(r"AUC (\d\.\d+)", r.stdout)
    assert m, r.stdout
    assert float(m.group(1)) >= DEMO_AUC_FLOOR, r.stdout
    assert re.search(r"FPS \d", r.stdout), r.stdout
    gif = out / "demo.gif"
    assert gif.is_file() and 0 < gif.stat().st_size <= 2_000_000
    import imageio.v3 as iio
    frames = iio.imread(gif, index=None)
    assert frames.shape[0] == 20 and frames.shape[1:3] == (240, 320)
    res = json.loads((out / "results.json").read_text())
    seqs = res["trackers"]["rtmdnet-k5-tuned"]["sequences"]
    (s,) = seqs.values()
    assert len(s["boxes"]) == 20 and s["n_frames"] == 20
    assert abs(s["auc"] - float(m.group(1))) < 1e-3


def test_track_otb_folder_with_mp4(otb_dir, tmp_path, capsys):
    out, vid = tmp_path / "res" / "r.json", tmp_path / "annotated.mp4"
    rc, stdout, err = run_cli(["track", "--seq", otb_dir, "--tracker", "kcf", "--out", out,
                               "--video-out", vid], capsys)
    assert rc == 0, err
    assert re.search(r"AUC \d\.\d+ +precision@20px \d\.\d+", stdout), stdout
    assert "FPS" in stdout
    res = json.loads(out.read_text())
    s = res["trackers"]["kcf"]["sequences"][otb_dir.name]
    assert len(s["boxes"]) == N_FRAMES and s["auc"] is not None and s["auc"] > 0.5
    assert res["config"]["command"] == "track" and res["config"]["has_groundtruth"] is True
    assert video_frame_count(vid) == N_FRAMES


def test_track_video_file_with_box_and_gif(sample, video_file, tmp_path, capsys):
    out, gif = tmp_path / "r.json", tmp_path / "a.gif"
    rc, stdout, err = run_cli(["track", "--seq", video_file, box_arg(sample.init_box), "--tracker", "kcf",
                               "--out", out, "--video-out", gif], capsys)
    assert rc == 0, err
    assert "no ground truth" in stdout and "FPS" in stdout
    s = json.loads(out.read_text())["trackers"]["kcf"]["sequences"]["clip"]
    assert len(s["boxes"]) == N_FRAMES
    assert s["auc"] is None and s["precision"] is None  # not 0.95 from the first frame alone
    np.testing.assert_allclose(s["boxes"][0], sample.init_box)
    import imageio.v3 as iio
    assert iio.imread(gif, index=None).shape[:3] == (N_FRAMES, 240, 320)


def test_track_image_folder_needs_box(sample, otb_dir, tmp_path, capsys):
    frames = tmp_path / "frames"
    shutil.copytree(otb_dir / "img", frames)
    rc, _, err = run_cli(["track", "--seq", frames, "--tracker", "kcf", "--out", tmp_path / "r.json"], capsys)
    assert_user_error(rc, err, "initial box")
    rc, stdout, err = run_cli(["track", "--seq", frames, box_arg(sample.init_box), "--tracker", "kcf",
                               "--out", tmp_path / "r.json"], capsys)
    assert rc == 0, err
    assert len(json.loads((tmp_path / "r.json").read_text())["trackers"]["kcf"]["sequences"]["frames"]["boxes"]) \
        == N_FRAMES


def test_evaluate_real_sequence(shared_data, tmp_path, capsys):
    out = tmp_path / "eval"
    rc, stdout, err = run_cli(["evaluate", "--data", shared_data, "--split", "val", "--sequences", "Crossing",
                               "--trackers", "kcf", "--out", out], capsys)
    assert rc == 0, err
    assert "| kcf" in stdout and "AUC" in stdout
    res = json.loads((out / "results.json").read_text())
    n = len((shared_data / "Crossing" / "groundtruth_rect.txt").read_text().split())
    boxes = res["trackers"]["kcf"]["sequences"]["Crossing"]["boxes"]
    assert len(boxes) == n == 120
    assert (out / "success.png").is_file() and (out / "precision.png").is_file()


def test_evaluate_fake_root_and_list(fake_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("METARTT_DATA", str(fake_root))  # the default --data resolution
    rc, stdout, err = run_cli(["evaluate", "--trackers", "kcf,mil", "--out", tmp_path / "ev"], capsys)
    assert rc == 0, err
    res = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert set(res["trackers"]) == {"kcf", "mil"}
    assert len(res["trackers"]["mil"]["sequences"]["seqA"]["boxes"]) == N_FRAMES
    rc, stdout, err = run_cli(["list"], capsys)
    assert rc == 0, err
    for word in ("rtmdnet-k5-tuned", "kcf", "translation", "occlusion", "seqA", "split val"):
        assert word in stdout


def test_list_without_data(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("METARTT_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    rc, stdout, err = run_cli(["list"], capsys)
    assert rc == 0, err
    assert "kcf" in stdout and "translation" in stdout and "data: none found" in stdout


def test_unavailable_default_tracker_falls_back(tmp_path, capsys, monkeypatch):
    """The default ``metartt`` without its weights: demo/track fall back (one warning line); asked for
    explicitly it is an error."""
    def broken(**kw):
        raise MetaRTTError("no meta weights here")
    monkeypatch.setitem(registry.TRACKERS, "metartt", registry.TrackerSpec("metartt", "meta", broken))
    monkeypatch.setattr(cli, "FALLBACK_TRACKER", "kcf")  # fast stand-in for rtmdnet-k5-tuned
    rc, out, err = run_cli(["demo", "--frames", 5, "--out", tmp_path / "d"], capsys)
    assert rc == 0, err
    assert err.startswith("warning: default tracker metartt unavailable (no meta weights here)")
    assert len(err.strip().splitlines()) == 1
    assert "tracker kcf" in out and (tmp_path / "d" / "demo.gif").is_file()
    rc, _, err = run_cli(["demo", "--frames", 5, "--tracker", "metartt", "--out", tmp_path / "d2"], capsys)
    assert_user_error(rc, err, "no meta weights here")
    assert not (tmp_path / "d2").exists()


# ------------------------------------------------------------------------------------------ bad input

def test_missing_seq_path_subprocess(tmp_path):
    r = run_module(["track", "--seq", tmp_path / "nope", "--box", "1,2,3,4"], cwd=tmp_path, timeout=120)
    assert_user_error(r.returncode, r.stderr, "nope", "does not exist")
    assert not (tmp_path / "results.json").exists()


def test_missing_seq_path(tmp_path, capsys):
    rc, _, err = run_cli(["track", "--seq", tmp_path / "missing_dir", "--out", tmp_path / "r.json"], capsys)
    assert_user_error(rc, err, "missing_dir", "does not exist")


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc, _, err = run_cli(["track", "--seq", tmp_path / "empty", "--box", "1,2,3,4",
                          "--out", tmp_path / "r.json"], capsys)
    assert_user_error(rc, err, "empty")
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("box, needle", [("1,2,3", "four numbers"), ("a,b,c,d", "four numbers"),
                                         ("0,0,-5,10", "width/height"), ("nan,1,2,3", "nan")])
def test_malformed_box(video_file, tmp_path, capsys, box, needle):
    rc, _, err = run_cli(["track", "--seq", video_file, f"--box={box}", "--tracker", "kcf",
                          "--out", tmp_path / "r.json"], capsys)
    line = assert_user_error(rc, err, needle)
    assert box in line  # names the offending input


def test_box_outside_frame(video_file, otb_dir, tmp_path, capsys):
    for seq in (video_file, otb_dir):
        rc, _, err = run_cli(["track", "--seq", seq, "--box", "1000,1000,10,10", "--tracker", "kcf",
                              "--out", tmp_path / "r.json"], capsys)
        assert_user_error(rc, err, "outside", "320x240")


def test_unknown_tracker(fake_root, otb_dir, tmp_path, capsys):
    out = tmp_path / "ev"
    rc, _, err = run_cli(["evaluate", "--data", fake_root, "--trackers", "kcf,bogus,mil", "--out", out], capsys)
    assert_user_error(rc, err, "bogus", "rtmdnet-k5-tuned")
    assert not out.exists()  # checked before anything ran
    rc, _, err = run_cli(["track", "--seq", otb_dir, "--tracker", "nosuch", "--out", tmp_path / "r.json"], capsys)
    assert_user_error(rc, err, "nosuch")
    rc, _, err = run_cli(["demo", "--tracker", "nosuch", "--out", tmp_path / "demo"], capsys)
    assert_user_error(rc, err, "nosuch")
    assert not (tmp_path / "demo").exists()


def test_unknown_split_and_sequence(fake_root, tmp_path, capsys):
    rc, _, err = run_cli(["evaluate", "--data", fake_root, "--split", "testx", "--trackers", "kcf",
                          "--out", tmp_path / "ev"], capsys)
    assert_user_error(rc, err, "testx", "split")
    rc, _, err = run_cli(["evaluate", "--data", fake_root, "--sequences", "seqA,Nemo", "--trackers", "kcf",
                          "--out", tmp_path / "ev"], capsys)
    assert_user_error(rc, err, "Nemo")
    rc, _, err = run_cli(["evaluate", "--data", tmp_path / "no_data", "--trackers", "kcf",
                          "--out", tmp_path / "ev"], capsys)
    assert_user_error(rc, err, "no_data")
    assert not (tmp_path / "ev").exists()


def test_corrupt_frame_keeps_existing_results(otb_dir, tmp_path, capsys):
    seq = tmp_path / "corrupt"
    shutil.copytree(otb_dir, seq)
    (seq / "img" / "0006.jpg").write_bytes(b"\xff\xd8 this is not a jpeg " * 20)
    out = tmp_path / "results.json"
    out.write_text('{"old": true}')
    vid = tmp_path / "a.mp4"
    rc, _, err = run_cli(["track", "--seq", seq, "--tracker", "kcf", "--out", out, "--video-out", vid], capsys)
    assert_user_error(rc, err, "frame 5", "0006.jpg")  # 0-based index 5 = the sixth file
    assert out.read_text() == '{"old": true}'
    assert not vid.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_short_groundtruth(otb_dir, tmp_path, capsys):
    seq = tmp_path / "short"
    shutil.copytree(otb_dir, seq)
    gt = seq / "groundtruth_rect.txt"
    gt.write_text("\n".join(gt.read_text().splitlines()[:-3]) + "\n")
    rc, _, err = run_cli(["track", "--seq", seq, "--tracker", "kcf", "--out", tmp_path / "r.json"], capsys)
    assert_user_error(rc, err, f"{N_FRAMES - 3} rows", f"{N_FRAMES} frames")
    rc, _, err = run_cli(["track", "--seq", seq, "--tracker", "kcf", "--allow-short-gt",
                          "--out", tmp_path / "r.json"], capsys)
    assert rc == 0, err
    assert "warning:" in err and "Traceback" not in err


def test_video_with_no_frames(tmp_path, capsys):
    header_only = tmp_path / "header_only.mp4"  # a writer opened and closed without a frame
    vw = cv2.VideoWriter(str(header_only), cv2.VideoWriter_fourcc(*"mp4v"), 20.0, (64, 48))
    vw.release()
    if header_only.exists():
        rc, _, err = run_cli(["track", "--seq", header_only, "--box", "1,2,10,10", "--tracker", "kcf",
                              "--out", tmp_path / "r.json"], capsys)
        assert_user_error(rc, err, header_only.name)
    # a 0-byte file, in a fresh process: FFmpeg's own complaint must not reach stderr either
    (tmp_path / "empty.mp4").write_bytes(b"")
    r = run_module(["track", "--seq", "empty.mp4", "--box", "1,2,10,10", "--tracker", "kcf"], cwd=tmp_path,
                   timeout=120)
    assert_user_error(r.returncode, r.stderr, "empty.mp4")
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "results.json").exists()


def test_missing_checkpoint_keeps_existing_results(otb_dir, tmp_path, capsys):
    out = tmp_path / "results.json"
    out.write_text("precious")
    for argv in (["track", "--seq", otb_dir, "--tracker", "rtmdnet-k5", "--out", out],
                 ["demo", "--frames", 3, "--out", tmp_path],
                 ["evaluate", "--data", otb_dir.parent, "--split", "all", "--trackers", "kcf", "--out", tmp_path]):
        rc, _, err = run_cli([*argv, "--checkpoint", tmp_path / "nope.pt"], capsys)
        assert_user_error(rc, err, "checkpoint", "nope.pt")
    assert out.read_text() == "precious"


def test_corrupt_checkpoint_before_tracking(otb_dir, tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    rc, _, err = run_cli(["track", "--seq", otb_dir, "--tracker", "rtmdnet-k5", "--checkpoint", bad,
                          "--out", tmp_path / "r.json"], capsys)
    assert_user_error(rc, err, "bad.pt")
    assert not (tmp_path / "r.json").exists()


def test_bad_outputs(otb_dir, tmp_path, capsys):
    rc, _, err = run_cli(["track", "--seq", otb_dir, "--tracker", "kcf", "--out", tmp_path,
                          ], capsys)
    assert_user_error(rc, err, "folder")
    rc, _, err = run_cli(["track", "--seq", otb_dir, "--tracker", "kcf", "--out", tmp_path / "r.json",
                          "--video-out", tmp_path / "v.avi"], capsys)
    assert_user_error(rc, err, ".avi")
    (tmp_path / "file").write_text("x")
    rc, _, err = run_cli(["evaluate", "--data", otb_dir.parent, "--split", "all", "--trackers", "kcf",
                          "--out", tmp_path / "file"], capsys)
    assert_user_error(rc, err, "not a folder")


def test_argparse_errors_exit_2(capsys):
    rc, _, err = run_cli(["track"], capsys)
    assert rc == 2 and "--seq" in err and "Traceback" not in err
    rc, _, err = run_cli(["demo", "--frames", "0"], capsys)
    assert rc == 2 and "--frames" in err
    rc, _, err = run_cli(["demo", "--preset", "nope"], capsys)
    assert rc == 2 and "nope" in err
    rc, _, err = run_cli(["frobnicate"], capsys)
    assert rc == 2
    assert run_cli([], capsys)[0] == 2
    assert run_cli(["--help"], capsys)[0] == 0


# ------------------------------------------------------------------------------------- command hook

def test_plugin_commands(tmp_path, monkeypatch, capsys):
    (tmp_path / "fake_cli_plugin.py").write_text(textwrap.dedent("""
        from metartt_lite.core.utils import MetaRTTError

        def _run(args):
            if args.mode == "ok":
                print("hello from plugin")
                return 0
            if args.mode == "interrupt":
                raise KeyboardInterrupt
            raise MetaRTTError("plugin says no\\nsecond line")

        def add_parser(subparsers):
            p = subparsers.add_parser("hello", help="a test command")
            p.add_argument("mode")
            p.set_defaults(func=_run)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "COMMANDS", [("missing", "metartt_lite.no_such_module_xyz"),
                                          ("hello", "fake_cli_plugin")])
    rc, out, err = run_cli(["hello", "ok"], capsys)
    assert rc == 0 and "hello from plugin" in out
    assert err.strip() == ("warning: command 'missing' unavailable: cannot import metartt_lite.no_such_module_xyz: "
                           "No module named 'metartt_lite.no_such_module_xyz'")  # said, not silently skipped
    rc, _, err = run_cli(["missing"], capsys)
    assert rc == 2 and "invalid choice: 'missing'" in err
    monkeypatch.setattr(cli, "COMMANDS", [("hello", "fake_cli_plugin")])
    rc, _, err = run_cli(["hello", "bad"], capsys)
    assert_user_error(rc, err, "plugin says no second line")
    rc, _, err = run_cli(["hello", "interrupt"], capsys)
    assert rc == 130 and err.strip() == "error: interrupted"

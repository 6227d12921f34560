"""Your own video end to end: ``track`` on an mp4 writes an H.264 video at the source's frame rate that plays
in headless Chromium, the boxes as CSV / OTB / JSON, and ``pick-box`` writes the first frame with a grid.

Oracles: the boxes files are read back with independent parsers (csv module, ``read_otb_groundtruth``)
and compared with the results JSON of the same run; the mp4's codec, frame rate and frame count come from
ffmpeg's own probe output and OpenCV's decoder; playback is judged by the browser's media element."""
from __future__ import annotations

import csv
import functools
import http.server
import json
import re
import subprocess
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from metartt_lite import cli
from metartt_lite.data.sequences import read_otb_groundtruth
from metartt_lite.data.samples import make_sample
from metartt_lite.core.utils import MetaRTTError
from metartt_lite.data.video import (first_frame, format_from_path, grid_image, source_fps, write_boxes, write_h264)

from test_cli import assert_user_error, run_cli, run_module, video_frame_count, write_video

CHROMIUM = Path("/usr/bin/chromium")
N = 15
SRC_FPS = 12.0  # not 20 (the old fixed rate) nor 30 (the default): the source's rate must be kept


@pytest.fixture(scope="module")
def sample():
    return make_sample("translation", seed=3, n_frames=N)


@pytest.fixture(scope="module")
def user_mp4(sample, tmp_path_factory):
    """A user's mp4 (OpenCV mp4v, as a phone or another tool would hand us some mp4) at 12 fps."""
    return write_video(tmp_path_factory.mktemp("user") / "my clip.mp4", sample.frames, fps=SRC_FPS)


def ffprobe(path: Path) -> dict:
    """Codec, pixel format, size and frame rate as ffmpeg itself reports them (imageio-ffmpeg's binary)."""
    import imageio_ffmpeg
    err = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                         capture_output=True, text=True).stderr
    m = re.search(r"Video: (\w+).*?, (\w+)\(.*?, (\d+)x(\d+).*?, ([\d.]+) fps", err)
    assert m, err
    return {"codec": m.group(1), "pix_fmt": m.group(2), "size": (int(m.group(3)), int(m.group(4))),
            "fps": float(m.group(5))}


@pytest.fixture(scope="module")
def tracked(sample, user_mp4, tmp_path_factory):
    """The fresh-user flow in a new interpreter: track my mp4 → H.264 video + CSV of boxes."""
    work = tmp_path_factory.mktemp("run")
    box = ",".join(str(float(v)) for v in sample.init_box)
    r = run_module(["track", "--seq", user_mp4, "--first-box", box, "--tracker", "kcf", "--out", "boxes.csv",
                    "--video-out", "tracked.mp4"], cwd=work)
    assert r.returncode == 0, r.stderr
    return work, r


def test_fresh_user_track_mp4_gives_h264_and_csv(sample, tracked):
    work, r = tracked
    assert "wrote boxes.csv (csv)" in r.stdout and "H.264" in r.stdout, r.stdout
    info = ffprobe(work / "tracked.mp4")
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p", info
    assert info["size"] == (320, 240)
    assert info["fps"] == pytest.approx(SRC_FPS), info          # the source's rate, not a fixed 20
    assert video_frame_count(work / "tracked.mp4") == N
    with open(work / "boxes.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["frame"] for r in rows] == [str(i) for i in range(N)]
    first = [float(rows[0][k]) for k in "xywh"]
    np.testing.assert_allclose(first, sample.init_box, atol=1e-4)
    boxes = np.array([[float(r[k]) for k in "xywh"] for r in rows])
    assert np.all(np.isfinite(boxes)) and np.all(boxes[:, 2:] > 0)
    # KCF follows the translating target: the boxes move with the ground truth (centre error < 20 px)
    c = boxes[:, :2] + boxes[:, 2:] / 2
    g = sample.groundtruth[:, :2] + sample.groundtruth[:, 2:] / 2
    assert np.abs(c - g).max() < 20
    assert abs(boxes[-1, 0] - boxes[0, 0]) + abs(boxes[-1, 1] - boxes[0, 1]) > 5  # it did move


def test_h264_plays_in_chromium(tracked, tmp_path):
    """The written mp4 loads in a <video> element of headless Chromium and plays: metadata with the
    right size and duration, and currentTime advances."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright; never 'playwright install')")
    work, _ = tracked
    site = tmp_path / "site"
    site.mkdir()
    (site / "v.mp4").write_bytes((work / "tracked.mp4").read_bytes())
    (site / "index.html").write_text('<!doctype html><video id="v" src="v.mp4" muted playsinline></video>')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[
                "--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"])
            try:
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
                page.wait_for_function("document.getElementById('v').readyState >= 1 || "
                                       "document.getElementById('v').error !== null", timeout=30_000)
                err = page.evaluate("() => { const e = document.getElementById('v').error; "
                                    "return e ? e.code + ' ' + e.message : null; }")
                assert err is None, f"Chromium cannot decode the mp4: {err}"
                meta = page.evaluate("() => { const v = document.getElementById('v'); "
                                     "return [v.videoWidth, v.videoHeight, v.duration]; }")
                assert meta[:2] == [320, 240], meta
                assert meta[2] == pytest.approx(N / SRC_FPS, abs=0.1), meta
                page.evaluate("() => document.getElementById('v').play()")
                page.wait_for_function("document.getElementById('v').currentTime > 0.3", timeout=30_000)
                state = page.evaluate("() => { const v = document.getElementById('v'); "
                                      "return [v.readyState, v.currentTime, v.error]; }")
                assert state[0] >= 2 and state[1] > 0.3 and state[2] is None, state
            finally:
                browser.close()
    finally:
        server.shutdown()


def test_track_formats_agree(sample, user_mp4, tmp_path, capsys):
    """--format otb and json of one run (seeded, deterministic KCF) give the same boxes as the CSV;
    OTB text is 1-based."""
    box = "--first-box=" + ",".join(str(float(v)) for v in sample.init_box)
    got = {}
    for fmt, name in (("json", "r.json"), ("otb", "r.txt"), ("csv", "r.out")):
        rc, out, err = run_cli(["track", "--seq", user_mp4, box, "--tracker", "kcf", "--format", fmt,
                                "--out", tmp_path / name], capsys)
        assert rc == 0, err
        got[fmt] = tmp_path / name
    res = json.loads(got["json"].read_text())
    jb = np.array(res["trackers"]["kcf"]["sequences"]["my clip"]["boxes"], dtype=float)
    assert res["config"]["fps"] == pytest.approx(SRC_FPS)
    ob = read_otb_groundtruth(got["otb"])                       # reads 1-based, returns 0-based
    raw = np.loadtxt(got["otb"], delimiter=",")
    np.testing.assert_allclose(raw[0, :2], np.asarray(sample.init_box)[:2] + 1, atol=1e-4)
    with open(got["csv"], newline="") as f:
        cb = np.array([[float(r[k]) for k in "xywh"] for r in csv.DictReader(f)])
    np.testing.assert_allclose(ob, jb, atol=1e-4)
    np.testing.assert_allclose(cb, jb, atol=1e-4)


def test_pick_box_writes_grid_png(sample, user_mp4, tmp_path, capsys):
    out = tmp_path / "first.png"
    rc, stdout, err = run_cli(["pick-box", "--seq", user_mp4, "--out", out, "--step", "50"], capsys)
    assert rc == 0, err
    assert "--first-box x,y,w,h" in stdout
    img = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)
    assert img.shape == (240, 320, 3)
    # the grid lines sit exactly on the 0-based pixel columns / rows they are labelled with
    for x in (50, 100, 150, 200, 250, 300):
        col = img[120:200, x].astype(int)   # below the labels
        assert np.all(np.abs(col - [255, 255, 0]).max(axis=1) <= 2), x
    assert not np.all(np.abs(img[120:200, 75].astype(int) - [255, 255, 0]).max(axis=1) <= 2)
    # away from the lines and labels, the frame itself (first frame of the mp4) is still there
    ref = first_frame(user_mp4).astype(int)
    assert np.abs(img[130:145, 62:72].astype(int) - ref[130:145, 62:72]).mean() < 40
    # with --box the candidate box is drawn in red
    rc, _, err = run_cli(["pick-box", "--seq", user_mp4, "--out", tmp_path / "b.png", "--box", "60,60,100,80"],
                         capsys)
    assert rc == 0, err
    b = cv2.cvtColor(cv2.imread(str(tmp_path / "b.png")), cv2.COLOR_BGR2RGB)
    assert tuple(b[100, 60]) == (255, 0, 0)


def test_grid_image_keeps_pixels_registered(sample):
    g = grid_image(sample.frames[0], step=40)
    assert g.shape == sample.frames[0].shape
    assert tuple(g[200, 80]) == (255, 255, 0) and tuple(g[80, 300]) == (255, 255, 0)


def test_bad_inputs(sample, user_mp4, tmp_path, capsys):
    rc, _, err = run_cli(["pick-box", "--seq", user_mp4, "--out", tmp_path / "x.jpg"], capsys)
    assert_user_error(rc, err, "png")
    rc, _, err = run_cli(["pick-box", "--seq", tmp_path / "nope.mp4"], capsys)
    assert_user_error(rc, err, "nope.mp4", "does not exist")
    rc, _, err = run_cli(["pick-box", "--seq", user_mp4, "--out", tmp_path / "b.png", "--box", "400,300,50,50"],
                         capsys)
    assert_user_error(rc, err, "--box")
    rc, _, err = run_cli(["track", "--seq", user_mp4, "--first-box", "1,2,30,40", "--tracker", "kcf",
                          "--format", "xml", "--out", tmp_path / "r"], capsys)
    assert rc == 2 and "invalid choice" in err
    assert not (tmp_path / "r").exists()
    rc, _, err = run_cli(["track", "--seq", user_mp4, "--first-box", "1,2,30,40", "--tracker", "kcf",
                          "--fps", "0", "--out", tmp_path / "r.csv", "--video-out", tmp_path / "v.mp4"], capsys)
    assert_user_error(rc, err, "--fps 0", "positive")
    assert not (tmp_path / "r.csv").exists() and not (tmp_path / "v.mp4").exists()
    with pytest.raises(MetaRTTError, match="no frames"):
        write_h264(tmp_path / "e.mp4", iter([]), 10)
    assert not (tmp_path / "e.mp4").exists()
    with pytest.raises(MetaRTTError, match=".mp4"):
        write_h264(tmp_path / "e.avi", sample.frames, 10)
    with pytest.raises(MetaRTTError, match="positive"):
        write_h264(tmp_path / "e.mp4", sample.frames, 0)
    with pytest.raises(MetaRTTError, match="format"):
        write_boxes(tmp_path / "b.x", np.zeros((2, 4)), "xml")
    assert list(tmp_path.glob(".*tmp")) == []


def test_write_h264_odd_size_and_fps(tmp_path):
    frames = [np.full((31, 45, 3), 10 * i, np.uint8) for i in range(7)]
    p = write_h264(tmp_path / "odd.mp4", frames, fps=7.5)
    info = ffprobe(p)
    assert info["codec"] == "h264" and info["size"] == (46, 32) and info["fps"] == pytest.approx(7.5)
    cap = cv2.VideoCapture(str(p))
    means = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        means.append(f[:31, :45].mean())
    cap.release()
    np.testing.assert_allclose(means, [10 * i for i in range(7)], atol=3)  # frames in order, not dropped


def test_source_fps_and_format_from_path(user_mp4, tmp_path):
    assert source_fps(user_mp4) == pytest.approx(SRC_FPS)
    assert source_fps(tmp_path) is None
    assert [format_from_path(p) for p in ("a.csv", "b.TXT", "c.json", "d")] == ["csv", "otb", "json", "json"]


def test_write_boxes_nan_rows(tmp_path):
    b = np.array([[1.5, 2, 3, 4], [np.nan] * 4])
    write_boxes(tmp_path / "b.csv", b, "csv", scores=[1.0, -0.5])
    assert (tmp_path / "b.csv").read_text().splitlines() == ["frame,x,y,w,h,score", "0,1.5,2,3,4,1",
                                                             "1,nan,nan,nan,nan,-0.5"]
    write_boxes(tmp_path / "b.txt", b, "otb")
    with pytest.warns(UserWarning, match="1 of 2 ground-truth rows are missing or NaN"):
        back = read_otb_groundtruth(tmp_path / "b.txt")
    np.testing.assert_array_equal(back[0], b[0])
    assert np.all(np.isnan(back[1]))


def test_track_shows_progress_bars_on_a_terminal(sample, user_mp4, tmp_path, capsys, monkeypatch):
    """On a terminal (faked here) track shows one bar for tracking and one for writing the video, each
    reaching the frame count; -q (and a non-terminal stderr, as in the other tests) shows none."""
    monkeypatch.setattr(cli.sys.stderr, "isatty", lambda: True, raising=False)
    box = "--first-box=" + ",".join(str(float(v)) for v in sample.init_box)
    rc, _, err = run_cli(["track", "--seq", user_mp4, box, "--tracker", "kcf", "--out", tmp_path / "b.csv",
                          "--video-out", tmp_path / "v.mp4"], capsys)
    assert rc == 0, err
    assert re.search(rf"kcf/my clip: 100%.*{N}/{N}", err), err
    assert re.search(rf"writing v\.mp4: 100%.*{N}/{N}", err), err
    rc, _, err = run_cli(["track", "--seq", user_mp4, box, "--tracker", "kcf", "--out", tmp_path / "c.csv",
                          "--video-out", tmp_path / "w.mp4", "-q"], capsys)
    assert rc == 0 and "100%" not in err, err

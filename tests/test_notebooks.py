"""The notebooks and their widgets: notebooks are stored clean, every widget callback (a plain function)
gives the numbers a direct computation gives, and notebook 02 renders its slider and plotly figure in a
real browser (JupyterLab + headless Chromium via Playwright).

Running the notebooks themselves is nbval's job: ``METARTT_FAST=1 pytest --nbval-lax --nbval-current-env
notebooks`` (the Makefile's ``test`` target does both)."""
from __future__ import annotations

import ast
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from metartt_lite.model import surgery
from metartt_lite.course import widgets as W
from metartt_lite.evaluation.ope import IOU_THRESHOLDS, sequence_metrics
from metartt_lite.data.samples import make_sample
from metartt_lite.core.utils import MetaRTTError

from meta_fixtures import tiny_net

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
EXPECTED = ["01_episodes", "02_inner_loop", "03_triplet_loss", "04_meta_gradients", "05_pruning_masks", "06_tracking",
            "07_evaluation"]


# ------------------------------------------------------------------------------- (a) stored clean
def test_every_notebook_exists():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_stored_without_outputs(path):
    nb = json.loads(path.read_text())
    assert nb["nbformat"] == 4
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, "a notebook without code"
    for i, c in enumerate(code):
        assert c.get("outputs") == [], f"{path.name}: code cell {i} has outputs"
        assert c.get("execution_count") is None, f"{path.name}: code cell {i} has an execution count"
    text = "\n".join("".join(c["source"]) for c in nb["cells"])
    assert 'os.environ.get("METARTT_FAST") == "1"' in text
    assert "## Summary" in text and "## Exercises" in text
    assert "import metartt_lite" in text or "from metartt_lite" in text
    for c in code:  # every code cell is valid Python (no stray magics)
        ast.parse("".join(c["source"]))


def test_package_never_imports_widgets():
    for f in (REPO / "metartt_lite").glob("*.py"):
        if f.name == "widgets.py":
            continue
        tree = ast.parse(f.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [a.name for a in node.names]
            assert not any(n == "widgets" or n.endswith(".widgets") for n in names), f"{f.name} imports widgets"


# ------------------------------------------------------------------------- (b) widget callbacks
@pytest.fixture(scope="module")
def net():
    n = tiny_net(seed=0)
    n.eval()
    return n


@pytest.fixture(scope="module")
def rates(net):
    g = torch.Generator().manual_seed(0)
    mk = lambda K: [{k: 10 ** (-3 + torch.rand(v.shape, generator=g)) for k, v in net.head_params().items()} for _ in range(K)]
    return mk(3), mk(2)


def test_lr_summary_equals_direct_computation(rates):
    r_init, r_on = rates
    s = W.lr_summary((r_init, r_on))
    n_params = len(r_init[0])
    assert len(s["phase"]) == n_params * (len(r_init) + len(r_on))
    assert set(len(v) for v in s.values()) == {len(s["phase"])}
    for i in range(len(s["phase"])):
        a = (r_init if s["phase"][i] == "init" else r_on)[s["step"][i] - 1][s["param"][i]]
        assert s["mean"][i] == pytest.approx(float(a.mean()), rel=1e-6)
        assert s["min"][i] == pytest.approx(float(a.min()), rel=1e-6)
        assert s["max"][i] == pytest.approx(float(a.max()), rel=1e-6)
        assert s["numel"][i] == a.numel() and s["layer"][i] == s["param"][i].split(".")[0]
    assert W.lr_summary(r_init)["phase"] == ["init"] * n_params * len(r_init)  # one phase alone


def test_plot_learning_rates_traces(rates):
    r_init, r_on = rates
    fig = W.plot_learning_rates((r_init, r_on), "on", 2)
    names = list(r_on[0])
    assert len(fig.data) == 3 * len(names)
    for j, n in enumerate(names):
        means = fig.data[3 * j]
        assert list(means.x) == [1, 2]
        np.testing.assert_allclose(means.y, [float(d[n].mean()) for d in r_on], rtol=1e-6)
        hist = fig.data[3 * j + 2]
        assert np.isclose(np.sum(hist.y), 1.0)  # fraction of entries
    with pytest.raises(ValueError):
        W.plot_learning_rates((r_init, r_on), "on", 3)


def test_learning_rate_widget_follows_its_controls(rates):
    r_init, r_on = rates
    box = W.learning_rate_widget(r_init, r_on)
    assert box.last["kwargs"] == {"phase": "init", "step": 1} and len(box.last["figure"].data) > 0
    box.controls["step"].value = 3
    assert box.last["kwargs"]["step"] == 3
    box.controls["phase"].value = "on"
    assert box.controls["step"].max == len(r_on)
    assert box.last["kwargs"]["phase"] == "on" and box.last["kwargs"]["step"] <= len(r_on)
    fig = W.learning_rate_figure(r_init, r_on)
    assert len(fig.axes) == 3 and all(ax.has_data() for ax in fig.axes)


def test_channel_mask_figure(net):
    widths = surgery.layer_widths(net)
    g = torch.Generator().manual_seed(1)
    betas = {v: {l: torch.rand(w, generator=g) for l, w in widths.items()} for v in ("a", "b", "c")}
    fig = W.channel_mask_figure(betas, tau=0.5)
    assert len(fig.data) == len(widths)
    for tr, l in zip(fig.data, widths):
        np.testing.assert_allclose(np.asarray(tr.z), np.stack([betas[v][l].numpy() for v in "abc"]), rtol=1e-6)
        assert list(tr.y) == ["a", "b", "c"]


def test_mask_threshold_effect_equals_direct_computation(net):
    widths = surgery.layer_widths(net)                         # shared 4, fc4 8, fc5 8
    betas = {l: torch.linspace(0.05, 0.95, w) for l, w in widths.items()}
    x = torch.rand(40, widths["shared"] * 9, generator=torch.Generator().manual_seed(2))
    eff = W.mask_threshold_effect(net, x, None, betas, taus=[0.0, 0.5, 1.0], min_keep=1)
    assert eff["tau"] == [0.0, 0.5, 1.0]
    th = net.head_params()

    def scores(m):
        h = x * m["shared"].repeat_interleave(9)
        h = torch.relu(h @ th["fc4.weight"].T + th["fc4.bias"]) * m["fc4"]
        h = torch.relu(h @ th["fc5.weight"].T + th["fc5.bias"]) * m["fc5"]
        return h @ th["fc6.weight"].T + th["fc6.bias"]

    with torch.no_grad():
        full = scores({l: torch.ones(w) for l, w in widths.items()})
        for i, tau in enumerate(eff["tau"]):
            m = {l: (b >= tau).float() for l, b in betas.items()}
            for l in m:                                         # the floor: at least the best channel
                if m[l].sum() == 0:
                    m[l][torch.argmax(betas[l])] = 1
            s = scores(m)
            want_rate = {l: 1 - float(m[l].mean()) for l in widths}
            for l in widths:
                assert eff["prune_rate"][l][i] == pytest.approx(want_rate[l])
            assert eff["mean_prune_rate"][i] == pytest.approx(np.mean(list(want_rate.values())))
            d = float((s[:, 1] - full[:, 1]).abs().mean())
            assert eff["score_change"][i] == pytest.approx(d, abs=1e-6)
            assert eff["relative_change"][i] == pytest.approx(d / float(full[:, 1].std()), abs=1e-5)
            flips = float(((s[:, 1] > s[:, 0]) != (full[:, 1] > full[:, 0])).float().mean())
            assert eff["flip_rate"][i] == pytest.approx(flips)
    assert eff["score_change"][0] == 0 and eff["mean_prune_rate"][1] == pytest.approx(0.5)
    fig = W.plot_mask_threshold(eff, tau=0.5)
    assert len(fig.data) == len(widths) + 3
    box = W.mask_threshold_widget(net, x, None, betas, taus=[0.0, 0.5, 1.0], min_keep=1)
    box.controls["tau"].value = 1.0
    assert box.last["kwargs"] == {"tau": 1.0} and box.effect["tau"] == eff["tau"]


def test_episode_grid_and_overview():
    v = make_sample("translation", seed=0, n_frames=6, size=(160, 120))
    patches = W.crop_patches(v.frames[0], v.groundtruth[:3], size=32)
    assert len(patches) == 3 and patches[0].shape == (32, 32, 3) and patches[0].dtype == np.uint8
    # a patch of the whole frame is the frame resized
    whole = W.crop_patch(v.frames[0], [0, 0, 160, 120], size=40)
    import cv2
    np.testing.assert_array_equal(whole, cv2.resize(v.frames[0], (40, 40), interpolation=cv2.INTER_AREA))
    fig = W.episode_grid({"D_init +": patches, "D_init −": patches[:1]}, n_cols=4)
    assert len(fig.axes) == 8 and sum(len(ax.images) for ax in fig.axes) == 4
    fig = W.episode_overview(v.frames, v.groundtruth, [None, v.groundtruth[1], None, None, None, None])
    assert len(fig.axes) == 6 and len(fig.axes[1].patches) == 2 and len(fig.axes[0].patches) == 1


def test_unit_circle_figures_normalise():
    g = torch.Generator().manual_seed(0)
    groups = {"pos": torch.randn(5, 2, generator=g) * 7, "hard": torch.randn(3, 2, generator=g)}
    fig = W.unit_circle_figure(groups)
    assert len(fig.data) == 3                                  # the circle + 2 groups
    for i, tr in enumerate(fig.data[1:]):
        np.testing.assert_allclose(np.hypot(tr.x, tr.y), 1.0 + 0.04 * (i + 1), rtol=1e-6)
    fig = W.unit_circle_grid({"a": groups, "b": groups})
    assert len(fig.axes) == 2 and all(len(ax.collections) == 2 for ax in fig.axes)
    calls = []
    box = W.triplet_widget(lambda gamma, xi: calls.append((gamma, xi)) or W.unit_circle_figure(groups))
    box.controls["gamma"].value = 1.5
    assert calls == [(0.5, 0.5), (1.5, 0.5)] and len(box.last["figure"].data) == 3


@pytest.fixture(scope="module")
def video():
    return make_sample("translation", seed=1, n_frames=8, size=(160, 120))


def test_draw_boxes_player_and_strip(video):
    boxes = {"metartt": video.groundtruth + [4, 0, 0, 0], "csrt": video.groundtruth - [4, 0, 0, 0]}
    img = W.draw_boxes(video.frames[2], boxes, video.groundtruth, 2, label=False)
    x, y, w, h = np.round(boxes["csrt"][2]).astype(int)
    assert tuple(img[y + h // 2, x]) == W.TRACKER_COLORS["csrt"]      # left edge of the csrt box
    assert not np.array_equal(img, video.frames[2]) and img.shape == video.frames[2].shape
    player = W.tracking_player(video.frames, boxes, video.groundtruth)
    assert player.slider.max == len(video) - 1 and player.play.max == len(video) - 1
    first = player.image.value
    player.slider.value = 5
    assert player.image.value != first
    assert player.image.value == W._png(W.draw_boxes(video.frames[5], boxes, video.groundtruth, 5))
    fig = W.tracking_strip(video.frames, boxes, video.groundtruth, n=4)
    assert len(fig.axes) == 4 and all(ax.images for ax in fig.axes)


def test_success_figure_matches_sequence_metrics(video):
    boxes = {"a": video.groundtruth.copy(), "b": video.groundtruth + [10, 5, 0, 0]}
    fig = W.success_figure(boxes, video.groundtruth)
    assert len(fig.data) == 2
    for tr, (n, b) in zip(fig.data, boxes.items()):
        m = sequence_metrics(b, video.groundtruth)
        np.testing.assert_allclose(tr.y, m["success_curve"])
        np.testing.assert_allclose(tr.x, IOU_THRESHOLDS)
        assert f"AUC {m['auc']:.3f}" in tr.name


def test_track_uploaded_with_csrt(video):
    data = W.encode_video(video.frames)
    x, y, w, h = video.groundtruth[0]
    res = W.track_uploaded(data, f"{x},{y},{w},{h}", tracker="csrt", filename="clip.avi")
    assert res["tracker"] == "csrt" and len(res["frames"]) == len(video)
    assert res["boxes"].shape == (len(video), 4) and np.isfinite(res["boxes"]).all()
    np.testing.assert_allclose(res["boxes"][0], video.groundtruth[0])
    assert res["fps"] and res["fps"] > 0
    assert sequence_metrics(res["boxes"], video.groundtruth)["auc"] > 0.5   # CSRT follows a clean target
    short = W.track_uploaded(data, f"{x},{y},{w},{h}", tracker="csrt", max_frames=3)
    assert len(short["frames"]) == 3 and short["boxes"].shape == (3, 4)
    with pytest.raises(MetaRTTError):
        W.track_uploaded(b"", "1,2,3,4")
    with pytest.raises(MetaRTTError):
        W.track_uploaded(data, "1,2,3")


def test_upload_widget_runs_its_callback(video):
    ui = W.upload_widget(tracker="csrt")
    ui.run()                                   # no file yet: a message, no exception
    assert "result" not in ui.last
    x, y, w, h = video.groundtruth[0]
    import datetime
    ui.upload.value = ({"name": "clip.avi", "type": "video/x-msvideo", "size": 1,
                        "last_modified": datetime.datetime.now(datetime.timezone.utc),
                        "content": memoryview(W.encode_video(video.frames))},)
    ui.box_text.value = f"{x},{y},{w},{h}"
    ui.tracker.value = "csrt"
    ui.run()
    assert ui.last["result"]["boxes"].shape == (len(video), 4)
    ui.box_text.value = "not a box"
    ui.run()
    assert "x,y,w,h" in ui.last["error"]


def test_sequence_view_feeds_run_sequence(video):
    from metartt_lite.evaluation.ope import run_sequence
    from metartt_lite.track.registry import make_tracker
    r = run_sequence(make_tracker("csrt"), W.as_sequence(video, n_frames=5))
    assert r["boxes"].shape == (5, 4)


# ------------------------------------------------------------------------------ (c) real browser
CHROMIUM = Path("/usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, timeout: float) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with code {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise TimeoutError(f"jupyter lab did not listen on port {port} within {timeout:.0f} s")


@pytest.mark.slow
def test_notebook_02_renders_slider_and_plotly_in_chromium(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright; never 'playwright install')")
    nb_path = REPO / "notebooks" / "02_inner_loop.ipynb"
    before = nb_path.read_bytes()
    checkpoints = REPO / "notebooks" / ".ipynb_checkpoints"   # JupyterLab makes it on open; removed after if new
    had_checkpoints = checkpoints.exists()
    # JupyterLab settings for this run only: no autosave (running the notebook must never write outputs
    # into the repository's copy), every cell rendered (no windowing), a throw-away workspace.
    settings = tmp_path / "lab-settings"
    (settings / "@jupyterlab" / "docmanager-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings").write_text('{"autosave": false}')
    (settings / "@jupyterlab" / "notebook-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}')
    env = dict(os.environ, METARTT_FAST="1", JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    port, token = _free_port(), secrets.token_hex(16)
    log = open(tmp_path / "jupyterlab.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
                             f"--ServerApp.token={token}", "--ServerApp.ip=127.0.0.1", "--allow-root",
                             f"--ServerApp.root_dir={REPO}"], env=env, stdout=log, stderr=subprocess.STDOUT)
    shot = tmp_path / "02_inner_loop.png"
    try:
        _wait_port(port, proc, timeout=120)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"])
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(60_000)
                page.goto(f"http://127.0.0.1:{port}/lab/tree/notebooks/02_inner_loop.ipynb?token={token}")
                page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
                try:  # "Select Kernel" dialog on first open
                    page.locator(".jp-Dialog .jp-mod-accept").click(timeout=20_000)
                except Exception:
                    pass
                try:  # the kernel is up (cells run all the same once it is, but the picture is calmer)
                    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000,
                                           state="attached")
                except Exception:
                    pass
                page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
                page.locator(".lm-Menu .lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).first.click()
                # the last cell's *output* (its source holds the same words) says the whole notebook ran
                page.locator(".jp-OutputArea-output", has_text="notebook ran in").first.wait_for(timeout=300_000)
                slider = page.locator(".widget-slider").first
                slider.wait_for(state="attached", timeout=30_000)
                slider.scroll_into_view_if_needed()
                plot = page.locator(".jp-OutputArea .js-plotly-plot").first
                plot.wait_for(state="visible", timeout=60_000)
                assert slider.is_visible() and plot.is_visible()
                assert page.locator(".js-plotly-plot .main-svg").count() > 0     # plotly drew its SVG
                errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                                      has_text="Error")
                assert errors.count() == 0, errors.first.inner_text()
                page.wait_for_timeout(1500)   # let plotly finish its transition before the picture
                page.screenshot(path=str(shot))
            finally:
                browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
        if not had_checkpoints:
            shutil.rmtree(checkpoints, ignore_errors=True)
    assert shot.stat().st_size > 10_000
    out = REPO / "outputs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    (out / "02_inner_loop.png").write_bytes(shot.read_bytes())
    assert nb_path.read_bytes() == before, "running the notebook in JupyterLab modified the stored notebook"

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
from typing import Any

import numpy as np
import pytest
import torch

from metartt_lite.model import surgery
from metartt_lite.core import boxes as bx
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
    assert 'W.setup_notebook(' in text   # FAST (METARTT_FAST=1), seeds, threads, DEV: one package helper
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
    boxes = np.column_stack([np.arange(40.0), np.zeros(40), np.full(40, 10.0), np.full(40, 10.0)])
    gt = np.array([20.0, 0, 10, 10])
    eff = W.mask_threshold_effect(net, x, None, betas, taus=[0.0, 0.5, 1.0], min_keep=1, boxes=boxes, gt=gt)
    assert eff["tau"] == [0.0, 0.5, 1.0] and eff["n_samples"] == 40
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
            pos0 = full[:, 1] > full[:, 0]
            assert eff["n_target"][i] == int((s[:, 1] > s[:, 0]).sum()) and eff["n_target_full"] == int(pos0.sum())
            if pos0.any():
                assert eff["flip_rate_pos"][i] == pytest.approx(float((s[pos0, 1] <= s[pos0, 0]).float().mean()))
                assert eff["relative_change_pos"][i] == pytest.approx(
                    float((s[pos0, 1] - full[pos0, 1]).abs().mean() / full[:, 1].std()), abs=1e-5)
            assert eff["best_iou"][i] == pytest.approx(float(bx.iou(boxes[int(torch.argmax(s[:, 1]))], gt)))
    assert eff["best_iou_full"] == pytest.approx(float(bx.iou(boxes[int(torch.argmax(full[:, 1]))], gt)))
    assert eff["score_change"][0] == 0 and eff["mean_prune_rate"][1] == pytest.approx(0.5)
    fig = W.plot_mask_threshold(eff, tau=0.5)
    assert len(fig.data) == len(widths) + 6
    assert len(W.plot_mask_threshold({k: v for k, v in eff.items() if not k.startswith("best")}, 0.5).data) == len(widths) + 5
    box = W.mask_threshold_widget(net, x, None, betas, taus=[0.0, 0.5, 1.0], min_keep=1)
    box.controls["tau"].value = 1.0
    assert box.last["kwargs"] == {"tau": 1.0} and box.effect["tau"] == eff["tau"]


def test_evaluation_figures_draw_what_they_are_given():
    """Notebook 07's figures (course/nb07_evaluation.py), called directly with small made-up inputs."""
    import matplotlib.pyplot as plt
    per = {"s1": 0.02, "s2": -0.01, "s3": 0.04}
    comps = [{"a": "A", "b": "B", "auc": {"per_sequence": per, "ci": (-0.01, 0.03), "diff": 0.0167}}]
    fig = W.per_sequence_figure(comps)
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.collections[0].get_offsets()[:, 0], [2.0, -1.0, 4.0])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["s1", "s2", "s3", "mean, 95% CI"]
    runs = {"trackers": {"x": {"seeds": [0, 1], "sequences": {"v": {"seeds": {"0": {"auc": 0.4}, "1": {"auc": 0.6}}}}},
                         "c": {"seeds": [0], "sequences": {"v": {"seeds": {"0": {"auc": 0.5}}}}}}}
    fig2 = W.seeds_per_video_figure(runs, ["x", "c"], ["v"])
    ys = sorted(float(y) for line in fig2.axes[0].lines for y in line.get_ydata())
    assert ys == pytest.approx([0.4, 0.5, 0.5, 0.5, 0.5, 0.5, 0.6])  # x: 2 dots + its mean bar; c: 1 dot + bar
    mk = lambda k, m: {"k": k, "means": np.linspace(-m, m, 50), "ci": (-m, m), "mean": 0.0, "width": 2 * m}
    small, full = mk(2, 0.05), mk(3, 0.02)
    bins = np.linspace(-5, 5, 11)
    fig3 = W.bootstrap_figure(small, full, bins, "A", "B")
    assert sum(p.get_height() for p in fig3.axes[0].patches if hasattr(p, "get_height")) > 0
    fig4 = W.ci_width_figure({"B": {2: np.array([0.1, 0.2]), 3: np.array([0.05])}}, {"B": {1: 0.06, 2: 0.05}},
                             {"B": 0.001}, small, full, bins, "A", "B")
    assert len(fig4.axes) == 3 and all(a.has_data() for a in fig4.axes)
    for f in (fig, fig2, fig3, fig4):
        plt.close(f)


def test_online_loop_figure_marks_the_updates():
    import matplotlib.pyplot as plt
    log = {"frame": [1, 2, 3, 4], "score": [1.0, -0.5, 0.3, 2.0], "success": [True, False, True, True],
           "update": [None, "short", None, "long"], "iou": [0.9, 0.4, 0.6, 0.8]}
    fig = W.online_loop_figure(log, 0.0, title="t")
    ax1, ax2 = fig.axes
    marks = {ln.get_label(): list(ln.get_xdata()) for ln in ax1.lines if "update" in ln.get_label()}
    assert marks == {"long-term update": [4], "short-term update": [2]}
    assert len(ax1.patches) == 1 and list(ax2.lines[0].get_ydata()) == log["iou"]   # one failed frame shaded
    plt.close(fig)


def test_architecture_and_algorithm1_come_from_the_package():
    import matplotlib.pyplot as plt
    from dataclasses import replace
    from metartt_lite.train.meta import MetaConfig
    from metartt_lite.model import build_net
    net = build_net(None, torch.device("cpu"))                     # the real trunk: the figure runs it
    rows = W.network_shapes(net)
    assert [r["name"] for r in rows] == ["search crop", "trunk", "shared", "RoIAlign", "fc4", "fc5", "fc6"]
    widths = surgery.layer_widths(net)
    by = {r["name"]: r for r in rows}
    assert all(by[l]["shape"][0] == w and by[l]["pruned"] for l, w in widths.items())
    assert by["fc6"]["shape"] == (2,) and by["RoIAlign"]["shape"] == (widths["shared"] * net.cfg.roi_size ** 2,)
    assert by["fc4"]["params"] == sum(v.numel() for k, v in net.head_params().items() if k.startswith("fc4"))
    fig = W.architecture_figure(net)
    assert len(fig.axes[0].patches) == len(rows)
    plt.close(fig)
    md = W.algorithm1_markdown(replace(MetaConfig(), k_init=3, k_on=2, episodes=10, meta_batch=4))
    assert "3 steps of Eq. 2" in md and "2 steps of Eq. 3" in md and "(3 meta-steps)" in md
    assert md.count("\n| ") == 8                                     # eight lines of Algorithm 1


def test_inner_loop_figures_plot_the_curves():
    import matplotlib.pyplot as plt
    curves = {"a": (np.array([3.0, 2.0, 1.0]), np.array([4.0, 3.0, 2.5])),
              "b (ref)": (np.array([3.0, 2.5, 2.0]), np.array([4.0, 3.5, 3.0]))}
    fig = W.inner_loop_figure(curves, 1, 1, 9)
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), [4.0, 3.0, 2.5])
    assert "frame 9" in fig.axes[1].get_title()
    fig2 = W.curve_differences_figure(curves, "b (ref)", 1, names=["a"])
    np.testing.assert_allclose(fig2.axes[0].lines[0].get_ydata(), [0.0, -0.5, -0.5])
    plt.close(fig); plt.close(fig2)


def test_decisions_at_recomputes_one_tau(net):
    import matplotlib.pyplot as plt
    widths = surgery.layer_widths(net)
    betas = {l: torch.linspace(0.05, 0.95, w) for l, w in widths.items()}
    x = torch.rand(30, widths["shared"] * 9, generator=torch.Generator().manual_seed(3))
    boxes = np.column_stack([np.arange(30.0), np.zeros(30), np.full(30, 10.0), np.full(30, 10.0)])
    eff = W.mask_threshold_effect(net, x, None, betas, taus=[0.0, 0.5], min_keep=1, boxes=boxes, gt=boxes[3])
    for i, tau in enumerate([0.0, 0.5]):
        dec = W.decisions_at(net, x, None, betas, tau, min_keep=1)
        assert int(dec["masked_target"].sum()) == eff["n_target"][i] and int(dec["full_target"].sum()) == eff["n_target_full"]
        assert float(bx.iou(boxes[dec["best_masked"]], boxes[3])) == pytest.approx(eff["best_iou"][i])
        assert dec["mean_prune_rate"] == pytest.approx(eff["mean_prune_rate"][i])
    fig = W.candidates_figure(np.zeros((20, 50, 3), np.uint8), boxes, boxes[3], dec)
    assert len(fig.axes) == 2 and len(fig.axes[0].patches) == len(boxes) + 2
    plt.close(fig)


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
    line = fig.layout.shapes[0]                                # the decision line f1 = f0
    assert (line.x0, line.y0, line.x1, line.y1) == (-1.4, -1.4, 1.4, 1.4)
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
    assert player.counter.value == f"frame 5 / {len(video) - 1}"
    # the play / pause toggle drives Play.playing in the browser (jslink), and follows it in the kernel
    assert player.pause_link.source == (player.pause, "value") and player.pause_link.target == (player.play, "playing")
    player.play.playing = True
    assert player.pause.value is True and player.pause.icon == "pause"
    player.play.playing = False
    assert player.pause.value is False and player.slider.value == 5
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



def test_upload_widget_box_drawn_on_the_first_frame(video):
    """The uploaded video's first frame goes into the box-drawing widget; a box drawn there becomes the
    target text (jupyter-bbox-widget; without it the box is typed)."""
    pytest.importorskip("jupyter_bbox_widget")
    import base64
    import datetime
    import cv2
    ui = W.upload_widget(tracker="csrt")
    assert ui.picker is not None and ui.picker.image == "" and ui.picker.layout.display == "none"
    data = W.encode_video(video.frames)
    ui.upload.value = ({"name": "clip.avi", "type": "video/x-msvideo", "size": len(data),
                        "last_modified": datetime.datetime.now(datetime.timezone.utc), "content": memoryview(data)},)
    assert ui.picker.layout.display is None                  # shown once it holds the first frame
    head, b64 = ui.picker.image.split(",", 1)
    assert head == "data:image/png;base64"
    img = cv2.cvtColor(cv2.imdecode(np.frombuffer(base64.b64decode(b64), np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(img, W.first_frame(data, "clip.avi"))
    assert np.abs(img.astype(int) - video.frames[0]).mean() < 8        # MJPG's loss, not another frame
    x, y, w, h = video.groundtruth[0]
    ui.picker.bboxes = [{"x": float(x), "y": float(y), "width": float(w), "height": float(h), "label": "target"}]
    assert ui.box_text.value == f"{x:.0f},{y:.0f},{w:.0f},{h:.0f}"
    ui.tracker.value = "csrt"
    ui.run()
    assert ui.last["result"]["boxes"].shape == (len(video), 4)
    assert W.bbox_text([]) == "" and W.bbox_text([{"x": 5, "y": 6, "width": 0, "height": 0, "label": "target"}]) == ""


def test_sequence_view_feeds_run_sequence(video):
    from metartt_lite.evaluation.ope import run_sequence
    from metartt_lite.track.registry import make_tracker
    r = run_sequence(make_tracker("csrt"), W.as_sequence(video, n_frames=5))
    assert r["boxes"].shape == (5, 4)


# ------------------------------------------------------------------------------ (c) real browser
# Every notebook runs in JupyterLab in headless Chromium, as a learner would: one shared server, one
# browser, the notebooks one after the other (one kernel at a time, shut down after each). After "Run All
# Cells" each test drives one widget of its notebook (a slider, a dropdown, Play, Track) and checks that
# the widget's output changed and that no rendered <img> in the notebook is blank: every image is decoded
# in the page and must have a pixel variance above BLANK_VARIANCE and a height of at least MIN_IMG_HEIGHT.
# A screenshot per notebook (after the widget moved) lands in outputs/screenshots/.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOTS = REPO / "outputs" / "screenshots"
BLANK_VARIANCE = 25.0     # gray-level variance (0..255 scale); a white or single-colour PNG has ~0
MIN_IMG_HEIGHT = 40       # px; a "one-frame sliver" is thinner than any figure the notebooks draw

# the images of an element: natural size and gray-level variance, computed in the page (the PNGs of
# matplotlib figures are data: URLs, an ipywidgets Image a blob: URL; both are same-origin, so readable)
_IMG_STATS_JS = """async (root) => {
  const out = [];
  for (const img of Array.from(root.querySelectorAll('img'))) {
    if (!img.getAttribute('src')) continue;   // not a picture (e.g. a placeholder of plotly's)
    if (img.getClientRects().length === 0) continue;   // not rendered (display: none): nothing to see
    img.loading = 'eager';      // JupyterLab may lazy-load images far off screen
    try { await img.decode(); } catch (e) {}
    const w = img.naturalWidth, h = img.naturalHeight;
    let v = 0;
    if (w && h) {
      const c = document.createElement('canvas'); c.width = w; c.height = h;
      const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
      const d = ctx.getImageData(0, 0, w, h).data;
      let s = 0, s2 = 0, n = 0;
      for (let i = 0; i < d.length; i += 4) { const g = (d[i] + d[i + 1] + d[i + 2]) / 3; s += g; s2 += g * g; n++; }
      const m = s / n; v = s2 / n - m * m;
    }
    let hsh = 0; const src = img.src || '';
    for (let i = 0; i < src.length; i += 7) hsh = (hsh * 31 + src.charCodeAt(i)) | 0;
    out.push({w: w, h: h, variance: v, key: src.length + ':' + hsh, src: src.slice(0, 60)});
  }
  return out;
}"""


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


class Lab:
    """One JupyterLab server and one headless Chromium, shared by the per-notebook browser tests."""

    def __init__(self, tmp: Path):
        from playwright.sync_api import sync_playwright
        self.tmp = tmp
        settings = tmp / "lab-settings"
        # settings for this run only: no autosave (running a notebook must never write outputs into the
        # repository's copy), every cell rendered (no windowing), no news, a throw-away workspace
        for ext, name, text in [("docmanager-extension", "plugin", '{"autosave": false}'),
                                ("notebook-extension", "tracker", '{"windowingMode": "none"}'),
                                ("apputils-extension", "notification", '{"fetchNews": "false", "checkForUpdates": false}')]:
            (settings / "@jupyterlab" / ext).mkdir(parents=True, exist_ok=True)
            (settings / "@jupyterlab" / ext / f"{name}.jupyterlab-settings").write_text(text)
        # the kernels import this working tree's package (whatever else is installed), in fast mode
        pythonpath = os.pathsep.join([str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
        env = dict(os.environ, METARTT_FAST="1", PYTHONPATH=pythonpath, JUPYTERLAB_SETTINGS_DIR=str(settings),
                   JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"))
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.log = open(tmp / "jupyterlab.log", "w")
        self.checkpoints = REPO / "notebooks" / ".ipynb_checkpoints"   # JupyterLab makes it on open
        self.had_checkpoints = self.checkpoints.exists()
        self.proc = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={self.port}",
                                      f"--ServerApp.token={self.token}", "--ServerApp.ip=127.0.0.1", "--allow-root",
                                      f"--ServerApp.root_dir={REPO}"], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.pw = self.browser = None
        try:
            _wait_port(self.port, self.proc, timeout=120)
            self.pw = sync_playwright().start()
            # (Playwright's launch gives Chromium a fresh temporary --user-data-dir of its own)
            self.browser = self.pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        except BaseException:
            self.close()
            raise

    def api(self, method: str, path: str) -> Any:
        import urllib.request
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}?token={self.token}", method=method)
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        for k in self.api("GET", "/api/kernels"):
            self.api("DELETE", f"/api/kernels/{k['id']}")

    def close(self) -> None:
        try:
            if self.browser is not None:
                self.browser.close()
            if self.pw is not None:
                self.pw.stop()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.log.close()
            if not self.had_checkpoints:
                shutil.rmtree(self.checkpoints, ignore_errors=True)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing (apt-get install -y chromium; scripts/install.sh does it as root)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright; never 'playwright install')")
    lab = Lab(tmp_path_factory.mktemp("lab"))
    yield lab
    lab.close()


def _cell(page, source_snippet: str):
    """The code cell whose source contains ``source_snippet``."""
    cells = page.locator(".jp-CodeCell").filter(has=page.locator(".jp-InputArea", has_text=source_snippet))
    assert cells.count() == 1, f"{cells.count()} cells contain {source_snippet!r}"
    return cells.first


def _img_stats(loc) -> list[dict]:
    return loc.evaluate(_IMG_STATS_JS)


def _wait_images_change(loc, before: list[dict], timeout_s: float = 60.0, n_min: int = 1) -> list[dict]:
    """Poll until the set of images under ``loc`` differs from ``before`` and has at least ``n_min``."""
    t0 = time.time()
    keys0 = [b["key"] for b in before]
    while time.time() - t0 < timeout_s:
        now = _img_stats(loc)
        if len(now) >= n_min and [b["key"] for b in now] != keys0:
            return _settled_images(loc, deadline=t0 + timeout_s)
        time.sleep(0.25)
    raise AssertionError(f"the widget's images did not change within {timeout_s:.0f} s")


def _settled_images(loc, deadline: float) -> list[dict]:
    """Read the images until two reads in a row agree and every image has decoded, or ``deadline`` passes.

    A widget that swaps its picture (a playing video, an Output filling in) revokes the old blob URL; an image
    read in that instant decodes to 0x0 though the next frame is fine (CI, stop 19). A picture that stays 0x0 past
    the deadline is returned as it is, so the caller's blank check still fails on it.
    """
    prev = _img_stats(loc)
    while time.time() < deadline:
        time.sleep(0.3)
        now = _img_stats(loc)
        decoded = all(s["w"] > 0 and s["h"] > 0 for s in now)
        if decoded and [s["key"] for s in now] == [s["key"] for s in prev]:
            return now
        prev = now
    return prev


def _assert_not_blank(stats: list[dict], where: str) -> None:
    for i, s in enumerate(stats):
        assert s["h"] >= MIN_IMG_HEIGHT and s["w"] >= MIN_IMG_HEIGHT, f"{where}: image {i} is {s['w']}x{s['h']} px ({s['src']})"
        assert s["variance"] > BLANK_VARIANCE, f"{where}: image {i} is blank (pixel variance {s['variance']:.1f})"


def _move_slider(cell, index: int = 0, key: str = "ArrowRight", times: int = 1) -> None:
    handle = cell.locator(".widget-slider .noUi-handle").nth(index)
    handle.scroll_into_view_if_needed()
    handle.focus()
    for _ in range(times):
        handle.press(key)


def _plotly_title(cell) -> str:
    return cell.locator(".jp-OutputArea .js-plotly-plot .gtitle").first.text_content()   # SVG text


def _wait_plotly_change(cell, before: str, timeout_s: float = 60.0) -> str:
    t0 = time.time()
    while time.time() - t0 < timeout_s:
        try:
            now = _plotly_title(cell)
        except Exception:
            now = before
        if now != before:
            # plotly redraws the new figure in place: wait (bounded) until it is laid out again
            plot = cell.locator(".jp-OutputArea .js-plotly-plot").first
            box, t1 = None, time.time()
            while time.time() - t1 < 30:
                try:
                    box = plot.bounding_box(timeout=5_000)
                except Exception:
                    box = None
                if box is not None and box["height"] > 150:
                    break
                time.sleep(0.25)
            assert box is not None and box["height"] > 150, f"the redrawn plotly figure is not laid out: {box}"
            assert plot.locator(".scatterlayer .trace, .heatmaplayer .hm, .imagelayer image").count() > 0, \
                "the plotly figure has no trace"
            return now
        time.sleep(0.25)
    raise AssertionError(f"the plotly figure did not change within {timeout_s:.0f} s (title {before!r})")


# one driver per notebook: moves a widget, checks that its output changed, returns what it did
def _drive_01(page, tmp):
    cell = _cell(page, "episode_widget = W.episode_widget")
    out = cell.locator(".jp-Cell-outputArea")
    before = _img_stats(out)
    assert len(before) == 2, f"episode widget shows {len(before)} images before the move"
    _assert_not_blank(before, "01 episode widget, first view")
    _move_slider(cell, 0)
    after = _wait_images_change(out, before, n_min=2)
    _assert_not_blank(after, "01 episode widget after the episode slider moved")
    _move_slider(cell, 1)                       # seed slider: a second redraw
    after2 = _wait_images_change(out, after, n_min=2)
    _assert_not_blank(after2, "01 episode widget after the seed slider moved")
    return "episode slider one step, then seed slider one step (matplotlib overview + patch grid in an Output)"


def _drive_02(page, tmp):
    cell = _cell(page, "lr_widget = W.learning_rate_widget")
    before = _plotly_title(cell)
    cell.locator(".widget-dropdown select").first.select_option(label="A_on (online, Eq. 3)")
    after = _wait_plotly_change(cell, before)
    assert "A_on" in after, after
    _move_slider(cell, 0)
    _wait_plotly_change(cell, after)
    return "phase dropdown A_init→A_on, then step slider 1→2 (plotly)"


def _drive_03(page, tmp):
    cell = _cell(page, "triplet = W.triplet_widget")
    before = _plotly_title(cell)
    _move_slider(cell, 0)                       # γ 0.5 → 0.75: trains a head
    after = _wait_plotly_change(cell, before, timeout_s=90)
    assert "γ=0.75" in after, after
    return "γ slider 0.5→0.75 (trains a head; plotly unit circle)"


def _drive_04(page, tmp):
    cell = _cell(page, "fd_widget = W.figure_widget")
    out = cell.locator(".jp-Cell-outputArea")
    before = _img_stats(out)
    assert len(before) == 1
    _assert_not_blank(before, "04 ε widget, first view")
    _move_slider(cell, 0, times=2)
    after = _wait_images_change(out, before)
    _assert_not_blank(after, "04 ε widget after the slider moved")
    return "finite-difference ε slider, two steps (matplotlib in an Output)"


def _drive_05(page, tmp):
    cell = _cell(page, "mask_widget = W.mask_threshold_widget")
    before = _plotly_title(cell)
    _move_slider(cell, 0, times=2)
    _wait_plotly_change(cell, before)
    return "τ slider two steps up (plotly)"


def _drive_06(page, tmp):
    cell = _cell(page, "player = W.tracking_player")
    out = cell.locator(".jp-Cell-outputArea")
    before = _img_stats(out)
    assert len(before) == 1
    _assert_not_blank(before, "06 player, frame 0")
    toggle = cell.locator(".widget-toggle-button", has_text="play / pause").first
    toggle.click()                                          # play
    page.wait_for_timeout(1_200)                            # a few frames at 150 ms each
    toggle.click()                                          # pause, in the browser: the slider stops at once
    after = _settled_images(out, deadline=time.time() + 30)
    assert [a["key"] for a in after] != [b["key"] for b in before], "06 player: Play did not move off frame 0"
    counter = cell.locator(".frame-counter").first
    paused_at = counter.inner_text()
    page.wait_for_timeout(2_000)                            # several play intervals: a playing counter moves
    i, last = (int(v) for v in paused_at.split()[1::2])     # "frame i / last"
    assert 0 < i < last, f"06 player: pause should stop mid-video, stopped at {paused_at}"
    assert counter.inner_text() == paused_at, f"06 player: the frame counter moved after pause ({paused_at} -> {counter.inner_text()})"
    assert [a["key"] for a in _img_stats(out)] == [a["key"] for a in after], "06 player: the image moved after pause"
    _assert_not_blank(after, "06 player after Play")
    # Track an uploaded video twice (the strip used to be blank the first time, a sliver the second)
    from metartt_lite.data.samples import make_sample
    v = make_sample("translation", seed=3, n_frames=12, size=(200, 150))
    clip = tmp / "clip.avi"
    clip.write_bytes(W.encode_video(v.frames))
    up = _cell(page, "upload = W.upload_widget")
    with page.expect_file_chooser() as chooser:       # the FileUpload button opens the system's file dialog
        up.locator(".widget-upload").first.click()
    chooser.value.set_files(str(clip))
    picker = up.locator("img").first                   # the first frame appears in the box-drawing widget
    picker.wait_for(state="visible", timeout=30_000)
    # draw the target's box on the first frame with the mouse; the text field must follow
    x, y, w, h = v.groundtruth[0]
    picker.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    bb = picker.bounding_box()
    k = bb["width"] / v.frames[0].shape[1]                  # displayed px per image px
    page.mouse.move(bb["x"] + x * k, bb["y"] + y * k)
    page.mouse.down()
    page.mouse.move(bb["x"] + (x + w / 2) * k, bb["y"] + (y + h / 2) * k, steps=5)
    page.mouse.move(bb["x"] + (x + w) * k, bb["y"] + (y + h) * k, steps=5)
    page.mouse.up()
    text = up.locator(".widget-text input").first
    t0 = time.time()
    while time.time() - t0 < 20:       # the box grows while the kernel catches up with the drag
        drawn = [float(t) for t in text.input_value().split(",")] if text.input_value() else []
        if drawn and abs(drawn[2] - w) <= 3 + 2 / k and abs(drawn[3] - h) <= 3 + 2 / k:
            break
        time.sleep(0.25)
    np.testing.assert_allclose(drawn, [x, y, w, h], atol=3 + 2 / k)      # the drawn box, in image pixels
    up.locator(".widget-dropdown select").first.select_option("csrt")
    out = up.locator(".jp-Cell-outputArea")
    prev = _img_stats(out)
    for attempt in (1, 2):
        up.locator("button", has_text="Track").click()
        prev = _wait_images_change(out, prev, timeout_s=60, n_min=2)
        page.wait_for_timeout(500)
        prev = _img_stats(out)
        _assert_not_blank(prev, f"06 upload widget after Track #{attempt}")
    return "Play on the frame player; upload, draw the box on frame 0, Track (csrt) twice (ipywidgets Image + matplotlib strip)"


def _drive_07(page, tmp):
    cell = _cell(page, "boot_widget = W.figure_widget")
    out = cell.locator(".jp-Cell-outputArea")
    before = _img_stats(out)
    assert len(before) == 1
    _assert_not_blank(before, "07 bootstrap widget, first view")
    _move_slider(cell, 0)
    after = _wait_images_change(out, before)
    _assert_not_blank(after, "07 bootstrap widget after the slider moved")
    return "sequences-k slider one step (matplotlib in an Output)"


WIDGET_CELL = {"01_episodes": "episode_widget = W.episode_widget", "02_inner_loop": "lr_widget = W.learning_rate_widget",
               "03_triplet_loss": "triplet = W.triplet_widget", "04_meta_gradients": "fd_widget = W.figure_widget",
               "05_pruning_masks": "mask_widget = W.mask_threshold_widget", "06_tracking": "player = W.tracking_player",
               "07_evaluation": "boot_widget = W.figure_widget"}
DRIVERS = {"01_episodes": _drive_01, "02_inner_loop": _drive_02, "03_triplet_loss": _drive_03,
           "04_meta_gradients": _drive_04, "05_pruning_masks": _drive_05, "06_tracking": _drive_06,
           "07_evaluation": _drive_07}


def test_every_notebook_has_a_browser_driver():
    assert sorted(DRIVERS) == EXPECTED


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_in_chromium(lab, name, tmp_path):
    """Run All Cells in JupyterLab, drive one widget, no blank image, no error output; a screenshot."""
    nb_path = REPO / "notebooks" / f"{name}.ipynb"
    before_bytes = nb_path.read_bytes()
    t0 = time.time()
    page = lab.browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    try:
        # a workspace of its own: JupyterLab must not reopen (and start a kernel for) the previous notebook
        page.goto(f"http://127.0.0.1:{lab.port}/lab/workspaces/nb-{name}/tree/notebooks/{name}.ipynb?token={lab.token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        try:  # "Select Kernel" dialog on first open
            page.locator(".jp-Dialog .jp-mod-accept").click(timeout=5_000)
        except Exception:
            pass
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000, state="attached")
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu .lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).first.click()
        # the last cell's *output* (its source holds the same words) says the whole notebook ran
        page.locator(".jp-OutputArea-output", has_text="notebook ran in").first.wait_for(timeout=180_000)
        t_run = time.time() - t0
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                              has_text=re.compile("Error|Traceback"))
        assert errors.count() == 0, errors.first.inner_text()
        assert page.locator(".jp-OutputArea-output.jp-OutputArea-executeResult, .jp-OutputArea-output")\
            .filter(has_text="Traceback").count() == 0
        _assert_not_blank(_img_stats(page.locator(".jp-Notebook")), f"{name} after Run All")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        widget_cell = _cell(page, WIDGET_CELL[name])
        widget_cell.scroll_into_view_if_needed()
        widget_cell.screenshot(path=str(SCREENSHOTS / f"{name}_widget_before.png"))
        did = DRIVERS[name](page, tmp_path)
        page.wait_for_timeout(500)
        widget_cell.screenshot(path=str(SCREENSHOTS / f"{name}_widget_after.png"))
        _assert_not_blank(_img_stats(page.locator(".jp-Notebook")), f"{name} after driving its widget")
        assert errors.count() == 0, errors.first.inner_text()
        page.wait_for_timeout(800)   # let plotly finish its transition before the picture
        shot = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(shot), full_page=False)
        assert shot.stat().st_size > 10_000
        print(f"\n{name}: ran all cells in {t_run:.0f} s; widget: {did}; total {time.time() - t0:.0f} s; {shot}")
    except BaseException:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        try:   # what the page showed when it failed, for the CI log's reader
            page.screenshot(path=str(SCREENSHOTS / f"{name}_FAILED.png"), full_page=True)
        except Exception:
            pass
        raise
    finally:
        page.close()
        lab.shutdown_kernels()       # one kernel at a time
    assert nb_path.read_bytes() == before_bytes, "running the notebook in JupyterLab modified the stored notebook"

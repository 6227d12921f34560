"""The ``success`` flag (issue 27, item 2) and why ``metartt-prune``'s raw score is almost always ≤ 0
(issue 25, item 6).

Explanation, checked here: the pruned tracker adapts the *full* head on the first frame (θ_init^K), then ψ's
masks remove channels (Eq. 10) and tracking goes on with the kept part of θ_init^K, without a step that
re-adapts it. The removed units carried part of the target evidence, so the target logit drops (about
−1.5 on the samples) and RT-MDNet's test ``score > 0`` fails on frames tracked well. It is not a slicing
defect: the physically pruned network scores exactly what the masked full network (Eq. 10, hard masks)
scores; and K_on update steps on the pruned network win most of the drop back (they approach 0 from
below, which is why the score during tracking sits just under 0). The user's flag
``tracker.success`` therefore compares the score with the threshold moved by the shift measured on the
first frame; the tracking procedure itself is unchanged (tests/test_regression_boxes.py pins its boxes).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from metartt_lite.core import boxes as bx
from metartt_lite.data.samples import make_target_leaves
from metartt_lite.model import surgery
from metartt_lite.model.net import make_crop
from metartt_lite.track.registry import make_tracker

CPU = torch.device("cpu")
GONE = 35


@pytest.fixture(scope="module")
def video():
    return make_target_leaves("translation", seed=0, n_frames=60, gone_from=GONE)


def test_target_leaves_sample(video):
    assert len(video) == 60 and np.isnan(video.groundtruth[GONE:]).all()
    assert np.isfinite(video.groundtruth[:GONE]).all() and video.info["present"].sum() == GONE
    # only the target is gone: far from its box the frame is unchanged
    full = make_target_leaves("translation", seed=0, n_frames=60, gone_from=60)
    f_gone, f_full = video.frames[GONE + 5].astype(int), full.frames[GONE + 5].astype(int)
    x, y, w, h = full.groundtruth[GONE + 5].astype(int)
    diff = np.abs(f_gone - f_full).max(axis=-1)
    assert diff[y:y + h, x:x + w].mean() > 10
    diff[max(0, y - 5):y + h + 5, max(0, x - 5):x + w + 5] = 0
    assert diff.max() == 0


@pytest.mark.parametrize("name", ["metartt-prune", "metartt", "csrt", "nanotrack", "nanotrack-torch", "metartt-nano"])
def test_success_means_success(video, name):
    """Mostly true while the IoU is high, mostly false after the target left; for every tracker."""
    t = make_tracker(name, seed=0, dev=CPU)
    t.init(video.frames[0], video.init_box)
    ok, ious, raw = [], [], []
    for i in range(1, len(video)):
        box, score = t.update(video.frames[i])
        ok.append(t.success)
        raw.append(score > 0)
        ious.append(bx.iou(box, video.groundtruth[i]) if i < GONE else np.nan)
    ok, ious = np.array(ok, dtype=bool), np.array(ious)
    high = ious[:GONE - 1] >= 0.5
    assert high.sum() >= 25, f"{name} lost the target too early: IoU {ious[:GONE - 1].round(2)}"
    assert ok[:GONE - 1][high].mean() >= 0.9, (name, ok[:GONE - 1])
    assert ok[GONE - 1:].mean() <= 0.1, (name, ok[GONE - 1:])
    if name == "metartt-prune":  # what the README's old `score > 0` told the user: never a success
        assert np.mean(np.array(raw[:GONE - 1])[high]) <= 0.1
        assert t.success_threshold < -0.5 and t.success_threshold == pytest.approx(t.score_shift)


def test_pruned_score_drop_is_the_masks_not_a_defect(video):
    t = make_tracker("metartt-prune", seed=0, dev=CPU)
    frame, box = video.frames[0], video.init_box
    t.init(frame, box)
    cand = bx.SampleGenerator("gaussian", video.frame_size, 0.6, 1.05, valid=True)(box, 256, np.random.default_rng(0))
    pos = bx.iou(cand, box) > 0.7
    crop = make_crop(box, t.full_net.cfg)

    def scores(net, theta):
        fmap = t._feature_map(frame, crop) if net is t.net else None
        with torch.no_grad():
            if fmap is None:
                from metartt_lite.model.net import crop_image, to_tensor
                fmap = net.shared_forward(net.trunk(to_tensor(crop_image(frame, crop), CPU)))
            x = net.roi_features(fmap, crop.to_crop(cand))
            net.head.eval()
            return x, net.head_forward(x, theta)[:, 1]

    x_full, s_full = scores(t.full_net, t.theta_init)
    _, s_pruned = scores(t.net, t.params)
    # 1. the full network, adapted on this frame, scores the target's candidates above 0; the pruned one below
    assert s_full[pos].mean() > 0 > s_pruned[pos].mean()
    assert float(s_pruned[pos].mean() - s_full[pos].mean()) < -0.5
    # 2. no slicing defect: the pruned network equals the masked full network (Eq. 10 with hard masks)
    masks = surgery.hard_masks(t.keep, surgery.layer_widths(t.full_net), x_full)
    with torch.no_grad():
        masked = surgery.masked_scores(t.full_net, x_full, t.theta_init, masks)[:, 1]
    torch.testing.assert_close(s_pruned, masked, atol=1e-4, rtol=1e-4)
    # 3. re-adapting the kept channels (K_on steps on the first frame's samples, as a short-term update)
    #    wins back most of the drop, but approaches 0 from below: the tracker's updates after each
    #    "failed" frame keep its score just under 0 (-0.1 to -0.04 while it tracks at IoU 0.85)
    drop = float(s_full[pos].mean() - s_pruned[pos].mean())
    t._train(torch.cat(list(t.pos_mem)), torch.cat(list(t.neg_mem)), t.cfg.k_on, "on")
    _, s_again = scores(t.net, t.params)
    assert float(s_again[pos].mean() - s_pruned[pos].mean()) > 0.5 * drop
    assert -0.5 < float(s_again[pos].mean()) < 0.1

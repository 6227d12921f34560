"""The compiled RoIAlign + max-pool kernel against its oracle: torchvision's roi_align(aligned=True,
sampling_ratio=-1) followed by max_pool2d, bit for bit (torch.equal), on boxes inside, across and
outside the map, tiny and huge ones (adaptive sampling grids 1..n), several images and channel counts."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torchvision.ops import roi_align

from metartt_lite.core.config import ModelConfig
from metartt_lite.model.net import TrackerNet
from metartt_lite.model.roi_kernel import roi_align_maxpool, roi_kernel_applies

from meta_fixtures import StubTrunk


def _oracle(fmap, rois, presample, pool, scale):
    r = roi_align(fmap, rois, output_size=presample, spatial_scale=scale, sampling_ratio=-1, aligned=True)
    return F.max_pool2d(r, pool) if pool > 1 else r


def _rois(rng, n, batch, side):
    cx, cy = rng.uniform(-0.3, 1.3, (2, n)) * side
    w = side * np.exp(rng.uniform(np.log(0.005), np.log(2.5), n))
    h = w * np.exp(rng.uniform(-1.2, 1.2, n))
    b = rng.integers(0, batch, n)
    return torch.tensor(np.stack([b, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1), dtype=torch.float32)


@pytest.mark.parametrize("channels,batch,hw,presample,pool,scale", [
    (128, 1, (16, 16), 6, 2, 1 / 16),   # the tracker's shape
    (37, 3, (16, 16), 6, 2, 1 / 16),    # pruned channel count, several images
    (5, 2, (9, 13), 7, 1, 1 / 8),       # non-square map, no pooling, odd presample
    (8, 1, (20, 20), 6, 3, 0.1),        # 3x3 pooling, a non-power-of-two scale
])
def test_kernel_is_bit_identical_to_torchvision(channels, batch, hw, presample, pool, scale):
    rng = np.random.default_rng(channels)
    fmap = torch.randn(batch, channels, *hw)
    side = max(hw) / scale
    rois = _rois(rng, 300, batch, side)
    rois[:4, 1:] = torch.tensor([[-side, -side, -side / 2, -side / 2],      # wholly outside (left/top)
                                 [2 * side, 2 * side, 3 * side, 3 * side],  # wholly outside (right/bottom)
                                 [0.0, 0.0, side, side],                     # the whole map
                                 [5.0, 5.0, 5.0, 5.0]])                      # zero size
    want = _oracle(fmap, rois, presample, pool, scale)
    got = roi_align_maxpool(fmap, rois, presample, pool, scale)
    assert got.shape == want.shape
    assert torch.equal(got, want), float((got - want).abs().max())


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 40), st.integers(2, 24), st.integers(2, 24))
def test_kernel_matches_torchvision_on_random_maps(seed, channels, h, w):
    rng = np.random.default_rng(seed)
    fmap = torch.from_numpy(rng.standard_normal((2, channels, h, w)).astype(np.float32))
    rois = _rois(rng, 25, 2, 16.0 * max(h, w))
    assert torch.equal(roi_align_maxpool(fmap, rois, 6, 2, 1 / 16), _oracle(fmap, rois, 6, 2, 1 / 16))


def test_roi_features_takes_the_kernel_without_autograd_and_torchvision_with_it(monkeypatch):
    """TrackerNet.roi_features: the same numbers on both paths; gradients still reach the feature map."""
    torch.manual_seed(0)
    net = TrackerNet(ModelConfig(shared_channels=16), trunk=StubTrunk()).eval()
    fmap = torch.randn(1, 16, 16, 16)
    boxes = np.array([[10, 20, 90, 70.0], [100, 40, 30, 50], [-40, 200, 120, 90]])
    calls = []
    import metartt_lite.model.net as netmod
    real = netmod.roi_align_maxpool
    monkeypatch.setattr(netmod, "roi_align_maxpool", lambda *a: calls.append(1) or real(*a))
    with torch.no_grad():
        fast = net.roi_features(fmap, boxes)
    assert calls == [1]
    leaf = fmap.clone().requires_grad_(True)
    slow = net.roi_features(leaf, boxes)
    assert calls == [1]  # the differentiable path did not call the kernel
    assert torch.equal(fast, slow.detach())
    slow.sum().backward()
    assert leaf.grad is not None and leaf.grad.abs().sum() > 0


def test_applies_and_errors(monkeypatch):
    f = torch.zeros(1, 4, 8, 8)
    assert roi_kernel_applies(f)
    monkeypatch.setenv("METARTT_ROI_KERNEL", "0")  # the switch for side-by-side timing
    assert not roi_kernel_applies(f)
    monkeypatch.delenv("METARTT_ROI_KERNEL")
    assert not roi_kernel_applies(f.double())
    assert not roi_kernel_applies(f.clone().requires_grad_(True))
    with torch.no_grad():
        assert roi_kernel_applies(f.clone().requires_grad_(True))
    ok = torch.tensor([[0, 1.0, 1, 20, 20]])
    with pytest.raises(ValueError, match="non-finite"):
        roi_align_maxpool(f, torch.tensor([[0, float("nan"), 1, 20, 20]]), 6, 2, 1 / 16)
    with pytest.raises(ValueError, match="batch index"):
        roi_align_maxpool(f, torch.tensor([[1, 1.0, 1, 20, 20]]), 6, 2, 1 / 16)
    with pytest.raises(ValueError, match="multiple"):
        roi_align_maxpool(f, ok, 7, 2, 1 / 16)
    with pytest.raises(ValueError, match=r"\(N, 5\)"):
        roi_align_maxpool(f, ok[:, 1:], 6, 2, 1 / 16)
    with pytest.raises(ValueError, match="float32"):
        roi_align_maxpool(f.double(), ok, 6, 2, 1 / 16)
    assert roi_align_maxpool(f, ok[:0], 6, 2, 1 / 16).shape == (0, 4, 3, 3)


def test_building_a_cpu_tracker_compiles_the_kernel_first(monkeypatch):
    """The kernel's one-off compile (or disk-cache load) happens when a tracker is built, so it never lands
    in the tracker's timed first frame (init time): after construction the kernel is compiled."""
    from metartt_lite.model import roi_kernel
    from metartt_lite.track.rtmdnet import RTMDNetTracker
    calls = []
    monkeypatch.setattr(roi_kernel, "_WARM", False)
    real = roi_kernel.roi_align_maxpool
    monkeypatch.setattr(roi_kernel, "roi_align_maxpool", lambda *a: calls.append(a) or real(*a))
    torch.manual_seed(0)
    RTMDNetTracker(TrackerNet(ModelConfig(shared_channels=4, fc_width=8), trunk=StubTrunk()), dev=torch.device("cpu"))
    assert len(calls) == 1 and roi_kernel._WARM
    assert roi_kernel._roi_align_maxpool.signatures  # compiled (or loaded) for the tracker's argument types
    RTMDNetTracker(TrackerNet(ModelConfig(shared_channels=4, fc_width=8), trunk=StubTrunk()), dev=torch.device("cpu"))
    assert len(calls) == 1  # once per process


@pytest.mark.parametrize("name", ["metartt", "metartt-prune"])
def test_trackers_give_the_same_boxes_with_and_without_the_kernel(name, monkeypatch):
    """End to end: the shipped trackers on a sample video, RoI features from the kernel or from torchvision
    (``METARTT_ROI_KERNEL=0``): identical boxes and scores, frame by frame (sample collection, updates and box
    regression included)."""
    from metartt_lite.data import samples
    from metartt_lite.track import registry
    video = samples.make_sample("distractor", seed=0, n_frames=25)
    runs = []
    for flag in ("1", "0"):
        monkeypatch.setenv("METARTT_ROI_KERNEL", flag)
        t = registry.make_tracker(name, seed=0, dev=torch.device("cpu"))
        t.init(video.frames[0], np.asarray(video.groundtruth[0], dtype=np.float64))
        runs.append([t.update(f) for f in video.frames[1:]])
    for (box_k, score_k), (box_t, score_t) in zip(*runs):
        np.testing.assert_array_equal(box_k, box_t)
        assert score_k == score_t

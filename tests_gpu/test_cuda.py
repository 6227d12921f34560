"""CUDA ≈ CPU, and device hygiene on a real GPU. Run by ``scripts/gpu_check.sh`` (``pytest tests_gpu``)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from metartt_lite.train import meta
from metartt_lite.data import samples
from metartt_lite.track.registry import make_tracker
from meta_fixtures import fake_feats, tiny_net
from test_devices import TRACKERS, run_video, stray_tensors
from test_meta import small_cfg

pytestmark = pytest.mark.cuda
CPU = torch.device("cpu")
CUDA = torch.device("cuda")


@pytest.fixture(scope="module")
def video():
    return samples.make_sample("translation", seed=0, n_frames=10, size=(160, 120))


@pytest.mark.parametrize("name", TRACKERS)
def test_every_tracker_tensor_stays_on_the_gpu(name, video):
    t = make_tracker(name, seed=0, dev=CUDA)
    run_video(t, video)
    assert t.net.shared.weight.device.type == "cuda"
    assert stray_tensors(t) == []


def test_tracker_boxes_on_cuda_match_cpu(video):
    cpu = run_video(make_tracker("rtmdnet-k5-tuned", seed=0, dev=CPU), video)
    gpu = run_video(make_tracker("rtmdnet-k5-tuned", seed=0, dev=CUDA), video)
    err = np.abs(gpu - cpu).max(axis=1)
    print(f"{torch.cuda.get_device_name()}: max |box_cuda - box_cpu| per frame (px): {np.round(err, 3).tolist()}")
    assert err.max() < 3.0, err


def test_meta_gradient_on_cuda_matches_cpu():
    feats = fake_feats()
    grads, losses = [], []
    for dev in (CPU, CUDA):
        learner = meta.MetaLearner(tiny_net(), small_cfg()).to(dev)
        loss, _ = meta.meta_gradient(learner, feats, [0, 1, 2, 3], dev)
        losses.append(loss)
        grads.append({k: p.grad.detach().cpu() for k, p in learner.named_parameters()})
    print(f"{torch.cuda.get_device_name()}: meta-loss cpu {losses[0]:.6f} cuda {losses[1]:.6f}")
    assert abs(losses[0] - losses[1]) < 1e-4 * max(1.0, abs(losses[0]))
    for k in grads[0]:
        torch.testing.assert_close(grads[1][k], grads[0][k], rtol=1e-3, atol=1e-5, msg=k)

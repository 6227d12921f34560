"""Device hygiene: every tensor a tracker keeps lives on its net's device, the --device options, the
torch.distributed backend choice (NCCL only for CUDA) and the bounding-box regressor's dtypes.

These run on CPU. The CUDA runs of the same checks are in ``tests_gpu/`` (``scripts/gpu_check.sh``), which
imports :func:`stray_tensors` from here: on CPU every tensor is trivially on the CPU, so here the walk
itself is checked (it must reach the state that matters) and the code paths run without a device error.
"""
from __future__ import annotations

import argparse
import os
from collections import deque

import numpy as np
import pytest
import torch
import torch.distributed as dist

from metartt_lite import cli
from metartt_lite.train import meta
from metartt_lite.data import samples
from metartt_lite.core import utils
from metartt_lite.track.registry import make_tracker
from metartt_lite.core.utils import MetaRTTError
from meta_fixtures import fake_feats, tiny_net
from test_meta import small_cfg

CPU = torch.device("cpu")
TRACKERS = ["metartt", "metartt-prune", "rtmdnet-k5-tuned"]
# RNG states are CPU byte tensors by PyTorch's design (torch.get_rng_state, torch.cuda.get_rng_state)
SKIP_ATTRS = {"_dropout_rng"}


def _walk(obj, path: str, seen: set):
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if torch.is_tensor(obj):
        yield path, obj
    elif isinstance(obj, torch.nn.Module):
        for k, v in obj.named_parameters():
            yield f"{path}.{k}", v
        for k, v in obj.named_buffers():
            yield f"{path}.{k}", v
    elif isinstance(obj, torch.optim.Optimizer):
        return  # its state follows its parameters (Adam's 'step' counters are CPU scalars by design)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk(v, f"{path}[{k!r}]", seen)
    elif isinstance(obj, (list, tuple, deque)):
        for i, v in enumerate(obj):
            yield from _walk(v, f"{path}[{i}]", seen)
    elif type(obj).__module__.startswith("metartt_lite.") and hasattr(obj, "__dict__"):
        for k, v in vars(obj).items():  # the package's own helpers (the optimisers: the rates they apply)
            yield from _walk(v, f"{path}.{k}", seen)


def tracker_tensors(tracker) -> list[tuple[str, torch.Tensor]]:
    """Every tensor of the tracker's state: ``vars(tracker)`` walked through dicts, lists, tuples, deques
    and the package's own objects, and the parameters/buffers of every module it holds (the net, ψ)."""
    seen: set = set()
    out = []
    for k, v in vars(tracker).items():
        if k not in SKIP_ATTRS:
            out += list(_walk(v, k, seen))
    return out


def _same(a: torch.device, b: torch.device) -> bool:
    return a.type == b.type and (a.index or 0) == (b.index or 0)


def stray_tensors(tracker) -> list[str]:
    """The tensors of ``tracker`` that are not on its net's device (``path device``), or []."""
    want = tracker.net.shared.weight.device
    return [f"{p} {t.device}" for p, t in tracker_tensors(tracker) if not _same(t.device, want)]


def run_video(tracker, video, n: int | None = None) -> np.ndarray:
    frames = list(video.frames)[:n]
    tracker.init(frames[0], video.init_box)
    return np.array([video.init_box] + [tracker.update(f)[0] for f in frames[1:]])


@pytest.fixture(scope="module")
def video():
    return samples.make_sample("translation", seed=0, n_frames=8, size=(160, 120))


@pytest.mark.parametrize("name", TRACKERS)
def test_every_tracker_tensor_is_on_the_nets_device(name, video):
    t = make_tracker(name, seed=0, dev=CPU)
    run_video(t, video)
    paths = [p for p, _ in tracker_tensors(t)]
    # the walk reaches the state that matters (else the check would pass vacuously)
    must = ["params[", "pos_mem[0]", "neg_mem[0]", "net.shared.weight"]
    must += {"metartt": ["meta_rates["], "metartt-prune": ["meta_rates[", "optimizer.rates["]}.get(name, [])
    for m in must:  # (the prune tracker's optimizer holds the rates sliced to the kept channels)
        assert any(p.startswith(m) for p in paths), (m, [p for p in paths if not p.startswith("net.trunk")][:30])
    if t.use_bbreg:
        assert "bb_W" in paths and "bb_mean" in paths
    if name == "metartt-prune":
        assert any(p.startswith("pruner.") for p in paths) and any(p.startswith("keep[") for p in paths)
    assert stray_tensors(t) == []


# ------------------------------------------------------------------------------------- bbreg dtypes
def test_bbreg_solves_in_float64_on_the_cpu_and_uses_float32_where_float64_is_missing(video):
    t = make_tracker("rtmdnet-k5-tuned", seed=0, dev=CPU)
    run_video(t, video, 2)
    assert t.use_bbreg and t.bb_W.dtype == torch.float64 and t.bb_mean.dtype == torch.float64
    feats = torch.rand(20, t.bb_W.shape[0]) * 3
    boxes = np.tile([60.0, 30.0, 30.0, 36.0], (20, 1)) + np.random.default_rng(0).uniform(-4, 4, (20, 4))
    gt = np.array([61.0, 31.0, 30.0, 36.0])
    t._fit_bbreg(feats, boxes, gt)
    ref = t._apply_bbreg(feats, boxes)
    W64 = t.bb_W.clone()
    t.device = torch.device("mps")  # only its type is read: MPS has no float64, so float32 results
    t._fit_bbreg(feats, boxes, gt)
    assert t.bb_W.dtype == t.bb_mean.dtype == t.bb_b.dtype == torch.float32
    torch.testing.assert_close(t.bb_W.double(), W64, rtol=1e-5, atol=1e-7)  # the same float64 solve
    np.testing.assert_allclose(t._apply_bbreg(feats, boxes), ref, atol=1e-3)


# ------------------------------------------------------------------------------ distributed backend
@pytest.mark.parametrize("dev,backend", [("cuda", "nccl"), ("cuda:1", "nccl"), ("cpu", "gloo"), ("mps", "gloo"),
                                         ("meta", "gloo")])
def test_nccl_only_for_cuda_devices(dev, backend):
    assert utils.dist_backend(torch.device(dev)) == backend


class _Stop(Exception):
    pass


@pytest.fixture
def fake_torchrun(monkeypatch):
    """A CUDA machine under torchrun (faked): records init_process_group's backend and set_device."""
    calls: dict = {}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.setdefault("set_device", torch.device(d)))
    monkeypatch.setattr(meta.dist, "is_initialized", lambda: False)

    def init_pg(backend, *a, **kw):
        calls["backend"] = backend
        raise _Stop  # before any work
    monkeypatch.setattr(meta.dist, "init_process_group", init_pg)
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("METARTT_DEVICE", raising=False)
    return calls


def _meta_train_args(*extra: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(["meta-train", "--out", "unused", *extra])


def test_meta_train_on_cpu_uses_gloo_even_where_cuda_exists(fake_torchrun, monkeypatch):
    monkeypatch.setenv("METARTT_DEVICE", "cpu")
    with pytest.raises(_Stop):
        meta._run(_meta_train_args())
    assert fake_torchrun == {"backend": "gloo"}  # and no set_device
    fake_torchrun.clear()
    monkeypatch.delenv("METARTT_DEVICE")
    with pytest.raises(_Stop):
        meta._run(_meta_train_args("--device", "cpu"))
    assert fake_torchrun == {"backend": "gloo"}


def test_meta_train_on_cuda_sets_the_local_rank_device_before_nccl(fake_torchrun):
    with pytest.raises(_Stop):
        meta._run(_meta_train_args("--device", "cuda"))
    assert fake_torchrun == {"set_device": torch.device("cuda", 1), "backend": "nccl"}


def test_meta_gradient_all_reduces_in_a_one_process_group(tmp_path):
    """torchrun --nproc_per_node=1: the all-reduce path runs (loss total on the learner's device)."""
    feats = fake_feats()
    ref = meta.MetaLearner(tiny_net(), small_cfg())
    loss1, _ = meta.meta_gradient(ref, feats, [0, 1], CPU)
    learner = meta.MetaLearner(tiny_net(), small_cfg())
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        loss2, _ = meta.meta_gradient(learner, feats, [0, 1], CPU)
    finally:
        dist.destroy_process_group()
    assert abs(loss1 - loss2) < 1e-6
    for (k, a), b in zip(ref.named_parameters(), learner.parameters()):
        torch.testing.assert_close(b.grad, a.grad, msg=k)


def test_load_meta_puts_the_rates_on_the_nets_device():
    t = make_tracker("metartt", dev=CPU)
    for phase in t.meta_rates:
        for step in phase:
            assert all(v.device == t.net.shared.weight.device for v in step.values())


# ------------------------------------------------------------------------------------------ --device
@pytest.mark.parametrize("cmd", [["demo"], ["track", "--seq", "x"], ["evaluate", "--out", "x"],
                                 ["meta-train", "--out", "x"]])
def test_commands_take_a_device_option(cmd):
    args = cli.build_parser().parse_args([*cmd, "--device", "cpu"])
    assert args.device == "cpu"


@pytest.mark.parametrize("name,msg", [("gpu", "'gpu' is not a device name"), ("cuda:x", "is not a device name"),
                                      ("cuda", "CUDA is not available")])
def test_a_bad_device_is_a_one_line_error(name, msg, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(MetaRTTError, match=msg):
        utils.parse_device(name)
    for cmd in (["demo", "--out", "unused"], ["meta-train", "--out", "unused"]):
        assert cli.main([*cmd, "--device", name]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and msg.split("'")[-1].strip() in err and err.count("\n") == 1, err


def test_device_option_sets_the_device_for_the_command_only(monkeypatch):
    monkeypatch.setenv("METARTT_DEVICE", "cuda:7")  # whatever it was before comes back afterwards
    args = cli.build_parser().parse_args(["demo", "--device", "cpu"])
    with cli._device_env(args):
        assert os.environ["METARTT_DEVICE"] == "cpu" and utils.device() == CPU
    assert os.environ["METARTT_DEVICE"] == "cuda:7"
    monkeypatch.delenv("METARTT_DEVICE")
    with cli._device_env(args):
        assert utils.device() == CPU
    assert "METARTT_DEVICE" not in os.environ

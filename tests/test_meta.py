"""Meta-learning (paper §3): second-order meta-gradients vs finite differences, episodes, ablation
flags, resume equivalence, gloo equivalence, the NaN guard and checkpoint errors."""
from __future__ import annotations

import os
import socket
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from metartt_lite.train import meta
from metartt_lite.train.inner_loop import adapt
from metartt_lite.core.checkpoint import load_checkpoint
from metartt_lite.train.episodes import EpisodeConfig
from metartt_lite.train.losses import meta_test_loss, pos_neg_ce
from metartt_lite.core.utils import MetaRTTError

from meta_fixtures import sample_seqs as make_sample_seqs, TINY, fake_feats, tiny_net

CPU = torch.device("cpu")


def small_cfg(**kw) -> meta.MetaConfig:
    ep = EpisodeConfig(n_pos=8, n_neg=24, n_pos_on=4, n_neg_on=8, n_hard=8, hard_frames=4, n_candidates=32)
    base = dict(episodes=4, meta_batch=2, k_init=2, k_on=2, batch_neg=12, init_rate=0.05, episode=ep)
    base.update(kw)
    return meta.MetaConfig(**base)


def test_meta_gradient_matches_finite_differences_float64():
    """∂L_meta/∂(θ0, ρ) by double backward through both inner loops equals central differences."""
    torch.manual_seed(0)
    net = tiny_net(torch.float64)
    cfg = small_cfg(k_init=2, k_on=2, batch_neg=10_000)  # no mining: the loss is smooth in M
    learner = meta.MetaLearner(net, cfg).double()
    X_init, X_on, X_test = (torch.randn(12, TINY.shared_channels * 9, dtype=torch.float64) for _ in range(3))
    hard = torch.randn(6, TINY.shared_channels * 9, dtype=torch.float64)

    def l_meta():
        def ce(X):
            return lambda th, k: pos_neg_ce(net.head_forward(X[:4], th), net.head_forward(X[4:], th))
        th_i = adapt(net.head_params(), ce(X_init), learner.rates("init"))
        th_o = adapt(th_i, ce(X_on), learner.rates("on"))
        gen = lambda: torch.Generator().manual_seed(0)
        lt = lambda th: meta_test_loss(net.head_forward(X_test[:4], th), net.head_forward(X_test[4:], th),
                                       net.head_forward(hard, th), 0.5, 0.5, gen())
        return lt(th_i) + lt(th_o)

    net.eval()
    loss = l_meta()
    params = [net.head.fc4.weight, net.head.fc6.bias, learner.log_rates[meta.MetaLearner.key("init", 0, "fc4.weight")],
              learner.log_rates[meta.MetaLearner.key("on", 1, "fc5.weight")]]
    grads = torch.autograd.grad(loss, params)
    rng = np.random.default_rng(0)
    eps = 1e-6
    for p, g in zip(params, grads):
        for _ in range(3):
            idx = tuple(int(rng.integers(s)) for s in p.shape)
            old = p[idx].item()

            def at(v):
                with torch.no_grad():
                    p[idx] = v
                return l_meta().item()  # needs grad mode: the inner loop differentiates
            up, down = at(old + eps), at(old - eps)
            at(old)
            fd = (up - down) / (2 * eps)
            assert abs(fd - g[idx].item()) <= 1e-6 + 1e-4 * abs(fd), (p.shape, idx, fd, g[idx].item())


def test_first_order_differs_from_second_order():
    feats = fake_feats()
    grads = {}
    for fo in (False, True):
        net = tiny_net()
        learner = meta.MetaLearner(net, small_cfg(first_order=fo))
        torch.manual_seed(0)
        loss, _ = meta.episode_loss(learner, feats, meta.make_episode(feats, learner.cfg, 0), CPU)
        loss.backward()
        grads[fo] = net.head.fc4.weight.grad.clone()
    assert not torch.allclose(grads[False], grads[True])
    cos = torch.nn.functional.cosine_similarity(grads[False].flatten(), grads[True].flatten(), dim=0)
    assert cos > 0.5  # the first-order approximation points roughly the same way


def test_every_rate_tensor_and_shared_conv_get_gradients():
    feats = fake_feats()
    net = tiny_net()
    learner = meta.MetaLearner(net, small_cfg())
    loss, stats = meta.episode_loss(learner, feats, meta.make_episode(feats, learner.cfg, 1), CPU)
    loss.backward()
    assert len(learner.log_rates) == (2 + 2) * 6  # K_init + K_on steps × 6 head tensors
    for k, p in learner.log_rates.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, k
    assert net.shared.weight.grad is not None and net.shared.weight.grad.abs().sum() > 0
    assert {"l_test_init", "l_test_on", "est_iou", "meta_loss"} <= set(stats)


def test_one_meta_step_lowers_the_episode_test_loss():
    feats = fake_feats()
    net = tiny_net()
    cfg = small_cfg(lr=1e-2, lr_rates=1e-2)
    learner = meta.MetaLearner(net, cfg)
    opt = meta.build_optimizer(learner, cfg)
    ep_loss = []
    for _ in range(2):
        torch.manual_seed(0)
        loss, _ = meta.episode_loss(learner, feats, meta.make_episode(feats, cfg, 3), CPU)
        ep_loss.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert ep_loss[1] < ep_loss[0]


def test_ablation_flags_change_what_they_claim():
    feats = fake_feats()
    # --no-estimated-target: D_on built around the ground truth exactly; otherwise around estimates
    for est in (False, True):
        cfg = small_cfg(episode=replace(small_cfg().episode, estimated_target=est))
        learner = meta.MetaLearner(tiny_net(), cfg)
        diffs = []
        for i in range(3):
            ep = meta.make_episode(feats, cfg, i)
            _, st = meta.episode_loss(learner, feats, ep, CPU)
            gt = feats[ep.seq].gt[ep.frames[1:-1]]
            diffs.append(np.abs(np.array(st["targets"]) - gt).max())
        assert (max(diffs) == 0) == (not est)
    # --no-hard-examples: no D_test^hard
    cfg = small_cfg(gamma=0.0, episode=replace(small_cfg().episode, hard_examples=False))
    assert meta.make_episode(feats, cfg, 0).hard == []
    assert len(meta.make_episode(feats, small_cfg(), 0).hard) > 0
    # --scalar-lr: one rate per tensor and step
    l = meta.MetaLearner(tiny_net(), small_cfg(scalar_lr=True))
    assert all(p.dim() == 0 for p in l.log_rates.values())
    l = meta.MetaLearner(tiny_net(), small_cfg())
    assert all(p.shape == tiny_net().head_params()[k.split("__")[1].replace("_", ".")].shape for k, p in l.log_rates.items())
    # --meta-tracker: one initial step, no online adaptation
    l = meta.MetaLearner(tiny_net(), small_cfg(meta_tracker=True))
    assert len(l.rates("init")) == 1 and len(l.rates("on")) == 0
    _, st = meta.episode_loss(l, feats, meta.make_episode(feats, l.cfg, 0), CPU)
    assert "l_test_on" not in st


@pytest.fixture(scope="module")
def sample_seqs():
    return make_sample_seqs()


def _train(seqs, out, episodes, resume=False, **kw):
    cfg = replace(small_cfg(episodes=episodes, meta_batch=1, checkpoint_every=1, **kw),
                  cache=meta.CacheConfig(frame_step=1))
    return meta.meta_train(seqs, out, cfg, model_cfg=TINY.__class__(crop_size=128, target_size=40.0, shared_channels=4,
                                                                      fc_width=8), resume=resume, progress=False)


def test_resume_gives_the_same_parameters(tmp_path, sample_seqs, monkeypatch):
    monkeypatch.setenv("METARTT_CACHE", str(tmp_path / "cache"))
    straight = _train(sample_seqs, tmp_path / "a", 4)
    _train(sample_seqs, tmp_path / "b", 2)
    resumed = _train(sample_seqs, tmp_path / "b", 4, resume=True)
    ta, tb = load_checkpoint(straight)["tensors"], load_checkpoint(resumed)["tensors"]
    assert ta.keys() == tb.keys()
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k
    assert load_checkpoint(resumed)["extra"]["step"] == 4


def test_resume_removes_temp_files_of_an_interrupted_write(tmp_path, sample_seqs, monkeypatch):
    monkeypatch.setenv("METARTT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    _train(sample_seqs, out, 1)
    stale = out / ".meta_last.pt.abc123.tmp"  # what a SIGKILL during atomic_write leaves behind
    stale.write_bytes(b"half a checkpoint")
    _train(sample_seqs, out, 2, resume=True)
    assert not stale.exists()
    assert load_checkpoint(out / "meta.pt")["extra"]["step"] == 2


def test_nan_loss_stops_with_message_and_keeps_last_checkpoint(tmp_path, sample_seqs, monkeypatch):
    monkeypatch.setenv("METARTT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    _train(sample_seqs, out, 2)
    before = (out / "meta_last.pt").read_bytes()
    real = meta.episode_loss

    def poisoned(*a, **k):
        loss, st = real(*a, **k)
        return loss * float("nan"), st
    monkeypatch.setattr(meta, "episode_loss", poisoned)
    with pytest.raises(MetaRTTError, match="meta-loss is nan.*last good checkpoint"):
        _train(sample_seqs, out, 4, resume=True)
    assert (out / "meta_last.pt").read_bytes() == before


def test_checkpoint_errors_name_the_problem(tmp_path, sample_seqs, monkeypatch):
    monkeypatch.setenv("METARTT_CACHE", str(tmp_path / "cache"))
    path = _train(sample_seqs, tmp_path / "ok", 1)
    from metartt_lite.model.net import build_net
    cfg = TINY.__class__(crop_size=128, target_size=40.0, shared_channels=4, fc_width=8)
    net = build_net(cfg, CPU)
    meta.load_meta(path, net)  # loads fine
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(path.read_bytes()[: 2000])
    with pytest.raises(MetaRTTError, match="corrupt"):
        meta.load_meta(trunc, net)
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(MetaRTTError, match="corrupt|not a metartt_lite"):
        meta.load_meta(tmp_path / "text.pt", net)
    with pytest.raises(MetaRTTError, match="another architecture.*fc_width"):
        meta.load_meta(path, build_net(replace(cfg, fc_width=16), CPU))
    obj = torch.load(path, weights_only=True)
    del obj["tensors"][next(k for k in obj["tensors"] if k.startswith("rate."))]
    torch.save(obj, tmp_path / "missing.pt")
    with pytest.raises(MetaRTTError, match="missing tensors: rate"):
        meta.load_meta(tmp_path / "missing.pt", net)


def _dist_worker(rank, world, port, q):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    feats = fake_feats()
    net = tiny_net()
    learner = meta.MetaLearner(net, small_cfg())
    loss, _ = meta.meta_gradient(learner, feats, [0, 1, 2, 3], CPU)
    if rank == 0:
        # plain numpy arrays: torch tensors would travel as shared-memory handles that die with this process
        q.put((loss, {k: p.grad.detach().numpy().copy() for k, p in learner.named_parameters()}))
    torch.distributed.destroy_process_group()


def test_two_gloo_processes_give_the_same_meta_gradient():
    feats = fake_feats()
    learner = meta.MetaLearner(tiny_net(), small_cfg())
    loss1, _ = meta.meta_gradient(learner, feats, [0, 1, 2, 3], CPU)
    one = {k: p.grad.clone() for k, p in learner.named_parameters()}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_dist_worker, args=(r, 2, port, q)) for r in range(2)]
    for p in procs:
        p.start()
    loss2, two = q.get(timeout=240)
    for p in procs:
        p.join(60)
    assert abs(loss1 - loss2) < 1e-5
    for k in one:
        torch.testing.assert_close(torch.from_numpy(two[k]), one[k], rtol=1e-4, atol=1e-6, msg=k)

"""One-shot channel pruning (paper §4): masked == physically pruned (before and after adaptation, tiny
and real nets), fmap masking == RoI-column masking, λ controls sparsity, the floor / empty-layer error,
all-keep pruning reproduces the unpruned tracker exactly, resume equivalence, the NaN guard, the CLI."""
from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest
import torch

from metartt_lite.train import meta, prune
from metartt_lite.model import surgery, pruning_net
from metartt_lite.track import pruned
from metartt_lite.train.inner_loop import adapt
from metartt_lite.core.checkpoint import load_checkpoint
from metartt_lite.core.config import ModelConfig
from metartt_lite.train.episodes import EpisodeConfig
from metartt_lite.train.losses import pos_neg_ce
from metartt_lite.core.utils import MetaRTTError

from meta_fixtures import sample_seqs as make_sample_seqs, fake_feats, tiny_net

CPU = torch.device("cpu")
SMALL = ModelConfig(crop_size=128, target_size=40.0, shared_channels=4, fc_width=8)




def small_meta_cfg(**kw) -> meta.MetaConfig:
    ep = EpisodeConfig(n_pos=8, n_neg=24, n_pos_on=4, n_neg_on=8, n_hard=8, hard_frames=4, n_candidates=32)
    base = dict(episodes=1, meta_batch=1, k_init=2, k_on=2, batch_neg=12, init_rate=0.05, checkpoint_every=1,
                episode=ep, cache=meta.CacheConfig(frame_step=1))
    base.update(kw)
    return meta.MetaConfig(**base)


def random_keep(widths, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {l: torch.sort(torch.randperm(w, generator=g)[: max(1, w // 2)]).values for l, w in widths.items()}


# ------------------------------------------------------------------------------ masked == pruned
def test_pruned_network_equals_masked_network_and_stays_equal_through_adaptation():
    torch.manual_seed(0)
    net = tiny_net(torch.float64)
    widths = surgery.layer_widths(net)
    keep = random_keep(widths, 1)
    masks = surgery.hard_masks(keep, widths, net.head.fc4.weight)
    # per-parameter rates (perturbed, so a mis-sliced rate shows) for K = 3 steps
    g = torch.Generator().manual_seed(3)
    rates = [{k: (0.05 * torch.rand(v.shape, generator=g, dtype=torch.float64) + 0.01) for k, v in net.head_params().items()}
             for _ in range(3)]
    pnet, ptheta, prates = surgery.prune_network(net, net.head_params(), rates, keep)
    assert pnet.shared.out_channels == len(keep["shared"]) and pnet.head.fc5.out_features == len(keep["fc5"])
    assert pnet.head.fc4.in_features == 9 * len(keep["shared"]) and pnet.head.fc6.in_features == len(keep["fc5"])
    assert pnet.trunk is net.trunk
    cols = surgery.roi_columns(keep["shared"], 3)
    X = torch.randn(40, widths["shared"] * 9, dtype=torch.float64).relu()
    net.eval(); pnet.eval()
    full = surgery.masked_scores(net, X, None, masks)
    torch.testing.assert_close(pnet.head_forward(X[:, cols]), full, atol=1e-10, rtol=0)
    torch.testing.assert_close(pnet.head_forward(X[:, cols], ptheta), full, atol=1e-10, rtol=0)

    def loss_masked(th, k):
        s = surgery.masked_scores(net, X, th, masks, training=True)
        return pos_neg_ce(s[:10], s[10:])

    def loss_pruned(th, k):
        net.head.train()
        s = pnet.head_forward(X[:, cols], th)
        return pos_neg_ce(s[:10], s[10:])

    th_m = adapt(net.head_params(), loss_masked, rates, create_graph=False)
    th_p = adapt(ptheta, loss_pruned, prates, create_graph=False)
    sliced = surgery._slice_params(th_m, keep, 3)
    for k in th_p:
        torch.testing.assert_close(th_p[k], sliced[k], atol=1e-10, rtol=0, msg=k)
        assert not torch.equal(th_p[k], ptheta[k]), k  # adaptation did move every tensor
    torch.testing.assert_close(pnet.head_forward(X[:, cols], th_p), surgery.masked_scores(net, X, th_m, masks),
                               atol=1e-10, rtol=0)


def test_prune_network_float32_scores_and_scalar_rates():
    net = tiny_net()
    widths = surgery.layer_widths(net)
    keep = random_keep(widths, 2)
    masks = surgery.hard_masks(keep, widths, net.head.fc4.weight)
    learner = meta.MetaLearner(net, small_meta_cfg(scalar_lr=True))
    r_init, r_on = prune.fixed_rates(learner)
    pnet, _, (pi, po) = surgery.prune_network(net, None, (r_init, r_on), keep)
    assert all(v.dim() == 0 for d in pi + po for v in d.values())
    X = torch.rand(64, widths["shared"] * 9)
    net.eval(); pnet.eval()
    with torch.no_grad():
        got = pnet.head_forward(X[:, surgery.roi_columns(keep["shared"], 3)])
        torch.testing.assert_close(got, surgery.masked_scores(net, X, None, masks), atol=1e-5, rtol=0)
    with pytest.raises(MetaRTTError, match="distinct"):
        surgery.prune_network(net, None, None, {"fc4": torch.tensor([0, 0])})
    with pytest.raises(MetaRTTError, match="no channel"):
        surgery.prune_network(net, None, None, {"fc5": torch.tensor([], dtype=torch.long)})


@pytest.fixture(scope="module")
def real_net():
    from metartt_lite.model.net import build_net
    return build_net(replace(SMALL, shared_channels=16, fc_width=32, dropout=0.0), CPU, seed=0)


def _real_fmap_and_boxes(net):
    from metartt_lite.model.net import crop_image, make_crop, to_tensor
    from metartt_lite.data.samples import make_sample
    v = make_sample("translation", n_frames=3, size=(160, 120))
    box = v.groundtruth[1]
    crop = make_crop(box, net.cfg)
    img = to_tensor(crop_image(v.frame(1), crop), CPU)
    rng = np.random.default_rng(0)
    boxes = np.asarray(box) + rng.normal(0, 4, (24, 4)) * [1, 1, 0.5, 0.5]
    return img, crop.to_crop(boxes)


def test_real_frame_pruned_network_equals_masked_network(real_net):
    net = real_net
    img, boxes = _real_fmap_and_boxes(net)
    widths = surgery.layer_widths(net)
    keep = random_keep(widths, 4)
    masks = surgery.hard_masks(keep, widths, net.shared.weight)
    pnet, _, _ = surgery.prune_network(net, None, None, keep)
    with torch.no_grad():
        trunk = net.trunk(img)
        full = surgery.masked_scores(net, net.roi_features(net.shared_forward(trunk), boxes), None, masks)
        pfmap = pnet.shared_forward(trunk)
        assert pfmap.shape[1] == len(keep["shared"])
        pruned = pnet.head_forward(pnet.roi_features(pfmap, boxes))
    assert full.abs().max() > 1e-3
    torch.testing.assert_close(pruned, full, atol=1e-5, rtol=0)


def test_masking_fmap_channels_equals_masking_roi_columns(real_net):
    net = real_net
    img, boxes = _real_fmap_and_boxes(net)
    with torch.no_grad():
        fmap = net.shared_forward(net.trunk(img))
        g = torch.Generator().manual_seed(0)
        for beta in (torch.rand(fmap.shape[1], generator=g),                     # soft, β ≥ 0
                     (torch.rand(fmap.shape[1], generator=g) > 0.5).float()):   # hard 0/1
            a = net.roi_features(fmap * beta.view(1, -1, 1, 1), boxes)
            b = net.roi_features(fmap, boxes) * surgery.expand_shared_mask(beta, net.cfg.roi_size)
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
            # and column c·9 … c·9+8 belongs to channel c
            c = int(torch.nonzero(beta > 0)[0])
            one = torch.zeros_like(beta); one[c] = 1
            r = net.roi_features(fmap * one.view(1, -1, 1, 1), boxes)
            assert torch.equal(torch.nonzero(r.abs().sum(0)).flatten() // 9, torch.full((int((r.abs().sum(0) > 0).sum()),), c))


# ------------------------------------------------------------------------------------ masks, loss
def test_hard_keep_threshold_floor_and_empty_layer_error():
    b = {"shared": torch.tensor([0.9, 0.1, 0.6, 0.2]), "fc4": torch.zeros(8), "fc5": torch.linspace(0, 1, 20)}
    keep = surgery.hard_keep(b, tau=0.5, min_keep=2)
    assert keep["shared"].tolist() == [0, 2]
    assert keep["fc4"].tolist() == [0, 1]             # all-zero mask: the floor keeps min_keep (ties: low index)
    assert keep["fc5"].tolist() == list(range(10, 20))
    keep = surgery.hard_keep(b, tau=0.5)               # default floor max(4, 10 %)
    assert len(keep["shared"]) == 4 and len(keep["fc4"]) == 4 and len(keep["fc5"]) == 10
    assert surgery.default_min_keep(300) == 30 and surgery.default_min_keep(3) == 3
    keep = surgery.hard_keep({"fc5": torch.tensor([0.1, 0.9, 0.3, 0.8, 0.0, 0.2])}, tau=0.95, min_keep=3)
    assert keep["fc5"].tolist() == [1, 2, 3]            # highest-β channels
    assert all(len(v) == len(b[k]) for k, v in surgery.hard_keep(b, tau=0.0).items())  # τ = 0 keeps all
    with pytest.raises(MetaRTTError, match="layer 'fc4' keeps no channel"):
        surgery.hard_keep(b, tau=0.5, min_keep=0)
    assert surgery.prune_rates(surgery.hard_keep(b, 0.5, 2), {"shared": 4, "fc4": 8, "fc5": 20}) == \
        {"shared": 0.5, "fc4": 0.75, "fc5": 0.5}


def _fixed_trajectory():
    feats = fake_feats()
    net = tiny_net()
    learner = meta.MetaLearner(net, small_meta_cfg())
    torch.manual_seed(0)
    traj: dict = {}
    meta.episode_loss(learner, feats, meta.make_episode(feats, learner.cfg, 0), CPU, trajectory=traj)
    return net, traj


def test_larger_lambda_gives_sparser_masks_and_only_psi_trains():
    net, traj = _fixed_trajectory()
    theta_before = {k: v.detach().clone() for k, v in net.state_dict().items()}
    mean_beta = {}
    for lam in (0.01, 3.0):
        torch.manual_seed(0)
        psi = pruning_net.MaskPredictor(surgery.layer_widths(net), hidden=16, dropout=0.0)
        opt = torch.optim.Adam(psi.parameters(), lr=3e-2)
        for _ in range(30):
            loss, betas = prune.episode_prune_loss(net, psi, traj, lam)
            opt.zero_grad(); loss.backward(); opt.step()
        betas = psi.predict(net, torch.cat([traj["pos_init"], traj["neg_init"]]), traj["theta_init"][-1])
        mean_beta[lam] = float(torch.cat(list(betas.values())).mean())
        rate = np.mean(list(surgery.prune_rates(surgery.hard_keep(betas, 0.5, 1), psi.widths).values()))
        mean_beta[(lam, "rate")] = rate
    assert mean_beta[3.0] < mean_beta[0.01] - 0.3, mean_beta
    assert mean_beta[(3.0, "rate")] > mean_beta[(0.01, "rate")], mean_beta
    for k, v in net.state_dict().items():
        assert torch.equal(v, theta_before[k]), k


def test_episode_loss_terms_follow_eq11():
    """L_ep = L_lasso(D_init, θ_init^K) + Σ_k L_lasso(D_on, θ_on^k) + L_lasso(D_test, θ_on^K); all-ones
    masks leave only λ · |S| per term."""
    net, traj = _fixed_trajectory()
    psi = pruning_net.MaskPredictor(surgery.layer_widths(net), static=True, init_keep=0.999999)
    with torch.no_grad():
        for p in psi.logits.values():
            p.fill_(50.0)  # β = 1 exactly in float32
    loss, _ = prune.episode_prune_loss(net, psi, traj, lam=0.7)
    n_terms = 1 + len(traj["theta_on"]) + 1
    assert abs(float(loss.detach()) - 0.7 * 3 * n_terms) < 1e-5
    # zero masks: every reconstruction term is 1 (relative) → 3 per data set
    with torch.no_grad():
        for p in psi.logits.values():
            p.fill_(-200.0)
    loss, _ = prune.episode_prune_loss(net, psi, traj, lam=0.0)
    assert abs(float(loss.detach()) - 3 * n_terms) < 1e-5


# ------------------------------------------------------------------------- training loop & tracker
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny meta checkpoint (1 episode of meta_train on sample videos) and the sample sequences."""
    root = tmp_path_factory.mktemp("prune")
    old = os.environ.get("METARTT_CACHE")
    os.environ["METARTT_CACHE"] = str(root / "cache")
    seqs = make_sample_seqs(frames=10)
    path = meta.meta_train(seqs, root / "meta", small_meta_cfg(), model_cfg=SMALL, progress=False, dev=CPU)
    yield root, seqs, path
    if old is None:
        os.environ.pop("METARTT_CACHE", None)
    else:
        os.environ["METARTT_CACHE"] = old


def _pcfg(episodes, **kw):
    base = dict(episodes=episodes, checkpoint_every=1, hidden=16, lr=1e-2, min_keep=1, meta=small_meta_cfg())
    base.update(kw)
    return prune.PruneConfig(**base)


def test_prune_train_resume_gives_the_same_parameters(trained):
    root, seqs, meta_ckpt = trained
    a = prune.prune_train(seqs, root / "pa", meta_ckpt, _pcfg(2), progress=False, dev=CPU, command="test")
    prune.prune_train(seqs, root / "pb", meta_ckpt, _pcfg(1), progress=False, dev=CPU)
    b = prune.prune_train(seqs, root / "pb", meta_ckpt, _pcfg(2), resume=True, progress=False, dev=CPU)
    ta, tb = load_checkpoint(a)["tensors"], load_checkpoint(b)["tensors"]
    assert ta.keys() == tb.keys() and any(k.startswith("psi.mlps.fc4") for k in ta)
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k
    obj = load_checkpoint(a, kind="prune", model_cfg=SMALL)
    ex = obj["extra"]
    assert ex["step"] == 2 and "optimizer" not in ex and ex["command"] == "test"
    assert set(ex["mean_prune_rate"]) == {"shared", "fc4", "fc5"} and np.isfinite(ex["final_loss"])
    for k in ("lambda", "tau", "sequences", "episodes", "wall_time_s", "device", "commit", "dirty", "selection", "meta_checkpoint_sha1"):
        assert k in ex, k
    assert (root / "pa" / "prune.json").is_file() and "optimizer" in load_checkpoint(root / "pa" / "prune_last.pt")["extra"]


def test_prune_train_nan_guard_keeps_last_checkpoint(trained, monkeypatch):
    root, seqs, meta_ckpt = trained
    out = root / "pnan"
    prune.prune_train(seqs, out, meta_ckpt, _pcfg(1), progress=False, dev=CPU)
    before = (out / "prune_last.pt").read_bytes()
    real = prune.episode_prune_loss
    monkeypatch.setattr(prune, "episode_prune_loss", lambda *a, **k: (lambda l, b: (l * float("nan"), b))(*real(*a, **k)))
    with pytest.raises(MetaRTTError, match="prune loss is nan on episode 1.*last good checkpoint"):
        prune.prune_train(seqs, out, meta_ckpt, _pcfg(3), resume=True, progress=False, dev=CPU)
    assert (out / "prune_last.pt").read_bytes() == before


def test_variants_static_mask_and_no_meta(trained):
    root, seqs, meta_ckpt = trained
    p = prune.prune_train(seqs, root / "static", meta_ckpt, _pcfg(1, static_mask=True), progress=False, dev=CPU)
    psi, cfg, _ = prune.load_pruner(p)
    assert cfg.static_mask and set(psi.logits) == {"shared", "fc4", "fc5"}
    p = prune.prune_train(seqs, root / "nometa", None, _pcfg(1, no_meta=True), model_cfg=SMALL, progress=False, dev=CPU)
    _, cfg, extra = prune.load_pruner(p)
    assert cfg.no_meta and extra["meta_checkpoint"] is None
    # the no-meta learner uses the hand-set rate, the meta one the learned rates
    l0, _ = prune.build_learner(None, _pcfg(1, no_meta=True), CPU, SMALL)
    assert all(torch.allclose(v, torch.tensor(0.05)) for d in l0.rates("init") for v in d.values())
    l1, _ = prune.build_learner(meta_ckpt, _pcfg(1), CPU)
    assert not all(torch.allclose(v, torch.tensor(0.05)) for d in l1.rates("init") for v in d.values())
    with pytest.raises(MetaRTTError, match="'meta' checkpoint, expected 'pretrain'"):
        prune.build_learner(meta_ckpt, _pcfg(1, no_meta=True), CPU)


def _track(tracker, video, n):
    tracker.init(video.frame(0), video.groundtruth[0])
    return np.array([tracker.update(video.frame(i))[0] for i in range(1, n)])


def test_all_keep_pruned_tracker_reproduces_unpruned_tracker(trained):
    from metartt_lite.data.samples import make_sample
    from metartt_lite.track.rtmdnet import RTMDNetTracker
    root, seqs, meta_ckpt = trained
    prune_ckpt = root / "pt" / "prune.pt"
    if not prune_ckpt.exists():
        prune.prune_train(seqs, root / "pt", meta_ckpt, _pcfg(1), progress=False, dev=CPU)
    video = make_sample("translation", seed=5, n_frames=15, size=(160, 120))
    net, cfg, rates, _, _ = pruned.load_tracker_parts(prune_ckpt, meta_ckpt, CPU)
    cfg = replace(cfg, n_neg_init=400, bbreg_samples=200, long_interval=5)
    base = RTMDNetTracker(net, cfg, name="metartt", seed=3, meta_rates=rates, dev=CPU)
    boxes_base = _track(base, video, 15)
    pt = pruned.make_metartt_prune(checkpoint=meta_ckpt, prune_checkpoint=prune_ckpt, seed=3, dev=CPU, tau=0.0)
    pt.cfg = cfg
    boxes_pruned = _track(pt, video, 15)
    assert pt.prune_rate == {"shared": 0.0, "fc4": 0.0, "fc5": 0.0}
    np.testing.assert_array_equal(boxes_pruned, boxes_base)
    # a real prune: τ above every β, floor 2 → 2 channels per layer; tracking runs on the small net
    pt = pruned.make_metartt_prune(checkpoint=meta_ckpt, prune_checkpoint=prune_ckpt, seed=3, dev=CPU, tau=1.01,
                                    min_keep=2)
    pt.cfg = cfg
    boxes = _track(pt, video, 15)
    assert pt.net.shared.out_channels == 2 and pt.net.head.fc4.out_features == 2 and pt.net.head.fc5.out_features == 2
    assert pt.full_net.shared.out_channels == SMALL.shared_channels
    assert pt.prune_rate == {"shared": 0.5, "fc4": 0.75, "fc5": 0.75}
    assert pt.pos_mem[0].shape[1] == 18 and pt.bb_W.shape[0] == 18 and np.all(np.isfinite(boxes))
    # the preset is registered; a prune checkpoint alone finds the meta checkpoint it was trained on (here
    # a SMALL net: the shipped weights/meta.pt would be another architecture); missing checkpoints: clear errors
    from metartt_lite.track.registry import make_tracker
    own = make_tracker("metartt-prune", checkpoint=str(prune_ckpt), seed=3, dev=CPU)
    assert own.full_net.shared.out_channels == SMALL.shared_channels
    torch.testing.assert_close(own.full_net.shared.weight, net.shared.weight)
    with pytest.raises(MetaRTTError, match="checkpoint .* not found"):
        make_tracker("metartt-prune", checkpoint=str(root / "nope.pt"), dev=CPU)
    with pytest.raises(MetaRTTError, match="meta-learned checkpoint .* not found"):
        pruned.make_metartt_prune(checkpoint=root / "nope.pt", prune_checkpoint=prune_ckpt, dev=CPU)


def test_cli_parses_prune_train(tmp_path):
    from metartt_lite import cli
    args = cli.build_parser().parse_args(["prune-train", "--data", "D", "--checkpoint", "M.pt", "--out", str(tmp_path),
                                          "--lambda", "0.3", "--episodes", "7", "--resume", "--no-meta",
                                          "--static-mask", "--tau", "0.4"])
    assert args.func is prune._run and args.lam == 0.3 and args.episodes == 7 and args.resume
    cfg = prune.config_from_args(args)
    assert cfg.no_meta and cfg.static_mask and cfg.tau == 0.4 and cfg.lam == 0.3 and cfg.episodes == 7
    assert cli.main(["prune-train", "--out", str(tmp_path), "--checkpoint", str(tmp_path / "none.pt")]) == 2

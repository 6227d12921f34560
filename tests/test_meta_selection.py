"""Generalization machinery of meta-training: harder meta-tests, the real/synthetic episode mix, rates-only
meta-learning, held-aside validation with checkpoint selection, and the provenance every checkpoint records."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from metartt_lite.core import boxes as bx
from metartt_lite.train import meta
from metartt_lite.core.checkpoint import load_checkpoint
from metartt_lite.model.net import build_net
from metartt_lite.train.episodes import EpisodeConfig, harder_test_negatives, sample_frames
from metartt_lite.core.utils import MetaRTTError
from meta_fixtures import TINY, fake_feats, sample_seqs as make_sample_seqs, tiny_net

CPU = torch.device("cpu")


def small_cfg(**kw):
    ep = kw.pop("episode", EpisodeConfig(n_pos=8, n_neg=24, n_pos_on=4, n_neg_on=8, n_hard=8, hard_frames=4,
                                         n_candidates=32, max_gap=3))
    kw = {"episodes": 4, "meta_batch": 2, "batch_neg": 8, **kw}
    return meta.MetaConfig(episode=ep, **kw)


def test_test_gap_reaches_further_and_zero_keeps_the_old_stream():
    cfg = EpisodeConfig(max_gap=3)
    for seed in range(20):  # test_gap = 0: exactly the draws of the original sampler
        old = np.random.default_rng(seed).integers(1, 4, 5)
        got = sample_frames(1000, cfg, np.random.default_rng(seed))
        assert np.diff(got).tolist() == old.tolist()
    far = replace(cfg, test_gap=20)
    last_gaps = [np.diff(sample_frames(1000, far, np.random.default_rng(s)))[-1] for s in range(300)]
    assert max(last_gaps) > 3 and max(last_gaps) <= 23 and min(last_gaps) >= 1
    other = [np.diff(sample_frames(1000, far, np.random.default_rng(s)))[:-1] for s in range(300)]
    assert np.max(other) <= 3


def test_harder_negatives_are_near_misses_and_distractors():
    sf = fake_feats(1, 6)[0]
    gt = sf.gt[2]
    sf.distractors = np.tile(np.array([[[gt[0] + 120, gt[1] + 40, gt[2], gt[3]]]]), (len(sf), 1, 1))
    cfg = EpisodeConfig(n_near_neg=16, n_distractor_neg=8)
    neg = harder_test_negatives(sf, 2, cfg, np.random.default_rng(0))
    ious = bx.iou(neg, gt)
    assert np.all(ious <= cfg.neg_iou + 1e-9)
    near = ious >= 0.05
    on_dis = bx.iou(neg, sf.distractors[2, 0]) >= 0.5
    assert near.sum() >= 12 and on_dis.sum() >= 6          # both kinds are there
    assert len(harder_test_negatives(sf, 2, EpisodeConfig(), np.random.default_rng(0))) == 0


def test_episode_mix_and_hard_pool_exclude_the_source_video():
    feats = fake_feats(4, 10)
    synth = fake_feats(2, 10, seed=5)
    for i, s in enumerate(synth):  # clips made from the real videos fake0 / fake1
        s.name, s.source = f"synth-{i}", f"fake{i}"
    allf = feats + synth
    n_real = len(feats)
    for ratio, want in ((0.0, 0.0), (1.0, 1.0)):
        cfg = small_cfg(synthetic_ratio=ratio)
        on_synth = [meta.make_episode(allf, cfg, i, n_real).seq >= n_real for i in range(40)]
        assert np.mean(on_synth) == want
    cfg = small_cfg(synthetic_ratio=0.5)
    eps = [meta.make_episode(allf, cfg, i, n_real) for i in range(60)]
    assert 0.2 < np.mean([e.seq >= n_real for e in eps]) < 0.8
    for e in eps:
        src = allf[e.seq].source or allf[e.seq].name
        for j, _f, _b in e.hard:
            assert j < n_real and allf[j].name != src  # only real videos other than the source
    # without synthetic clips the episodes are the original ones
    a = meta.make_episode(feats, small_cfg(), 3)
    b = meta.make_episode(feats, small_cfg(synthetic_ratio=0.7), 3, n_real)
    assert a.seq == b.seq and a.frames == b.frames and np.array_equal(a.test.neg, b.test.neg)


def test_validation_loss_is_deterministic_and_leaves_the_rng_alone():
    feats = fake_feats(3, 10)
    learner = meta.MetaLearner(tiny_net(), small_cfg())
    torch.manual_seed(123)
    v1 = meta.validation_loss(learner, feats, 1, 3, CPU)
    after = torch.rand(1)
    torch.manual_seed(123)
    v2 = meta.validation_loss(learner, feats, 1, 3, CPU)
    assert v1 == v2 and np.isfinite(v1) and torch.equal(after, torch.rand(1))


def test_split_holdout_by_sequence():
    class S:
        def __init__(self, n):
            self.name = n
    seqs = [S(n) for n in "dbcaefgh"]
    tr, held = meta.split_holdout(seqs, 1, 4)
    assert [s.name for s in held] == ["b", "f"] and len(tr) == 6 and not set(tr) & set(held)
    all_held = sum((meta.split_holdout(seqs, k, 4)[1] for k in range(4)), [])
    assert sorted(s.name for s in all_held) == sorted("dbcaefgh")      # the folds partition the videos
    assert meta.split_holdout(seqs, -1, 4) == (seqs, [])
    with pytest.raises(MetaRTTError, match="fold"):
        meta.split_holdout(seqs, 4, 4)


@pytest.fixture(scope="module")
def seqs4():
    return make_sample_seqs(4)


def _train(seqs, out, init_from=None, **kw):
    cfg = replace(small_cfg(meta_batch=1, checkpoint_every=1, **kw), cache=meta.CacheConfig(frame_step=1))
    return meta.meta_train(seqs, out, cfg, model_cfg=replace(TINY, dropout=0.5), init_from=init_from,
                           progress=False)


def test_rates_only_keeps_theta0(tmp_path, seqs4, monkeypatch):
    monkeypatch.setenv("METARTT_CACHE", str(tmp_path / "cache"))
    a = load_checkpoint(_train(seqs4, tmp_path / "a", episodes=3, learn_theta=False))
    b = load_checkpoint(_train(seqs4, tmp_path / "b", episodes=3))
    # θ0 of a fresh net with the run's seed: rates-only leaves it exactly, full meta-learning moves it
    net = build_net(replace(TINY, dropout=0.5), CPU, seed=0)
    fresh = {f"shared.{k}": v for k, v in net.shared.state_dict().items()}
    fresh.update({f"head.{k}": v for k, v in net.head.state_dict().items()})
    theta = [k for k in a["tensors"] if not k.startswith("rate.")]
    assert set(theta) == set(fresh)
    assert all(torch.equal(a["tensors"][k], fresh[k]) for k in theta)
    assert any(not torch.equal(a["tensors"][k], b["tensors"][k]) for k in theta)
    init = np.log(meta.MetaConfig.init_rate)
    assert any(not torch.allclose(v.float(), torch.full_like(v.float(), init), atol=1e-3)
               for k, v in a["tensors"].items() if k.startswith("rate."))


def test_holdout_selects_the_best_validation_checkpoint(tmp_path, seqs4, monkeypatch):
    monkeypatch.setenv("METARTT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "sel"
    path = _train(seqs4, out, episodes=4, holdout_fold=0, n_folds=4, val_every=1, val_episodes=2)
    ck = load_checkpoint(path)
    ex = ck["extra"]
    sel = ex["selection"]
    vals = [h["val_loss"] for h in sel["val_history"]]
    assert [h["step"] for h in sel["val_history"]] == [0, 1, 2, 3, 4]
    assert sel["best_val_loss"] == min(vals) and sel["best_step"] == sel["val_history"][int(np.argmin(vals))]["step"]
    held = sel["held_aside"]
    assert len(held) == 1 and held[0] not in ex["sequences"] and len(ex["sequences"]) == 3
    best = load_checkpoint(out / "meta_best.pt")["tensors"]
    for k, v in ck["tensors"].items():
        assert torch.equal(v, best[k]), k
    # provenance: commit + dirty flag, exact train list, episode mix, selection criterion
    assert isinstance(ex["commit"], str) and ex["dirty"] in (True, False, None)
    assert ex["episode_mix"] == {"real_sequences": 3, "synthetic_clips": 0, "synthetic_ratio": 0.0}
    assert "held-aside" in sel["criterion"]
    import json
    js = json.loads((out / "meta.json").read_text())
    assert js["selection"]["best_step"] == sel["best_step"] and js["meta_loss_curve"]
    # patience 1: stops at the first validation that does not improve
    out2 = tmp_path / "stop"
    ex2 = load_checkpoint(_train(seqs4, out2, episodes=6, holdout_fold=0, n_folds=4, val_every=1, val_episodes=2,
                                 patience=1))["extra"]
    h = [x["val_loss"] for x in ex2["selection"]["val_history"]]
    worse = [i for i in range(1, len(h)) if h[i] >= min(h[:i])]
    assert ex2["step"] == (ex2["selection"]["val_history"][worse[0]]["step"] if worse else 6)


# ------------------------------------------------------------------------------------------ feature cache
def test_feature_cache_rejects_truncated_and_foreign_files(tmp_path, seqs4):
    from metartt_lite.train.features import CacheConfig, cache_sequence
    from metartt_lite.model.net import Trunk
    trunk = Trunk(TINY.trunk_blocks)
    cc = CacheConfig(frame_step=4)
    root = tmp_path / "feat"
    a = cache_sequence(seqs4[0], trunk, TINY, cc, root=root)
    (path,) = root.glob(f"{seqs4[0].name}-*.pt")
    good = path.read_bytes()
    again = cache_sequence(seqs4[0], trunk, TINY, cc, root=root)   # a good entry is reused as it is
    assert torch.equal(a.trunk, again.trunk) and path.read_bytes() == good
    path.write_bytes(good[: len(good) // 2])                          # truncated
    with pytest.warns(RuntimeWarning, match="unusable"):
        b = cache_sequence(seqs4[0], trunk, TINY, cc, root=root)
    assert torch.equal(a.trunk, b.trunk)
    # a foreign file under the expected name: another sequence's features
    cache_sequence(seqs4[1], trunk, TINY, cc, root=root)
    (other,) = root.glob(f"{seqs4[1].name}-*.pt")
    path.write_bytes(other.read_bytes())
    with pytest.warns(RuntimeWarning, match="another sequence"):
        c = cache_sequence(seqs4[0], trunk, TINY, cc, root=root)
    assert torch.equal(a.trunk, c.trunk) and np.array_equal(a.gt, c.gt)


def test_meta_train_with_synthetic_clips_records_the_mix(tmp_path, seqs4, monkeypatch):
    """Synthetic clips from the train videos enter the episodes; their distractors reach the D_test negatives."""
    monkeypatch.setenv("METARTT_CACHE", str(tmp_path / "cache"))
    ep = EpisodeConfig(n_pos=8, n_neg=24, n_pos_on=4, n_neg_on=8, n_hard=8, hard_frames=4, n_candidates=32,
                       max_gap=3, n_distractor_neg=8, n_near_neg=8, test_gap=4)
    path = _train(seqs4[:3], tmp_path / "syn", episodes=4, n_synthetic=3, synthetic_ratio=1.0, episode=ep)
    ex = load_checkpoint(path)["extra"]
    assert ex["episode_mix"] == {"real_sequences": 3, "synthetic_clips": 3, "synthetic_ratio": 1.0}
    assert ex["config"]["episode"]["n_distractor_neg"] == 8

"""Paired comparison (compare.py) against hand-computed cases, an exact bootstrap enumeration, a known zero
difference, and the evaluate --seeds / compare commands end to end on a small sample root."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from metartt_lite import cli
from metartt_lite.evaluation.compare import bootstrap_ci, compare, compare_all, compare_markdown, per_sequence_means
from metartt_lite.data.samples import make_sample, write_sample_as_otb
from metartt_lite.core.utils import MetaRTTError, parse_seeds


def fake_results():
    """A: stochastic, 2 seeds; B: deterministic (one run stands for every seed)."""
    def seq(per_seed_auc, per_seed_prec):
        return {"auc": float(np.mean(per_seed_auc)), "precision": float(np.mean(per_seed_prec)),
                "seeds": {str(i): {"auc": a, "precision": p} for i, (a, p) in enumerate(zip(per_seed_auc, per_seed_prec))}}
    A = {"seeds": [0, 1], "sequences": {"s1": seq([0.5, 0.7], [0.8, 0.8]), "s2": seq([0.4, 0.4], [0.5, 0.7]),
                                       "s3": seq([0.9, 0.7], [1.0, 0.9])}}
    B = {"seeds": [0], "deterministic": True,
         "sequences": {"s1": seq([0.5], [0.6]), "s2": seq([0.5], [0.6]), "s3": seq([0.5], [0.6])}}
    old = {"sequences": {"s1": {"auc": 0.2, "precision": 0.3}, "s2": {"auc": None, "precision": None},
                         "s3": {"auc": 0.4, "precision": 0.5}}}  # results written before seeds existed
    return {"trackers": {"A": A, "B": B, "old": old}}


def test_hand_computed_case():
    r = fake_results()
    assert per_sequence_means(r, "A") == pytest.approx({"s1": 0.6, "s2": 0.4, "s3": 0.8})
    c = compare(r, "A", "B", n_resamples=20_000, seed=1)
    au = c["auc"]
    # d = [0.1, -0.1, 0.3]: mean 0.1, 2 wins, 1 loss
    assert au["diff"] == pytest.approx(0.1)
    assert au["per_sequence"] == pytest.approx({"s1": 0.1, "s2": -0.1, "s3": 0.3})
    assert (au["wins"], au["ties"], au["losses"]) == (2, 0, 1)
    assert au["mean_a"] == pytest.approx(0.6) and au["mean_b"] == pytest.approx(0.5)
    # 3 sequences: each extreme resample (all -0.1 / all 0.3) has probability 1/27 = 3.7% > 2.5%,
    # so the percentile CI is exactly [-0.1, 0.3], and it contains 0
    assert au["ci"] == pytest.approx([-0.1, 0.3])
    assert au["ci_contains_zero"]
    pr = c["precision"]  # d = [0.2, 0.0, 0.35]
    assert pr["diff"] == pytest.approx(0.55 / 3)
    assert (pr["wins"], pr["ties"], pr["losses"]) == (2, 1, 0)
    assert c["n_sequences"] == 3 and c["seeds_a"] == [0, 1] and c["seeds_b"] == [0]
    assert c["n_resamples"] == 20_000 and c["bootstrap_seed"] == 1 and c["level"] == 0.95


def _many(diffs):
    """A and B on len(diffs) sequences, AUC_A - AUC_B = diffs."""
    seqs = {f"s{i}": d for i, d in enumerate(diffs)}
    A = {"sequences": {s: {"auc": 0.5 + d, "precision": 0.5 + d} for s, d in seqs.items()}}
    B = {"sequences": {s: {"auc": 0.5, "precision": 0.5} for s in seqs}}
    return {"trackers": {"A": A, "B": B}}


def test_no_verdict_below_five_sequences():
    """A CI that excludes 0 from 2 (or 4) sequences is no verdict; from 5 it is, and the table says which."""
    for n in (1, 2, 4):
        c = compare(_many([0.1] * n), "A", "B", n_resamples=500)
        assert not c["auc"]["ci_contains_zero"]  # the interval alone would call it
        assert c["verdict"].startswith(f"no verdict: {n} sequence") and "at least 5" in c["verdict"]
        md = compare_markdown([c])
        assert "ahead" not in md and "no verdict" in md
    c = compare(_many([0.1, 0.2, 0.1, 0.15, 0.05]), "A", "B", n_resamples=500)
    assert c["verdict"] == "A ahead (CI excludes 0)" and "A ahead" in compare_markdown([c])
    c = compare(_many([0.1, -0.2, 0.1, 0.15, -0.05]), "A", "B", n_resamples=500)
    assert c["verdict"].startswith("CI contains 0")


def test_identical_trackers_give_zero():
    r = fake_results()
    c = compare(r, "A", "A")
    for m in ("auc", "precision"):
        assert c[m]["diff"] == 0.0 and c[m]["ci"] == [0.0, 0.0] and c[m]["ci_contains_zero"]
        assert c[m]["wins"] == c[m]["losses"] == 0 and c[m]["ties"] == 3


def test_bootstrap_matches_exact_enumeration():
    """With 4 values the bootstrap distribution of the mean has 4^4 equally likely resamples: the
    sampled percentile CI must match the exact quantiles of that distribution."""
    d = np.array([0.05, -0.02, 0.10, 0.01])
    means = np.sort([np.mean(t) for t in itertools.product(d, repeat=4)])
    lo_exact, hi_exact = np.quantile(means, [0.025, 0.975])
    lo, hi = bootstrap_ci(d, n_resamples=50_000, seed=0)
    assert lo == pytest.approx(lo_exact, abs=0.004) and hi == pytest.approx(hi_exact, abs=0.004)
    assert bootstrap_ci(d, seed=5) == bootstrap_ci(d, seed=5)   # seeded
    # a clear, consistent gain over 10 sequences gives a CI above 0
    assert bootstrap_ci(np.full(10, 0.03) + np.linspace(-0.01, 0.01, 10))[0] > 0
    with pytest.raises(MetaRTTError):
        bootstrap_ci(np.array([]))


def test_old_results_missing_sequences_and_errors():
    r = fake_results()
    c = compare(r, "A", "old")       # s2 has no defined value for 'old': left out of the pairing
    assert c["sequences"] == ["s1", "s3"] and c["auc"]["diff"] == pytest.approx(((0.6 - 0.2) + (0.8 - 0.4)) / 2)
    with pytest.raises(MetaRTTError, match="not in the results"):
        compare(r, "A", "nope")
    comps = compare_all(r, "B")
    assert [x["a"] for x in comps] == ["A", "old"]
    md = compare_markdown(comps)
    assert "no verdict: 3 sequences" in md and "resamples" in md and "+10.0" in md  # 3 < 5 sequences


def test_parse_seeds():
    assert parse_seeds("0,1,2") == [0, 1, 2] and parse_seeds("0-3") == [0, 1, 2, 3] and parse_seeds("7") == [7]
    for bad in ("", "a,b", "1,1"):
        with pytest.raises(MetaRTTError, match="seeds"):
            parse_seeds(bad)


@pytest.fixture(scope="module")
def sample_root(tmp_path_factory):
    """Two short sample videos as an OTB root with a val split."""
    root = tmp_path_factory.mktemp("root")
    for name, preset, seed in (("vidA", "translation", 1), ("vidB", "scale", 2)):
        v = make_sample(preset, seed=seed, n_frames=10)
        write_sample_as_otb(v, root / name)
    (root / "splits.json").write_text(json.dumps({"train": [], "val": ["vidA", "vidB"]}))
    return root


@pytest.mark.slow
def test_evaluate_seeds_and_compare_cli(sample_root, tmp_path, capsys):
    """The issue's command on a small sample root: every learned tracker with 3 seeds, CSRT once; then compare."""
    out = tmp_path / "ev"
    names = "metartt,metartt-prune,rtmdnet,rtmdnet-k5,rtmdnet-k5-tuned,csrt"
    rc = cli.main(["evaluate", "--data", str(sample_root), "--split", "val", "--seeds", "0,1,2",
                   "--trackers", names, "--out", str(out), "-q"])
    stdout, err = capsys.readouterr()
    assert rc == 0, err
    res = json.loads((out / "results.json").read_text())
    assert res["config"]["seeds"] == [0, 1, 2]
    for t in names.split(","):
        r = res["trackers"][t]
        assert r["seeds"] == ([0] if t == "csrt" else [0, 1, 2]), t
        assert set(r["sequences"]) == {"vidA", "vidB"}
        assert r["auc_min"] <= r["auc"] <= r["auc_max"]
    assert "seeds" in stdout and "1 (det.)" in stdout
    rc = cli.main(["compare", str(out / "results.json"), "--baseline", "rtmdnet-k5-tuned", "--resamples", "2000",
                   "--out", str(tmp_path / "cmp")])
    stdout, err = capsys.readouterr()
    assert rc == 0, err
    saved = json.loads((tmp_path / "cmp.json").read_text())
    assert [c["a"] for c in saved["comparisons"]] == [t for t in names.split(",") if t != "rtmdnet-k5-tuned"]
    for c in saved["comparisons"]:  # the CLI's numbers are compare()'s on the same file
        again = compare(res, c["a"], "rtmdnet-k5-tuned", n_resamples=2000)
        assert c["auc"]["diff"] == pytest.approx(again["auc"]["diff"]) and c["auc"]["ci"] == pytest.approx(again["auc"]["ci"])
    assert (tmp_path / "cmp.md").read_text().startswith("| A")
    assert "metartt" in stdout and "2000 resamples" in stdout
    # user errors: one line, exit 2
    rc = cli.main(["compare", str(out / "results.json"), "metartt"])
    _, err = capsys.readouterr()
    assert rc == 2 and err.startswith("error:") and "--baseline" in err
    rc = cli.main(["compare", str(tmp_path / "missing.json"), "a", "b"])
    _, err = capsys.readouterr()
    assert rc == 2 and "does not exist" in err
    rc = cli.main(["evaluate", "--data", str(sample_root), "--seeds", "0,x", "--trackers", "csrt", "--out", str(out)])
    _, err = capsys.readouterr()
    assert rc == 2 and "seeds" in err

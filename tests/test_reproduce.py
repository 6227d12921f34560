"""``reproduce`` end to end on a tiny data root (3 sample videos of 12 frames: 2 train, 1 val), with
``--quick --episodes 2`` so that all nine variants train in seconds; then a second run that must reuse
every checkpoint, and a data root without ``splits.json`` (exit 2, one ``error:`` line)."""
from __future__ import annotations

import json
import re

import pytest

from metartt_lite.evaluation.compare import compare

from metartt_lite.cli import main
from metartt_lite.evaluation.reproduce import META_VARIANTS, PEER_TRACKERS, PRUNE_VARIANTS, TABLES
from metartt_lite.data.samples import make_sample, write_sample_as_otb

NAMES = ["s0", "s1", "s2"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    import os
    T = tmp_path_factory.mktemp("reproduce")
    old = os.environ.get("METARTT_CACHE")
    os.environ["METARTT_CACHE"] = str(T / "cache")
    root = T / "data"
    for i, preset in enumerate(["translation", "scale", "distractor"]):
        write_sample_as_otb(make_sample(preset, seed=i, n_frames=12, size=(160, 120)), root / NAMES[i])
    (root / "sequences.json").write_text(json.dumps({"sequences": [{"name": n} for n in NAMES]}))
    (root / "splits.json").write_text(json.dumps({"train": ["s0", "s1"], "val": ["s2"]}))
    yield T, root
    if old is None:
        os.environ.pop("METARTT_CACHE", None)
    else:
        os.environ["METARTT_CACHE"] = old


def _reproduce(T, root, capsys, *extra):
    rc = main(["reproduce", "--data", str(root), "--out", str(T / "out"), "--quick", "--episodes", "2",
               "--prune-episodes", "2", "--meta-batch", "2", "-q", *extra])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    return cap.out


def test_reproduce_end_to_end_and_cache(run, capsys):
    T, root = run
    out = T / "out"
    log = _reproduce(T, root, capsys)
    assert "reusing" not in log
    for variant in META_VARIANTS:
        assert (out / "checkpoints" / variant / "meta.pt").is_file()
    for variant in PRUNE_VARIANTS:
        assert (out / "checkpoints" / variant / "prune.pt").is_file()
    for f in ("results.json", "README.md", "success.png", "precision.png", "success.html"):
        assert (out / f).is_file(), f

    res = json.loads((out / "results.json").read_text())
    for k in ("device", "trackers", "tables", "prune_rates", "reproduce", "wall_time"):
        assert k in res, k
    rp = res["reproduce"]
    for k in ("quick", "seed", "seeds", "git_commit", "training", "evaluation_wall_time_s", "training_wall_time_s",
              "meta_episodes", "prune_episodes", "train_sequences", "val_sequences", "torch_device"):
        assert k in rp, k
    assert rp["quick"] is True and rp["meta_episodes"] == 2 and rp["prune_episodes"] == 2
    assert rp["train_sequences"] == ["s0", "s1"] and rp["val_sequences"] == ["s2"]  # never val for training
    assert set(rp["training"]) == set(META_VARIANTS) | set(PRUNE_VARIANTS)
    assert all(v["training_wall_time_s"] > 0 and not v["reused"] for v in rp["training"].values())

    readme = (out / "README.md").read_text()
    base = res["trackers"]["rtmdnet"]["fps"]
    for key, (title, rows) in TABLES.items():
        assert title in readme
        assert [r["tracker"] for r in res["tables"][key]] == [n for n, _ in rows]
        for r in res["tables"][key]:
            assert f"(`{r['tracker']}`)" in readme
            # every row comes from the same evaluate call: its numbers are the evaluation's
            t = res["trackers"][r["tracker"]]
            assert r["auc"] == t["auc"] and r["fps"] == t["fps"]
            assert r["fps_ratio_vs_rtmdnet"] == pytest.approx(t["fps"] / base)
    assert "quick mode: 2 meta / 2 prune episodes, sequences s2" in readme
    for link in ("success.png", "precision.png", "success.html"):
        assert f"({link})" in readme
    for name in ("metartt-prune", "metartt-prune-nometa", "metartt-prune-static"):
        pr = res["prune_rates"][name]
        assert 0.0 <= pr["mean"] <= 1.0 and set(pr["layers"]) == {"shared", "fc4", "fc5"}
    assert res["tables"]["table1"][0]["paper"]["succ"] == 65.0

    # second run, evaluation in 2 worker processes: every checkpoint reused, nothing retrained, and the
    # same boxes and pruning rates as the single-process run for our trackers (seeded per video; OpenCV's
    # MIL draws from OpenCV's own RNG, whose state differs in a fresh worker process)
    ckpts = sorted((out / "checkpoints").glob("*/*.pt"))
    mtimes = {p: p.stat().st_mtime_ns for p in ckpts}
    log2 = _reproduce(T, root, capsys, "--workers", "2")
    assert log2.count("reusing") == len(META_VARIANTS) + len(PRUNE_VARIANTS)
    assert {p: p.stat().st_mtime_ns for p in ckpts} == mtimes
    res2 = json.loads((out / "results.json").read_text())
    assert all(v["reused"] for v in res2["reproduce"]["training"].values())
    assert res2["config"]["workers"] == 2 and "--workers 2" in res2["reproduce"]["command"]
    assert "2 worker processes" in (out / "README.md").read_text()
    for name, t in res["trackers"].items():
        if name in PEER_TRACKERS:
            continue
        assert res2["trackers"][name]["auc"] == pytest.approx(t["auc"], abs=1e-12), name
    assert res2["prune_rates"].keys() == res["prune_rates"].keys()
    for name, pr in res["prune_rates"].items():
        assert res2["prune_rates"][name]["per_video"] == pr["per_video"], name

    # per-sequence section: ablation rows against the table's first row, recomputed here by hand
    readme2 = (out / "README.md").read_text()
    assert "## Per sequence: do the gaps hold across videos?" in readme2
    for key in ("table2", "table3"):
        rows = res2["tables"][key]
        full = res2["trackers"][rows[0]["tracker"]]
        assert "vs_full" not in rows[0]
        for r in rows[1:]:
            t = res2["trackers"][r["tracker"]]
            ahead = sum(full["sequences"][s]["auc"] > t["sequences"][s]["auc"] for s in NAMES[2:])
            assert r["vs_full"]["full_ahead_on"] == ahead and r["vs_full"]["n_sequences"] == 1
            assert r["vs_full"]["delta_auc"] == pytest.approx(t["auc"] - full["auc"])
            assert f"| {100 * r['vs_full']['delta_auc']:+.1f} | {ahead}/1 |" in readme2
    # paired comparisons: each ablation against its table's full model, the numbers of compare()
    assert "## Paired comparisons: which gaps are resolved?" in readme2
    c = compare(res2, "metartt-scalar-lr", "metartt")
    row = re.search(r"^\| metartt-scalar-lr +\| +metartt +\| +1 \| +1/1 \|.*$", readme2, re.M)
    assert row and f"{100 * c['auc']['diff']:+.1f}" in row.group(0)

    # --render-only: README rewritten from results.json, every measured number kept, nothing retrained
    (out / "README.md").write_text("stale")
    (out / "success.png").unlink()
    before = json.loads((out / "results.json").read_text())
    assert main(["reproduce", "--out", str(out), "--render-only"]) == 0
    after = json.loads((out / "results.json").read_text())
    assert after["trackers"] == before["trackers"] and after["tables"] == before["tables"]
    assert "--render-only" in after["reproduce"]["rendered_by"]["command"]
    rendered = (out / "README.md").read_text()
    assert rendered.split("This file was re-rendered")[0].rstrip() == readme2.rstrip()
    assert (out / "success.png").is_file()  # plots redrawn from the stored curves
    assert {p: p.stat().st_mtime_ns for p in ckpts} == mtimes


def test_missing_splits_is_exit_2(tmp_path, capsys):
    root = tmp_path / "data"
    write_sample_as_otb(make_sample("translation", seed=0, n_frames=4, size=(160, 120)), root / "s0")
    rc = main(["reproduce", "--data", str(root), "--out", str(tmp_path / "out"), "--quick"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("error:") and "splits.json" in err[0]
    assert not (tmp_path / "out").exists()


def test_render_only_needs_results(tmp_path, capsys):
    rc = main(["reproduce", "--out", str(tmp_path / "nothing"), "--render-only"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "results.json" in err[0]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.json").write_text('{"trackers": {}}')
    rc = main(["reproduce", "--out", str(tmp_path / "bad"), "--render-only"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "not a reproduce results file" in err[0]

"""``evaluate``'s defaults on a folder of your own sequences: without splits.json (or without a 'val' split
in it) every sequence is evaluated instead of failing, and the default tracker list holds our own trackers
(metartt, metartt-prune) beside the RT-MDNet presets and OpenCV's."""
from __future__ import annotations

import json
import shutil

import pytest

from metartt_lite import cli
from metartt_lite.data.samples import make_sample, write_sample_as_otb

from test_cli import run_cli


@pytest.fixture(scope="module")
def own_root(tmp_path_factory):
    """Three OTB sequences of one's own, no splits.json."""
    root = tmp_path_factory.mktemp("own")
    for i, preset in enumerate(("translation", "scale", "occlusion")):
        write_sample_as_otb(make_sample(preset, seed=i, n_frames=6), root / f"my_{preset}")
    return root


def _evaluated(out) -> dict[str, list[str]]:
    res = json.loads((out / "results.json").read_text())
    return {t: sorted(r["sequences"]) for t, r in res["trackers"].items()}


def test_no_splits_json_evaluates_every_sequence(own_root, tmp_path, capsys):
    rc, out, err = run_cli(["evaluate", "--data", own_root, "--trackers", "kcf", "--out", tmp_path / "e"], capsys)
    assert rc == 0, err
    assert "no splits.json" in err and "every sequence" in err
    assert _evaluated(tmp_path / "e") == {"kcf": ["my_occlusion", "my_scale", "my_translation"]}
    assert "3 sequences" in out


def test_splits_json_without_val_evaluates_every_sequence(own_root, tmp_path, capsys):
    root = tmp_path / "root"
    shutil.copytree(own_root, root)
    (root / "splits.json").write_text(json.dumps({"train": ["my_scale"]}))
    rc, _, err = run_cli(["evaluate", "--data", root, "--trackers", "kcf", "--out", tmp_path / "e"], capsys)
    assert rc == 0, err
    assert "no 'val' split" in err
    assert _evaluated(tmp_path / "e")["kcf"] == ["my_occlusion", "my_scale", "my_translation"]
    # an explicit split still selects it, and 'val' is still the default when it exists
    rc, _, err = run_cli(["evaluate", "--data", root, "--split", "train", "--trackers", "kcf",
                          "--out", tmp_path / "t"], capsys)
    assert rc == 0, err
    assert _evaluated(tmp_path / "t")["kcf"] == ["my_scale"]
    (root / "splits.json").write_text(json.dumps({"train": ["my_scale"], "val": ["my_occlusion"]}))
    rc, _, err = run_cli(["evaluate", "--data", root, "--trackers", "kcf", "--out", tmp_path / "v"], capsys)
    assert rc == 0, err
    assert "note" not in err
    assert _evaluated(tmp_path / "v")["kcf"] == ["my_occlusion"]


def test_bad_splits_json_is_one_error_line(own_root, tmp_path, capsys):
    root = tmp_path / "root"
    shutil.copytree(own_root, root)
    (root / "splits.json").write_text("{not json")
    rc, _, err = run_cli(["evaluate", "--data", root, "--trackers", "kcf", "--out", tmp_path / "e"], capsys)
    assert rc == 2 and err.startswith("error: cannot read") and "splits.json" in err
    assert not (tmp_path / "e").exists()


def test_default_tracker_list_has_ours():
    names = cli.build_parser().parse_args(["evaluate", "--out", "x"]).trackers.split(",")
    assert names[:2] == ["metartt", "metartt-prune"]
    assert {"rtmdnet", "rtmdnet-k5", "csrt", "kcf", "mil"} <= set(names)


@pytest.mark.slow
def test_default_trackers_run_end_to_end(own_root, tmp_path, capsys):
    """No --trackers, no --split: every default tracker (ours included, with their shipped weights) runs on
    every sequence of a folder without splits.json."""
    rc, out, err = run_cli(["evaluate", "--data", own_root, "--sequences", "my_translation", "--out",
                            tmp_path / "e", "--device", "cpu"], capsys)
    assert rc == 0, err
    res = json.loads((tmp_path / "e" / "results.json").read_text())
    assert list(res["trackers"]) == cli.DEFAULT_TRACKERS.split(",")
    for t, r in res["trackers"].items():
        s = r["sequences"]["my_translation"]
        assert len(s["boxes"]) == 6 and s["auc"] is not None, t
    assert "| metartt " in out and "| metartt-prune " in out
